//! What operators see: metrics after known traffic, the per-request log
//! line, and a graceful shutdown that lets slow requests finish.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use common::{request, TestServer};
use serde_json::{json, Value};

/// An upstream answering `{"ok": true}` after `delay`.
async fn upstream(delay: Duration) -> SocketAddr {
    let app = Router::new().route(
        "/x",
        get(move || async move {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"ok": true}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Tenant `name` (its own, so tests in this process do not share metrics).
fn tenant_files(name: &str, up: SocketAddr) -> Vec<(String, String)> {
    vec![
        (format!("{name}/tenant.yaml"), "client_ids: [71]\ntokens: [opsm-token-1]\n".into()),
        (format!("{name}/hello.yaml"), "messages:\n  - text: \"Olá, {{ contact.name | first_name }}! {{ data.x }}\"\n".into()),
        (
            format!("{name}/up.yaml"),
            format!("enrich:\n  u:\n    url: \"http://{up}/x\"\n    cache: 1m\n    timeout: 10s\nmessages:\n  - text: \"{{{{ enrich.u.ok }}}}\"\n"),
        ),
    ]
}

/// The value of the metric line with `name` whose labels include all of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic() {
    const TENANT: &str = "opsm";
    let up = upstream(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in tenant_files(TENANT, up) {
        common::write_files(dir.path(), &[(&rel, &text)]);
    }
    let token = recado::state::AdminToken::new("metrics-token-1");
    let server = TestServer::start_with(dir.path(), |s| s.metrics_token = Some(token)).await;
    let hook = |name: &str| format!("/hooks/{name}?token=opsm-token-1");
    for _ in 0..3 {
        assert_eq!(
            server
                .post(&hook("hello"), request(71, json!({"x": 1})))
                .await
                .0,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            server.post(&hook("hello"), request(71, json!({}))).await.0,
            422
        );
    }
    assert_eq!(
        server
            .post(&hook("nope-made-up-name"), request(71, json!({})))
            .await
            .0,
        404
    );
    for _ in 0..4 {
        assert_eq!(
            server.post(&hook("up"), request(71, json!({}))).await.0,
            200
        );
    }
    // As `main` wires it.
    let reloader =
        recado::config::watch::Reloader::new(dir.path().to_owned(), server.state.config.clone())
            .observed_by(recado::telemetry::reloaded);
    reloader.reload(&recado::config::Scope::All);

    let text = server
        .client
        .get(server.url("/metrics"))
        .bearer_auth("metrics-token-1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let t = ("tenant", "opsm");
    assert_eq!(
        metric(
            &text,
            "recado_requests_total",
            &[t, ("integration", "hello"), ("status", "200")]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "recado_requests_total",
            &[t, ("integration", "hello"), ("status", "422")]
        ),
        2.0
    );
    // An outsider's integration name never becomes a label.
    assert_eq!(
        metric(
            &text,
            "recado_requests_total",
            &[t, ("integration", "-"), ("status", "404")]
        ),
        1.0
    );
    assert!(!text.contains("nope-made-up-name"));
    assert_eq!(
        metric(
            &text,
            "recado_request_duration_seconds_count",
            &[t, ("integration", "hello")]
        ),
        5.0
    );
    assert_eq!(
        metric(
            &text,
            "recado_upstream_calls_total",
            &[t, ("integration", "up"), ("call", "u")]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "recado_upstream_duration_seconds_count",
            &[t, ("call", "u")]
        ),
        1.0
    );
    assert_eq!(metric(&text, "recado_cache_misses_total", &[t]), 1.0);
    assert_eq!(metric(&text, "recado_cache_hits_total", &[t]), 3.0);
    assert!(metric(&text, "recado_cache_entries", &[]) >= 1.0);
    assert!(metric(&text, "recado_reloads_total", &[]) >= 1.0);
    assert_eq!(metric(&text, "recado_config_errors", &[]), 0.0);

    // Health.
    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        server
            .client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_log_line_per_request_with_personal_data_masked() {
    const TENANT: &str = "opslog";
    common::captured_logs(true);
    let up = upstream(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in tenant_files(TENANT, up) {
        common::write_files(dir.path(), &[(&rel, &text)]);
    }
    let server = TestServer::start(dir.path()).await;
    let mut body: Value = serde_json::from_str(&request(71, json!({"x": 1}))).unwrap();
    body["id"] = json!(777001);
    assert_eq!(
        server
            .post("/hooks/hello?token=opsm-token-1", body.to_string())
            .await
            .0,
        200
    );

    let text = common::logs_text(true);
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "recado::access" && l["request_id"] == 777001)
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["tenant"], TENANT);
    assert_eq!(line["integration"], "hello");
    assert_eq!(line["status"], 200);
    assert_eq!(line["messages"], 1);
    assert!(line["duration_us"].as_u64().is_some());
    assert_eq!(line["contact_key"], "*********9999");
    assert_eq!(line["contact_name"], "A** S****");
    assert!(
        !text.contains("5513999999999"),
        "a phone number reached the log"
    );
    assert!(!text.contains("Ana Souza"), "a name reached the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_slow_requests_finish_and_exits_zero() {
    sigterm_with_slow_requests_in_flight("2").await;
}

/// The same on the single-threaded scheduler, which `serve` picks when it
/// may use one CPU (`--workers 1` here): upstream calls, a signal and the
/// graceful shutdown all run on the one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_serves_calls_and_stops_gracefully() {
    sigterm_with_slow_requests_in_flight("1").await;
}

async fn sigterm_with_slow_requests_in_flight(workers: &str) {
    const TENANT: &str = "opsterm";
    let up = upstream(Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in tenant_files(TENANT, up) {
        common::write_files(dir.path(), &[(&rel, &text)]);
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_recado"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--workers",
            workers,
            "--dir",
        ])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "recado exited before serving"
        );
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == "serving" {
                break v["listen"].as_str().unwrap().to_owned();
            }
        }
    };
    let drain =
        std::thread::spawn(move || stderr.lines().map_while(Result::ok).collect::<Vec<_>>());

    let client = reqwest::Client::new();
    let in_flight: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            let url = format!("http://{addr}/hooks/up?token=opsm-token-1");
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(request(71, json!({})))
                    .send()
                    .await
                    .unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());

    for r in in_flight {
        let (status, body) = r.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, r#"[{"type":"TEXT","value":"True"}]"#);
    }
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    let log = drain.join().unwrap().join("\n");
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "still accepting after shutdown"
    );
}
