//! Hostile and malformed input: every request gets its documented status and
//! a JSON error naming what is wrong, while a stream of good requests keeps
//! succeeding. Then: tenants never see each other, and one tenant's flood
//! does not starve another.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{integrations_with, json, read, workload, TestServer};
use serde_json::{json, Value};

const EXTRA: &[(&str, &str)] = &[
    // Same integration name as the demo tenant, different answer.
    ("other/tenant.yaml", "client_ids: [73]\ntokens: [other-token-1]\nsecrets: {erp_token: other-secret-value}\n"),
    ("other/boleto.yaml", "messages:\n  - text: \"Mensagem da outra empresa para {{ contact.name | first_name }}\"\n"),
    (
        "tight/tenant.yaml",
        "client_ids: [74]\ntokens: [tight-token-1]\nlimits:\n  max_messages: 10\n  fuel: 20000\n  max_output_bytes: 2000\n  max_body_bytes: 4096\n",
    ),
    ("tight/loop.yaml", "messages:\n  - text: \"{% for i in range(1000000) %}{% for j in range(1000000) %}x{% endfor %}{% endfor %}\"\n"),
    ("tight/many.yaml", "messages:\n  - text: \"{{ item }}\"\n    for_each: data.items\n"),
    ("tight/include.yaml", "messages:\n  - text: \"{% include '../demo/boleto.yaml' %}\"\n"),
];

fn good() -> Value {
    serde_json::from_slice(&read(workload("request.json"))).unwrap()
}

fn with(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = good();
    f(&mut v);
    v.to_string().into_bytes()
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    auth: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// `error.code`, or `None` for a 200 whose answer is checked separately.
    code: Option<&'static str>,
}

fn case(name: &'static str, body: Vec<u8>, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method: "POST",
        path: "/hooks/boleto?token=demo-token".into(),
        content_type: Some("application/json"),
        auth: None,
        body,
        status,
        code: Some(code),
    }
}

fn cases() -> Vec<Case> {
    let bad = |name, body: Vec<u8>| case(name, body, 400, "invalid_request");
    let render = |name, body: Vec<u8>| case(name, body, 422, "render_failed");
    let output = |name, body: Vec<u8>| case(name, body, 422, "invalid_output");
    let unauthorized = |name, path: &str, body: Vec<u8>| Case {
        path: path.into(),
        ..case(name, body, 401, "unauthorized")
    };
    let not_found = |name, path: &str| Case {
        path: path.into(),
        ..case(name, with(|_| {}), 404, "unknown_integration")
    };
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
    let mut out = vec![
        // Not JSON, or not an object.
        bad("empty body", vec![]),
        bad("null", b"null".to_vec()),
        bad("array", b"[]".to_vec()),
        bad("string", b"\"hello\"".to_vec()),
        bad("number", b"123".to_vec()),
        bad("empty object", b"{}".to_vec()),
        bad("truncated", read(workload("bad-request-malformed.json"))),
        bad("trailing garbage", [with(|_| {}), b" x".to_vec()].concat()),
        bad("invalid UTF-8 in a string", with(|_| {}).iter().map(|b| if *b == b'J' { 0xff } else { *b }).collect()),
        bad("raw invalid UTF-8", vec![0xc3, 0x28, 0xa0, 0xa1]),
        bad("byte order mark", [b"\xef\xbb\xbf".to_vec(), with(|_| {})].concat()),
        bad("NUL bytes", vec![0; 64]),
        bad("duplicate key", br#"{"id":1,"id":2,"clientId":72,"origin":"SCHEDULED_MESSAGE","contact":{"uid":"1","type":"WHATSAPP","key":"1","name":"a"}}"#.to_vec()),
        // Wrong types and values.
        bad("id text", with(|r| r["id"] = json!("abc"))),
        bad("id negative", with(|r| r["id"] = json!(-5))),
        bad("id fraction", with(|r| r["id"] = json!(1.5))),
        bad("id bool", with(|r| r["id"] = json!(true))),
        bad("id null", with(|r| r["id"] = json!(null))),
        bad("id array", with(|r| r["id"] = json!([1]))),
        bad("id huge", with(|r| r["id"] = json!(1e30))),
        bad("id digits overflow", with(|r| r["id"] = json!("99999999999999999999999"))),
        bad("clientId object", with(|r| r["clientId"] = json!({}))),
        bad("clientId missing", with(|r| { r.as_object_mut().unwrap().remove("clientId"); })),
        bad("origin missing", with(|r| { r.as_object_mut().unwrap().remove("origin"); })),
        bad("origin lowercase", with(|r| r["origin"] = json!("scheduled_message"))),
        bad("origin number", with(|r| r["origin"] = json!(5))),
        bad("origin manual", read(workload("bad-request.json"))),
        bad("contact missing", with(|r| { r.as_object_mut().unwrap().remove("contact"); })),
        bad("contact string", with(|r| r["contact"] = json!("x"))),
        bad("contact array", with(|r| r["contact"] = json!([]))),
        bad("uid missing", with(|r| { r["contact"].as_object_mut().unwrap().remove("uid"); })),
        bad("uid number", with(|r| r["contact"]["uid"] = json!(15295))),
        bad("channel SMS", with(|r| r["contact"]["type"] = json!("SMS"))),
        bad("channel missing", with(|r| { r["contact"].as_object_mut().unwrap().remove("type"); })),
        bad("key missing", with(|r| { r["contact"].as_object_mut().unwrap().remove("key"); })),
        bad("key empty", with(|r| r["contact"]["key"] = json!(""))),
        bad("name null", with(|r| r["contact"]["name"] = json!(null))),
        bad("name empty", with(|r| r["contact"]["name"] = json!(""))),
        bad("name blank", with(|r| r["contact"]["name"] = json!("   "))),
        bad("name missing", read(workload("bad-request-noname.json"))),
        // Nesting.
        bad("deep nesting (10,000)", deep(10_000)),
        bad("deep data (200)", {
            let inner = format!("{}1{}", "[".repeat(200), "]".repeat(200));
            String::from_utf8(with(|r| r["data"] = json!("__DEEP__"))).unwrap().replace("\"__DEEP__\"", &inner).into_bytes()
        }),
        // Size.
        case("oversized body", vec![b' '; 300 * 1024], 413, "payload_too_large"),
        // Data that is wrong for the integration.
        render("data is a string", with(|r| r["data"] = json!("{{ contact.key }}"))),
        render("data missing", with(|r| { r.as_object_mut().unwrap().remove("data"); })),
        render("money not a number", with(|r| r["data"]["valor"] = json!("abc"))),
        render("date not a date", with(|r| r["data"]["vencimento"] = json!("amanhã"))),
        output("URL javascript", with(|r| r["data"]["boleto_url"] = json!("javascript:alert(1)"))),
        output("URL with space", with(|r| r["data"]["boleto_url"] = json!("https://x.example/a b.pdf"))),
        output("name longer than a text", with(|r| r["contact"]["name"] = json!("J".repeat(5000)))),
        // Transport.
        Case { content_type: Some("text/plain"), ..case("text/plain", with(|_| {}), 415, "unsupported_media_type") },
        Case { content_type: Some("application/xml"), ..case("xml", with(|_| {}), 415, "unsupported_media_type") },
        Case { method: "GET", ..case("GET", vec![], 405, "method_not_allowed") },
        Case { method: "PUT", ..case("PUT", with(|_| {}), 405, "method_not_allowed") },
        Case { method: "DELETE", ..case("DELETE", vec![], 405, "method_not_allowed") },
        // Tokens and tenants.
        unauthorized("no token", "/hooks/boleto", with(|_| {})),
        unauthorized("wrong token", "/hooks/boleto?token=wrong-token", with(|_| {})),
        unauthorized("empty token", "/hooks/boleto?token=", with(|_| {})),
        unauthorized("other tenant's token", "/hooks/boleto?token=other-token-1", with(|_| {})),
        unauthorized("unknown clientId", "/hooks/boleto?token=demo-token", with(|r| r["clientId"] = json!(999_999))),
        unauthorized("other tenant's clientId", "/hooks/boleto?token=demo-token", with(|r| r["clientId"] = json!(73))),
        unauthorized("token as a template", "/hooks/boleto?token=%7B%7B%20secrets%20%7D%7D", with(|_| {})),
        Case { auth: Some("Bearer wrong-token"), ..unauthorized("wrong bearer beats a good query", "/hooks/boleto?token=demo-token", with(|_| {})) },
        // Paths.
        not_found("traversal", "/hooks/..%2Fother%2Fboleto?token=demo-token"),
        // The client normalizes `%2e%2e` to `..` and resolves it: `/`.
        Case { path: "/hooks/%2e%2e?token=demo-token".into(), ..case("dot dot", with(|_| {}), 404, "not_found") },
        not_found("upper case", "/hooks/BOLETO?token=demo-token"),
        not_found("NUL", "/hooks/boleto%00?token=demo-token"),
        not_found("tenant file", "/hooks/tenant?token=demo-token"),
        not_found("long name", &format!("/hooks/{}?token=demo-token", "a".repeat(4000))),
        Case { path: "/hooks/".into(), ..case("empty name", with(|_| {}), 404, "not_found") },
        Case { path: "/hooks/demo/boleto?token=demo-token".into(), ..case("nested path", with(|_| {}), 404, "not_found") },
        Case { path: "/admin/../hooks/boleto".into(), method: "GET", ..case("dot segments", vec![], 405, "method_not_allowed") },
        // Template syntax and secrets' names inside data are text.
        Case { code: None, ..case("template in data", with(|r| r["data"]["pedido"] = json!("{{ secrets.erp_token }}{% for x in range(99999999) %}")), 200, "") },
        Case { code: None, ..case("extra fields", with(|r| { r["extra"] = json!({"a": [1, 2, 3]}); r["contact"]["extra"] = json!(1); }), 200, "") },
        Case { code: None, content_type: None, ..case("no content type", with(|_| {}), 200, "") },
        Case { code: None, ..case("numeric strings", with(|r| { r["id"] = json!("3589818"); r["clientId"] = json!("72"); }), 200, "") },
        Case { code: None, ..case("huge data array", with(|r| r["data"]["lixo"] = json!(vec![1; 20_000])), 200, "") },
    ];
    // The tight tenant: fuel, message count, answer size, its own body limit.
    let tight = |name, hook: &str, data: Value, status, code| Case {
        path: format!("/hooks/{hook}?token=tight-token-1"),
        ..case(
            name,
            with(|r| {
                r["clientId"] = json!(74);
                r["data"] = data;
            }),
            status,
            code,
        )
    };
    out.push(tight(
        "runaway loop",
        "loop",
        json!({}),
        422,
        "render_failed",
    ));
    out.push(tight(
        "too many messages",
        "many",
        json!({"items": (0..1000).collect::<Vec<_>>()}),
        422,
        "output_too_large",
    ));
    out.push(tight(
        "answer too large",
        "many",
        json!({"items": vec!["x".repeat(400); 8]}),
        422,
        "output_too_large",
    ));
    out.push(tight(
        "include another tenant's file",
        "include",
        json!({}),
        422,
        "render_failed",
    ));
    out.push(tight(
        "tenant body limit",
        "many",
        json!({"items": vec!["y"; 3000]}),
        413,
        "payload_too_large",
    ));
    out
}

async fn send(server: &TestServer, c: &Case) -> (u16, String) {
    let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
    let mut req = server
        .client
        .request(method, server.url(&c.path))
        .body(c.body.clone());
    if let Some(ct) = c.content_type {
        req = req.header("content-type", ct);
    }
    if let Some(auth) = c.auth {
        req = req.header("authorization", auth);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_documented_errors_while_good_ones_succeed() {
    let dir = integrations_with(EXTRA);
    let snapshot = recado::config::load_dir(dir.path());
    assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
    let server = Arc::new(TestServer::start(dir.path()).await);
    let expected = json(workload("expected.json"));

    let stop = Arc::new(AtomicBool::new(false));
    let good_count = Arc::new(AtomicU64::new(0));
    let stream = {
        let (server, stop, good_count, expected) = (
            server.clone(),
            stop.clone(),
            good_count.clone(),
            expected.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = server
                    .post(
                        "/hooks/boleto?token=demo-token",
                        read(workload("request.json")),
                    )
                    .await;
                assert_eq!(
                    (status, &body),
                    (200, &expected),
                    "a good request failed during the battery"
                );
                good_count.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let cases = cases();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let started = Instant::now();
        let (status, text) = send(&server, c).await;
        let took = started.elapsed();
        let body: Result<Value, _> = serde_json::from_str(&text);
        let ok = match (&body, c.code) {
            (Ok(b), Some(code)) => {
                status == c.status
                    && b["error"]["code"] == code
                    && !b["error"]["message"].as_str().unwrap_or("").is_empty()
            }
            (Ok(b), None) => status == 200 && b.is_array(),
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "{}: expected {} {:?}, got {status} {text:.300}",
                c.name, c.status, c.code
            ));
        }
        if took > Duration::from_secs(5) {
            failures.push(format!("{}: took {took:?}", c.name));
        }
    }
    // Data is text: nothing in it was evaluated.
    let (_, text) = send(
        &server,
        cases.iter().find(|c| c.name == "template in data").unwrap(),
    )
    .await;
    assert!(
        text.contains("{{ secrets.erp_token }}{% for x in range(99999999) %}"),
        "{text}"
    );

    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();
    eprintln!(
        "{} hostile cases; {} good requests answered meanwhile",
        cases.len(),
        good_count.load(Ordering::Relaxed)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(good_count.load(Ordering::Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_with_the_same_integration_names_never_see_each_other() {
    let dir = integrations_with(EXTRA);
    let server = TestServer::start(dir.path()).await;
    let demo = json(workload("expected.json"));
    for _ in 0..20 {
        let (status, body) = server
            .post("/hooks/boleto?token=demo-token", with(|_| {}))
            .await;
        assert_eq!((status, &body), (200, &demo));
        let (status, body) = server
            .post(
                "/hooks/boleto?token=other-token-1",
                with(|r| r["clientId"] = json!(73)),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!([{"type": "TEXT", "value": "Mensagem da outra empresa para João"}])
        );
        // Each token with the other's clientId, either way round: 401, never the other's answer.
        assert_eq!(
            server
                .post("/hooks/boleto?token=other-token-1", with(|_| {}))
                .await
                .0,
            401
        );
        assert_eq!(
            server
                .post(
                    "/hooks/boleto?token=demo-token",
                    with(|r| r["clientId"] = json!(73))
                )
                .await
                .0,
            401
        );
    }
}

/// An integration whose one call waits `delay` on an upstream started here;
/// it answers `[{"type": "TEXT", "value": "1"}]`.
async fn slow_integration(delay: Duration) -> String {
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(move || async move {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"ok": 1}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, slow).await.unwrap() });
    format!("enrich:\n  s:\n    url: \"http://{up}/slow\"\nmessages:\n  - text: \"{{{{ enrich.s.ok }}}}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_flood_does_not_starve_another() {
    // Tenant A's integration waits on a slow upstream; its limit is 4 at once.
    let flood_yaml = slow_integration(Duration::from_millis(300)).await;
    let dir = integrations_with(&[
        (
            "flood/tenant.yaml",
            "client_ids: [80]\ntokens: [flood-token-1]\nlimits: {concurrency: 4}\n",
        ),
        ("flood/x.yaml", &flood_yaml),
    ]);
    let server = Arc::new(TestServer::start(dir.path()).await);

    let flood: Vec<_> = (0..60)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let resp = server
                    .client
                    .post(server.url("/hooks/x?token=flood-token-1"))
                    .header("content-type", "application/json")
                    .body(with(|r| r["clientId"] = json!(80)))
                    .send()
                    .await
                    .unwrap();
                let retry = resp
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (resp.status().as_u16(), retry)
            })
        })
        .collect();

    let expected = json(workload("expected.json"));
    let mut latencies = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let (status, body) = server
            .post("/hooks/boleto?token=demo-token", with(|_| {}))
            .await;
        latencies.push(started.elapsed());
        assert_eq!(
            (status, &body),
            (200, &expected),
            "tenant B failed during A's flood"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut ok = 0;
    let mut busy = 0;
    for f in flood {
        match f.await.unwrap() {
            (200, _) => ok += 1,
            (429, Some(retry)) => {
                assert_eq!(retry, "1");
                busy += 1
            }
            other => panic!("flood request answered {other:?}"),
        }
    }
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "flood: {ok} served, {busy} refused with 429; tenant B: 50/50 served, p50 {:?}, p99 {p99:?}",
        latencies[latencies.len() / 2]
    );
    assert!(busy > 0, "the flood was never limited");
    assert!(ok >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_but_slow_requests_are_not() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const IDLE: Duration = Duration::from_millis(300);

    // A request waiting 900 ms (three idle periods) on its upstream.
    let slow_yaml = slow_integration(Duration::from_millis(900)).await;
    let dir = integrations_with(&[("demo/slow.yaml", &slow_yaml)]);
    let server = TestServer::start_with(dir.path(), |s| s.idle_timeout = IDLE).await;

    // Closed (EOF) after between one and two idle periods: a client that
    // stops in the middle of its headers, and one that sends nothing.
    for partial in [&b"POST /hooks/boleto HTTP/1.1\r\nHost: x\r\n"[..], b""] {
        let mut conn = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        conn.write_all(partial).await.unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
            .await
            .expect("a stalled connection was never closed")
            .unwrap_or(0);
        let took = started.elapsed();
        assert_eq!(n, 0, "expected EOF, got {:?}", &buf[..n]);
        // Measured from just after the server accepted, hence the slack.
        assert!(took >= IDLE / 2 && took < 4 * IDLE, "closed after {took:?}");
    }

    // A keep-alive connection between requests is idle too; a request
    // that takes longer than the idle period is not.
    let (status, body) = server
        .post("/hooks/slow?token=demo-token", with(|_| {}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!([{"type": "TEXT", "value": "1"}]))
    );
    let (status, _) = server
        .post("/hooks/boleto?token=demo-token", with(|_| {}))
        .await;
    assert_eq!(status, 200);
}
