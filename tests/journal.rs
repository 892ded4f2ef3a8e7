//! The request journal (`docs/journal.md`): entries listed and filtered,
//! personal data masked in every view, the admin token required, replay
//! after an edit, an entry turned into a config test, and the shadow check
//! of an edit before it serves.

mod common;

use std::path::Path;

use axum::routing::get;
use axum::{Json, Router};
use common::{integrations_with, read, request, workload, write_files, TestServer};
use recado::config::watch::Reloader;
use recado::config::Scope;
use recado::state::AdminToken;
use serde_json::{json, Value};

const ADMIN: &str = "journal-admin-token";
const PHONE: &str = "5513999999999";
/// Every form of the workload's contact that must never show.
const PERSONAL: &[&str] = &["5513999999999", "13999999999", "João", "JOÃO", "Silva"];

async fn start(dir: &Path) -> TestServer {
    start_with(dir, |_| {}).await
}

/// With the admin token, and the settings adjusted by `configure`.
async fn start_with(
    dir: &Path,
    configure: impl FnOnce(&mut recado::state::Settings),
) -> TestServer {
    TestServer::start_with(dir, |s| {
        s.admin_token = Some(AdminToken::new(ADMIN));
        configure(s);
    })
    .await
}

/// Posts [`boleto_request`] to the demo tenant's boleto; the status.
async fn post_boleto(server: &TestServer, id: u64, data: Value) -> u16 {
    server
        .post("/hooks/boleto?token=demo-token", boleto_request(id, data))
        .await
        .0
}

async fn admin(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut req = server
        .client
        .request(method.parse().unwrap(), server.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn admin_json(server: &TestServer, method: &str, path: &str) -> Value {
    let (status, text) = admin(server, method, path, Some(ADMIN)).await;
    assert_eq!(status, 200, "{path}: {text}");
    assert_no_personal_data(&text);
    serde_json::from_str(&text).unwrap()
}

fn assert_no_personal_data(text: &str) {
    for p in PERSONAL {
        assert!(!text.contains(p), "`{p}` shows in {text}");
    }
}

/// The workload's request (contact João da Silva, 5513999999999) with `id`
/// and `data` changed.
fn boleto_request(id: u64, data: Value) -> String {
    let mut v: Value = serde_json::from_slice(&read(workload("request.json"))).unwrap();
    v["id"] = json!(id);
    v["data"] = data;
    v.to_string()
}

fn boleto_data() -> Value {
    json!({"valor": 1234.5, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-1001"})
}

#[tokio::test]
async fn entries_are_listed_filtered_masked_and_need_the_admin_token() {
    let dir = integrations_with(&[]);
    let server = start(dir.path()).await;
    let hook = "/hooks/boleto?token=demo-token";
    let (status, _) = server.post(hook, boleto_request(101, boleto_data())).await;
    assert_eq!(status, 200);
    let mut missing = boleto_data();
    missing.as_object_mut().unwrap().remove("pedido");
    let (status, _) = server.post(hook, boleto_request(102, missing)).await;
    assert_eq!(status, 422);
    // Outsiders' requests are not journaled.
    let (status, _) = server
        .post(
            "/hooks/boleto?token=wrong",
            boleto_request(103, boleto_data()),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post(
            "/hooks/nope?token=demo-token",
            boleto_request(104, boleto_data()),
        )
        .await;
    assert_eq!(status, 404);

    for path in [
        "/admin/requests",
        "/admin/requests/1",
        "/admin/requests/1/test",
    ] {
        assert_eq!(admin(&server, "GET", path, None).await.0, 401, "{path}");
        assert_eq!(
            admin(&server, "GET", path, Some("wrong-token")).await.0,
            401,
            "{path}"
        );
    }
    assert_eq!(
        admin(&server, "POST", "/admin/requests/1/replay", None)
            .await
            .0,
        401
    );

    let all = admin_json(&server, "GET", "/admin/requests").await;
    let entries = all["entries"].as_array().unwrap();
    let ids: Vec<_> = entries
        .iter()
        .map(|e| e["request_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [102, 101], "newest first, outsiders left out: {all}");
    assert_eq!(entries[1]["status"], 200);
    assert_eq!(entries[1]["tenant"], "demo");
    assert_eq!(entries[1]["integration"], "boleto");
    assert_eq!(entries[1]["messages"], 4);
    assert_eq!(entries[1]["answer"][0]["value"], "Olá, J***!");
    assert_eq!(entries[0]["status"], 422);
    assert_eq!(entries[0]["error"]["code"], "render_failed");

    let by_id = admin_json(&server, "GET", "/admin/requests?id=101").await;
    assert_eq!(by_id["entries"].as_array().unwrap().len(), 1);
    assert_eq!(by_id["entries"][0]["request_id"], 101);
    let by_status = admin_json(&server, "GET", "/admin/requests?status=422").await;
    assert_eq!(by_status["entries"][0]["request_id"], 102);
    assert_eq!(by_status["entries"].as_array().unwrap().len(), 1);
    let by_integration = admin_json(&server, "GET", "/admin/requests?integration=plano").await;
    assert!(by_integration["entries"].as_array().unwrap().is_empty());
    let by_both = admin_json(
        &server,
        "GET",
        "/admin/requests?tenant=demo&integration=boleto",
    )
    .await;
    assert_eq!(by_both["entries"].as_array().unwrap().len(), 2);
    let future = admin_json(&server, "GET", "/admin/requests?since=2999-01-01T00:00:00Z").await;
    assert!(future["entries"].as_array().unwrap().is_empty());
    let (status, text) = admin(
        &server,
        "GET",
        "/admin/requests?since=yesterday",
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("RFC 3339"), "{text}");
    // A misspelt filter is refused, not ignored (the list would look
    // filtered); so is a limit out of range, rather than clamped.
    for (path, says) in [
        ("/admin/requests?stauts=422", "did you mean `status`?"),
        ("/admin/requests?limit=0", "from 1 to 500"),
        ("/admin/requests?limit=501", "from 1 to 500"),
        ("/admin/requests?messages=none", "messages=0"),
    ] {
        let (status, text) = admin(&server, "GET", path, Some(ADMIN)).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(
            text.contains("invalid_query") && text.contains(says),
            "{path}: {text}"
        );
    }
    let (status, text) = admin(
        &server,
        "POST",
        "/admin/requests/1/replay?liv=true",
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("did you mean `live`?"), "{text}");
    // `messages=0`: the 200s that sent nothing. Both entries sent some or failed.
    let nothing = admin_json(&server, "GET", "/admin/requests?messages=0").await;
    assert!(
        nothing["entries"].as_array().unwrap().is_empty(),
        "{nothing}"
    );
    let four = admin_json(&server, "GET", "/admin/requests?messages=4").await;
    assert_eq!(four["entries"][0]["request_id"], 101, "{four}");

    // Pagination: one at a time, by cursor.
    let page = admin_json(&server, "GET", "/admin/requests?limit=1").await;
    assert_eq!(page["entries"][0]["request_id"], 102);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let next = admin_json(
        &server,
        "GET",
        &format!("/admin/requests?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(next["entries"][0]["request_id"], 101);
    assert!(next["next_cursor"].is_null());

    let entry = entries[1]["entry"].as_str().unwrap();
    let detail = admin_json(&server, "GET", &format!("/admin/requests/{entry}")).await;
    assert_eq!(
        detail["request"]["data"]["pedido"], "A-1001",
        "data as sent, to the admin"
    );
    assert_eq!(detail["request"]["contact"]["key"], "*********9999");
    assert_eq!(detail["request"]["contact"]["name"], "J*** d* S****");
    assert_eq!(detail["version"].as_str().unwrap().len(), 16);
    assert_eq!(
        admin(&server, "GET", "/admin/requests/999999", Some(ADMIN))
            .await
            .0,
        404
    );
    server.stop().await;
}

#[tokio::test]
async fn personal_data_shows_only_when_asked() {
    let dir = integrations_with(&[]);
    let server = start_with(dir.path(), |s| s.log_personal_data = true).await;
    assert_eq!(post_boleto(&server, 7, boleto_data()).await, 200);
    let (_, text) = admin(&server, "GET", "/admin/requests", Some(ADMIN)).await;
    assert!(text.contains("Olá, João!"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn journal_off_records_nothing() {
    let dir = integrations_with(&[]);
    let server = start_with(dir.path(), |s| s.journal = None).await;
    assert_eq!(post_boleto(&server, 7, boleto_data()).await, 200);
    assert!(server.state.journal.is_none());
    let (status, _) = admin(&server, "GET", "/admin/requests", Some(ADMIN)).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn replay_after_an_edit_shows_the_diff() {
    let dir = integrations_with(&[]);
    let server = start(dir.path()).await;
    assert_eq!(post_boleto(&server, 5, boleto_data()).await, 200);
    let list = admin_json(&server, "GET", "/admin/requests").await;
    let entry = list["entries"][0]["entry"].as_str().unwrap().to_owned();

    let same = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(same["changed"], false, "{same}");
    assert!(same["diff"].as_array().unwrap().is_empty());

    let file = dir.path().join("demo/boleto.yaml");
    // Without the file's own `tests:`, which would refuse the breaking edit
    // below before the replay could show it.
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text[..text.find("\ntests:").unwrap_or(text.len()) + 1].to_owned();
    std::fs::write(
        &file,
        text.replace(
            "Olá, {{ contact.name | first_name }}!",
            "Oi, {{ contact.name | first_name }}, tudo bem?",
        ),
    )
    .unwrap();
    Reloader::new(dir.path().to_owned(), server.state.config.clone()).reload(&Scope::All);

    let replay = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(replay["changed"], true, "{replay}");
    assert_ne!(replay["version_then"], replay["version_now"]);
    assert_eq!(
        replay["diff"],
        json!([{"message": 0, "field": "value", "before": "Olá, J***!", "after": "Oi, J***, tudo bem?"}])
    );
    assert_eq!(replay["now"]["answer"][0]["value"], "Oi, J***, tudo bem?");

    // An edit that breaks the request: the diff is the error.
    std::fs::write(
        &file,
        text.replace("{{ data.pedido }}", "{{ data.pedido | brl }}"),
    )
    .unwrap();
    Reloader::new(dir.path().to_owned(), server.state.config.clone()).reload(&Scope::All);
    let broken = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(broken["now"]["status"], 422, "{broken}");
    assert_eq!(broken["now"]["error"]["code"], "render_failed");
    assert_eq!(broken["diff"][0]["field"], "error");
    server.stop().await;
}

/// A failed request replays as the same failure, named at the file's line
/// as the webhook named it; an edit that only moves the failing template
/// down a line is not a change.
#[tokio::test]
async fn a_failure_replays_unchanged_when_only_its_line_moved() {
    let dir = integrations_with(&[]);
    let server = start(dir.path()).await;
    let mut data = boleto_data();
    data.as_object_mut().unwrap().remove("pedido");
    assert_eq!(post_boleto(&server, 7, data).await, 422);
    let list = admin_json(&server, "GET", "/admin/requests").await;
    let entry = list["entries"][0]["entry"].as_str().unwrap().to_owned();
    let at = "(messages[1].text, line 8, column 31)";
    assert!(
        list["entries"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with(at),
        "{list}"
    );

    let same = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(same["changed"], false, "{same}");
    assert!(
        same["now"]["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with(at),
        "{same}"
    );

    let file = dir.path().join("demo/boleto.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("# moved down a line\n{text}")).unwrap();
    Reloader::new(dir.path().to_owned(), server.state.config.clone()).reload(&Scope::All);
    let moved = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_ne!(moved["version_then"], moved["version_now"], "{moved}");
    assert_eq!(moved["changed"], false, "{moved}");
    assert!(
        moved["now"]["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("(messages[1].text, line 9, column 31)"),
        "{moved}"
    );
    server.stop().await;
}

/// A stand-in ERP on loopback: `/clientes/{key}` answers the contact's plan.
async fn erp() -> std::net::SocketAddr {
    let app = Router::new().route(
        "/clientes/{key}",
        get(|| async { Json(json!({"plano": "Ouro", "vencimento": "2026-12-10", "valor": 99.9, "pontos": 120, "titular": "João da Silva"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn plano(port: u16) -> String {
    let text = String::from_utf8(read(common::fixtures().join("demo/plano.yaml"))).unwrap();
    text.replace("127.0.0.1:8081", &format!("127.0.0.1:{port}"))
}

#[tokio::test]
async fn upstream_calls_are_recorded_and_an_entry_becomes_a_test() {
    let erp = erp().await;
    let dir = integrations_with(&[("demo/plano.yaml", &plano(erp.port()))]);
    let server = start(dir.path()).await;
    let (status, answer) = server
        .post(
            "/hooks/plano?token=demo-token",
            boleto_request(9, json!({})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let list = admin_json(&server, "GET", "/admin/requests").await;
    let e = &list["entries"][0];
    assert_eq!(e["calls"][0]["name"], "cliente");
    assert_eq!(e["calls"][0]["outcome"], "ok");
    assert_eq!(e["calls"][0]["cached"], false);
    let entry = e["entry"].as_str().unwrap().to_owned();
    let detail = admin_json(&server, "GET", &format!("/admin/requests/{entry}")).await;
    assert_eq!(detail["calls"][0]["answer"]["plano"], "Ouro");
    assert_eq!(
        detail["calls"][0]["answer"]["titular"], "J*** d* S****",
        "masked in upstream answers too"
    );

    // The recorded answer replays with no network: the ERP is not asked.
    let replay = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(replay["changed"], false, "{replay}");
    let live = admin_json(
        &server,
        "POST",
        &format!("/admin/requests/{entry}/replay?live=true"),
    )
    .await;
    assert_eq!(live["changed"], false, "{live}");

    let (status, yaml) = admin(
        &server,
        "GET",
        &format!("/admin/requests/{entry}/test"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{yaml}");
    assert_no_personal_data(&yaml);
    // The `tests:` shape of the configtests branch; `recado test` runs it
    // once both branches are merged.
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let tests = doc["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1);
    let t = &tests[0];
    assert!(t["name"].as_str().unwrap().contains("request 9"), "{yaml}");
    let contact = &t["request"]["contact"];
    assert_eq!(contact["name"], "Maria da Souza", "{yaml}");
    assert_eq!(contact["key"].as_str().unwrap().len(), PHONE.len());
    assert_eq!(t["enrich"]["cliente"]["plano"], "Ouro");
    assert_eq!(
        t["expect"],
        json!([
            {"text": "Olá, Maria! Seu plano Ouro vence em 10/12/2026."},
            {"text": "Valor: R$ 99,90. Você tem 120 pontos."},
        ]),
        "{yaml}"
    );
    assert!(t.get("expect_error").is_none());
    let keys: Vec<_> = t.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["enrich", "expect", "name", "request"]);

    // End to end: the snippet as the file's `tests:` passes `recado test`.
    let (passed, stdout, stderr) = recado_test_with_only(dir.path(), &yaml);
    assert!(passed, "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed"),
        "{stdout}"
    );

    server.stop().await;
}

/// `demo/plano.yaml` with `yaml` (a `tests:` snippet) as its only tests,
/// run by `recado test`: whether it passed, its stdout and its stderr.
fn recado_test_with_only(dir: &Path, yaml: &str) -> (bool, String, String) {
    let file = dir.join("demo/plano.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let without = &text[..text.find("\ntests:").map_or(text.len(), |i| i + 1)];
    std::fs::write(&file, format!("{without}{yaml}")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recado"))
        .args(["test", "--dir"])
        .arg(dir)
        .arg("demo/plano")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The contact is replaced in values, never inside names: a contact called
/// `Val` must not turn the answer's `valor` into `Mariaor`. And the
/// platform's `data` repeating the contact is made up too.
#[tokio::test]
async fn a_test_from_an_entry_replaces_the_contact_in_values_only_data_included() {
    let erp = erp().await;
    let dir = integrations_with(&[("demo/plano.yaml", &plano(erp.port()))]);
    let server = start(dir.path()).await;
    let mut request: Value = serde_json::from_str(&boleto_request(
        21,
        json!({"obs": "ligar para Val Souza no 5513999999999", "valor": 1}),
    ))
    .unwrap();
    request["contact"]["name"] = json!("Val Souza");
    let (status, answer) = server
        .post("/hooks/plano?token=demo-token", request.to_string())
        .await;
    assert_eq!(status, 200, "{answer}");
    let list = admin_json(&server, "GET", "/admin/requests").await;
    let entry = list["entries"][0]["entry"].as_str().unwrap().to_owned();
    let (status, yaml) = admin(
        &server,
        "GET",
        &format!("/admin/requests/{entry}/test"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{yaml}");
    for personal in ["Val Souza", "Souza", "5513999999999", "13999999999"] {
        assert!(!yaml.contains(personal), "`{personal}` shows in {yaml}");
    }
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    let t = &doc["tests"][0];
    assert_eq!(t["request"]["data"]["valor"], 1, "{yaml}");
    assert_eq!(t["enrich"]["cliente"]["valor"], 99.9, "{yaml}");
    let obs = t["request"]["data"]["obs"].as_str().unwrap();
    assert!(obs.starts_with("ligar para Maria Teste no 5513"), "{obs}");
    assert_eq!(
        t["expect"][1]["text"], "Valor: R$ 99,90. Você tem 120 pontos.",
        "{yaml}"
    );

    // And it passes as the file's `tests:`.
    let (_, stdout, _) = recado_test_with_only(dir.path(), &yaml);
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 0 failed"),
        "{stdout}"
    );
    server.stop().await;
}

/// An entry whose upstream call failed has no answer to replay that call
/// with: the replay says it replayed nothing, not that the edit changed
/// the answer (it used to say `changed: true`, on an untouched file).
#[tokio::test]
async fn an_entry_whose_call_failed_is_not_replayed_and_not_called_changed() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let dir = integrations_with(&[("demo/plano.yaml", &plano(port))]);
    let server = start(dir.path()).await;
    let (status, body) = server
        .post(
            "/hooks/plano?token=demo-token",
            boleto_request(31, json!({})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let list = admin_json(&server, "GET", "/admin/requests").await;
    let entry = list["entries"][0]["entry"].as_str().unwrap().to_owned();
    let replay = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(replay["replayed"], false, "{replay}");
    assert_eq!(replay["changed"], Value::Null, "{replay}");
    assert_eq!(replay["diff"], json!([]), "{replay}");
    assert_eq!(
        replay["now"]["error"]["code"], "no_recorded_answer",
        "{replay}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_failed_entry_becomes_an_expect_error_test() {
    let dir = integrations_with(&[]);
    let server = start(dir.path()).await;
    assert_eq!(post_boleto(&server, 11, json!({"valor": "x"})).await, 422);
    let list = admin_json(&server, "GET", "/admin/requests").await;
    let entry = list["entries"][0]["entry"].as_str().unwrap().to_owned();
    let (status, yaml) = admin(
        &server,
        "GET",
        &format!("/admin/requests/{entry}/test"),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{yaml}");
    let doc: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(doc["tests"][0]["expect_error"], "render_failed", "{yaml}");
    assert_eq!(doc["tests"][0]["request"]["data"], json!({"valor": "x"}));
    server.stop().await;
}

const SHOP_V1: &str = "messages:\n  - text: \"Pedido {{ data.pedido }}\"\n  - text: \"Obrigado, {{ contact.name | first_name }}\"\n";

/// The metrics recorder is the test binary's, shared by its tests: the two
/// that set `shop`/`pedido`'s shadow gauges run one at a time, or one's
/// reload could overwrite the value the other reads.
static SHOP_GAUGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn shop(guard: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                "shop/tenant.yaml",
                &format!("client_ids: [90]\ntokens: [shop-token-1]\nreload_guard: {guard}\n"),
            ),
            ("shop/pedido.yaml", SHOP_V1),
        ],
    );
    dir
}

async fn shop_traffic(server: &TestServer) {
    for (i, data) in [
        json!({"pedido": "A-1"}),
        json!({"pedido": "B-2", "cupom": "X"}),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _) = server
            .post("/hooks/pedido?token=shop-token-1", request(90, data))
            .await;
        assert_eq!(status, 200, "request {i}");
    }
}

/// An edit that changes every answer and fails the request without `cupom`.
const SHOP_V2: &str =
    "messages:\n  - text: \"Pedido nº {{ data.pedido }}\"\n  - text: \"Cupom {{ data.cupom }}\"\n";

async fn status_of(server: &TestServer) -> Value {
    let (status, text) = admin(server, "GET", "/admin/status", Some(ADMIN)).await;
    assert_eq!(status, 200);
    assert!(
        !text.contains("Ana Souza") && !text.contains("5513999999999"),
        "{text}"
    );
    serde_json::from_str(&text).unwrap()
}

fn gated(dir: &Path, server: &TestServer) -> Reloader {
    Reloader::new(dir.to_owned(), server.state.config.clone()).gated_by(recado::replay::gate(
        server.state.journal.clone().unwrap(),
        false,
    ))
}

#[tokio::test]
async fn shadow_check_warns_and_the_edit_serves() {
    let _gauges = SHOP_GAUGES.lock().await;
    let dir = shop("warn");
    let server = start(dir.path()).await;
    shop_traffic(&server).await;
    std::fs::write(dir.path().join("shop/pedido.yaml"), SHOP_V2).unwrap();
    gated(dir.path(), &server).reload(&Scope::All);

    let status = status_of(&server).await;
    let report = &status["shadow"][0];
    assert_eq!(report["tenant"], "shop", "{status}");
    assert_eq!(report["integration"], "pedido");
    assert_eq!(report["checked"], 2);
    assert_eq!(report["changed"], 2);
    assert_eq!(report["failed"], 1);
    assert_eq!(report["blocked"], false);
    assert_eq!(report["example_failed"]["code"], "render_failed");
    assert!(
        report["example_changed"]["change"]["field"].is_string(),
        "{report}"
    );
    // `warn` serves the edit.
    let (status, answer) = server
        .post(
            "/hooks/pedido?token=shop-token-1",
            request(90, json!({"pedido": "C", "cupom": "Y"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer[0]["value"], "Pedido nº C");
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
        metrics.contains("recado_shadow_failed{tenant=\"shop\",integration=\"pedido\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn shadow_check_blocks_an_edit_that_fails_answered_requests() {
    let _gauges = SHOP_GAUGES.lock().await;
    let dir = shop("block");
    let server = start(dir.path()).await;
    shop_traffic(&server).await;
    std::fs::write(dir.path().join("shop/pedido.yaml"), SHOP_V2).unwrap();
    gated(dir.path(), &server).reload(&Scope::All);

    let status = status_of(&server).await;
    assert_eq!(status["shadow"][0]["blocked"], true, "{status}");
    let errors = status["errors"].as_array().unwrap();
    let text = errors[0]["text"].as_str().unwrap();
    assert!(text.starts_with("shop/pedido.yaml: "), "{text}");
    assert!(
        text.contains("reload_guard: block") && text.contains("journal entry"),
        "{text}"
    );
    // The previous version keeps serving.
    let (status, answer) = server
        .post(
            "/hooks/pedido?token=shop-token-1",
            request(90, json!({"pedido": "C"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer[0]["value"], "Pedido C");

    // An edit that fails nothing goes live, and the error is gone.
    let v3 = SHOP_V1.replace("Pedido {{", "Pedido número {{");
    std::fs::write(dir.path().join("shop/pedido.yaml"), v3).unwrap();
    gated(dir.path(), &server).reload(&Scope::All);
    let status = status_of(&server).await;
    assert!(status["errors"].as_array().unwrap().is_empty(), "{status}");
    assert_eq!(status["shadow"][0]["blocked"], false);
    let (_, answer) = server
        .post(
            "/hooks/pedido?token=shop-token-1",
            request(90, json!({"pedido": "C"})),
        )
        .await;
    assert_eq!(answer[0]["value"], "Pedido número C");
    server.stop().await;
}

#[tokio::test]
async fn the_journal_stays_within_its_bounds() {
    let dir = integrations_with(&[]);
    let server = start_with(dir.path(), |s| {
        s.journal = Some(recado::journal::JournalSettings {
            entries: 5,
            ..Default::default()
        });
    })
    .await;
    for id in 0..12 {
        post_boleto(&server, id, boleto_data()).await;
    }
    let list = admin_json(&server, "GET", "/admin/requests?limit=100").await;
    let ids: Vec<_> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [11, 10, 9, 8, 7]);
    server.stop().await;
}

// The journal's file (`--journal-file`).

async fn start_durable(
    dir: &Path,
    file: &Path,
    configure: impl FnOnce(&mut recado::state::Settings),
) -> TestServer {
    start_with(dir, |s| {
        s.journal_file = Some(file.to_owned());
        configure(s);
    })
    .await
}

/// Stops `server` once its file holds every entry, as `recado serve` does.
async fn stop_durable(server: TestServer) {
    server.state.journal.as_ref().unwrap().flush();
    server.stop().await;
}

fn request_ids(list: &Value) -> Vec<u64> {
    list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request_id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_journal_file_keeps_the_history_across_a_restart() {
    let erp = erp().await;
    let dir = integrations_with(&[("demo/plano.yaml", &plano(erp.port()))]);
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("journal.sqlite");
    let server = start_durable(dir.path(), &file, |_| {}).await;
    let hook = "/hooks/boleto?token=demo-token";
    assert_eq!(
        server
            .post(hook, boleto_request(201, boleto_data()))
            .await
            .0,
        200
    );
    let mut missing = boleto_data();
    missing.as_object_mut().unwrap().remove("pedido");
    assert_eq!(server.post(hook, boleto_request(202, missing)).await.0, 422);
    let (status, answer) = server
        .post(
            "/hooks/plano?token=demo-token",
            boleto_request(203, json!({})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let before = admin_json(&server, "GET", "/admin/requests").await;
    stop_durable(server).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "personal data: owner only");
    }

    let server = start_durable(dir.path(), &file, |_| {}).await;
    #[cfg(unix)]
    for companion in ["journal.sqlite-wal", "journal.sqlite-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let path = files.path().join(companion);
        if let Ok(meta) = std::fs::metadata(&path) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{companion}");
        }
    }
    let after = admin_json(&server, "GET", "/admin/requests").await;
    assert_eq!(request_ids(&after), [203, 202, 201], "{after}");
    assert_eq!(
        after["entries"], before["entries"],
        "read back as they were"
    );
    let failed = admin_json(&server, "GET", "/admin/requests?status=422").await;
    assert_eq!(request_ids(&failed), [202]);
    assert_eq!(failed["entries"][0]["error"]["code"], "render_failed");
    let plano = admin_json(&server, "GET", "/admin/requests?integration=plano").await;
    assert_eq!(request_ids(&plano), [203]);
    let by_id = admin_json(&server, "GET", "/admin/requests?tenant=demo&id=201").await;
    assert_eq!(request_ids(&by_id), [201]);

    // Replay, with the upstream's answer as recorded before the restart.
    let entry = plano["entries"][0]["entry"].as_str().unwrap().to_owned();
    let detail = admin_json(&server, "GET", &format!("/admin/requests/{entry}")).await;
    assert_eq!(detail["calls"][0]["answer"]["plano"], "Ouro");
    assert_eq!(detail["request"]["contact"]["key"], "*********9999");
    let replay = admin_json(&server, "POST", &format!("/admin/requests/{entry}/replay")).await;
    assert_eq!(replay["changed"], false, "{replay}");
    assert_eq!(replay["now"]["status"], 200, "{replay}");

    // Numbers go on after the file's.
    let highest = after["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"].as_str().unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(
        server
            .post(hook, boleto_request(204, boleto_data()))
            .await
            .0,
        200
    );
    let list = admin_json(&server, "GET", "/admin/requests?limit=1").await;
    assert_eq!(request_ids(&list), [204]);
    let newest: u64 = list["entries"][0]["entry"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(newest > highest, "{newest} after {highest}");
    stop_durable(server).await;
}

#[tokio::test]
async fn the_journal_file_keeps_its_bounds_per_integration() {
    let dir = integrations_with(&[]);
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("journal.sqlite");
    let three = |s: &mut recado::state::Settings| {
        s.journal = Some(recado::journal::JournalSettings {
            entries: 3,
            ..Default::default()
        })
    };
    let server = start_durable(dir.path(), &file, three).await;
    for id in 0..5 {
        post_boleto(&server, id, boleto_data()).await;
    }
    for id in 10..12 {
        server
            .post(
                "/hooks/cobranca?token=demo-token",
                boleto_request(id, json!({"boletos": []})),
            )
            .await;
    }
    stop_durable(server).await;

    let db = rusqlite::Connection::open(&file).unwrap();
    let rows: Vec<(String, i64)> = db
        .prepare("SELECT integration, request_id FROM entries ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let of = |i: &str| -> Vec<i64> {
        rows.iter()
            .filter(|(name, _)| name == i)
            .map(|(_, id)| *id)
            .collect()
    };
    assert_eq!(of("boleto"), [2, 3, 4], "{rows:?}");
    assert_eq!(of("cobranca"), [10, 11], "{rows:?}");
    drop(db);

    // Read back within the same bounds; a smaller size prunes the file too.
    let server = start_durable(dir.path(), &file, |s| {
        s.journal = Some(recado::journal::JournalSettings {
            entries: 2,
            ..Default::default()
        })
    })
    .await;
    let list = admin_json(&server, "GET", "/admin/requests?integration=boleto").await;
    assert_eq!(request_ids(&list), [4, 3]);
    stop_durable(server).await;
    let db = rusqlite::Connection::open(&file).unwrap();
    let boletos: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM entries WHERE integration = 'boleto'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(boletos, 2);
}

fn listing(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(listing(&path));
        }
        out.push(path);
    }
    out.sort();
    out
}

#[tokio::test]
async fn without_a_journal_file_nothing_is_written() {
    let dir = integrations_with(&[]);
    let config_before = listing(dir.path());
    let cwd_before: Vec<_> = std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let server = start(dir.path()).await;
    assert_eq!(post_boleto(&server, 7, boleto_data()).await, 200);
    let journal = server.state.journal.clone().unwrap();
    journal.flush();
    assert_eq!(journal.recent("demo", "boleto", 10).len(), 1);
    server.stop().await;
    assert_eq!(listing(dir.path()), config_before);
    for name in std::fs::read_dir(".")
        .unwrap()
        .map(|e| e.unwrap().file_name())
    {
        assert!(cwd_before.contains(&name), "{name:?} appeared");
    }
}

#[tokio::test]
async fn a_journal_file_that_cannot_be_opened_is_a_clear_error() {
    let dir = integrations_with(&[]);
    let missing = dir.path().join("no-such-folder/journal.sqlite");
    let settings = recado::state::Settings {
        journal_file: Some(missing.clone()),
        ..Default::default()
    };
    let Err(e) = recado::state::AppState::open(settings, recado::config::load_dir(dir.path()))
    else {
        panic!("opened {}", missing.display());
    };
    let text = e.to_string();
    assert!(text.contains("no-such-folder/journal.sqlite"), "{text}");
    assert!(text.contains("--journal-file"), "{text}");

    let not_sqlite = dir.path().join("demo/tenant.yaml");
    let settings = recado::state::Settings {
        journal_file: Some(not_sqlite),
        ..Default::default()
    };
    let Err(e) = recado::state::AppState::open(settings, recado::config::load_dir(dir.path()))
    else {
        panic!("a YAML file opened as the journal");
    };
    assert!(e.to_string().contains("SQLite"), "{e}");
}

#[test]
fn recado_serve_refuses_a_journal_file_it_should_not_write() {
    let dir = integrations_with(&[]);
    let serve = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_recado"))
            .args(["serve", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir.path())
            .args(extra)
            .env_remove("RECADO_JOURNAL")
            .env_remove("RECADO_JOURNAL_FILE")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let inside = dir.path().join("demo/journal.sqlite");
    let err = serve(&["--journal-file", inside.to_str().unwrap()]);
    assert!(err.contains("inside the integrations folder"), "{err}");
    assert!(!inside.exists());
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("journal.sqlite");
    let err = serve(&["--journal", "off", "--journal-file", file.to_str().unwrap()]);
    assert!(err.contains("--journal-file needs the journal"), "{err}");
    assert!(!file.exists());
}

#[tokio::test]
async fn entry_numbers_go_on_after_the_file_aged_out() {
    let dir = integrations_with(&[]);
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("journal.sqlite");
    let brief = |s: &mut recado::state::Settings| {
        s.journal = Some(recado::journal::JournalSettings {
            age: std::time::Duration::from_millis(1),
            ..Default::default()
        })
    };
    let hook = "/hooks/boleto?token=demo-token";
    let server = start_durable(dir.path(), &file, brief).await;
    for id in 0..3 {
        server.post(hook, boleto_request(id, boleto_data())).await;
    }
    stop_durable(server).await;
    // Past the age bound: the restart prunes every entry from the file.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let server = start_durable(dir.path(), &file, brief).await;
    stop_durable(server).await;
    let db = rusqlite::Connection::open(&file).unwrap();
    let rows: i64 = db
        .query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
    drop(db);
    let server = start_durable(dir.path(), &file, |_| {}).await;
    server.post(hook, boleto_request(9, boleto_data())).await;
    let list = admin_json(&server, "GET", "/admin/requests").await;
    assert_eq!(request_ids(&list), [9]);
    assert_eq!(list["entries"][0]["entry"], "4", "not a number used before");
    stop_durable(server).await;
}
