//! The studio in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, spoken to with plain HTTP). Saves screenshots to
//! `target/studio-screenshots/`. Chromium missing is a failure, not a skip:
//! CI installs it (`.ci/run`).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{integrations_with, TestServer};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-studio";

/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|n| {
        std::env::split_paths(&path)
            .map(|d| d.join(n))
            .find(|p| p.is_file())
    })
}

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let chromedriver = find_program(&["chromedriver"]).expect(
            "chromedriver is not installed: the studio's browser tests need Chromium and its driver \
             (Debian: apt-get install -y chromium chromium-driver; .ci/run installs them)",
        );
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]).expect(
            "Chromium is not installed: the studio's browser tests need it \
             (Debian: apt-get install -y chromium chromium-driver; .ci/run installs them)",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--lang=pt-BR",
            "--window-size=1280,800",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut driver = Driver {
            child,
            base,
            http,
            session: String::new(),
            _profile: profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let v = driver.call("POST", "/session", caps).await;
        driver.session = v["sessionId"].as_str().expect("a session").to_owned();
        driver
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let resp = tokio::time::timeout(Duration::from_secs(60), req.send())
            .await
            .expect("webdriver answered in time")
            .unwrap();
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "webdriver {method} {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/clear"), json!({}))
            .await;
        self.call(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.call("POST", &format!("/element/{e}/click"), json!({}))
            .await;
    }

    async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn text(&self, css: &str) -> String {
        let js = format!(
            "const e = document.querySelector({}); return e ? e.innerText : null;",
            serde_json::to_string(css).unwrap()
        );
        self.script(&js).await.as_str().unwrap_or("").to_owned()
    }

    /// Waits (a hang guard, not a timing assertion) until `css`'s text
    /// satisfies `ok`.
    async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let t = self.text(css).await;
            if ok(&t) {
                return t;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css} never showed what was expected; it shows: {t}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
        // The window's outer size includes no chrome in headless mode, but
        // make the viewport exact whatever the build does.
        let inner = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        let (iw, ih) = (inner[0].as_u64().unwrap(), inner[1].as_u64().unwrap());
        if (iw, ih) != (u64::from(width), u64::from(height)) {
            self.call(
                "POST",
                "/window/rect",
                json!({"width": 2 * width as u64 - iw, "height": 2 * height as u64 - ih}),
            )
            .await;
        }
    }

    /// Saves a screenshot of the page's top (desktop) or of the preview
    /// (phone width, where it comes first).
    async fn screenshot(&self, name: &str) {
        self.script(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
        )
        .await;
        let v = self.call("GET", "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let dir = common::repo().join("target/studio-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn quit(self) {
        let _ = self.call("DELETE", "", json!({})).await;
    }
}

fn two_tenants() -> tempfile::TempDir {
    integrations_with(&[
        (
            "acme/tenant.yaml",
            "client_ids: [99]\ntokens: [acme-webhook-token]\nstudio_tokens: [acme-studio-token]\n",
        ),
        ("acme/aviso-acme.yaml", "messages:\n  - text: Olá da Acme\n"),
    ])
}

async fn sign_in(d: &Driver, server: &TestServer, token: &str) {
    d.goto(&server.url("/studio")).await;
    d.type_into("#token", token).await;
    d.click("form[action='/studio/login'] button").await;
    d.wait_text("main", |t| !t.contains("Entrar")).await;
}

const BOLETO_DATA: &str = r#"{"valor": 1234.5, "vencimento": "2026-12-10", "boleto_url": "https://boletos.example.com/2026/boleto-A-1001.pdf", "pedido": "A-1001"}"#;
const CHAMADO_DATA: &str =
    r#"{"protocolo": "2026-0042", "assunto": "Troca de senha", "ticket_id": "42"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn studio_in_a_real_browser() {
    let dir = two_tenants();
    let admin = recado::state::AdminToken::new(ADMIN);
    let server = TestServer::start_with(dir.path(), |s| s.admin_token = Some(admin)).await;
    let d = Driver::start().await;

    // A request that fails and one that is answered, for the journal.
    let failing = r#"{"id": 3589818, "clientId": 72, "origin": "SCHEDULED_MESSAGE", "contact": {"uid": "15295", "type": "WHATSAPP", "key": "5513999999999", "name": "João da Silva"}, "data": {"valor": 10}}"#;
    let (status, _) = server.post("/hooks/boleto?token=demo-token", failing).await;
    assert_eq!(status, 422);
    let answered = failing.replace(
        r#""data": {"valor": 10}"#,
        r#""data": {"valor": 10, "vencimento": "2026-12-10", "boleto_url": "https://example.com/b.pdf", "pedido": "A-9"}"#,
    );
    let (status, _) = server
        .post("/hooks/boleto?token=demo-token", answered)
        .await;
    assert_eq!(status, 200);

    // Signed in with the demo tenant's studio token.
    sign_in(&d, &server, "demo-studio-token").await;
    assert_eq!(d.text("h1").await, "demo");
    let failures = d.text("table.failures").await;
    assert!(
        failures.contains("render_failed") && failures.contains("3589818"),
        "{failures}"
    );
    assert!(!d.text("main").await.contains("João"));
    d.resize(1280, 800).await;
    d.screenshot("tenant-desktop").await;
    d.click("a[href='/studio/t/demo/i/boleto']").await;
    // The file's first test is the sample the page opens with.
    let chat = d.wait_text("#chat", |t| t.contains("Olá, João!")).await;
    assert!(chat.contains("A-1001"), "{chat}");
    assert_eq!(
        d.script("return document.getElementById('sample').value;")
            .await,
        "test:0"
    );
    d.screenshot("boleto-test-sample").await;
    // Another test: its error, as the contact would get nothing.
    d.script("const s = document.getElementById('sample'); s.value = 'test:1'; s.dispatchEvent(new Event('change'));").await;
    let problems = d.wait_text("#problems", |t| t.contains("pedido")).await;
    assert!(problems.contains("data.pedido"), "{problems}");
    // A request from the journal: masked, it greets the masked name.
    d.script("const s = document.getElementById('sample'); s.value = [...s.options].find(o => o.text.includes('3589818 · 200 ·')).value; s.dispatchEvent(new Event('change'));").await;
    let chat = d.wait_text("#chat", |t| t.contains("A-9")).await;
    assert!(!chat.contains("João"), "{chat}");
    assert_eq!(
        d.script("return document.getElementById('contact-name').value;")
            .await,
        "J*** d* S****"
    );
    d.screenshot("boleto-journal-sample").await;

    // A sample request: change the contact's name, see the bubble change.
    d.type_into("#data", BOLETO_DATA).await;
    d.type_into("#contact-name", "Beatriz Lima").await;
    let chat = d.wait_text("#chat", |t| t.contains("Olá, Beatriz!")).await;
    assert!(chat.contains("R$ 1.234,50"), "{chat}");
    assert!(
        chat.contains("boleto-A-1001.pdf"),
        "the document card names the file: {chat}"
    );
    d.type_into("#contact-name", "Carla Dias").await;
    d.wait_text("#chat", |t| {
        t.contains("Olá, Carla!") && !t.contains("Beatriz")
    })
    .await;
    // Each bubble points at its line of the YAML.
    let first_line = d
        .script("return document.querySelector('#chat .bubble').dataset.line;")
        .await;
    assert_eq!(first_line, "6");
    d.resize(1280, 800).await;
    d.screenshot("boleto-desktop").await;
    d.resize(390, 844).await;
    d.screenshot("boleto-phone").await;
    d.resize(1280, 800).await;

    // A draft with an error: the error at its line, the line marked.
    d.click("#draft-box summary").await;
    d.type_into(
        "#draft",
        "description: rascunho\nmessages:\n  - text: \"Olá, {{ contact.name | primeiro_nome }}!\"\n",
    )
    .await;
    let problems = d.wait_text("#problems", |t| t.contains("Linha 3")).await;
    assert!(problems.contains("primeiro_nome"), "{problems}");
    let marked = d
        .script("return Array.from(document.querySelectorAll('#code .line.err')).map(e => e.id);")
        .await;
    assert_eq!(marked, json!(["L3"]));
    assert!(d.text("#chat").await.contains("não recebe nada"));
    d.screenshot("draft-error-desktop").await;
    // Fixed, the draft renders.
    d.type_into(
        "#draft",
        "messages:\n  - text: \"*Oi*, {{ contact.name | first_name }}! _Até_ ~logo~\"\n",
    )
    .await;
    d.wait_text("#chat", |t| t.contains("Oi, Carla!")).await;
    let formatted = d
        .script("const b = document.querySelector('#chat .bubble .text'); return [b.querySelector('strong').textContent, b.querySelector('em').textContent, b.querySelector('s').textContent];")
        .await;
    assert_eq!(formatted, json!(["Oi", "Até", "logo"]));
    // Markup in a message is text, never HTML.
    d.type_into(
        "#draft",
        "messages:\n  - text: \"<b id=x>{{ contact.name }}</b><img src=x>\"\n",
    )
    .await;
    d.wait_text("#chat", |t| t.contains("<b id=x>Carla Dias</b><img src=x>"))
        .await;
    let injected = d
        .script("return document.querySelectorAll('#chat b, #chat img, #x').length;")
        .await;
    assert_eq!(injected, json!(0));

    // The TEMPLATE integration.
    d.goto(&server.url("/studio/t/demo/i/chamado")).await;
    d.type_into("#data", CHAMADO_DATA).await;
    d.type_into("#contact-name", "Beatriz Lima").await;
    let chat = d.wait_text("#chat", |t| t.contains("Beatriz")).await;
    assert!(chat.contains("ticket_activated"), "{chat}");
    // The catalogue's text, values filled in, header and buttons.
    assert!(chat.contains("Chamado 2026-0042"), "{chat}");
    assert!(chat.contains("Troca de senha"), "{chat}");
    assert!(chat.contains("Ver chamado"), "{chat}");
    d.resize(1280, 800).await;
    d.screenshot("chamado-desktop").await;
    d.resize(390, 844).await;
    d.screenshot("chamado-phone").await;
    d.resize(1280, 800).await;

    // A tenant's token cannot open another tenant's page.
    d.goto(&server.url("/studio/t/acme/i/aviso-acme")).await;
    let page = d.text("body").await;
    assert!(page.contains("Página não encontrada"), "{page}");
    assert!(!page.contains("Olá da Acme"));
    d.goto(&server.url("/studio/t/acme")).await;
    assert!(d.text("h1").await.contains("não encontrada"));

    // Signed out, nothing is named.
    d.goto(&server.url("/studio/t/demo")).await;
    d.click(".signout button").await;
    d.wait_text("h1", |t| t.contains("Entrar")).await;
    d.goto(&server.url("/studio/t/demo/i/boleto")).await;
    let page = d.text("body").await;
    assert!(!page.contains("demo") && !page.contains("boleto"), "{page}");

    d.quit().await;
    server.stop().await;
}
