//! `upstreams:` entries with `max_in_flight` and `breaker`, against a real
//! upstream on loopback that counts the calls it has in flight and can fail
//! or not be there at all.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::TestServer;
use recado::state::AdminToken;
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-tests";

#[derive(Clone, Default)]
struct Upstream {
    in_flight: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    hits: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

async fn answer(State(up): State<Upstream>, Path(id): Path<String>) -> axum::response::Response {
    up.hits.fetch_add(1, Ordering::SeqCst);
    let now = up.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    up.peak.fetch_max(now, Ordering::SeqCst);
    // Long enough for the webhooks to pile up on the upstream if nothing
    // held them back.
    tokio::time::sleep(Duration::from_millis(40)).await;
    up.in_flight.fetch_sub(1, Ordering::SeqCst);
    if up.failing.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    axum::Json(json!({"id": id})).into_response()
}

async fn serve_upstream(listener: tokio::net::TcpListener) -> Upstream {
    let up = Upstream::default();
    let app = Router::new()
        .route("/x/{id}", get(answer))
        .with_state(up.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    up
}

async fn start_upstream() -> (SocketAddr, Upstream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, serve_upstream(listener).await)
}

/// One tenant (clientId 7) whose integration `c` makes one uncached call
/// per request to `origin`, which its `upstreams:` lists as `entry`.
fn config(origin: &str, entry: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            (
                "acme/tenant.yaml",
                &format!("client_ids: [7]\ntokens: [acme-token-1]\nupstreams:\n  - {entry}\n"),
            ),
            (
                "acme/c.yaml",
                &format!(
                    "enrich:\n  c:\n    url: \"{origin}/x/{{{{ contact.key }}}}\"\n    timeout: 2s\n\
                     messages:\n  - text: \"{{{{ enrich.c.id }}}}\"\n"
                ),
            ),
        ],
    );
    dir
}

fn body(contact: usize) -> String {
    json!({
        "id": contact, "clientId": 7, "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": "1", "type": "WHATSAPP", "key": format!("55139{contact:08}"), "name": "Ana Souza"},
        "data": {},
    })
    .to_string()
}

async fn call(server: &TestServer, contact: usize) -> (u16, Value) {
    server
        .post("/hooks/c?token=acme-token-1", body(contact))
        .await
}

async fn upstream_status(server: &TestServer) -> Value {
    server.status(ADMIN).await["upstreams"][0].clone()
}

async fn start(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, |s| s.admin_token = Some(AdminToken::new(ADMIN))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_caps_the_calls_on_the_upstream() {
    let (addr, up) = start_upstream().await;
    let origin = format!("http://{addr}");
    let dir = config(
        &origin,
        &format!("{{origin: \"{origin}\", max_in_flight: 4}}"),
    );
    let server = start(dir.path()).await;

    let answers = futures_util::future::join_all((0..64).map(|n| call(&server, n))).await;
    for (n, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, 200, "webhook {n}: {body}");
    }
    assert_eq!(up.hits.load(Ordering::SeqCst), 64, "one call per contact");
    let peak = up.peak.load(Ordering::SeqCst);
    assert!(
        peak <= 4,
        "{peak} calls were in flight at once; the cap is 4"
    );

    let status = upstream_status(&server).await;
    assert_eq!(status["origin"], origin.as_str());
    assert_eq!(status["max_in_flight"], 4);
    assert_eq!(status["in_flight"], 0);
    assert_eq!(status["waiting"], 0);
    assert!(status["waited_total"].as_u64().unwrap() > 0, "{status}");
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("recado_upstream_waited_total{tenant=\"acme\""),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_opens_the_breaker_and_a_recovered_one_closes_it() {
    // A port where nothing listens yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = format!("http://127.0.0.1:{port}");
    let dir = config(
        &origin,
        &format!("{{origin: \"{origin}\", breaker: {{failures: 2, cool_down: 2s}}}}"),
    );
    let server = start(dir.path()).await;

    for n in 0..2 {
        let (status, body) = call(&server, n).await;
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["error"]["code"], "upstream_unreachable");
    }
    let (status, body) = call(&server, 2).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_unavailable");
    assert_eq!(body["error"]["path"], "enrich.c");
    assert_eq!(upstream_status(&server).await["breaker"], "open");

    // The upstream is back, but the breaker is still cooling down: calls
    // fail at once and never reach it.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let up = serve_upstream(listener).await;
    let (status, body) = call(&server, 3).await;
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    assert_eq!(status, 502);
    assert_eq!(
        up.hits.load(Ordering::SeqCst),
        0,
        "the open breaker let a call through"
    );
    assert!(
        upstream_status(&server).await["rejected_total"]
            .as_u64()
            .unwrap()
            >= 2
    );

    // After the cool-down one call probes; it succeeds and closes it.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let (status, body) = call(&server, 4).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 1);
    assert_eq!(upstream_status(&server).await["breaker"], "closed");
    let (status, body) = call(&server, 5).await;
    assert_eq!(status, 200, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_probe_opens_the_breaker_again() {
    let (addr, up) = start_upstream().await;
    up.failing.store(true, Ordering::SeqCst);
    let origin = format!("http://{addr}");
    let dir = config(
        &origin,
        &format!("{{origin: \"{origin}\", breaker: {{failures: 2, cool_down: 1s}}}}"),
    );
    let server = start(dir.path()).await;
    for n in 0..2 {
        let (_, body) = call(&server, n).await;
        assert_eq!(body["error"]["code"], "upstream_status", "{body}");
    }
    let (_, body) = call(&server, 2).await;
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 2);

    // The probe still finds it failing: open again, and the next call does
    // not reach it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, body) = call(&server, 3).await;
    assert_eq!(body["error"]["code"], "upstream_status", "{body}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    let (_, body) = call(&server, 4).await;
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    assert_eq!(up.hits.load(Ordering::SeqCst), 3);
    assert_eq!(upstream_status(&server).await["breaker"], "open");

    up.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = call(&server, 5).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream_status(&server).await["breaker"], "closed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_upstreams_entry_is_a_positioned_error() {
    let dir = config(
        "http://127.0.0.1:9",
        "{origin: \"http://127.0.0.1:9\", max_in_flight: 0}",
    );
    let snapshot = recado::config::load_dir(dir.path());
    let errors: Vec<String> = snapshot.all_errors().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("acme/tenant.yaml:4:") && errors[0].contains("max_in_flight"),
        "{errors:?}"
    );
}
