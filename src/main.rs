//! The `recado` binary: argument parsing and wiring only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use recado::config;

/// minijinja and serde allocate many small short-lived values per request;
/// mimalloc serves them markedly cheaper than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use recado::request::PlatformRequest;
use recado::server;
use recado::state::{AdminToken, AppState, Settings};

#[derive(Parser)]
#[command(
    version,
    about = "Answers scheduled-message webhooks from YAML integrations"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhooks (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Validate every file of the integrations folder; print each error as
    /// file:line:col. Exits non-zero if any file has an error.
    Check {
        /// The integrations folder (also `--dir DIR`).
        #[arg(value_name = "DIR", conflicts_with = "dir")]
        folder: Option<PathBuf>,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Print the JSON Schema of integration files (or of `tenant.yaml`), for
    /// editors: see the README for the YAML language server.
    Schema {
        #[arg(value_enum, default_value = "integration")]
        kind: SchemaKind,
    },
    /// Dry run: print the messages TENANT/INTEGRATION would answer for the
    /// request body in REQUEST (a JSON file, `-` for stdin). Upstream calls
    /// (`enrich:`) are really made.
    Render {
        /// `<tenant>/<integration>`, e.g. `demo/boleto`.
        target: String,
        request: PathBuf,
        /// Turn this request into a test named NAME: the request, the calls'
        /// answers and the current answer as `expect`, appended to the
        /// file's `tests:` (printed instead when it cannot be appended safely).
        #[arg(long, value_name = "NAME")]
        save_test: Option<String>,
        /// With --save-test: keep the contact's name and number (and their
        /// mentions in `data` and the answers) as given. By default the test
        /// gets a made-up contact, as a test made from the journal does.
        #[arg(long, requires = "save_test")]
        keep_contact: bool,
        /// After the JSON, print each message as the contact reads it
        /// (templates filled in from the tenant's templates.json).
        #[arg(long)]
        show_text: bool,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Run the integrations' `tests:`; print each failure with its file and
    /// line and what differs; the last line is `N passed, N failed`. Exits
    /// non-zero on any failure.
    Test {
        /// Only this tenant, or only `<tenant>/<integration>`.
        #[arg(value_name = "TENANT[/INTEGRATION]")]
        only: Option<String>,
        #[command(flatten)]
        dir: DirArg,
    },
}

/// The integrations folder, taken the same way by every subcommand.
#[derive(clap::Args)]
struct DirArg {
    /// The integrations folder: one sub-folder per tenant.
    #[arg(long, default_value = "integrations", env = "RECADO_DIR")]
    dir: PathBuf,
}

#[derive(Parser)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080", env = "RECADO_LISTEN")]
    listen: SocketAddr,
    /// Edits under the integrations folder are picked up while running.
    #[command(flatten)]
    dir: DirArg,
    /// The operators' token: `/admin/*` (status, recent requests, replays),
    /// the studio for every tenant, and `/metrics`. Without it `/admin/*`
    /// is off, and the studio takes only tenants' `studio_tokens`.
    #[arg(long, env = "RECADO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, value_enum, default_value = "text", env = "RECADO_LOG_FORMAT")]
    log_format: recado::telemetry::LogFormat,
    /// Log contacts' phone numbers and names unmasked (debugging only: they
    /// are personal data).
    #[arg(long, env = "RECADO_LOG_PERSONAL_DATA")]
    log_personal_data: bool,
    /// On SIGTERM/SIGINT, how long requests in flight may take to finish.
    #[arg(long, default_value = "25s", value_parser = humantime::parse_duration)]
    shutdown_timeout: std::time::Duration,
    /// Close a connection that for this long has no request in flight and
    /// starts or finishes none (idle keep-alive, trickled headers, an answer
    /// nobody reads). Closed after between one and two of these.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle_timeout: std::time::Duration,
    /// Upper bound of the upstream answer cache, in bytes.
    #[arg(long, default_value_t = recado::enrich::DEFAULT_CACHE_BYTES)]
    cache_bytes: u64,
    /// Mark the studio's session cookie `Secure` (recado behind an https
    /// proxy that does not send `X-Forwarded-Proto: https`).
    #[arg(long, env = "RECADO_STUDIO_SECURE_COOKIES")]
    studio_secure_cookies: bool,
    /// Signs the studio's session cookies (at least 32 characters, e.g.
    /// `openssl rand -hex 32`). Give every replica the same one, so a
    /// session opened on one is accepted by all, and by a restarted one;
    /// without it each process draws its own, and a restart signs everyone
    /// out. Changing it signs everyone out.
    #[arg(long, env = "RECADO_STUDIO_SESSION_KEY", hide_env_values = true)]
    studio_session_key: Option<String>,
    /// Close a connection whose header block is not complete this long
    /// after it started (closed after between one and two of these).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: std::time::Duration,
    /// Largest header block, request line included; larger gets 431.
    #[arg(long, default_value_t = recado::state::DEFAULT_MAX_HEADER_BYTES)]
    max_header_bytes: usize,
    /// Connections open at once; more are closed at accept (counted in
    /// `recado_connections_refused_total`). Lowered to fit the open-files
    /// limit.
    #[arg(long, default_value_t = recado::state::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Connections one client address may have open at once; more are
    /// closed at accept (counted in `recado_connections_refused_per_ip_total`).
    /// 0, the default: no limit but `--max-connections`. Set it above the
    /// platform's own concurrency: a refused connection is a message not sent.
    #[arg(long, default_value_t = 0)]
    max_connections_per_ip: usize,
    /// A reverse proxy (an address or a network, e.g. 10.0.5.0/24; repeat the
    /// flag or separate by commas) whose `X-Forwarded-For` is believed, so
    /// that the sign-in limit counts each client, not the proxy. Name only
    /// proxies you run that append to that header, and let nothing else in
    /// those ranges reach recado: it could pick its own address.
    #[arg(long = "trusted-proxy", env = "RECADO_TRUSTED_PROXIES", value_name = "NETWORK", value_delimiter = ',', value_parser = recado::forwarded::parse_net)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Token for `GET /metrics` (Bearer); the admin token is accepted too.
    /// Without either, `/metrics` is only on `--metrics-listen`.
    #[arg(long, env = "RECADO_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// Also serve `GET /metrics`, without a token, on this address (one
    /// only Prometheus reaches, e.g. 127.0.0.1:9090).
    #[arg(long, env = "RECADO_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// The request journal (last answers per integration, for
    /// `/admin/requests` and the shadow check of edits): `on` or `off`.
    #[arg(long, value_enum, default_value = "on", env = "RECADO_JOURNAL")]
    journal: OnOff,
    /// Entries the journal keeps per integration.
    #[arg(long, default_value_t = recado::journal::DEFAULT_ENTRIES)]
    journal_size: usize,
    /// Bytes (request bodies, answers, upstream answers) the journal keeps
    /// per integration.
    #[arg(long, default_value_t = recado::journal::DEFAULT_BYTES)]
    journal_bytes: usize,
    /// How long the journal keeps an entry.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    journal_age: std::time::Duration,
    /// Also keep the journal in this SQLite file (created with mode 0600),
    /// so it survives restarts. It holds personal data: see docs/journal.md.
    #[arg(long, env = "RECADO_JOURNAL_FILE")]
    journal_file: Option<PathBuf>,
    /// Threads that serve requests. 0: one per CPU recado may use (its
    /// affinity and cgroup quota). With one, a single-threaded scheduler,
    /// which costs less per request than a work-stealing one of one thread.
    #[arg(long, default_value_t = 0, env = "RECADO_WORKERS")]
    workers: usize,
}

/// The request runtime: work-stealing over `workers` threads (0: one per
/// usable CPU), or one thread when there is one CPU to use, where stealing
/// has no one to steal from and its bookkeeping is pure cost.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let workers = match workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build()
}

/// Descriptors kept for everything but client connections: upstream
/// connections, the config files, the watcher, logs.
const RESERVED_FDS: usize = 256;

/// `--max-connections`, lowered so connections cannot take the descriptors
/// the rest of the server needs (Linux: the soft open-files limit).
fn connection_cap(asked: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        });
    match soft {
        Some(soft) if soft.saturating_sub(RESERVED_FDS) < asked => {
            let cap = soft.saturating_sub(RESERVED_FDS).max(16);
            tracing::warn!(
                asked,
                cap,
                open_files_limit = soft,
                "--max-connections lowered to fit the open-files limit (raise it with `ulimit -n`)"
            );
            cap
        }
        _ => asked,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaKind {
    Integration,
    Tenant,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every load runs the tests of the files it reads, and refuses a file
    // whose tests fail; `recado test` loads without, to report each failure
    // in full.
    if !matches!(cli.command, Some(Command::Test { .. })) {
        recado::testing::install();
    }
    let result = match cli.command {
        None => serve(ServeArgs::parse_from(["recado"])),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Check { folder, dir }) => check(&folder.unwrap_or(dir.dir)),
        Some(Command::Schema { kind }) => {
            let schema = match kind {
                SchemaKind::Integration => config::schema::integration(),
                SchemaKind::Tenant => config::schema::tenant(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a schema is JSON")
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Render {
            target,
            request,
            save_test,
            keep_contact,
            dir,
            show_text,
        }) => {
            let save_test = save_test.as_deref().map(|name| (name, keep_contact));
            render(&dir.dir, &target, &request, show_text, save_test)
        }
        Some(Command::Test { only, dir }) => run_tests(&dir.dir, only.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Log lines go to a buffer that a background thread writes out: a
    // request never waits on stderr, nor wakes a thread per line. The
    // buffer is bounded (lines past it are dropped and counted) so a stderr
    // nobody reads cannot grow memory, and each line is cut at 4 KiB. The
    // guard writes what is left at exit.
    let (log_buffer, _flush_on_exit) = recado::telemetry::LogBuffer::start(std::io::stderr());
    let writer = recado::telemetry::CappedLines(recado::telemetry::LogWriter(log_buffer));
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colours only on a terminal: the writer is a pipe to a thread, so the
    // subscriber cannot tell by itself.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    recado::telemetry::subscriber(args.log_format, ansi)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
    let metrics = recado::telemetry::install();
    let dir = args.dir.dir.clone();
    let snapshot = config::load_dir(&dir);
    for e in snapshot.all_errors() {
        tracing::error!(error = %e, "config error; the file is not served");
    }
    tracing::info!(
        tenants = snapshot.tenants.len(),
        integrations = snapshot.integration_count(),
        dir = %dir.display(),
        "config loaded"
    );
    recado::telemetry::reloaded(&snapshot);
    for (flag, token) in [
        ("--admin-token", &args.admin_token),
        ("--metrics-token", &args.metrics_token),
    ] {
        // An empty token would let a request without any header in.
        if let Some(token) = token {
            anyhow::ensure!(
                token.chars().count() >= 8,
                "{flag} must be at least 8 characters"
            );
        }
    }
    if let Some(key) = &args.studio_session_key {
        let min = recado::studio::session::MIN_KEY_CHARS;
        anyhow::ensure!(
            key.chars().count() >= min,
            "--studio-session-key must be at least {min} characters (e.g. `openssl rand -hex 32`)"
        );
        // The shipped manifest's placeholder passes the length check; a key
        // anyone can read would let them stretch a session's life.
        anyhow::ensure!(
            !key.starts_with("change-me"),
            "--studio-session-key is still the example's placeholder: set a random one (e.g. `openssl rand -hex 32`)"
        );
    }
    anyhow::ensure!(
        args.journal == OnOff::On || args.journal_file.is_none(),
        "--journal-file needs the journal: drop --journal off"
    );
    if let Some(file) = &args.journal_file {
        // Each write would look like an edit to the watcher, and the
        // folder is the tenants' (the studio, their repositories).
        let parent = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let (Ok(parent), Ok(config)) =
            (std::fs::canonicalize(parent), std::fs::canonicalize(&dir))
        {
            anyhow::ensure!(
                !parent.starts_with(&config),
                "--journal-file {} is inside the integrations folder {}: put it elsewhere (it holds personal data, see docs/journal.md)",
                file.display(),
                dir.display()
            );
        }
    }
    let settings = Settings {
        admin_token: args.admin_token.as_deref().map(AdminToken::new),
        log_personal_data: args.log_personal_data,
        idle_timeout: args.idle_timeout,
        cache_bytes: args.cache_bytes,
        studio_secure_cookies: args.studio_secure_cookies,
        studio_session_key: args.studio_session_key.clone(),
        header_timeout: args.header_timeout,
        max_header_bytes: args.max_header_bytes,
        max_connections: connection_cap(args.max_connections),
        max_connections_per_ip: args.max_connections_per_ip,
        trusted_proxies: recado::forwarded::TrustedProxies::new(args.trusted_proxies.clone()),
        metrics_token: args.metrics_token.as_deref().map(AdminToken::new),
        journal: (args.journal == OnOff::On).then_some(recado::journal::JournalSettings {
            entries: args.journal_size,
            bytes: args.journal_bytes,
            age: args.journal_age,
        }),
        journal_file: args.journal_file.clone(),
        ..Settings::default()
    };
    let mut state = AppState::open(settings, snapshot)?;
    state.set_metrics(metrics.clone());
    let mut reloader = config::watch::Reloader::new(dir.clone(), state.config.clone())
        .observed_by(recado::telemetry::reloaded);
    if let Some(journal) = &state.journal {
        reloader = reloader.gated_by(recado::replay::gate(
            journal.clone(),
            args.log_personal_data,
        ));
    }
    let watcher = config::watch::watch(reloader)
        .with_context(|| format!("cannot watch {}", dir.display()))?;

    let runtime = runtime(args.workers)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "serving");
        if !args.trusted_proxies.is_empty() {
            let nets: Vec<String> = args.trusted_proxies.iter().map(|n| n.to_string()).collect();
            tracing::info!(trusted_proxies = %nets.join(","), "the sign-in limit reads X-Forwarded-For from these proxies");
        }
        #[cfg(unix)]
        {
            let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading every tenant");
                    watcher.request(config::Scope::All);
                }
            });
        }
        // One signal, for both listeners.
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let stopped = move || {
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            }
        };
        if let Some(addr) = args.metrics_listen {
            let metrics_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?;
            tracing::info!(listen = %metrics_listener.local_addr()?, "serving /metrics");
            tokio::spawn(server::serve_metrics(
                metrics_listener,
                state.clone(),
                stopped(),
                args.shutdown_timeout,
            ));
        }
        let journal = state.journal.clone();
        server::serve(listener, state, stopped(), args.shutdown_timeout).await?;
        if let Some(journal) = journal {
            // The writer runs behind the requests: what it has not written
            // yet would be missing after the restart.
            journal.flush();
        }
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler cannot fail on unix");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn check(dir: &Path) -> anyhow::Result<ExitCode> {
    let snapshot = config::load_dir(dir);
    for e in snapshot.all_errors() {
        println!("{}/{e}", dir.display());
    }
    let integrations = snapshot.integration_count();
    eprintln!(
        "{} tenant(s), {integrations} integration(s) loaded; {} error(s)",
        snapshot.tenants.len(),
        snapshot.all_errors().count()
    );
    Ok(if snapshot.all_errors().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A typo in `<tenant>/<integration>`, with the likely intent and the
/// tenant's integrations.
fn no_integration(tenant: &config::Tenant, name: &str) -> anyhow::Error {
    let names: Vec<&str> = tenant.integrations.keys().map(String::as_str).collect();
    let likely = config::error::did_you_mean(name, names.iter().copied());
    anyhow::anyhow!(
        "tenant `{}` has no integration `{name}`{likely} (it has: {})",
        tenant.name,
        names.join(", ")
    )
}

fn render(
    dir: &Path,
    target: &str,
    request: &Path,
    show_text: bool,
    save_test: Option<(&str, bool)>,
) -> anyhow::Result<ExitCode> {
    let (tenant_name, integration) = target
        .split_once('/')
        .context("the target is `<tenant>/<integration>`, e.g. `demo/boleto`")?;
    let (tenant, errors) = config::load_tenant_from(dir, tenant_name, None, true);
    let Some(tenant) = tenant else {
        if errors.is_empty() {
            anyhow::bail!("no tenant folder `{}`", dir.join(tenant_name).display());
        }
        return Ok(print_errors(dir, &errors));
    };
    let Some(found) = tenant.integrations.get(integration) else {
        let own: Vec<_> = errors
            .iter()
            .filter(|e| e.file.starts_with(&format!("{tenant_name}/{integration}.")))
            .cloned()
            .collect();
        if !own.is_empty() {
            return Ok(print_errors(dir, &own));
        }
        return Err(no_integration(&tenant, integration));
    };
    let body = if request.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(request).with_context(|| format!("cannot read {}", request.display()))?
    };
    let req = match PlatformRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "{}: invalid request at `{}`: {}",
                request.display(),
                e.path,
                e.message
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    if !tenant.client_ids.contains(&req.client_id.0) {
        eprintln!(
            "warning: clientId {} is not one of tenant `{tenant_name}`'s ({:?}); the server would answer 401",
            req.client_id, tenant.client_ids
        );
    }
    let upstream = recado::enrich::Upstream::new(recado::enrich::DEFAULT_CACHE_BYTES);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let metrics = recado::telemetry::TenantMetrics::new(&tenant.name);
    if let Some((name, keep_contact)) = save_test {
        // The calls' answers are kept: they become the test's `enrich:`.
        let ctx = recado::render::request_context(&req);
        let mut answers = None;
        if !found.program.borrow_dependent().calls.is_empty() {
            let got = runtime
                .block_on(upstream.run(&tenant, &metrics, found, &ctx))
                .map_err(|e| anyhow::anyhow!("{}: {e}", found.file))?;
            answers = Some(serde_json::to_value(&got)?);
        }
        let request: serde_json::Value = serde_json::from_slice(&body)?;
        // Rendered again for the contact the test will hold, so that the
        // name and phone filters give what they will give in the test.
        let (request, answers) = if keep_contact {
            (request, answers)
        } else {
            recado::replay::made_up(&request, answers.as_ref())
        };
        let req = PlatformRequest::parse(&serde_json::to_vec(&request)?)
            .map_err(|e| anyhow::anyhow!("{}: {}", e.path, e.message))?;
        let mut ctx = recado::render::request_context(&req);
        if let Some(answers) = &answers {
            let answers: minijinja::Value = serde_json::from_value(answers.clone())?;
            ctx = recado::request::RequestVars::with(&ctx, [("enrich", answers)]);
        }
        let outcome = recado::hook::render_request(found, &ctx, tenant.limits.max_messages)
            .and_then(|m| recado::hook::encode(&m, found, &tenant.limits).map(|_| m));
        let entry = recado::testing::entry_yaml(name, &request, answers.as_ref(), &outcome);
        let path = dir.join(&found.file);
        return match recado::testing::append_test(&path, &entry, name) {
            Ok(line) => {
                eprintln!("{}:{line}: test \"{name}\" added", path.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(why) => {
                eprintln!("{}: {why}; paste this under its `tests:`:", path.display());
                print!("{entry}");
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    match runtime.block_on(recado::hook::produce(
        &upstream, &tenant, &metrics, found, &req,
    )) {
        Ok(messages) => {
            println!("{}", serde_json::to_string_pretty(&messages)?);
            if show_text {
                print!(
                    "\n{}",
                    recado::render::show_text(&messages, tenant.catalogue.as_deref())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}/{e} ({})", dir.display(), e.code());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_errors(dir: &Path, errors: &[config::ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("{}/{e}", dir.display());
    }
    ExitCode::FAILURE
}

/// `recado test`: every test of every integration in scope.
fn run_tests(dir: &Path, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let (tenant_only, integration_only) = match only {
        Some(o) => match o.split_once('/') {
            Some((t, i)) => (Some(t), Some(i)),
            None => (Some(o), None),
        },
        None => (None, None),
    };
    let snapshot = config::load_dir(dir);
    let in_scope = |file: &str| {
        let (t, f) = file.split_once('/').unwrap_or((file, ""));
        tenant_only.is_none_or(|x| x == t)
            && integration_only
                .is_none_or(|x| f.strip_suffix(".yaml").or(f.strip_suffix(".yml")) == Some(x))
    };
    let mut broken = 0;
    for e in snapshot.all_errors().filter(|e| in_scope(&e.file)) {
        println!("{}/{e}", dir.display());
        broken += 1;
    }
    if let Some(t) = tenant_only.filter(|t| !snapshot.tenants.contains_key(*t) && broken == 0) {
        anyhow::bail!("no tenant folder `{}`", dir.join(t).display());
    }
    // A typo must not pass as "0 passed, 0 failed".
    if let (Some(t), Some(i)) = (tenant_only, integration_only) {
        if let Some(tenant) = snapshot.tenants.get(t) {
            if !tenant.integrations.contains_key(i) && broken == 0 {
                return Err(no_integration(tenant, i));
            }
        }
    }
    let (mut passed, mut failed) = (0, 0);
    for tenant in snapshot.tenants.values() {
        let env = config::TestEnv {
            client_id: tenant.client_ids.first().copied().unwrap_or_default(),
            limits: tenant.limits.clone(),
        };
        for integration in tenant.integrations.values() {
            if !in_scope(&integration.file) {
                continue;
            }
            for (index, test) in integration.tests.iter().enumerate() {
                match recado::testing::run(integration, test, &env) {
                    Ok(()) => passed += 1,
                    Err(failure) => {
                        failed += 1;
                        // Positions only for failures: read the file again.
                        let at = std::fs::read(dir.join(&integration.file))
                            .ok()
                            .and_then(|bytes| config::test_position(&bytes, index))
                            .map(|(l, c)| format!(":{l}:{c}"))
                            .unwrap_or_default();
                        println!(
                            "{}/{}{at}: test \"{}\" failed",
                            dir.display(),
                            integration.file,
                            test.name
                        );
                        for line in &failure.lines {
                            println!("    {line}");
                        }
                    }
                }
            }
        }
    }
    if broken > 0 {
        println!("{broken} file(s) with errors: their tests did not run");
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
