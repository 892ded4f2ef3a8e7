//! The operators' safety net, live: while good requests keep coming, edits
//! that `recado check` refuses (an unknown filter, a misspelt secret, two
//! tokens merged by an indentation slip) never reach the request path. The
//! last good version keeps answering every request, and `/admin/status`
//! names the mistake.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{request, TestServer};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-1";
const TENANT: &str =
    "client_ids: [70]\ntokens:\n  - loja-token-2026\nsecrets:\n  erp_token: s3cr3t-erp\n";
const MERGED_TOKEN: &str =
    "client_ids: [70]\ntokens:\n  - loja-token-2026 - nova-token-2027\nsecrets:\n  erp_token: s3cr3t-erp\n";
const HOOK: &str = "/hooks/pedido?token=loja-token-2026";
const CLIENTS: usize = 4;

/// A loopback upstream that answers only with the right secret.
async fn upstream() -> SocketAddr {
    use axum::http::HeaderMap;
    let app = axum::Router::new().route(
        "/clientes/{key}",
        axum::routing::get(|headers: HeaderMap| async move {
            let ok = headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer s3cr3t-erp");
            if ok {
                (
                    axum::http::StatusCode::OK,
                    axum::Json(json!({"nivel": "ouro"})),
                )
            } else {
                (axum::http::StatusCode::UNAUTHORIZED, axum::Json(json!({})))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn integration(addr: SocketAddr, filter: &str, secret: &str) -> String {
    format!(
        "enrich:\n  cliente:\n    url: http://{addr}/clientes/{{{{ contact.key }}}}\n    headers:\n      Authorization: \"Bearer {{{{ secrets.{secret} }}}}\"\nmessages:\n  - text: |\n      Olá {{{{ contact.name | {filter} }}}}, cliente {{{{ enrich.cliente.nivel }}}}\n"
    )
}

fn expected() -> Value {
    json!([{"type": "TEXT", "value": "Olá Ana, cliente ouro"}])
}

/// Waits (hang guard only) until `/admin/status` lists an error containing
/// `needle`, or none when `needle` is empty.
async fn status_shows(server: &TestServer, needle: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let errors = server.status_errors(ADMIN).await;
        let seen = match needle {
            "" => errors.is_empty(),
            n => errors.iter().any(|e| e.contains(n)),
        };
        if seen {
            return errors;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "`{needle}` never showed in /admin/status: {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    // Write-then-rename, so a reload never sees half a file (half-written
    // files are another test's subject).
    let path = root.join(rel);
    let tmp = root.join(format!("{rel}.tmp~"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_edits_never_fail_good_requests() {
    common::captured_logs(false);
    let addr = upstream().await;
    let root = tempfile::tempdir().unwrap();
    let good = integration(addr, "first_name", "erp_token");
    common::write_files(
        root.path(),
        &[("loja/tenant.yaml", TENANT), ("loja/pedido.yaml", &good)],
    );
    let server = Arc::new(TestServer::start_watching(root.path(), ADMIN).await);
    let body = request(70, json!({}));
    assert_eq!(server.post(HOOK, body.clone()).await, (200, expected()));

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (server, stop, sent, failures, body) = (
                server.clone(),
                stop.clone(),
                sent.clone(),
                failures.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let (status, answer) = server.post(HOOK, body.clone()).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if (status, &answer) != (200, &expected()) {
                        failures.lock().unwrap().push(format!("{status} {answer}"));
                    }
                }
            })
        })
        .collect();

    let pedido = "loja/pedido.yaml";
    // An unknown filter: refused at load, pointed at.
    write(
        root.path(),
        pedido,
        &integration(addr, "first_nme", "erp_token"),
    );
    let errors = status_shows(
        &server,
        "unknown filter `first_nme`; did you mean `first_name`?",
    )
    .await;
    assert!(
        errors.iter().any(|e| e.starts_with("loja/pedido.yaml:8:")),
        "{errors:?}"
    );
    write(root.path(), pedido, &good);
    status_shows(&server, "").await;

    // A misspelt secret.
    write(
        root.path(),
        pedido,
        &integration(addr, "first_name", "erp_tokn"),
    );
    status_shows(&server, "unknown secret `erp_tokn`").await;
    write(root.path(), pedido, &good);
    status_shows(&server, "").await;

    // Two tokens merged into one by an indentation slip.
    write(root.path(), "loja/tenant.yaml", MERGED_TOKEN);
    let errors = status_shows(&server, "a token cannot contain spaces").await;
    // The token itself is never echoed.
    assert!(
        errors.iter().all(|e| !e.contains("nova-token")),
        "{errors:?}"
    );
    write(root.path(), "loja/tenant.yaml", TENANT);
    status_shows(&server, "").await;

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} good requests failed, first: {:?}",
        failures.len(),
        sent.load(Ordering::Relaxed),
        failures.first()
    );
    assert!(sent.load(Ordering::Relaxed) > 0);
}
