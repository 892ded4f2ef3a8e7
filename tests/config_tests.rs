//! The operators' safety net: `tests:` in integration files, `recado test`,
//! failing tests keeping a file out on reload, errors that name the missing
//! field, and half-written files never being served.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::TestServer;
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-tests";
const TOKEN: &str = "?token=demo-token";

fn recado(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_recado"))
        .args(args)
        .current_dir(common::repo())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or("")
}

#[test]
fn recado_test_passes_on_the_shipped_examples() {
    let shipped = common::shipped_demo();
    for dir in ["tests/data/integrations", shipped.path().to_str().unwrap()] {
        let (code, out, err) = recado(&["test", "--dir", dir]);
        assert_eq!(code, 0, "{dir}: {out}{err}");
        assert_eq!(last_line(&out), "10 passed, 0 failed", "{dir}: {out}");
    }
    // Every shipped example has tests, a success and an error case each.
    for file in ["boleto", "chamado", "cobranca", "plano"] {
        let text = String::from_utf8(common::read(
            common::repo().join(format!("integrations/demo/{file}.yaml")),
        ))
        .unwrap();
        assert!(text.contains("\n    expect:"), "{file}");
        assert!(text.contains("\n    expect_error:"), "{file}");
    }
    let (code, out, _) = recado(&["test", "--dir", "tests/data/integrations", "demo/plano"]);
    assert_eq!((code, last_line(&out)), (0, "3 passed, 0 failed"));
    // A typo is an error that names the likely integration, never "0 passed".
    let (code, _, err) = recado(&["test", "--dir", "tests/data/integrations", "demo/bolto"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("has no integration `bolto`; did you mean `boleto`? (it has: boleto, chamado, cobranca, plano)"),
        "{err}"
    );
}

/// A copy of the fixtures where boleto's first test expects a name without
/// its accent and its second message expects another amount.
fn broken_expectation() -> tempfile::TempDir {
    let dir = common::integrations_with(&[]);
    let file = dir.path().join("demo/boleto.yaml");
    let text = String::from_utf8(common::read(&file)).unwrap();
    let text = text
        .replace(r#"- text: "Olá, João!""#, r#"- text: "Olá, Joao!""#)
        .replace("R$ 1.234,50 vence", "R$ 1.234,05 vence");
    std::fs::write(&file, text).unwrap();
    dir
}

fn line_of(file: &Path, needle: &str) -> usize {
    let text = String::from_utf8(common::read(file)).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn recado_test_prints_a_readable_diff_at_the_tests_line() {
    let dir = broken_expectation();
    let root = dir.path().to_str().unwrap();
    let line = line_of(&dir.path().join("demo/boleto.yaml"), "name: boleto em dia");
    let (code, out, err) = recado(&["test", "--dir", root]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "{root}/demo/boleto.yaml:{line}:5: test \"boleto em dia\" failed\n"
        )),
        "{out}"
    );
    assert!(
        out.contains(r#"messages[0].text: expected "Olá, Joao!" got "Olá, João!""#),
        "{out}"
    );
    // A long text also says where it differs.
    assert!(
        out.contains(r#"(from character 50: expected "… R$ 1.234,05 vence em …" got "… R$ 1.234,50 vence em …")"#),
        "{out}"
    );
    assert_eq!(last_line(&out), "9 passed, 1 failed", "{out}");

    // `recado check` runs the tests too: a failure is an error at its line.
    let (code, out, _) = recado(&["check", root]);
    assert_ne!(code, 0);
    assert!(
        out.contains(&format!(
            "{root}/demo/boleto.yaml:{line}:5: test \"boleto em dia\" failed: messages[0].text"
        )),
        "{out}"
    );
}

#[test]
fn a_call_without_an_answer_in_the_test_is_a_failure_naming_it() {
    let dir = common::integrations_with(&[]);
    let file = dir.path().join("demo/plano.yaml");
    let text = String::from_utf8(common::read(&file))
        .unwrap()
        .replace(
            "    enrich:                    # what the ERP would answer: tests never call it\n      cliente: {plano: Ouro, vencimento: \"2026-12-10\", valor: 99.9, pontos: 120}\n",
            "",
        );
    std::fs::write(&file, text).unwrap();
    let (code, out, _) = recado(&["test", "--dir", dir.path().to_str().unwrap(), "demo"]);
    assert_ne!(code, 0);
    assert!(
        out.contains("the call `cliente` has no answer in this test"),
        "{out}"
    );
    assert_eq!(last_line(&out), "9 passed, 1 failed");
}

/// An `expect_error` that quotes the place a failure names still holds
/// when the place is written another way: the template's line (as before
/// failures named the file's), or a line an edit above has moved.
#[test]
fn an_expected_error_holds_whatever_line_it_names() {
    let dir = common::integrations_with(&[]);
    let file = dir.path().join("demo/boleto.yaml");
    let text = String::from_utf8(common::read(&file)).unwrap();
    for place in [
        "line 1 of the template",
        "line 3, column 1",
        "line 8, column 31",
    ] {
        let with = text.replace(
            "expect_error: data.pedido is missing ",
            &format!("expect_error: \"data.pedido is missing from the request (messages[1].text, {place})\" "),
        );
        assert_ne!(with, text);
        std::fs::write(&file, with).unwrap();
        let (code, out, _) =
            recado(&["test", "--dir", dir.path().to_str().unwrap(), "demo/boleto"]);
        assert_eq!(
            (code, last_line(&out)),
            (0, "2 passed, 0 failed"),
            "{place}: {out}"
        );
    }
    // A different place in the file is not written off: another field fails.
    std::fs::write(
        &file,
        text.replace(
            "expect_error: data.pedido is missing ",
            "expect_error: \"data.pedido is missing from the request (messages[0].text, line 8, column 31)\" ",
        ),
    )
    .unwrap();
    let (code, _, _) = recado(&["test", "--dir", dir.path().to_str().unwrap(), "demo/boleto"]);
    assert_ne!(code, 0);
}

#[test]
fn save_test_appends_a_passing_test_and_keeps_the_comments() {
    let dir = common::integrations_with(&[]);
    let root = dir.path().to_str().unwrap();
    let request = dir.path().join("req.json");
    std::fs::write(
        &request,
        common::request(
            72,
            json!({"valor": "99.9", "vencimento": "2027-01-05", "boleto_url": "https://example.com/x.pdf", "pedido": "Z-9"}),
        ),
    )
    .unwrap();
    let file = dir.path().join("demo/boleto.yaml");
    let before = String::from_utf8(common::read(&file)).unwrap();
    // `recado render … --save-test NAME [flags]`; its stderr.
    let save = |name: &str, flags: &[&str]| {
        let mut args = vec!["render", "demo/boleto", request.to_str().unwrap()];
        args.extend(["--dir", root, "--save-test", name]);
        args.extend(flags);
        let (code, out, err) = recado(&args);
        assert_eq!(code, 0, "{out}{err}");
        err
    };
    let err = save("salvo", &[]);
    assert!(err.contains("test \"salvo\" added"), "{err}");
    let after = String::from_utf8(common::read(&file)).unwrap();
    assert!(after.starts_with(&before), "only appended:\n{after}");
    assert!(after.contains("Z-9"));
    // The contact is made up, as in a test made from the journal: the file
    // may be committed. Its expected greeting is the made-up one's.
    let added = &after[before.len()..];
    for personal in ["Ana", "Souza", "5513999999999", "13999999999"] {
        assert!(!added.contains(personal), "`{personal}` in {added}");
    }
    assert!(added.contains("Olá, Maria!"), "{added}");
    let (code, out, _) = recado(&["test", "--dir", root, "demo/boleto"]);
    assert_eq!((code, last_line(&out)), (0, "3 passed, 0 failed"), "{out}");

    // `--keep-contact` keeps it as given.
    save("como veio", &["--keep-contact"]);
    let last = String::from_utf8(common::read(&file)).unwrap();
    assert!(last[after.len()..].contains("Ana Souza"), "{last}");
    let (code, out, _) = recado(&["test", "--dir", root, "demo/boleto"]);
    assert_eq!((code, last_line(&out)), (0, "4 passed, 0 failed"), "{out}");
}

#[tokio::test]
async fn a_missing_field_is_named_by_its_path_in_the_422() {
    let server = TestServer::start(&common::fixtures()).await;
    let body = common::request(
        72,
        json!({"valor": 10, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf"}),
    );
    let (status, answer) = server.post(&format!("/hooks/boleto{TOKEN}"), body).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "render_failed");
    assert_eq!(answer["error"]["path"], "messages[1].text");
    assert_eq!(
        answer["error"]["message"],
        "data.pedido is missing from the request (messages[1].text, line 8, column 31)"
    );

    // A filter fed the wrong type says so by type, never echoing the value.
    let body = common::request(
        72,
        json!({"valor": "dez reais secretos", "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-1"}),
    );
    let (status, answer) = server.post(&format!("/hooks/boleto{TOKEN}"), body).await;
    assert_eq!(status, 422);
    let message = answer["error"]["message"].as_str().unwrap();
    // Which expression failed, in the template's own words.
    assert!(
        message.starts_with("`data.valor | brl`: brl: expected a number, got text"),
        "{message}"
    );
    assert!(!message.contains("secretos"), "{message}");
    // At the file's line and column of that expression (inside a folded
    // block here), not the template's line.
    assert!(
        message.ends_with("(messages[1].text, line 8, column 61)"),
        "{message}"
    );

    // In a quoted text, the column counts the quote.
    let mut body: serde_json::Value = serde_json::from_str(&good_boleto()).unwrap();
    body["contact"]["name"] = json!("da Silva");
    let (status, answer) = server
        .post(&format!("/hooks/boleto{TOKEN}"), body.to_string())
        .await;
    assert_eq!(status, 422, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("(messages[0].text, line 6, column 20)"),
        "{message}"
    );
    server.stop().await;
}

fn good_boleto() -> String {
    common::request(
        72,
        json!({"valor": 1234.5, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-1"}),
    )
}

/// Posts good requests to boleto until `stop`, counting answers by their
/// first message's text; any non-200 is counted as a failure.
fn stream(
    server: &TestServer,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>, Vec<String>)> {
    let client = server.client.clone();
    let url = server.url(&format!("/hooks/boleto{TOKEN}"));
    tokio::spawn(async move {
        let (mut ok, mut firsts, mut failures) = (0, Vec::new(), Vec::new());
        while !stop.load(Ordering::Relaxed) {
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body(good_boleto())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            if status == 200 {
                ok += 1;
                let shape = format!(
                    "{}:{}",
                    body.as_array().unwrap().len(),
                    body[0]["value"].as_str().unwrap_or("")
                );
                if !firsts.contains(&shape) {
                    firsts.push(shape);
                }
            } else {
                failures.push(format!("{status} {body}"));
            }
        }
        (ok, firsts, failures)
    })
}

async fn eventually(mut check: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_whose_tests_fail_is_not_served_and_status_names_the_test() {
    let dir = common::integrations_with(&[]);
    let server = TestServer::start_watching(dir.path(), ADMIN).await;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = stream(&server, stop.clone());

    // The greeting changes, the test still expects the old one.
    let file = dir.path().join("demo/boleto.yaml");
    let text = String::from_utf8(common::read(&file)).unwrap();
    let line = line_of(&file, "name: boleto em dia");
    std::fs::write(
        &file,
        text.replace(
            r#"- text: "Olá, {{ contact.name | first_name }}!""#,
            r#"- text: "Oi, {{ contact.name | first_name }}!""#,
        ),
    )
    .unwrap();
    let expected = format!(
        "demo/boleto.yaml:{line}:5: test \"boleto em dia\" failed: messages[0].text: expected \"Olá, João!\" got \"Oi, João!\""
    );
    eventually(
        async || server.status_errors(ADMIN).await.contains(&expected),
        "the failing test in /admin/status",
    )
    .await;
    // Still the old version, some requests after the reload.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, shapes, failures) = traffic.await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 0);
    assert_eq!(shapes, ["4:Olá, Ana!"], "only the old version answered");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_writer_never_yields_a_half_answer() {
    let dir = common::integrations_with(&[]);
    let file = dir.path().join("demo/slow.yaml");
    std::fs::write(&file, "messages:\n  - text: v1\n").unwrap();
    let server = TestServer::start(dir.path()).await;
    // A settle time well above the writer's pause: the pause is longer than
    // the debounce (what used to let the half file in), and scheduling
    // delays only make the file look older, never younger.
    let reloader =
        recado::config::watch::Reloader::new(dir.path().to_owned(), server.state.config.clone())
            .with_settle(Duration::from_secs(2));
    let _watcher = recado::config::watch::watch(reloader).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let traffic = {
        let (client, url) = (
            server.client.clone(),
            server.url(&format!("/hooks/slow{TOKEN}")),
        );
        let (stop, seen, failures) = (stop.clone(), seen.clone(), failures.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(common::request(72, json!({})))
                    .send()
                    .await
                    .unwrap();
                if resp.status() != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let body: Value = resp.json().await.unwrap();
                let n = body.as_array().unwrap().len();
                let mut seen = seen.lock().unwrap();
                if seen.last() != Some(&n) {
                    seen.push(n);
                }
            }
        })
    };

    // Half the file (three complete messages: valid YAML), a pause longer
    // than the debounce, then the rest.
    let messages: String = (1..=6)
        .map(|i| format!("  - text: v2 parte {i}\n"))
        .collect();
    let (first, rest) = messages.split_at(messages.find("  - text: v2 parte 4").unwrap());
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(format!("messages:\n{first}").as_bytes())
            .unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        f.write_all(rest.as_bytes()).unwrap();
    }
    eventually(
        async || seen.lock().unwrap().last() == Some(&6),
        "the complete file to be served",
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(*seen.lock().unwrap(), [1, 6], "answers went 1 → 6 messages");
    server.stop().await;
}

#[test]
fn the_schema_describes_tests() {
    let (code, out, _) = recado(&["schema"]);
    assert_eq!(code, 0);
    let schema: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        schema["properties"]["tests"]["items"]["$ref"],
        "#/$defs/Test"
    );
    let test = &schema["$defs"]["Test"];
    for key in ["name", "request", "enrich", "expect", "expect_error"] {
        assert!(test["properties"].get(key).is_some(), "{key}: {test}");
    }
    assert!(schema["$defs"]["ExpectedMessage"]["oneOf"].is_array());
}

#[test]
fn a_test_expecting_both_or_neither_is_refused_at_its_line() {
    let dir = common::integrations_with(&[(
        "demo/t.yaml",
        "messages:\n  - text: oi\ntests:\n  - name: a\n    expect: [{text: oi}]\n  - name: b\n",
    )]);
    let (code, out, _) = recado(&["check", dir.path().to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        out.contains("demo/t.yaml:6:5: tests[1]: test \"b\" expects nothing"),
        "{out}"
    );
}
