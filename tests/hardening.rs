//! Issue #13, "Hardening, round two": what a hostile request, a careless
//! operator or a failing disk must not be able to do.

mod common;

use std::sync::{Arc, Mutex};

use common::{request, TestServer};
use serde_json::{json, Value};

const FORGE: &str = "enrich:\n  c:\n    url: \"http://127.0.0.1:1/x\"\n    query: {v: \"{{ data.v | brl }}\"}\n    on_error: fallback\n    fallback: {}\nmessages:\n  - text: ok\n";

const MEDIA: &str =
    "messages:\n  - file: \"https://x.example/{{ contact.key }} {{ data.v }}.pdf\"\n";
const NAMED: &str = "messages:\n  - text: \"{{ contact.name | brl }}\"\n";

async fn demo() -> (TestServer, tempfile::TempDir) {
    let dir = common::integrations_with(&[
        ("demo/forge.yaml", FORGE),
        ("demo/media.yaml", MEDIA),
        ("demo/named.yaml", NAMED),
    ]);
    (TestServer::start(dir.path()).await, dir)
}

// ---- 1. log amplification -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_250kb_request_writes_under_4kib_of_log() {
    common::captured_logs(false);
    let (server, _dir) = demo().await;
    let marker = "Q".repeat(250_000);
    let mut body: Value = serde_json::from_str(&request(72, json!({}))).unwrap();
    body["origin"] = json!(marker);
    let (status, _, answer) = server
        .post_raw("/hooks/boleto?token=demo-token", body.to_string())
        .await;
    assert_eq!(status, 400);
    assert!(answer.len() < 1024, "answer of {} bytes", answer.len());
    let text = common::logs_text(false);
    // The refused value is not quoted at all any more (it may be personal
    // data); the rejection is logged, in one short line.
    assert!(!text.contains("QQQQQQQQQQ"), "the refused value was logged");
    let logged: usize = text
        .lines()
        .filter(|l| l.contains("status=400") && l.contains("SCHEDULED_MESSAGE"))
        .map(|l| l.len() + 1)
        .sum();
    assert!(logged > 0, "the rejection was not logged: {text}");
    assert!(
        logged < 4096,
        "{logged} bytes of log for one rejected request"
    );
    eprintln!("log bytes for a rejected 250 KB request: {logged}");
}

#[test]
fn an_overlong_log_line_is_cut() {
    use std::io::Write;
    let mut w = recado::telemetry::CappedLines(Vec::new());
    let line = format!("{}\n", "é".repeat(10_000));
    w.write_all(line.as_bytes()).unwrap();
    assert!(w.0.len() <= recado::telemetry::MAX_LOG_LINE);
    let text = String::from_utf8(w.0).expect("cut at a character boundary");
    assert!(text.ends_with("bytes cut]\n"), "{text}");
}

/// A filter's error never repeats the request's value, however long: the
/// date parser's "unparsed input … remains" and a huge amount's digits
/// reached the answer, the log and the journal (93 KB for one request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filters_error_does_not_repeat_the_value() {
    common::captured_logs(false);
    let (server, _dir) = demo().await;
    let tail = "Maria Souza CPF 123.456.789-00 ".repeat(3000);
    let good = json!({"valor": 10, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-1"});
    for (field, value) in [
        (
            "vencimento",
            json!(format!("2026-12-10T09:00:00-03:00{tail}")),
        ),
        ("valor", json!(1e308)),
        ("valor", json!("123456789012345678901234567890")),
    ] {
        let mut data = good.clone();
        data[field] = value;
        let (status, _, answer) = server
            .post_raw("/hooks/boleto?token=demo-token", request(72, data))
            .await;
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(status, 422, "{text}");
        assert!(
            answer.len() < 1024,
            "{field}: an answer of {} bytes",
            answer.len()
        );
        for shown in ["Maria", "123.456", "00000000", "123456789012"] {
            assert!(!text.contains(shown), "{field}: `{shown}` in {text}");
        }
    }
    let logs = common::logs_text(false);
    assert!(
        !logs.contains("Maria") && !logs.contains("00000000"),
        "{logs}"
    );
}

// ---- 2. log forging --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_values_cannot_forge_a_log_line() {
    common::captured_logs(false);
    let (server, _dir) = demo().await;
    let forged = "\nINFO status=200 forged=1\x1b[31m";
    let mut body: Value = serde_json::from_str(&request(72, json!({}))).unwrap();
    body["id"] = json!(424242);
    body["contact"]["name"] = json!(forged);
    body["origin"] = json!(forged);
    let (status, _) = server
        .post("/hooks/boleto?token=demo-token", body.to_string())
        .await;
    assert_eq!(status, 400);
    body["origin"] = json!("SCHEDULED_MESSAGE");
    let path = "/hooks/x%0AINFO%20recado::access:%20forged=2%1B[31m?token=demo-token";
    let (status, _) = server.post(path, body.to_string()).await;
    assert_eq!(status, 404);
    // A filter's error quotes the value; an upstream call's failure is
    // logged with it.
    body["data"] = json!({"v": "1\nINFO status=200 forged=3\x1b[31m"});
    let (status, _) = server
        .post("/hooks/forge?token=demo-token", body.to_string())
        .await;
    assert_eq!(status, 200);
    let text = common::logs_text(false);
    assert!(!text.contains('\x1b'), "an escape sequence reached the log");
    for forged in ["forged=1", "forged=2", "forged=3"] {
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(forged)).collect();
        // Errors no longer quote the refused value (forged=1, in `origin`)
        // nor a filter's input (forged=3), so those may not be logged;
        // whatever is logged stays on its own line.
        if forged != "forged=2" && lines.is_empty() {
            continue;
        }
        assert_eq!(lines.len(), 1, "{forged}: {lines:#?}");
        assert!(
            lines[0].contains("recado::access: request")
                || lines[0].contains("upstream call failed"),
            "{forged} started a line of its own: {}",
            lines[0]
        );
    }
}

// ---- 8. authenticated before parsed -------------------------------------

fn deep_data(bytes: usize) -> String {
    let depth = bytes / 8 + 1;
    format!("{}1{}", "{\"a\":[".repeat(depth), "]}".repeat(depth))
}

fn body_with_data(data: &str) -> String {
    format!(
        r#"{{"id":1,"clientId":72,"origin":"SCHEDULED_MESSAGE","contact":{{"uid":"1","type":"WHATSAPP","key":"5513999999999","name":"Ana Souza"}},"data":{data}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_before_data_is_parsed() {
    let (server, _dir) = demo().await;
    let body = body_with_data(&deep_data(200 * 1024));
    assert!(body.len() > 200 * 1024);
    let (status, answer) = server
        .post("/hooks/boleto?token=wrong-token", body.clone())
        .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    // Authenticated, the same body is refused for its `data`, by name.
    let (status, answer) = server.post("/hooks/boleto?token=demo-token", body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["path"], "data", "{answer}");
    // A wrong field outside `data` is still named, token or not.
    let mut bad: Value = serde_json::from_str(&request(72, json!({}))).unwrap();
    bad["contact"]["name"] = json!(7);
    for token in ["demo-token", "wrong-token"] {
        let (status, answer) = server
            .post(&format!("/hooks/boleto?token={token}"), bad.to_string())
            .await;
        assert_eq!(
            (status, &answer["error"]["path"]),
            (400, &json!("contact.name"))
        );
    }
}

/// CPU per unauthenticated 245 KiB request's parse, before (whole body) and
/// after (envelope only). `cargo test --test hardening -- --ignored --nocapture`
#[test]
#[ignore]
fn measure_unauthenticated_parse_cost() {
    let wide = format!(
        "[{}]",
        vec![r#"{"k":"vvvvvvvvvvvvvvvv","n":[1,2,3]}"#; 7_000].join(",")
    );
    let body = body_with_data(&wide);
    assert!(body.len() > 240 * 1024);
    let n = 200;
    let t = std::time::Instant::now();
    for _ in 0..n {
        recado::request::PlatformRequest::parse(body.as_bytes()).unwrap();
    }
    let whole = t.elapsed() / n;
    let t = std::time::Instant::now();
    for _ in 0..n {
        recado::request::Envelope::parse(body.as_bytes()).unwrap();
    }
    let envelope = t.elapsed() / n;
    eprintln!(
        "{} KiB body: whole parse {whole:?}, envelope only {envelope:?}",
        body.len() / 1024
    );
}

// ---- 3. personal data through error text --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_never_quotes_the_contact() {
    common::captured_logs(false);
    let (server, _dir) = demo().await;
    let mut body: Value = serde_json::from_str(&request(72, json!({"v": "x"}))).unwrap();
    body["contact"]["key"] = json!("5511987654321");
    body["contact"]["name"] = json!("Zuleica Pereira");
    for hook in ["media", "named"] {
        let (status, answer) = server
            .post(&format!("/hooks/{hook}?token=demo-token"), body.to_string())
            .await;
        assert_eq!(status, 422, "{answer}");
        let answer = answer.to_string();
        assert!(!answer.contains("5511987654321"), "{answer}");
        assert!(!answer.contains("Zuleica"), "{answer}");
    }
    let text = common::logs_text(false);
    assert!(
        !text.contains("5511987654321"),
        "a phone number reached the log"
    );
    assert!(!text.contains("Zuleica"), "a name reached the log");
}

// ---- 9. media URLs ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_url_needs_a_valid_host_and_no_user_info() {
    let (server, _dir) = demo().await;
    let mut body: Value = serde_json::from_str(&request(72, json!({}))).unwrap();
    for url in [
        "https://-/a.pdf",
        "https://[zz]/a.pdf",
        "https://x.com:99999/a.pdf",
        "https://x.com\\@y.com/a.pdf",
        "https://u@y.com/a.pdf",
    ] {
        body["data"] =
            json!({"valor": 1, "vencimento": "2026-12-10", "pedido": "A-1", "boleto_url": url});
        let (status, answer) = server
            .post("/hooks/boleto?token=demo-token", body.to_string())
            .await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (422, &json!("invalid_output")),
            "{url}: {answer}"
        );
    }
}

// ---- 5. revocation -----------------------------------------------------------

const REVOKE_TENANT: &str = "client_ids: [91]\ntokens: [revoke-token-1]\n";
const REVOKE_HOOK: &str = "messages:\n  - text: oi\n";

/// Polls the hook with `token` until it answers `want` (a hang guard, not a
/// timing assertion).
async fn until_status(server: &TestServer, token: &str, want: u16) {
    let body = request(91, json!({}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _, _) = server
            .post_raw(&format!("/hooks/hi?token={token}"), body.clone())
            .await;
        if status == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "token {token}: still {status}, expected {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn revocable() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            ("rv/tenant.yaml", REVOKE_TENANT),
            ("rv/hi.yaml", REVOKE_HOOK),
        ],
    );
    let server = TestServer::start_watching(dir.path(), "admin-token-1").await;
    until_status(&server, "revoke-token-1", 200).await;
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_of_taking_credentials_away_revokes_at_once() {
    let cases: [(&str, Option<&str>); 5] = [
        ("tokens: []", Some("client_ids: [91]\ntokens: []\n")),
        (
            "client_ids: []",
            Some("client_ids: []\ntokens: [revoke-token-1]\n"),
        ),
        ("deleted", None),
        ("emptied", Some("")),
        ("too short", Some("client_ids: [91]\ntokens: [short]\n")),
    ];
    for (case, text) in cases {
        let (server, dir) = revocable().await;
        let file = dir.path().join("rv/tenant.yaml");
        match text {
            Some(text) => std::fs::write(&file, text).unwrap(),
            None => std::fs::remove_file(&file).unwrap(),
        }
        eprintln!("case: {case}");
        until_status(&server, "revoke-token-1", 401).await;
        // Fixed, it answers again.
        std::fs::write(&file, REVOKE_TENANT).unwrap();
        until_status(&server, "revoke-token-1", 200).await;
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistake_elsewhere_keeps_serving_with_the_current_tokens() {
    let (server, dir) = revocable().await;
    let file = dir.path().join("rv/tenant.yaml");
    // A typo elsewhere: the last good version keeps serving…
    std::fs::write(
        &file,
        format!("{REVOKE_TENANT}timezon: America/Sao_Paulo\n"),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server.state.config.load().errors.contains_key("rv") {
        assert!(
            std::time::Instant::now() < deadline,
            "the typo was not seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    until_status(&server, "revoke-token-1", 200).await;
    // …but a token replaced in the same broken file is replaced at once.
    std::fs::write(
        &file,
        "client_ids: [91]\ntokens: [revoke-token-2]\ntimezon: America/Sao_Paulo\n",
    )
    .unwrap();
    until_status(&server, "revoke-token-1", 401).await;
    until_status(&server, "revoke-token-2", 200).await;
    server.stop().await;
}

// ---- 7. request data in an upstream's URL ----------------------------------

/// A loopback upstream that records each request's path and query as it
/// arrived.
async fn recording_upstream() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(uri.to_string());
            axum::Json(match uri.path() {
                "/zeros" => json!(vec![0; 10_000]),
                p if p.starts_with("/big") => json!({"ok": true, "pad": "x".repeat(500)}),
                _ => json!({"ok": true}),
            })
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_data_fills_one_path_segment_and_never_moves_the_path() {
    let (up, seen) = recording_upstream().await;
    let call = |url: &str| {
        format!("enrich:\n  c:\n    url: \"{url}\"\n    headers: {{X-Secret: \"{{{{ secrets.erp_token }}}}\"}}\nmessages:\n  - text: \"{{{{ enrich.c.ok }}}}\"\n")
    };
    let seg = call(&format!("http://{up}/items/{{{{ data.v }}}}/end"));
    // Not the fast path: a filter it does not know makes minijinja render.
    let seg_vm = call(&format!("http://{up}/items/{{{{ data.v | string }}}}/end"));
    let query = call(&format!("http://{up}/q?x={{{{ data.v }}}}&y=1"));
    let raw = call(&format!(
        "http://{up}/items/{{{{ data.v | raw_path }}}}/end"
    ));
    let dir = common::integrations_with(&[
        ("demo/seg.yaml", seg.as_str()),
        ("demo/segvm.yaml", seg_vm.as_str()),
        ("demo/query.yaml", query.as_str()),
        ("demo/raw.yaml", raw.as_str()),
    ]);
    let server = TestServer::start(dir.path()).await;
    let post = |hook: &'static str, v: &'static str| {
        let server = &server;
        async move {
            server
                .post(
                    &format!("/hooks/{hook}?token=demo-token"),
                    request(72, json!({"v": v})),
                )
                .await
        }
    };
    let last = || seen.lock().unwrap().last().cloned().unwrap_or_default();
    for hook in ["seg", "segvm"] {
        for (v, want) in [
            ("../../admin", "/items/..%2F..%2Fadmin/end"),
            ("%2e%2e/x", "/items/%252e%252e%2Fx/end"),
            ("a?b=c", "/items/a%3Fb=c/end"),
            ("a#b", "/items/a%23b/end"),
            ("a/b", "/items/a%2Fb/end"),
            ("a\\b", "/items/a%5Cb/end"),
        ] {
            let (status, body) = post(hook, v).await;
            assert_eq!(status, 200, "{hook} {v}: {body}");
            assert_eq!(last(), want, "{hook} {v}");
        }
        for v in ["..", "."] {
            let before = seen.lock().unwrap().len();
            let (status, body) = post(hook, v).await;
            assert_eq!(
                (status, &body["error"]["code"]),
                (422, &json!("render_failed")),
                "{hook} {v}: {body}"
            );
            assert_eq!(seen.lock().unwrap().len(), before, "{v} was sent");
        }
    }
    let (status, body) = post("query", "1&admin=1#x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last(), "/q?x=1%26admin%3D1%23x&y=1");
    // The operator's explicit opt-out: the value is a path.
    let (status, body) = post("raw", "a/b").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last(), "/items/a/b/end");
}

// ---- 9. config errors and sizes ---------------------------------------------

#[test]
fn a_config_error_never_quotes_a_token_or_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            (
                "t1/tenant.yaml",
                "client_ids: [1]\ntokens: [\"${tok-123456789012}\"]\n",
            ),
            (
                "t2/tenant.yaml",
                "client_ids: [2]\ntokens: [tok-abcdefgh]\nsecrets: {erp: \"${s3cr3t-value-x}\"}\n",
            ),
            ("t3/tenant.yaml", "\"root:tok-zyxwvuts:0:0\"\n"),
        ],
    );
    let errors: Vec<String> = recado::config::load_dir(dir.path())
        .all_errors()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors.len(), 3 + 2, "{errors:#?}");
    for secret in ["123456789012", "s3cr3t-value-x", "tok-zyxwvuts"] {
        assert!(
            !errors.iter().any(|e| e.contains(secret)),
            "{secret}: {errors:#?}"
        );
    }
}

#[test]
fn an_integration_file_lists_at_most_500_messages() {
    let dir = common::integrations_with(&[
        (
            "demo/many.yaml",
            &format!("messages:\n{}", "  - text: oi\n".repeat(501)),
        ),
        (
            "demo/enough.yaml",
            &format!("messages:\n{}", "  - text: oi\n".repeat(500)),
        ),
    ]);
    let snapshot = recado::config::load_dir(dir.path());
    let errors: Vec<String> = snapshot.all_errors().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("demo/many.yaml:"), "{errors:#?}");
    assert!(errors[0].contains("more than 500 messages"), "{errors:#?}");
    assert!(snapshot.tenants["demo"].integrations.contains_key("enough"));
}

// ---- 4. the answer cache ---------------------------------------------------

fn cached_call(up: std::net::SocketAddr, path: &str, extra: &str) -> String {
    format!("enrich:\n  c:\n    url: \"http://{up}{path}\"\n    cache: 1m\n{extra}messages:\n  - text: \"{{{{ enrich.c | length }}}}\"\n")
}

fn hits(seen: &Mutex<Vec<String>>, prefix: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with(prefix))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_answer_weighs_what_it_holds_in_memory() {
    let (up, _seen) = recording_upstream().await;
    let dir = common::integrations_with(&[("demo/zeros.yaml", &cached_call(up, "/zeros", ""))]);
    let server = TestServer::start(dir.path()).await;
    let (status, body) = server
        .post("/hooks/zeros?token=demo-token", request(72, json!({})))
        .await;
    assert_eq!(status, 200, "{body}");
    let (entries, bytes) = server.state.upstream.cache_stats().await;
    assert_eq!(entries, 1);
    let parsed = 10_000 * std::mem::size_of::<minijinja::Value>() as u64;
    assert!(
        bytes >= parsed,
        "weighs {bytes} bytes; its items alone take {parsed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_flooding_the_cache_does_not_evict_another() {
    let (up, seen) = recording_upstream().await;
    let flood = cached_call(up, "/big/{{ data.n }}", "");
    let quiet = cached_call(up, "/bigquiet", "");
    let dir = tempfile::tempdir().unwrap();
    common::write_files(
        dir.path(),
        &[
            (
                "a/tenant.yaml",
                "client_ids: [81]\ntokens: [flood-token-1]\n",
            ),
            ("a/f.yaml", flood.as_str()),
            (
                "b/tenant.yaml",
                "client_ids: [82]\ntokens: [quiet-token-1]\n",
            ),
            ("b/q.yaml", quiet.as_str()),
        ],
    );
    // Room for about 60 answers of ~1 KiB in all.
    let server = TestServer::start_with(dir.path(), |s| s.cache_bytes = 64 * 1024).await;
    let quiet_call = || server.post("/hooks/q?token=quiet-token-1", request(82, json!({})));
    assert_eq!(quiet_call().await.0, 200);
    assert_eq!(quiet_call().await.0, 200);
    assert_eq!(hits(&seen, "/bigquiet"), 1);
    for round in 0..2 {
        for n in 0..300 {
            let (status, body) = server
                .post("/hooks/f?token=flood-token-1", request(81, json!({"n": n})))
                .await;
            assert_eq!(status, 200, "{round}/{n}: {body}");
        }
    }
    server.state.upstream.cache_stats().await;
    assert_eq!(quiet_call().await.0, 200);
    assert_eq!(hits(&seen, "/bigquiet"), 1, "tenant b's entry was evicted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_with_other_cache_settings_do_not_share_entries() {
    let (up, seen) = recording_upstream().await;
    let dir = common::integrations_with(&[
        ("demo/long.yaml", &cached_call(up, "/bigshared", "")),
        (
            "demo/small.yaml",
            &cached_call(up, "/bigshared", "    max_bytes: 100\n"),
        ),
        (
            "demo/other.yaml",
            &cached_call(up, "/bigshared", "").replace("cache: 1m", "cache: 2m"),
        ),
    ]);
    let server = TestServer::start(dir.path()).await;
    let post = |hook: &'static str| {
        let server = &server;
        async move {
            server
                .post_raw(
                    &format!("/hooks/{hook}?token=demo-token"),
                    request(72, json!({})),
                )
                .await
        }
    };
    assert_eq!(post("long").await.0, 200);
    assert_eq!(hits(&seen, "/bigshared"), 1);
    // Its answer is larger than its `max_bytes`: an entry cached by a call
    // that allowed more must not be served to it.
    assert_eq!(post("small").await.0, 502);
    assert_eq!(post("other").await.0, 200);
    assert_eq!(hits(&seen, "/bigshared"), 3);
}

// ---- 6. a reload that could not read is retried ---------------------------

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_could_not_read_is_retried_until_it_can() {
    // `tenant.yaml` is a symlink to a file outside the watched folder (as a
    // mounted secret would be), so fixing its target makes no event: only
    // a retry can pick the fix up.
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("tenant.yaml");
    std::fs::write(&target, REVOKE_TENANT).unwrap();
    common::write_files(dir.path(), &[("rv/hi.yaml", REVOKE_HOOK)]);
    std::os::unix::fs::symlink(&target, dir.path().join("rv/tenant.yaml")).unwrap();
    let server = TestServer::start_watching(dir.path(), "admin-token-1").await;
    until_status(&server, "revoke-token-1", 200).await;

    // The target becomes unreadable (a folder: EISDIR, a real read error),
    // and an edit in the tenant's folder makes recado read it.
    std::fs::remove_file(&target).unwrap();
    std::fs::create_dir(&target).unwrap();
    std::fs::write(dir.path().join("rv/hi.yaml"), REVOKE_HOOK).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let status = server.status("admin-token-1").await;
        let retrying = status["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["retrying"] == true && e["file"] == "rv/tenant.yaml");
        if retrying {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The last good version keeps serving meanwhile.
    until_status(&server, "revoke-token-1", 200).await;

    // Readable again, with the token replaced: no event, a retry finds it.
    std::fs::remove_dir(&target).unwrap();
    std::fs::write(
        &target,
        REVOKE_TENANT.replace("revoke-token-1", "revoke-token-2"),
    )
    .unwrap();
    until_status(&server, "revoke-token-1", 401).await;
    until_status(&server, "revoke-token-2", 200).await;
    assert!(!server.state.config.load().errors.contains_key("rv"));
    server.stop().await;
}
