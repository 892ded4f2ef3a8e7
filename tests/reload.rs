//! Hot reload under load: files are rewritten, renamed, broken, fixed,
//! deleted and re-added (in place, write-then-rename, and Kubernetes'
//! ConfigMap symlink swap) while clients keep sending requests.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{request, TestServer};
use serde_json::{json, Value};

const TENANT: &str = "client_ids: [50]\ntokens: [hot-token-1]\n";
const HOOK: &str = "/hooks/live?token=hot-token-1";
const ADMIN: &str = "admin-token-1";
const CLIENTS: usize = 4;
const CYCLES: usize = 3;

/// What a client may see: a version's array, or 404 after a deletion.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Version(usize),
    NotFound,
}

fn source(v: usize) -> String {
    format!("messages:\n  - text: \"versão {v}\"\n  - text: \"fim {v}\"\n")
}

fn expected(v: usize) -> Value {
    json!([{"type": "TEXT", "value": format!("versão {v}")}, {"type": "TEXT", "value": format!("fim {v}")}])
}

const BROKEN: &str = "messages:\n  - text: \"{{ broken\"\n";

/// The three ways files really change.
#[derive(Clone, Copy, Debug)]
enum Mode {
    InPlace,
    TempRename,
    Kubernetes,
}

/// Writes the tenant's files the way `mode` does. `live` is the integration
/// file's content, `None` to delete it.
struct Writer {
    dir: PathBuf,
    mode: Mode,
    tenant: PathBuf,
    serial: usize,
}

impl Writer {
    fn new(root: &Path, mode: Mode) -> Writer {
        let tenant = root.join("hot");
        std::fs::create_dir_all(&tenant).unwrap();
        let mut w = Writer {
            dir: root.to_owned(),
            mode,
            tenant,
            serial: 0,
        };
        w.set(Some(&source(0)));
        w
    }

    fn set(&mut self, live: Option<&str>) {
        let t = &self.tenant;
        match self.mode {
            Mode::InPlace => {
                std::fs::write(t.join("tenant.yaml"), TENANT).unwrap();
                match live {
                    Some(text) => {
                        // Like an editor: truncate, then write, on the same inode.
                        let mut f = std::fs::OpenOptions::new()
                            .create(true)
                            .write(true)
                            .truncate(true)
                            .open(t.join("live.yaml"))
                            .unwrap();
                        f.write_all(text.as_bytes()).unwrap();
                        f.sync_all().unwrap();
                    }
                    None => {
                        let _ = std::fs::remove_file(t.join("live.yaml"));
                    }
                }
            }
            Mode::TempRename => {
                std::fs::write(t.join("tenant.yaml"), TENANT).unwrap();
                match live {
                    Some(text) => {
                        let tmp = t.join(".live.yaml.tmp");
                        std::fs::write(&tmp, text).unwrap();
                        std::fs::rename(&tmp, t.join("live.yaml")).unwrap();
                    }
                    // Renamed away: the old name is gone, a new one appears.
                    None => std::fs::rename(t.join("live.yaml"), t.join("live.yaml.bak")).unwrap(),
                }
            }
            Mode::Kubernetes => {
                // kubelet: write a new timestamped folder, point `..data` at it
                // with an atomic rename of a symlink, keep per-key symlinks.
                self.serial += 1;
                let version = format!("..2026_11_25_{:04}", self.serial);
                let vdir = t.join(&version);
                std::fs::create_dir_all(&vdir).unwrap();
                std::fs::write(vdir.join("tenant.yaml"), TENANT).unwrap();
                if let Some(text) = live {
                    std::fs::write(vdir.join("live.yaml"), text).unwrap();
                }
                let tmp_link = t.join("..data_tmp");
                let _ = std::fs::remove_file(&tmp_link);
                std::os::unix::fs::symlink(&version, &tmp_link).unwrap();
                let old = std::fs::read_link(t.join("..data")).ok();
                std::fs::rename(&tmp_link, t.join("..data")).unwrap();
                for key in ["tenant.yaml", "live.yaml"] {
                    let link = t.join(key);
                    if vdir.join(key).exists() {
                        if std::fs::symlink_metadata(&link).is_err() {
                            std::os::unix::fs::symlink(format!("..data/{key}"), &link).unwrap();
                        }
                    } else {
                        let _ = std::fs::remove_file(&link);
                    }
                }
                if let Some(old) = old {
                    let _ = std::fs::remove_dir_all(t.join(old));
                }
            }
        }
        let _ = &self.dir;
    }
}

async fn answer(server: &TestServer) -> Result<Answer, String> {
    let resp = server
        .client
        .post(server.url(HOOK))
        .header("content-type", "application/json")
        .body(request(50, json!({})))
        .send()
        .await
        .map_err(|e| format!("transport: {e}"))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| format!("body: {e}"))?;
    match status {
        200 => (0..1000)
            .find(|v| body == expected(*v))
            .map(Answer::Version)
            .ok_or(format!("a mixed or unknown answer: {body}")),
        404 if body["error"]["code"] == "unknown_integration" => Ok(Answer::NotFound),
        _ => Err(format!("{status} {body}")),
    }
}

struct Shared {
    allowed: Mutex<Vec<Answer>>,
    stop: AtomicBool,
    requests: AtomicU64,
    failures: Mutex<Vec<String>>,
}

async fn client_loop(server: Arc<TestServer>, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let before = shared.allowed.lock().unwrap().clone();
        let got = answer(&server).await;
        let after = shared.allowed.lock().unwrap().clone();
        shared.requests.fetch_add(1, Ordering::Relaxed);
        match got {
            Ok(a) if before.contains(&a) || after.contains(&a) => {}
            Ok(a) => shared
                .failures
                .lock()
                .unwrap()
                .push(format!("{a:?} while {before:?} / {after:?} were allowed")),
            Err(e) => shared.failures.lock().unwrap().push(e),
        }
    }
}

/// Waits until the server answers `want`; returns how long that took.
async fn visible(server: &TestServer, want: &Answer) -> Duration {
    let start = Instant::now();
    loop {
        if answer(server).await.as_ref() == Ok(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{want:?} never became visible"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn run(mode: Mode) {
    common::captured_logs(false);
    let root = tempfile::tempdir().unwrap();
    let mut writer = Writer::new(root.path(), mode);
    let server = Arc::new(TestServer::start_watching(root.path(), ADMIN).await);
    assert_eq!(answer(&server).await, Ok(Answer::Version(0)));

    let shared = Arc::new(Shared {
        allowed: Mutex::new(vec![Answer::Version(0)]),
        stop: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        failures: Mutex::new(Vec::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(client_loop(server.clone(), shared.clone())))
        .collect();

    let mut latencies = Vec::new();
    let mut next_version = 1;
    // Changes the file and waits until the new answer is live.
    macro_rules! step {
        ($content:expr, $new:expr) => {{
            let new: Answer = $new;
            shared.allowed.lock().unwrap().push(new.clone());
            writer.set($content);
            latencies.push(visible(&server, &new).await);
            *shared.allowed.lock().unwrap() = vec![new.clone()];
        }};
    }
    for _ in 0..CYCLES {
        for _ in 0..2 {
            let v = next_version;
            next_version += 1;
            step!(Some(&source(v)), Answer::Version(v));
        }
        // A broken edit: the old answer stays, the error is reported.
        writer.set(Some(BROKEN));
        let start = Instant::now();
        loop {
            let errors = server.status_errors(ADMIN).await;
            if errors.iter().any(|e| e.starts_with("hot/live.yaml:2:")) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the broken file was never reported: {errors:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let current = shared.allowed.lock().unwrap()[0].clone();
        assert_eq!(
            answer(&server).await,
            Ok(current),
            "a broken file replaced the good one"
        );
        // Fixed: the new version goes live and the error goes away.
        let v = next_version;
        next_version += 1;
        step!(Some(&source(v)), Answer::Version(v));
        assert!(server.status_errors(ADMIN).await.is_empty());
        // Deleted (or renamed away), then re-added.
        step!(None, Answer::NotFound);
        let v = next_version;
        next_version += 1;
        step!(Some(&source(v)), Answer::Version(v));
    }

    shared.stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failures = shared.failures.lock().unwrap().clone();
    let requests = shared.requests.load(Ordering::Relaxed);
    latencies.sort();
    eprintln!(
        "{mode:?}: {requests} requests during {} changes, {} failed; change visible after median {:?}, max {:?}",
        latencies.len(),
        failures.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    assert!(failures.is_empty(), "{mode:?}: {failures:?}");
    let log = common::logs_text(false);
    assert!(
        log.contains("hot/live.yaml:2:21: messages[0].text: template syntax error"),
        "the log does not show the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_edits() {
    run(Mode::InPlace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_temp_then_rename() {
    run(Mode::TempRename).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_configmap_symlink_swap() {
    run(Mode::Kubernetes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_come_and_go_and_a_broken_tenant_file_keeps_the_last_good_tenant() {
    let root = tempfile::tempdir().unwrap();
    common::write_files(
        root.path(),
        &[
            ("a/tenant.yaml", "client_ids: [61]\ntokens: [a-token-1]\n"),
            ("a/x.yaml", &source(1)),
        ],
    );
    let server = TestServer::start_watching(root.path(), ADMIN).await;
    let post = |client: u64, token: &'static str| {
        let server = &server;
        async move {
            server
                .client
                .post(server.url(&format!("/hooks/x?token={token}")))
                .header("content-type", "application/json")
                .body(request(client, json!({})))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(61, "a-token-1").await, 200);

    // A new tenant folder is picked up.
    common::write_files(
        root.path(),
        &[
            ("b/tenant.yaml", "client_ids: [62]\ntokens: [b-token-1]\n"),
            ("b/x.yaml", &source(2)),
        ],
    );
    wait_for(|| async { post(62, "b-token-1").await == 200 }).await;

    // A broken tenant.yaml keeps the whole tenant as it was, even its
    // integrations, while its credentials can be read (otherwise it is
    // taken out: tests/hardening.rs).
    common::write_files(
        root.path(),
        &[
            (
                "b/tenant.yaml",
                "client_ids: [62]\ntokens: [b-token-1]\ntimezon: America/Sao_Paulo\n",
            ),
            ("b/y.yaml", &source(3)),
        ],
    );
    wait_for(|| async {
        server
            .status_errors(ADMIN)
            .await
            .iter()
            .any(|e| e.starts_with("b/tenant.yaml:"))
    })
    .await;
    assert_eq!(post(62, "b-token-1").await, 200);
    let resp = server
        .client
        .post(server.url("/hooks/y?token=b-token-1"))
        .header("content-type", "application/json")
        .body(request(62, json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        404,
        "an integration added under a broken tenant.yaml must wait for the fix"
    );

    // A tenant claiming another's clientId is refused; the owner keeps it.
    common::write_files(
        root.path(),
        &[(
            "b/tenant.yaml",
            "client_ids: [62, 61]\ntokens: [b-token-1]\n",
        )],
    );
    wait_for(|| async {
        server
            .status_errors(ADMIN)
            .await
            .iter()
            .any(|e| e.contains("clientId 61 already belongs to tenant `a`"))
    })
    .await;
    assert_eq!(post(61, "a-token-1").await, 200);
    assert_eq!(post(61, "b-token-1").await, 401);

    // Once `a` lets the id go, `b`'s waiting version comes in by itself.
    common::write_files(
        root.path(),
        &[(
            "a/tenant.yaml",
            "client_ids: [63]
tokens: [a-token-1]
",
        )],
    );
    wait_for(|| async { post(61, "b-token-1").await == 200 }).await;
    assert_eq!(post(62, "b-token-1").await, 200);
    assert_eq!(post(63, "a-token-1").await, 200);
    assert_eq!(post(61, "a-token-1").await, 401);
    assert!(server.status_errors(ADMIN).await.is_empty());

    // Deleting the folder removes the tenant.
    std::fs::remove_dir_all(root.path().join("b")).unwrap();
    wait_for(|| async { post(62, "b-token-1").await == 401 }).await;
    assert_eq!(post(63, "a-token-1").await, 200);

    // SIGHUP-style full reload keeps everything consistent.
    let reloader =
        recado::config::watch::Reloader::new(root.path().to_owned(), server.state.config.clone());
    let snap = reloader.reload(&recado::config::Scope::All);
    assert_eq!(snap.tenants.keys().collect::<Vec<_>>(), ["a"]);
}

#[test]
fn at_a_cold_start_the_older_tenant_file_keeps_a_contested_client_id() {
    let root = tempfile::tempdir().unwrap();
    common::write_files(
        root.path(),
        &[
            (
                "zeta/tenant.yaml",
                "client_ids: [90]\ntokens: [zeta-token-1]\n",
            ),
            (
                "alfa/tenant.yaml",
                "client_ids: [90, 91]\ntokens: [alfa-token-1]\n",
            ),
        ],
    );
    // `zeta` had the id first; `alfa` (first by name) copied it later.
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(root.path().join("zeta/tenant.yaml"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let snap = recado::config::load_dir(root.path());
    assert_eq!(snap.tenant_for_client(90).unwrap().name, "zeta");
    assert!(snap.tenant_for_client(91).is_none());
    let errors: Vec<String> = snap.all_errors().map(|e| e.to_string()).collect();
    assert!(
        errors[0].starts_with("alfa/tenant.yaml") && errors[0].contains("clientId 90"),
        "{errors:?}"
    );
}

async fn wait_for<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "condition never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_reload_rereads_token_files() {
    let root = tempfile::tempdir().unwrap();
    let token_file = root.path().join("token.txt");
    std::fs::write(&token_file, "first-token-1\n").unwrap();
    let tenant = format!(
        "client_ids: [90]\ntokens: [\"${{file:{}}}\"]\n",
        token_file.display()
    );
    common::write_files(
        root.path(),
        &[("f/tenant.yaml", &tenant), ("f/x.yaml", &source(1))],
    );
    let server = TestServer::start(root.path()).await;
    let post = |token: &'static str| {
        let server = &server;
        async move {
            let url = server.url(&format!("/hooks/x?token={token}"));
            let resp = server
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(request(90, json!({})));
            resp.send().await.unwrap().status().as_u16()
        }
    };
    assert_eq!(post("first-token-1").await, 200);
    // Rotated in the secret file only; tenant.yaml's bytes are unchanged.
    std::fs::write(&token_file, "second-token-2\n").unwrap();
    let reloader =
        recado::config::watch::Reloader::new(root.path().to_owned(), server.state.config.clone());
    reloader.reload(&recado::config::Scope::All);
    assert_eq!(post("second-token-2").await, 200);
    assert_eq!(post("first-token-1").await, 401);
}
