//! The real server on a loopback port, driven by real HTTP requests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use recado::server;
use recado::state::{AdminToken, AppState, Settings};
use tokio::sync::oneshot;

pub struct TestServer {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    watcher: Option<recado::config::watch::Watcher>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Loads `dir` and serves it on `127.0.0.1:0`.
    pub async fn start(dir: &Path) -> TestServer {
        Self::start_with(dir, |_| {}).await
    }

    /// Like [`start`](Self::start), with the settings adjusted by `configure`.
    pub async fn start_with(dir: &Path, configure: impl FnOnce(&mut Settings)) -> TestServer {
        // As `recado serve` does: a file whose `tests:` fail is not loaded.
        recado::testing::install();
        let mut settings = Settings::default();
        configure(&mut settings);
        let mut state = AppState::new(settings, recado::config::load_dir(dir));
        // The process-wide recorder, as `main` installs it.
        state.set_metrics(recado::telemetry::install().clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(
            listener,
            state.clone(),
            async {
                let _ = stopped.await;
            },
            std::time::Duration::from_secs(5),
        ));
        TestServer {
            addr,
            client: reqwest::Client::new(),
            state,
            watcher: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Also watches `dir` and reloads on changes, as `recado serve` does.
    pub async fn start_watching(dir: &Path, admin_token: &str) -> TestServer {
        let token = AdminToken::new(admin_token);
        let mut server = Self::start_with(dir, |s| s.admin_token = Some(token)).await;
        let reloader =
            recado::config::watch::Reloader::new(dir.to_owned(), server.state.config.clone());
        server.watcher = Some(recado::config::watch::watch(reloader).unwrap());
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs `body` as JSON to `path`; returns status, content type and the
    /// body's bytes as they came.
    pub async fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Option<String>, axum::body::Bytes) {
        let resp = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, ct, resp.bytes().await.unwrap())
    }

    /// POSTs `body` as JSON to `path`; returns status and parsed JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let (status, ct, bytes) = self.post_raw(path, body).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(
            ct.as_deref(),
            Some("application/json"),
            "status {status}, body {text}"
        );
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
        )
    }

    /// `GET /admin/status`, as JSON.
    pub async fn status(&self, admin_token: &str) -> serde_json::Value {
        self.client
            .get(self.url("/admin/status"))
            .bearer_auth(admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Every config error `/admin/status` lists, as `file:line:col: message`.
    pub async fn status_errors(&self, admin_token: &str) -> Vec<String> {
        let status = self.status(admin_token).await;
        status["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tests' own data, `tests/data/`: fixed, whatever an operator does to
/// `integrations/`.
pub fn data() -> PathBuf {
    repo().join("tests/data")
}

/// A file of the platform's reference workload (`tests/data/workload/`):
/// `request.json`, `expected.json` (recado's answer to it with the demo
/// tenant), and the `bad-request*.json` files.
pub fn workload(file: &str) -> PathBuf {
    data().join("workload").join(file)
}

/// The tests' fixed configuration: a copy of the demo tenant as shipped,
/// `tests/data/integrations/demo`. Tests load this, never `integrations/`.
pub fn fixtures() -> PathBuf {
    data().join("integrations")
}

/// Only the shipped `integrations/demo` tenant, copied alone into a temp
/// folder: for the tests that check the shipped examples (`examples/`)
/// against it, unaffected by other tenants an operator adds.
pub fn shipped_demo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("integrations/demo"), &dir.path().join("demo"));
    dir
}

pub fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

pub fn json(path: impl AsRef<Path>) -> serde_json::Value {
    serde_json::from_slice(&read(path)).unwrap()
}

/// A copy of the tests' fixed configuration ([`fixtures`]: the demo tenant)
/// plus extra files, in a temp folder.
pub fn integrations_with(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), dir.path());
    write_files(dir.path(), extra);
    dir
}

pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A valid platform request for `client_id` with `data`.
pub fn request(client_id: u64, data: serde_json::Value) -> String {
    serde_json::json!({
        "id": 1, "clientId": client_id, "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": "1", "type": "WHATSAPP", "key": "5513999999999", "name": "Ana Souza"},
        "data": data,
    })
    .to_string()
}

/// recado's log output, in the format `recado serve` writes, captured for
/// this test binary (`json` picks the format; the first call in a binary
/// decides).
pub fn captured_logs(json: bool) -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    use std::sync::{Arc, Mutex, OnceLock};
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let writer = move || LogSink(sink.clone());
        let format = if json {
            recado::telemetry::LogFormat::Json
        } else {
            recado::telemetry::LogFormat::Text
        };
        let _ = recado::telemetry::subscriber(format, false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(writer)
            .try_init();
        buf
    })
}

pub fn logs_text(json: bool) -> String {
    String::from_utf8_lossy(&captured_logs(json).lock().unwrap()).into_owned()
}

struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
