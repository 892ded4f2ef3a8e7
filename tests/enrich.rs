//! Enrichment against a real upstream HTTP server on loopback that counts
//! hits and can be slow, fail, answer garbage or go away.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use common::{request, TestServer};
use serde_json::{json, Value};

const SECRET: &str = "erp-s3cr3t-do-not-leak";

#[derive(Clone, Default)]
struct Upstream {
    hits: Arc<Mutex<HashMap<String, u64>>>,
    /// Answers sent whole (a call dropped while its answer was delayed is
    /// a hit, not an answer).
    answered: Arc<Mutex<HashMap<String, u64>>>,
}

impl Upstream {
    fn hits(&self, key: &str) -> u64 {
        self.hits.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

async fn behave(
    State(up): State<Upstream>,
    Path((kind, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> axum::response::Response {
    let hit = {
        let mut hits = up.hits.lock().unwrap();
        let n = hits.entry(format!("{kind}/{id}")).or_default();
        *n += 1;
        *n
    };
    if let Some(ms) = q.get("delay_ms") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    *up.answered
        .lock()
        .unwrap()
        .entry(format!("{kind}/{id}"))
        .or_default() += 1;
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {SECRET}"));
    match kind.as_str() {
        "customer" if authorized => {
            axum::Json(json!({"id": id, "plan": "ouro", "hit": hit})).into_response()
        }
        "customer" => (StatusCode::UNAUTHORIZED, "no").into_response(),
        "orders" => axum::Json(json!({"count": 3, "of": id})).into_response(),
        "echo" => axum::Json(json!({"query": q})).into_response(),
        "fail" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "notjson" => (StatusCode::OK, "<html>oops</html>").into_response(),
        "big" => axum::Json(json!({"blob": "x".repeat(200_000)})).into_response(),
        _ => (StatusCode::NOT_FOUND, "?").into_response(),
    }
}

async fn start_upstream() -> (SocketAddr, Upstream) {
    let up = Upstream::default();
    let app = Router::new()
        .route("/{kind}/{id}", any(behave))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, up)
}

/// A port on loopback where nothing listens.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Two tenants (`acme`, `beta`) whose integrations call the same upstream.
fn config(up: SocketAddr) -> tempfile::TempDir {
    let base = format!("http://{up}");
    let dead = format!("http://127.0.0.1:{}", dead_port());
    let call = |name: &str, extra: &str| {
        format!(
            "enrich:\n  c:\n    url: \"{base}/{name}/{{{{ data.id }}}}\"\n    headers:\n      Authorization: \"Bearer {{{{ secrets.erp }}}}\"\n{extra}messages:\n  - text: \"{{{{ enrich.c | tojson }}}}\"\n"
        )
    };
    let tenant = |id: u64, token: &str| {
        format!("client_ids: [{id}]\ntokens: [{token}]\nsecrets:\n  erp: {SECRET}\n")
    };
    let host = format!("enrich:\n  c:\n    url: \"{base}{{{{ data.path }}}}\"\nmessages:\n  - text: \"{{{{ enrich.c | tojson }}}}\"\n");
    let cached = call("customer", "    cache: 30s\n");
    let files: Vec<(String, String)> = vec![
        ("acme/tenant.yaml".into(), tenant(1, "acme-token-1")),
        ("beta/tenant.yaml".into(), format!("{}upstreams: [\"{base}\"]\n", tenant(2, "beta-token-1"))),
        ("beta/host.yaml".into(), host.clone()),
        ("acme/cached.yaml".into(), cached.clone()),
        ("beta/cached.yaml".into(), cached),
        ("acme/ttl.yaml".into(), call("customer", "    cache: 300ms\n")),
        ("acme/slowcache.yaml".into(), call("customer", "    cache: 30s\n    query:\n      delay_ms: \"300\"\n")),
        ("acme/fail.yaml".into(), call("fail", "    retries: 2\n")),
        ("acme/notjson.yaml".into(), call("notjson", "")),
        ("acme/big.yaml".into(), call("big", "    max_bytes: 10000\n")),
        ("acme/timeout.yaml".into(), call("customer", "    timeout: 300ms\n    query:\n      delay_ms: \"10000\"\n")),
        (
            "acme/down.yaml".into(),
            format!("enrich:\n  c:\n    url: \"{dead}/customer/1\"\n    timeout: 1s\nmessages:\n  - text: \"{{{{ enrich.c.plan }}}}\"\n"),
        ),
        (
            "acme/fallback.yaml".into(),
            call("fail", "    on_error: fallback\n    fallback: {plan: básico}\n").replace("tojson", "tojson }} {{ enrich.c.plan"),
        ),
        (
            "acme/path.yaml".into(),
            format!("enrich:\n  c:\n    url: \"{base}/{{{{ data.path }}}}\"\nmessages:\n  - text: \"{{{{ enrich.c | tojson }}}}\"\n"),
        ),
        (
            "acme/chain.yaml".into(),
            format!(
                "enrich:\n  customer:\n    url: \"{base}/customer/{{{{ data.id }}}}\"\n    headers: {{Authorization: \"Bearer {{{{ secrets.erp }}}}\"}}\n  orders:\n    url: \"{base}/orders/{{{{ enrich.customer.plan }}}}\"\n  other:\n    url: \"{base}/orders/x\"\n\
                 messages:\n  - text: \"{{{{ enrich.customer.plan }}}}: {{{{ enrich.orders.count }}}} pedidos de {{{{ enrich.orders.of }}}}\"\n"
            ),
        ),
        (
            "acme/queries.yaml".into(),
            format!(
                "enrich:\n  a:\n    url: \"{base}/echo/1\"\n    cache: 30s\n    query: {{a: \"{{{{ data.id }}}}\"}}\n  b:\n    url: \"{base}/echo/1\"\n    cache: 30s\n    query: {{b: \"{{{{ data.id }}}}\"}}\n\
                 messages:\n  - text: \"{{{{ enrich.a.query.a }}}} {{{{ enrich.b.query.b }}}}\"\n"
            ),
        ),
        (
            "acme/listquery.yaml".into(),
            format!(
                "enrich:\n  c:\n    url: \"{base}/echo/1\"\n    query: {{ids: \"{{{{ data.ids }}}}\"}}\nmessages:\n  - text: \"{{{{ enrich.c.query.ids }}}}\"\n"
            ),
        ),
        (
            "acme/failfast.yaml".into(),
            format!(
                "enrich:\n  a:\n    url: \"{base}/fail/{{{{ data.id }}}}\"\n  b:\n    url: \"{base}/orders/{{{{ data.id }}}}?delay_ms=3000\"\n    timeout: 5s\n    on_error: fallback\n    fallback: {{count: 0}}\nmessages:\n  - text: \"{{{{ enrich.b.count }}}}\"\n"
            ),
        ),
        (
            "acme/deadline.yaml".into(),
            format!(
                "deadline: 300ms\nenrich:\n  a:\n    url: \"{base}/orders/a?delay_ms=250\"\n  b:\n    url: \"{base}/orders/{{{{ enrich.a.count }}}}?delay_ms=250\"\nmessages:\n  - text: \"{{{{ enrich.b.count }}}}\"\n"
            ),
        ),
        (
            "acme/urlfail.yaml".into(),
            format!("enrich:\n  c:\n    url: \"{base}/orders/{{{{ data.id | brl }}}}\"\nmessages:\n  - text: \"{{{{ enrich.c.count }}}}\"\n"),
        ),
        (
            "acme/bodyfail.yaml".into(),
            format!(
                "enrich:\n  c:\n    url: \"{base}/orders/1\"\n    method: POST\n    body:\n      pedido:\n        itens: [\"{{{{ data.id }}}}\", \"{{{{ data.valor | brl }}}}\"]\n\
                 messages:\n  - text: \"{{{{ enrich.c.count }}}}\"\n"
            ),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in &files {
        common::write_files(dir.path(), &[(rel.as_str(), text.as_str())]);
    }
    dir
}

async fn start(up: SocketAddr) -> (TestServer, tempfile::TempDir) {
    common::captured_logs(false);
    let dir = config(up);
    let snapshot = recado::config::load_dir(dir.path());
    assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
    (TestServer::start(dir.path()).await, dir)
}

async fn call(server: &TestServer, hook: &str, client: u64, data: Value) -> (u16, Value, Duration) {
    let token = if client == 1 {
        "acme-token-1"
    } else {
        "beta-token-1"
    };
    let started = Instant::now();
    let (status, body) = server
        .post(
            &format!("/hooks/{hook}?token={token}"),
            request(client, data),
        )
        .await;
    (status, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_call_hits_the_upstream_once_for_100_requests() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    for _ in 0..100 {
        let (status, body, _) = call(&server, "cached", 1, json!({"id": "c1"})).await;
        assert_eq!(status, 200, "{body}");
        let inner: Value = serde_json::from_str(body[0]["value"].as_str().unwrap()).unwrap();
        assert_eq!(inner["plan"], "ouro");
    }
    assert_eq!(up.hits("customer/c1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_expires() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    call(&server, "ttl", 1, json!({"id": "t1"})).await;
    call(&server, "ttl", 1, json!({"id": "t1"})).await;
    assert_eq!(up.hits("customer/t1"), 1);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let (status, _, _) = call(&server, "ttl", 1, json!({"id": "t1"})).await;
    assert_eq!(status, 200);
    assert_eq!(up.hits("customer/t1"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_misses_make_one_upstream_call() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    let server = Arc::new(server);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { call(&server, "slowcache", 1, json!({"id": "m1"})).await.0 })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(up.hits("customer/m1"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_the_same_url_get_separate_entries() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    for _ in 0..3 {
        assert_eq!(
            call(&server, "cached", 1, json!({"id": "shared"})).await.0,
            200
        );
        assert_eq!(
            call(&server, "cached", 2, json!({"id": "shared"})).await.0,
            200
        );
    }
    assert_eq!(up.hits("customer/shared"), 2, "one entry per tenant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_give_their_documented_errors_within_the_configured_time() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;

    let (status, body, _) = call(&server, "down", 1, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_unreachable")),
        "{body}"
    );
    assert_eq!(body["error"]["integration"], "acme/down.yaml");
    assert_eq!(body["error"]["path"], "enrich.c");

    let (status, body, took) = call(&server, "timeout", 1, json!({"id": "slow"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("upstream_timeout")),
        "{body}"
    );
    assert!(
        took < Duration::from_secs(5),
        "the 300ms timeout was not applied: {took:?}"
    );

    let (status, body, _) = call(&server, "fail", 1, json!({"id": "f1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_status")),
        "{body}"
    );
    assert_eq!(body["error"]["upstream_status"], 500);
    assert_eq!(up.hits("fail/f1"), 3, "a GET is retried twice on 5xx");

    let (status, body, _) = call(&server, "notjson", 1, json!({"id": "n1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_not_json")),
        "{body}"
    );

    let (status, body, _) = call(&server, "big", 1, json!({"id": "b1"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_too_large")),
        "{body}"
    );

    let (status, body, took) = call(&server, "deadline", 1, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (504, Some("deadline_exceeded")),
        "{body}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Failures are not cached: the next request calls again.
    call(&server, "fail", 1, json!({"id": "f1"})).await;
    assert_eq!(up.hits("fail/f1"), 6);
}

/// A call that fails without a fallback fails the request at once: the
/// other calls of its level are dropped, not awaited (the old code answered
/// only once the slow call's answer came, for nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_call_without_fallback_does_not_wait_for_the_others() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    let (status, body, _) = call(&server, "failfast", 1, json!({"id": "ff"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "upstream_status", "{body}");
    assert_eq!(
        up.answered
            .lock()
            .unwrap()
            .get("orders/ff")
            .copied()
            .unwrap_or(0),
        0,
        "the request waited for the slow call's answer"
    );
}

/// A list printed into a call (here its query) is sent as minijinja prints
/// it: refusing lists and mappings is for messages, which reach a contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_printed_into_a_call_is_sent_as_before() {
    let (addr, _up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    let (status, body, _) = call(&server, "listquery", 1, json!({"ids": [1, 2]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["value"], "[1, 2]", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_fallback_is_used() {
    let (addr, _up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    let (status, body, _) = call(&server, "fallback", 1, json!({"id": "x"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["value"], "{\"plan\": \"básico\"} básico");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_differing_only_in_query_names_have_their_own_cache_entries() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    for _ in 0..3 {
        let (status, body, _) = call(&server, "queries", 1, json!({"id": "7"})).await;
        assert_eq!((status, &body[0]["value"]), (200, &json!("7 7")), "{body}");
    }
    assert_eq!(up.hits("echo/1"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_can_read_other_calls() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    let (status, body, _) = call(&server, "chain", 1, json!({"id": "k9"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["value"], "ouro: 3 pedidos de ouro");
    assert_eq!(up.hits("orders/x"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_data_cannot_change_the_host() {
    let (addr, up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    // Data placed right after the host could rewrite it: without an allow-list
    // that is refused outright, at load (so it never goes live).
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            ("acme/tenant.yaml", "client_ids: [1]\ntokens: [acme-token-1]\n"),
            (
                "acme/host.yaml",
                &format!("enrich:\n  c:\n    url: \"http://{addr}{{{{ data.path }}}}\"\nmessages:\n  - text: \"{{{{ enrich.c | tojson }}}}\"\n"),
            ),
        ],
    );
    let errors: Vec<String> = recado::config::load_dir(dir.path())
        .all_errors()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("acme/host.yaml:3:10: the URL's `scheme://host[:port]` is a template"),
        "{errors:?}"
    );
    let (status, _, _) = call(&server, "host", 1, json!({"path": "/orders/ok"})).await;
    assert_eq!(status, 404);
    assert_eq!(up.hits("orders/ok"), 0);
    // With the tenant's allow-list, the rendered origin must be listed.
    for path in ["@evil.example.com/customer/1", "@127.0.0.2/customer/1"] {
        let (status, body, _) = call(&server, "host", 2, json!({"path": path})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("upstream_refused")),
            "{path}: {body}"
        );
    }
    let (status, body, _) = call(&server, "host", 2, json!({"path": "/orders/ok?x=1"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.hits("orders/ok"), 1);
    // After a literal `/`, data only ever fills the path.
    let (status, body, _) = call(
        &server,
        "path",
        1,
        json!({"path": "@evil.example.com/customer/1"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["upstream_status"].as_u64()),
        (502, Some(404)),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_never_appears_in_a_response_or_a_log() {
    let (addr, _up) = start_upstream().await;
    let (server, _dir) = start(addr).await;
    let mut bodies = String::new();
    for hook in [
        "cached", "fail", "notjson", "timeout", "big", "down", "fallback", "chain",
    ] {
        let (_, body, _) = call(&server, hook, 1, json!({"id": "s"})).await;
        bodies.push_str(&body.to_string());
    }
    // Data that asks for the secret gets text, not the secret.
    let (_, body, _) = call(&server, "cached", 1, json!({"id": "{{ secrets.erp }}"})).await;
    bodies.push_str(&body.to_string());
    assert!(!bodies.contains(SECRET), "{bodies}");
    let log = common::logs_text(false);
    assert!(
        log.contains("upstream call failed"),
        "the failures are logged"
    );
    assert!(!log.contains(SECRET), "{log}");

    // A message template cannot read secrets at all: refused at load.
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            (
                "x/tenant.yaml",
                "client_ids: [9]\ntokens: [x-token-1]\nsecrets: {erp: abc}\n",
            ),
            (
                "x/leak.yaml",
                "messages:\n  - text: \"{{ secrets.erp }}\"\n",
            ),
        ],
    );
    let errors: Vec<String> = recado::config::load_dir(dir.path())
        .all_errors()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors[0].starts_with("x/leak.yaml:2:15: messages[0]: `text` reads `secrets`"),
        "{errors:?}"
    );
}

#[test]
fn a_cycle_between_calls_is_a_load_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            ("x/tenant.yaml", "client_ids: [9]\ntokens: [x-token-1]\n"),
            (
                "x/cycle.yaml",
                "description: ciclo\nenrich:\n  a:\n    url: \"http://127.0.0.1:1/{{ enrich.b.id }}\"\n  b:\n    url: \"http://127.0.0.1:1/{{ enrich.a.id }}\"\nmessages:\n  - text: hi\n",
            ),
        ],
    );
    let errors: Vec<String> = recado::config::load_dir(dir.path())
        .all_errors()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .starts_with("x/cycle.yaml:3:3: enrich: the calls a, b read each other in a cycle"),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_plano_example_answers_its_expected_array() {
    use std::io::BufRead;
    // The shipped stand-in ERP, on a free port instead of its default 8081.
    let mut erp = std::process::Command::new("python3")
        .args(["examples/erp.py", "0"])
        .current_dir(common::repo())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the stand-in ERP");
    let mut line = String::new();
    std::io::BufReader::new(erp.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    let dir = common::shipped_demo();
    let plano = dir.path().join("demo/plano.yaml");
    let text = std::fs::read_to_string(&plano)
        .unwrap()
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{port}"));
    std::fs::write(&plano, text).unwrap();

    let server = TestServer::start(dir.path()).await;
    let examples = common::repo().join("examples");
    let (status, body) = server
        .post(
            "/hooks/plano?token=demo-token",
            common::read(examples.join("plano.json")),
        )
        .await;
    let _ = erp.kill();
    let _ = erp.wait();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, common::json(examples.join("plano.expected.json")));
}

/// A call's template that fails on the request is told as a message's is:
/// the expression in its own words, never the value, and the file's line
/// and column, inside a call's body too.
#[tokio::test]
async fn a_failing_call_template_names_its_expression_and_the_files_line() {
    let (up, _) = start_upstream().await;
    let (server, dir) = start(up).await;
    let (status, body, _) = call(&server, "urlfail", 1, json!({"id": "segredo-do-cliente"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "render_failed");
    assert_eq!(body["error"]["path"], "enrich.c");
    let message = body["error"]["message"].as_str().unwrap();
    let text = std::fs::read_to_string(dir.path().join("acme/urlfail.yaml")).unwrap();
    let column = text.lines().nth(2).unwrap().find("data.id | brl").unwrap() + 1;
    assert!(
        message.starts_with("call `c`: `data.id | brl`: brl: expected a number"),
        "{message}"
    );
    assert!(
        message.ends_with(&format!("(enrich.c.url, line 3, column {column})")),
        "{message}"
    );
    assert!(!message.contains("segredo"), "{message}");

    // A value missing from the request, in a list inside the body.
    let (status, body, _) = call(&server, "bodyfail", 1, json!({"id": "1"})).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("(enrich.c.body.pedido.itens[1], line 7, column 38)"),
        "{message}"
    );
    server.stop().await;
}
