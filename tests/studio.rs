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
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "csrf");
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
    let id = plain.split(';').next().unwrap().split('=').nth(1).unwrap();
    assert_eq!(id.len(), 64, "256 random bits");
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
