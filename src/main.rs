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
    Serve(ServeArgs),
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
    /// request body in REQUEST (a JSON file, `-` for stdin).
    Render {
        /// `<tenant>/<integration>`, e.g. `demo/boleto`.
        target: String,
        request: PathBuf,
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
    /// Token for `GET /admin/status`; without it that endpoint is off.
    #[arg(long, env = "RECADO_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, value_enum, default_value = "text", env = "RECADO_LOG_FORMAT")]
    log_format: LogFormat,
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
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SchemaKind {
    Integration,
    Tenant,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(ServeArgs::parse_from(["recado"])),
        Some(Command::Serve(args)) => serve(args),
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
            dir,
        }) => render(&dir.dir, &target, &request),
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
    // request never waits on stderr, nor wakes a thread per line. The guard
    // writes what is left at exit.
    let (log_buffer, _flush_on_exit) = recado::telemetry::LogBuffer::start(std::io::stderr());
    let writer = recado::telemetry::LogWriter(log_buffer);
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: the writer is a pipe to a thread, so
        // the subscriber cannot tell by itself.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
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
    recado::telemetry::reloaded(
        snapshot.tenants.len(),
        snapshot.integration_count(),
        snapshot.all_errors().count(),
    );
    if let Some(token) = &args.admin_token {
        // An empty token would let a request without any header in.
        anyhow::ensure!(
            token.chars().count() >= 8,
            "--admin-token must be at least 8 characters"
        );
    }
    let settings = Settings {
        admin_token: args.admin_token.as_deref().map(AdminToken::new),
        log_personal_data: args.log_personal_data,
        idle_timeout: args.idle_timeout,
        cache_bytes: args.cache_bytes,
        ..Settings::default()
    };
    let mut state = AppState::new(settings, snapshot);
    state.metrics = Some(metrics.clone());
    let reloader = config::watch::Reloader::new(dir.clone(), state.config.clone());
    let watcher = config::watch::watch(reloader)
        .with_context(|| format!("cannot watch {}", dir.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "serving");
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
        server::serve(listener, state, shutdown_signal(), args.shutdown_timeout).await?;
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

fn render(dir: &Path, target: &str, request: &Path) -> anyhow::Result<ExitCode> {
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
        anyhow::bail!("tenant `{tenant_name}` has no integration `{integration}`");
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
    match runtime.block_on(recado::hook::produce(
        &upstream, &tenant, &metrics, found, &req,
    )) {
        Ok(messages) => {
            println!("{}", serde_json::to_string_pretty(&messages)?);
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
