//! The studio over plain HTTP: what is visible without signing in, tenant
//! isolation, CSRF, cookie flags, and the preview API.

mod common;

use common::{integrations_with, TestServer};
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-studio";
const DEMO: &str = "demo-studio-token";
const ACME: &str = "acme-studio-token";

/// The demo tenant plus a second tenant, `acme`, with its own studio token.
fn two_tenants() -> tempfile::TempDir {
    integrations_with(&[
        (
            "acme/tenant.yaml",
            "client_ids: [99]\ntokens: [acme-webhook-token]\nstudio_tokens: [acme-studio-token]\n",
        ),
        ("acme/aviso-acme.yaml", "messages:\n  - text: Olá da Acme\n"),
    ])
}

async fn start(dir: &std::path::Path) -> TestServer {
    let admin = recado::state::AdminToken::new(ADMIN);
    TestServer::start_with(dir, |s| s.admin_token = Some(admin)).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

async fn get(
    server: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, String) {
    let mut req = client().get(server.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    (status, h, resp.text().await.unwrap())
}

/// Signs in with `token`; returns the cookie header to send and the raw
/// `Set-Cookie`.
async fn sign_in(server: &TestServer, token: &str, extra: &[(&str, &str)]) -> (String, String) {
    let mut req = client()
        .post(server.url("/studio/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "sign-in with {token}");
    assert_eq!(resp.headers()[LOCATION], "/studio");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let pair = set.split(';').next().unwrap().to_owned();
    (pair, set)
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf-token\" content=\"")
        .expect("a csrf meta tag")
        + 27;
    html[at..at + 64].to_owned()
}

#[tokio::test]
async fn without_credentials_no_tenant_or_integration_is_named() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    for path in [
        "/studio",
        "/studio/t/demo",
        "/studio/t/acme",
        "/studio/t/demo/i/boleto",
        "/studio/t/nope/i/nothing",
    ] {
        let (status, headers, html) = get(&server, path, &[]).await;
        assert!(status == 200 || status == 401, "{path}: {status}");
        for name in [
            "demo", "acme", "boleto", "chamado", "cobranca", "plano", "aviso",
        ] {
            assert!(!html.contains(name), "{path} names {name}: {html}");
        }
        assert!(
            html.contains("Token de acesso"),
            "{path} shows the sign-in form"
        );
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        assert_eq!(headers["x-frame-options"], "DENY");
    }
    // A wrong token neither.
    let resp = client()
        .post(server.url("/studio/login"))
        .body("token=not-a-token-at-all")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().get(SET_COOKIE).is_none());
    assert!(!resp.text().await.unwrap().contains("demo"));
    // The webhook token is not a studio token.
    let resp = client()
        .post(server.url("/studio/login"))
        .body("token=demo-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_token_sees_its_tenant_only() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let (cookie, _) = sign_in(&server, DEMO, &[]).await;
    let c = [("cookie", cookie.as_str())];
    // Home sends a tenant to its own page.
    let (status, headers, _) = get(&server, "/studio", &c).await;
    assert_eq!(status, 303);
    assert_eq!(headers[LOCATION], "/studio/t/demo");
    let (status, _, html) = get(&server, "/studio/t/demo", &c).await;
    assert_eq!(status, 200);
    assert!(html.contains("boleto") && !html.contains("acme"), "{html}");
    let (status, _, html) = get(&server, "/studio/t/demo/i/boleto", &c).await;
    assert_eq!(status, 200);
    assert!(html.contains("data.boleto_url"), "the YAML is shown");
    // Another tenant's pages answer as if they did not exist.
    for path in ["/studio/t/acme", "/studio/t/acme/i/aviso-acme"] {
        let (status, _, html) = get(&server, path, &c).await;
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("Olá da Acme") && !html.contains("aviso-acme"));
    }
    // Bearer works the same, both ways.
    let bearer = format!("Bearer {ACME}");
    let b = [("authorization", bearer.as_str())];
    assert_eq!(get(&server, "/studio/t/acme/i/aviso-acme", &b).await.0, 200);
    assert_eq!(get(&server, "/studio/t/demo", &b).await.0, 404);
    assert_eq!(get(&server, "/studio/t/demo/i/boleto", &b).await.0, 404);
    // The preview API too.
    let preview = client()
        .post(server.url("/studio/api/preview"))
        .header("authorization", &bearer)
        .json(&json!({"tenant": "demo", "integration": "boleto"}))
        .send()
        .await
        .unwrap();
    assert_eq!(preview.status().as_u16(), 404);
    // The admin sees both.
    let admin = format!("Bearer {ADMIN}");
    let (status, _, html) = get(&server, "/studio", &[("authorization", admin.as_str())]).await;
    assert_eq!(status, 200);
    assert!(html.contains("demo") && html.contains("acme"));
    server.stop().await;
}

/// A draft up to the preview's 512 KiB reaches the preview whole (it used
/// to get an empty body past 64 KiB, and answered "EOF while parsing");
/// over it, and over 64 KiB on other routes, the answer is a JSON 413 that
/// closes the connection.
#[tokio::test]
async fn a_large_draft_is_previewed_and_a_body_over_the_cap_is_a_413() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let bearer = format!("Bearer {DEMO}");
    let yaml = |pad: usize| {
        format!(
            "# {}\nmessages:\n  - text: \"Olá, {{{{ contact.name | first_name }}}}!\"\n",
            "x".repeat(pad)
        )
    };
    let preview = |pad: usize| {
        client()
            .post(server.url("/studio/api/preview"))
            .header("authorization", &bearer)
            .json(
                &json!({"tenant": "demo", "integration": "boleto", "yaml": yaml(pad),
                          "contact": {"name": "Beatriz Lima", "key": "5511988887777"}}),
            )
            .send()
    };
    let resp = preview(200_000).await.unwrap();
    let status = resp.status().as_u16();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["answer"][0]["value"], "Olá, Beatriz!", "{answer}");

    let resp = preview(600_000).await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(resp.headers()["connection"], "close");
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");

    let resp = client()
        .post(server.url("/healthz"))
        .body("x".repeat(100_000))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(resp.headers()["connection"], "close");
    server.stop().await;
}

#[tokio::test]
async fn posts_need_the_sessions_csrf_token() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let (cookie, _) = sign_in(&server, DEMO, &[]).await;
    let (_, _, html) = get(&server, "/studio/t/demo/i/boleto", &[("cookie", &cookie)]).await;
    let csrf = csrf_of(&html);
    let body = json!({
        "tenant": "demo", "integration": "boleto",
        "contact": {"name": "Beatriz Lima", "key": "5511988887777"},
        "data": {"valor": 10, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-1"},
    });
    let post = |token: Option<&str>| {
        let mut req = client()
            .post(server.url("/studio/api/preview"))
            .header(COOKIE, &cookie)
            .json(&body);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    let resp = post(None).await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "csrf");
    let resp = post(Some(&"0".repeat(64))).await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = post(Some(&csrf)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["messages"][0]["message"]["value"], "Olá, Beatriz!");
    assert_eq!(out["messages"][0]["line"], 6);
    // Sign-out needs it too.
    let resp = client()
        .post(server.url("/studio/logout"))
        .header(COOKIE, &cookie)
        .body("csrf=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert_eq!(
        get(&server, "/studio/t/demo", &[("cookie", &cookie)])
            .await
            .0,
        200
    );
    let resp = client()
        .post(server.url("/studio/logout"))
        .header(COOKIE, &cookie)
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(
        get(&server, "/studio/t/demo", &[("cookie", &cookie)])
            .await
            .0,
        401
    );
    // A sign-in form posted from another site is refused.
    let resp = client()
        .post(server.url("/studio/login"))
        .header("origin", "https://evil.example")
        .body(format!("token={DEMO}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(resp.headers().get(SET_COOKIE).is_none());
    server.stop().await;
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_secure_over_https() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let (_, plain) = sign_in(&server, DEMO, &[]).await;
    assert!(
        plain.contains("HttpOnly") && plain.contains("SameSite=Strict"),
        "{plain}"
    );
    assert!(plain.contains("Path=/studio"));
    assert!(!plain.contains("Secure"), "{plain}");
    // Signed, not stored: `<payload>.<HMAC-SHA-256>`, and the payload does
    // not carry the token's digest (which could be tested offline).
    let id = plain.split(';').next().unwrap().split('=').nth(1).unwrap();
    let (payload, mac) = id.split_once('.').unwrap();
    assert_eq!(mac.len(), 64, "{id}");
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(DEMO.as_bytes()));
    assert!(!payload.contains(&digest[..16]), "{id}");
    let (_, proxied) = sign_in(&server, DEMO, &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.contains("; Secure"), "{proxied}");
    server.stop().await;

    let admin = recado::state::AdminToken::new(ADMIN);
    let server = TestServer::start_with(dir.path(), |s| {
        s.admin_token = Some(admin);
        s.studio_secure_cookies = true;
    })
    .await;
    let (_, flagged) = sign_in(&server, ADMIN, &[]).await;
    assert!(flagged.contains("; Secure"), "{flagged}");
    server.stop().await;
}

#[tokio::test]
async fn a_removed_studio_token_ends_its_sessions() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let (cookie, _) = sign_in(&server, ACME, &[]).await;
    assert_eq!(
        get(&server, "/studio/t/acme", &[("cookie", &cookie)])
            .await
            .0,
        200
    );
    common::write_files(
        dir.path(),
        &[(
            "acme/tenant.yaml",
            "client_ids: [99]\ntokens: [acme-webhook-token]\nstudio_tokens: [another-studio-token]\n",
        )],
    );
    let next = recado::config::reload(
        dir.path(),
        &server.state.config.load(),
        &recado::config::Scope::All,
    );
    server.state.config.store(std::sync::Arc::new(next));
    assert_eq!(
        get(&server, "/studio/t/acme", &[("cookie", &cookie)])
            .await
            .0,
        401
    );
    server.stop().await;
}

#[tokio::test]
async fn drafts_are_compiled_in_memory_and_call_nothing() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let bearer = format!("Bearer {DEMO}");
    let preview = |body: Value| {
        client()
            .post(server.url("/studio/api/preview"))
            .header("authorization", &bearer)
            .json(&body)
            .send()
    };
    // A draft with an error: the error at its line, nothing sent.
    let draft =
        "description: rascunho\nmessages:\n  - text: \"Olá {{ contact.name | sem_filtro }}\"\n";
    let out: Value = preview(json!({"tenant": "demo", "integration": "boleto", "yaml": draft}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(out["source"], "draft");
    assert_eq!(out["errors"][0]["line"], 3, "{out}");
    assert!(out["messages"].as_array().unwrap().is_empty());
    let before = std::fs::read_to_string(dir.path().join("demo/boleto.yaml")).unwrap();
    assert!(!before.contains("rascunho"), "the draft is never written");
    // A call without a sample answer is named; its readers fail, never call out.
    let out: Value = preview(json!({"tenant": "demo", "integration": "plano"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        out["notes"][0].as_str().unwrap().contains("`cliente`"),
        "{out}"
    );
    assert_eq!(out["errors"][0]["line"], 13, "{out}");
    let out: Value = preview(json!({
        "tenant": "demo", "integration": "plano",
        "enrich": {"cliente": {"plano": "Ouro", "vencimento": "2026-01-02", "valor": 3, "pontos": 2}},
    }))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        out["messages"][0]["message"]["value"],
        "Olá, Maria! Seu plano Ouro vence em 02/01/2026."
    );
    // No session and no token: refused, nothing named.
    let resp = client()
        .post(server.url("/studio/api/preview"))
        .json(&json!({"tenant": "demo", "integration": "boleto"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    server.stop().await;
}

/// A webhook request to demo's `boleto` from a contact whose name and phone
/// must never show in the studio's pages.
fn boleto_hook_request(id: u64, name: &str, key: &str, pedido: Option<&str>) -> String {
    let mut data = json!({"valor": 1234.5, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf"});
    if let Some(p) = pedido {
        data["pedido"] = json!(p);
    }
    json!({
        "id": id, "clientId": 72, "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": "15295", "type": "WHATSAPP", "key": key, "name": name},
        "data": data,
    })
    .to_string()
}

fn assert_hidden(html: &str, personal: &[&str]) {
    for p in personal {
        assert!(!html.contains(p), "`{p}` shows in the page: {html}");
    }
}

#[tokio::test]
async fn the_tenant_page_lists_recent_failures_masked() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let bearer = format!("Bearer {DEMO}");
    let b = [("authorization", bearer.as_str())];
    let (_, _, html) = get(&server, "/studio/t/demo", &b).await;
    assert!(html.contains("Nenhuma falha recente"), "{html}");

    let hook = "/hooks/boleto?token=demo-token";
    let (status, _) = server
        .post(
            hook,
            boleto_hook_request(3589818, "João da Silva", "5513999999999", None),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = server
        .post(
            hook,
            boleto_hook_request(3589819, "João da Silva", "5513999999999", Some("A-1")),
        )
        .await;
    assert_eq!(status, 200);
    // An empty answer (every `when` false) is a 200 too, and the contact
    // got nothing: it is listed.
    let empty = json!({"id": 3589820, "clientId": 72, "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": "1", "type": "WHATSAPP", "key": "5513999999999", "name": "João da Silva"},
        "data": {"boletos": []}});
    let (status, answer) = server
        .post("/hooks/cobranca?token=demo-token", empty.to_string())
        .await;
    assert_eq!((status, answer), (200, json!([])));

    let (status, _, html) = get(&server, "/studio/t/demo", &b).await;
    assert_eq!(status, 200);
    let at = html.find("Falhas recentes").expect("the failures' section");
    let failures = &html[at..];
    assert!(failures.contains("render_failed"), "{failures}");
    assert!(failures.contains("data.pedido"), "{failures}");
    assert!(failures.contains("3589818"), "{failures}");
    assert!(failures.contains("/studio/t/demo/i/boleto"), "{failures}");
    assert!(failures.contains("422"), "{failures}");
    assert!(
        !failures.contains("3589819"),
        "a 200 with messages is not a failure"
    );
    assert!(failures.contains("3589820"), "{failures}");
    assert!(failures.contains("nenhuma mensagem"), "{failures}");
    assert!(!failures.contains("Nenhuma falha recente"));
    assert_hidden(
        &html,
        &["5513999999999", "13999999999", "João", "JOÃO", "Silva"],
    );
    // Another tenant sees none of them.
    let acme = format!("Bearer {ACME}");
    let (_, _, html) = get(
        &server,
        "/studio/t/acme",
        &[("authorization", acme.as_str())],
    )
    .await;
    assert!(html.contains("Nenhuma falha recente"), "{html}");
    assert!(!html.contains("3589818"));
    server.stop().await;

    // With the journal off, no section at all.
    let admin = recado::state::AdminToken::new(ADMIN);
    let server = TestServer::start_with(dir.path(), |s| {
        s.admin_token = Some(admin);
        s.journal = None;
    })
    .await;
    let (_, _, html) = get(&server, "/studio/t/demo", &b).await;
    assert!(html.contains("boleto"), "{html}");
    assert!(!html.contains("Falhas recentes") && !html.contains("Nenhuma falha"));
    server.stop().await;
}

#[tokio::test]
async fn the_samples_are_the_files_tests_and_the_journals_requests_masked() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let bearer = format!("Bearer {DEMO}");
    let b = [("authorization", bearer.as_str())];
    let hook = "/hooks/boleto?token=demo-token";
    let (status, _) = server
        .post(
            hook,
            boleto_hook_request(4242001, "Beatriz Lima", "5511988887777", Some("A-77")),
        )
        .await;
    assert_eq!(status, 200);

    let (status, _, html) = get(&server, "/studio/t/demo/i/boleto", &b).await;
    assert_eq!(status, 200);
    let at = html
        .find("<select id=\"sample\">")
        .expect("a sample picker");
    let picker = &html[at..at + html[at..].find("</select>").unwrap()];
    // The file's tests, the first one picked.
    assert!(
        picker.contains("value=\"test:0\"") && picker.contains(" selected>boleto em dia</option>"),
        "{picker}"
    );
    assert!(picker.contains(">sem pedido</option>"), "{picker}");
    // Merged over the default request as `recado test` does.
    assert!(picker.contains("JOÃO DA SILVA"), "{picker}");
    assert!(picker.contains("5511999999999"), "{picker}");
    // The journal's request: its id and status, masked.
    assert!(picker.contains("Pedido 4242001 · 200 ·"), "{picker}");
    assert!(picker.contains("B****** L***"), "{picker}");
    assert!(picker.contains("*********7777"), "{picker}");
    assert!(picker.contains("A-77"), "data is kept: {picker}");
    assert_hidden(&html, &["Beatriz", "Lima", "5511988887777", "11988887777"]);

    // A sample previews as the page sends it: the form's fields and the
    // rest of the sample's request.
    let sample = sample_in(picker, "4242001");
    assert_eq!(sample["request"]["id"], 4242001);
    let out: Value = client()
        .post(server.url("/studio/api/preview"))
        .header("authorization", &bearer)
        .json(&json!({
            "tenant": "demo", "integration": "boleto",
            "contact": sample["contact"], "data": sample["data"],
            "enrich": sample["enrich"], "request": sample["request"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The masked name changes the greeting; the contact's never shows.
    let hello = out["messages"][0]["message"]["value"].as_str().unwrap();
    assert!(
        hello.starts_with("Olá, B") && !hello.contains("Beatriz"),
        "{out}"
    );
    assert!(out["errors"].as_array().unwrap().is_empty(), "{out}");

    // An integration with calls: the upstream's recorded answer becomes the
    // sample's, masked too.
    let erp = erp().await;
    let plano = String::from_utf8(common::read(common::fixtures().join("demo/plano.yaml")))
        .unwrap()
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{}", erp.port()));
    common::write_files(dir.path(), &[("demo/plano.yaml", &plano)]);
    let next = recado::config::reload(
        dir.path(),
        &server.state.config.load(),
        &recado::config::Scope::All,
    );
    server.state.config.store(std::sync::Arc::new(next));
    let (status, answer) = server
        .post(
            "/hooks/plano?token=demo-token",
            boleto_hook_request(4242002, "Beatriz Lima", "5511988887777", None),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (_, _, html) = get(&server, "/studio/t/demo/i/plano", &b).await;
    let at = html
        .find("<select id=\"sample\">")
        .expect("a sample picker");
    let picker = &html[at..at + html[at..].find("</select>").unwrap()];
    assert!(
        picker.contains(">plano ouro com pontos</option>"),
        "{picker}"
    );
    let sample = sample_in(picker, "4242002");
    assert_eq!(sample["enrich"]["cliente"]["plano"], "Ouro", "{sample}");
    assert_eq!(
        sample["enrich"]["cliente"]["titular"], "B****** L***",
        "{sample}"
    );
    assert_hidden(&html, &["Beatriz", "Lima", "5511988887777", "11988887777"]);
    server.stop().await;
}

/// Guessing operators' tokens: ten wrong ones a minute from one address,
/// then 429 for every attempt (the right token too) on every route that
/// takes one. Requests without a token, and webhooks, are not held back.
#[tokio::test]
async fn guessing_tokens_is_locked_out_after_ten_failures() {
    let dir = two_tenants();
    let server = start(dir.path()).await;
    let login = |token: &'static str| {
        client()
            .post(server.url("/studio/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}"))
            .send()
    };
    let boleto = |token: &'static str| {
        let data = json!({"valor": 1, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A"});
        let path = format!("/hooks/boleto?token={token}");
        let server = &server;
        async move { server.post_raw(&path, common::request(72, data)).await.0 }
    };
    // Wrong webhook tokens do not count: the platform shares addresses.
    for _ in 0..15 {
        assert_eq!(boleto("wrong-token").await, 401);
    }
    // Nor does browsing without a token, or a proxy's `Basic` credentials.
    for _ in 0..15 {
        assert_eq!(get(&server, "/studio", &[]).await.0, 200);
        let basic = [("authorization", "Basic cHJveHk6cHJveHk=")];
        assert_eq!(get(&server, "/admin/status", &basic).await.0, 401);
    }
    let (status, _, _) = get(
        &server,
        "/admin/status",
        &[("authorization", &format!("Bearer {ADMIN}"))],
    )
    .await;
    assert_eq!(status, 200);

    // Ten wrong tokens, on three routes that take one.
    for i in 0..10 {
        let status = match i % 3 {
            0 => login("not-the-token").await.unwrap().status().as_u16(),
            1 => {
                get(
                    &server,
                    "/admin/status",
                    &[("authorization", "Bearer not-the-token")],
                )
                .await
                .0
            }
            _ => {
                get(
                    &server,
                    "/studio",
                    &[("authorization", "Bearer not-the-token")],
                )
                .await
                .0
            }
        };
        assert_eq!(status, 401, "attempt {i}");
    }
    // Locked out: the right tokens are refused without being looked at.
    let resp = login(DEMO).await.unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&retry), "Retry-After: {retry}");
    assert!(resp.text().await.unwrap().contains("Muitas tentativas"));
    let (status, headers, body) = get(
        &server,
        "/admin/status",
        &[("authorization", &format!("Bearer {ADMIN}"))],
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(headers.contains_key("retry-after"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "too_many_failures", "{body}");
    assert!(!body.to_string().contains(ADMIN));
    let (status, _, _) = get(
        &server,
        "/metrics",
        &[("authorization", &format!("Bearer {ADMIN}"))],
    )
    .await;
    assert_eq!(status, 429);
    // What needs no token still works, and so do webhooks.
    assert_eq!(get(&server, "/studio", &[]).await.0, 200);
    assert_eq!(get(&server, "/healthz", &[]).await.0, 200);
    assert_eq!(boleto("demo-token").await, 200);
    server.stop().await;
}

/// Behind a proxy named by `--trusted-proxy`, the sign-in limit counts the
/// client that `X-Forwarded-For` names, not the proxy; without one, the
/// header is ignored, so a guesser cannot rotate it past the limit.
#[tokio::test]
async fn behind_a_trusted_proxy_the_sign_in_limit_counts_each_client() {
    let dir = two_tenants();
    let status = |server: &TestServer, token: &str, forwarded: &str| {
        let bearer = format!("Bearer {token}");
        let forwarded = forwarded.to_owned();
        let path = server.url("/admin/status");
        async move {
            let mut req = client().get(path).header("authorization", bearer);
            if !forwarded.is_empty() {
                req = req.header("x-forwarded-for", forwarded);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };

    // No trusted proxy: each guess claims another address, all are counted
    // against the connection's.
    let server = start(dir.path()).await;
    for i in 0..10 {
        let forged = format!("198.51.100.{i}");
        assert_eq!(status(&server, "wrong-token", &forged).await, 401);
    }
    assert_eq!(status(&server, ADMIN, "198.51.100.200").await, 429);
    server.stop().await;

    // The test's client (127.0.0.1) is the proxy.
    let admin = recado::state::AdminToken::new(ADMIN);
    let server = TestServer::start_with(dir.path(), |s| {
        s.admin_token = Some(admin);
        s.trusted_proxies = recado::forwarded::TrustedProxies::new(vec![
            recado::forwarded::parse_net("127.0.0.1").unwrap(),
        ]);
    })
    .await;
    for _ in 0..10 {
        assert_eq!(status(&server, "wrong-token", "203.0.113.7").await, 401);
    }
    assert_eq!(status(&server, ADMIN, "203.0.113.7").await, 429);
    // A forged entry to the left of what the proxy appended changes nothing.
    let forged = "203.0.113.8, 203.0.113.7";
    assert_eq!(status(&server, ADMIN, forged).await, 429);
    // Another client behind the same proxy, and the proxy itself, sign in.
    assert_eq!(status(&server, ADMIN, "203.0.113.8").await, 200);
    assert_eq!(status(&server, ADMIN, "").await, 200);
    server.stop().await;
}

/// With one `--studio-session-key`, a session opened on one replica is
/// accepted by another and survives a restart; without it, it is not.
#[tokio::test]
async fn a_session_key_shared_by_replicas_keeps_the_session_on_each() {
    let dir = two_tenants();
    const KEY: &str = "0123456789abcdef0123456789abcdef-test";
    let replica = |key: Option<&'static str>| {
        TestServer::start_with(dir.path(), move |s| {
            s.admin_token = Some(recado::state::AdminToken::new(ADMIN));
            s.studio_session_key = key.map(str::to_owned);
        })
    };
    let a = replica(Some(KEY)).await;
    let (cookie, _) = sign_in(&a, DEMO, &[]).await;
    let (admin_cookie, _) = sign_in(&a, ADMIN, &[]).await;
    a.stop().await;
    // Another replica (or the same one restarted) with the key.
    let b = replica(Some(KEY)).await;
    let page = |server: &TestServer, cookie: &str| {
        let url = server.url("/studio/t/demo");
        let cookie = cookie.to_owned();
        async move {
            let resp = client()
                .get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };
    let (status, body) = page(&b, &cookie).await;
    assert_eq!(status, 200);
    // Its CSRF token is the one the first replica gave: a preview posts.
    let csrf = body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the page carries the CSRF token")
        .to_owned();
    let (_, body_a) = {
        let c = replica(Some(KEY)).await;
        let r = page(&c, &cookie).await;
        c.stop().await;
        r
    };
    assert!(
        body_a.contains(&csrf),
        "the same CSRF token on every replica"
    );
    assert_eq!(page(&b, &admin_cookie).await.0, 200);
    // Only the tenant it was opened for.
    let other = client()
        .get(b.url("/studio/t/acme"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    b.stop().await;
    // Another key (or none: one of the process's own) refuses it.
    let c = replica(None).await;
    assert_eq!(page(&c, &cookie).await.0, 401);
    c.stop().await;
    // A new admin token ends the admin's sessions, not the tenant's.
    let rotated = TestServer::start_with(dir.path(), |s| {
        s.admin_token = Some(recado::state::AdminToken::new("another-admin-token"));
        s.studio_session_key = Some(KEY.to_owned());
    })
    .await;
    assert_eq!(page(&rotated, &admin_cookie).await.0, 401);
    assert_eq!(page(&rotated, &cookie).await.0, 200);
    rotated.stop().await;
}

/// The sample (`data-sample`, HTML-unescaped) of the picker's option whose
/// label contains `label`.
fn sample_in(picker: &str, label: &str) -> Value {
    let attr = picker
        .split("<option ")
        .find(|o| o.contains(label))
        .and_then(|o| o.split("data-sample=\"").nth(1))
        .and_then(|o| o.split('"').next())
        .unwrap_or_else(|| panic!("no sample for {label}: {picker}"))
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&attr).unwrap()
}

/// A stand-in ERP on loopback whose answer names the contact.
async fn erp() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/clientes/{key}",
        axum::routing::get(|| async {
            axum::Json(json!({"plano": "Ouro", "vencimento": "2026-12-10", "valor": 99.9, "pontos": 120, "titular": "Beatriz Lima"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}
