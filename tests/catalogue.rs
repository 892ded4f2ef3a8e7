//! The template catalogue (`templates.json`, the Graph API's answer as
//! downloaded): every `template` message checked against it at load, Meta's
//! limits on the rendered values at run time (through the real server), the
//! text the contact reads, and a broken catalogue never replacing a good one.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{data, request, write_files, TestServer};
use serde_json::{json, Value};

const TENANT: &str = "client_ids: [90]\ntokens: [cat-token-1]\n";
const ADMIN: &str = "admin-token-cat";

fn fixture() -> String {
    String::from_utf8(common::read(data().join("catalogue/templates.json"))).unwrap()
}

/// A tenant `acme` with the fixture catalogue and `files`, in a temp folder.
fn tenant(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = fixture();
    write_files(
        dir.path(),
        &[
            ("acme/tenant.yaml", TENANT),
            ("acme/templates.json", &catalogue),
        ],
    );
    write_files(dir.path(), files);
    dir
}

fn errors_of(dir: &Path) -> Vec<String> {
    recado::config::load_dir(dir)
        .all_errors()
        .map(|e| e.to_string())
        .collect()
}

/// The one error `acme/aviso.yaml` gets with the fixture catalogue.
fn error(yaml: &str) -> String {
    let dir = tenant(&[("acme/aviso.yaml", yaml)]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.into_iter().next().unwrap()
}

/// `ticket_activated` with one line changed.
fn ticket(replace: &str, with: &str) -> String {
    let base = "messages:\n  - template:\n      name: ticket_activated\n      language: pt_BR\n      header: \"{{ data.h }}\"\n      body:\n        - \"{{ data.nome }}\"\n        - \"{{ data.assunto }}\"\n      buttons:\n        - \"{{ data.id }}\"\n        - ~\n";
    assert!(base.contains(replace), "{replace}");
    base.replacen(replace, with, 1)
}

#[test]
fn a_message_that_fits_its_template_loads() {
    let dir = tenant(&[("acme/aviso.yaml", &ticket("", ""))]);
    assert_eq!(errors_of(dir.path()), Vec::<String>::new());
}

#[test]
fn wrong_number_of_body_values() {
    assert_eq!(
        error(&ticket(
            "        - \"{{ data.assunto }}\"\n",
            "        - \"{{ data.assunto }}\"\n        - \"{{ data.extra }}\"\n"
        )),
        "acme/aviso.yaml:7:9: template `ticket_activated` (pt_BR) has 2 variables in its body, found 3 values; its body reads \"Olá {{1}}, recebemos seu chamado sobre {{2}}.\"; list 2 values under `body:`, in order"
    );
    // No `body:` at all: the error points at the template's name.
    assert_eq!(
        error(&ticket(
            "      body:\n        - \"{{ data.nome }}\"\n        - \"{{ data.assunto }}\"\n",
            ""
        )),
        "acme/aviso.yaml:3:13: template `ticket_activated` (pt_BR) has 2 variables in its body, found 0 values; its body reads \"Olá {{1}}, recebemos seu chamado sobre {{2}}.\"; list 2 values under `body:`, in order"
    );
}

#[test]
fn unknown_name_gets_a_did_you_mean() {
    assert_eq!(
        error(&ticket("name: ticket_activated", "name: ticket_activatd")),
        "acme/aviso.yaml:3:13: template `ticket_activatd` is not in the catalogue (templates.json); did you mean `ticket_activated`?"
    );
    let far = error(&ticket("name: ticket_activated", "name: something_else"));
    assert!(
        far.starts_with("acme/aviso.yaml:3:13: template `something_else` is not in the catalogue (templates.json); it has `ticket_activated`, `boleto_vencido`"),
        "{far}"
    );
}

#[test]
fn wrong_language_with_the_underscore_hint() {
    assert_eq!(
        error(&ticket("language: pt_BR", "language: pt-BR")),
        "acme/aviso.yaml:4:17: template `ticket_activated` has no `pt-BR` version in the catalogue; it has `pt_BR`, `en_US` (WhatsApp writes languages with `_`: `pt_BR`)"
    );
    assert_eq!(
        error(&ticket("language: pt_BR", "language: es")),
        "acme/aviso.yaml:4:17: template `ticket_activated` has no `es` version in the catalogue; it has `pt_BR`, `en_US`"
    );
}

#[test]
fn header_value_if_and_only_if_the_template_has_a_header_variable() {
    assert_eq!(
        error(&ticket("      header: \"{{ data.h }}\"\n", "")),
        "acme/aviso.yaml:3:13: template `ticket_activated` (pt_BR) has a header with a variable (\"Suporte: {{1}}\"): add `header:` with its value"
    );
    assert_eq!(
        error("messages:\n  - template:\n      name: cupom_desconto\n      language: pt_BR\n      header: \"{{ data.h }}\"\n      buttons: [\"{{ data.codigo }}\", ~]\n"),
        "acme/aviso.yaml:5:15: template `cupom_desconto` (pt_BR) takes no header value: it has no header; remove `header`"
    );
    // A media header is sent with the file's URL.
    assert_eq!(
        error("messages:\n  - template:\n      name: fatura_pdf\n      language: pt_BR\n      body: [\"{{ data.mes }}\"]\n"),
        "acme/aviso.yaml:3:13: template `fatura_pdf` (pt_BR) has a DOCUMENT header, sent with the file's URL as its value: add `header:` with its value"
    );
}

#[test]
fn buttons_one_entry_each_with_a_value_where_one_is_needed() {
    assert_eq!(
        error(&ticket("        - \"{{ data.id }}\"\n", "        - ~\n")),
        "acme/aviso.yaml:10:11: button 1 of template `ticket_activated` (pt_BR) is a URL button \"Ver chamado\" (https://suporte.example.com/chamados/{{1}}): it needs a value, not `~`"
    );
    assert_eq!(
        error(&ticket("        - ~\n", "        - \"{{ data.x }}\"\n")),
        "acme/aviso.yaml:11:11: button 2 of template `ticket_activated` (pt_BR) is a QUICK_REPLY button \"Falar com atendente\": it takes no value; write `~`"
    );
    // The URL's start is the template's: a whole link would repeat it.
    assert_eq!(
        error(&ticket(
            "        - \"{{ data.id }}\"\n",
            "        - \"https://suporte.example.com/chamados/{{ data.id }}\"\n"
        )),
        "acme/aviso.yaml:10:11: button 1 of template `ticket_activated` (pt_BR) is a URL button \"Ver chamado\" (https://suporte.example.com/chamados/{{1}}): its value replaces only the variable, and the link already starts with `https://suporte.example.com/chamados/`; give only the part that goes in its place (e.g. `{{ data.rastreio }}`), not the whole link"
    );
    assert_eq!(
        error(&ticket("        - \"{{ data.id }}\"\n", "        - \"\"\n")),
        "acme/aviso.yaml:10:11: button 1 of template `ticket_activated` (pt_BR) is a URL button \"Ver chamado\" (https://suporte.example.com/chamados/{{1}}): its value is empty, which WhatsApp refuses; give the value (e.g. `{{ data.codigo }}`)"
    );
    assert_eq!(
        error(&ticket("        - ~\n", "")),
        "acme/aviso.yaml:10:9: template `ticket_activated` (pt_BR) has 2 buttons (a URL button \"Ver chamado\" (https://suporte.example.com/chamados/{{1}}), a QUICK_REPLY button \"Falar com atendente\"), found 1; list one entry per button, in order, `~` for a button that takes no value"
    );
}

#[test]
fn a_template_that_is_not_approved_is_refused() {
    assert_eq!(
        error("messages:\n  - template:\n      name: boleto_vencido\n      language: pt_BR\n      body: [\"{{ data.valor }}\"]\n"),
        "acme/aviso.yaml:3:13: template `boleto_vencido` (pt_BR) is PAUSED in the catalogue: WhatsApp sends only APPROVED templates and would refuse it (error #132015); use an approved template or wait for approval and download the catalogue again"
    );
}

const NAMED: &str = "messages:\n  - template:\n      name: lembrete_pagamento\n      language: pt_BR\n      body:\n        vencimento: \"{{ data.vencimento }}\"\n        nome: \"{{ contact.name | first_name }}\"\n        valor: \"{{ data.valor }}\"\n";

#[test]
fn named_values_missing_extra_and_without_a_catalogue() {
    assert_eq!(
        error(&NAMED.replace("        valor: \"{{ data.valor }}\"\n", "")),
        "acme/aviso.yaml:6:21: template `lembrete_pagamento` (pt_BR) needs a value for `valor` in `body:`; its body reads \"Olá {{nome}}, seu pagamento de {{valor}} vence em {{vencimento}}.\""
    );
    assert_eq!(
        error(&NAMED.replace("valor:", "total:")),
        "acme/aviso.yaml:8:16: template `lembrete_pagamento` (pt_BR) has no body variable `total`; its variables are `nome`, `valor`, `vencimento`"
    );
    // Names on a positional template.
    assert_eq!(
        error("messages:\n  - template:\n      name: fatura_pdf\n      language: pt_BR\n      header: \"https://x.example.com/f.pdf\"\n      body:\n        mes: \"{{ data.mes }}\"\n"),
        "acme/aviso.yaml:7:14: template `fatura_pdf` (pt_BR) has positional variables ({{1}}, {{2}}…), not names; list the body's values in order"
    );
    // Without a catalogue names cannot be ordered.
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[("acme/tenant.yaml", TENANT), ("acme/aviso.yaml", NAMED)],
    );
    assert_eq!(
        errors_of(dir.path()),
        ["acme/aviso.yaml:6:21: body values by name need the tenant's template catalogue (templates.json) to know their order; add the catalogue (see docs/templates.md) or list the values in order"]
    );
}

#[test]
fn a_templated_name_is_not_checked_against_the_catalogue() {
    let dir = tenant(&[(
        "acme/aviso.yaml",
        "messages:\n  - template:\n      name: \"{{ data.modelo }}\"\n      language: pt_BR\n      body: [\"{{ data.a }}\"]\n",
    )]);
    assert_eq!(errors_of(dir.path()), Vec::<String>::new());
}

#[test]
fn a_broken_catalogue_is_reported_at_its_line_and_column() {
    let dir = tenant(&[("acme/aviso.yaml", &ticket("", ""))]);
    std::fs::write(
        dir.path().join("acme/templates.json"),
        "{\"data\": [\n  {\"name\": \"x\", \"language\": 7}\n]}\n",
    )
    .unwrap();
    let errors = errors_of(dir.path());
    assert_eq!(
        errors,
        ["acme/templates.json:2:29: invalid type: integer `7`, expected a string; expected the API's answer `{\"data\": [...]}`, an array of those, or an array of templates"]
    );
    // A missing field is placed at the end of its template: it is named.
    std::fs::write(
        dir.path().join("acme/templates.json"),
        "{\"data\": [\n  {\"name\": \"x\", \"language\": \"pt_BR\", \"components\": []},\n  {\"name\": \"aviso\", \"components\": []}\n]}\n",
    )
    .unwrap();
    let errors = errors_of(dir.path());
    assert!(
        errors[0]
            .starts_with("acme/templates.json:3:37: template `aviso`: missing field `language`"),
        "{errors:?}"
    );
}

#[test]
fn the_three_shapes_of_the_catalogue() {
    let page: Value = serde_json::from_str(&fixture()).unwrap();
    let templates = page["data"].clone();
    let (first, rest) = {
        let all = templates.as_array().unwrap();
        (all[..2].to_vec(), all[2..].to_vec())
    };
    for catalogue in [
        page.clone(),
        templates.clone(),
        json!([{"data": first, "paging": {}}, {"data": rest}]),
    ] {
        let dir = tenant(&[("acme/aviso.yaml", NAMED)]);
        std::fs::write(
            dir.path().join("acme/templates.json"),
            catalogue.to_string(),
        )
        .unwrap();
        assert_eq!(errors_of(dir.path()), Vec::<String>::new());
    }
}

// ---- Through the server ----

const HOOK: &str = "?token=cat-token-1";

async fn post(server: &TestServer, hook: &str, data: Value) -> (u16, Value) {
    server
        .post(&format!("/hooks/{hook}{HOOK}"), request(90, data))
        .await
}

fn good() -> Value {
    json!({"h": "Chamado 7", "nome": "Ana", "assunto": "Internet", "id": "T-7"})
}

fn with(key: &str, value: impl Into<Value>) -> Value {
    let mut d = good();
    d[key] = value.into();
    d
}

/// Files for the run-time tests: the ticket with the catalogue; a message
/// whose name and language come from the data (no catalogue check); the
/// coupon; the named reminder.
fn served() -> tempfile::TempDir {
    tenant(&[
        ("acme/aviso.yaml", &ticket("", "")),
        (
            "acme/livre.yaml",
            "messages:\n  - template:\n      name: \"{{ data.modelo }}\"\n      language: \"{{ data.idioma }}\"\n      header: \"{{ data.a }}\"\n      body: [\"{{ data.a }}\", \"{{ data.a }}\"]\n      buttons: [\"{{ data.a }}\", ~]\n",
        ),
        (
            "acme/cupom.yaml",
            "messages:\n  - template:\n      name: cupom_desconto\n      language: pt_BR\n      buttons: [\"{{ data.codigo }}\", ~]\n",
        ),
        ("acme/lembrete.yaml", NAMED),
    ])
}

fn assert_invalid(status: u16, body: &Value, integration: &str, needle: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_output", "{body}");
    assert_eq!(body["error"]["integration"], integration, "{body}");
    assert_eq!(body["error"]["path"], "messages[0]", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

#[tokio::test]
async fn run_time_limits_answer_422() {
    let dir = served();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = post(&server, "aviso", good()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["body"]["parameters"][0]["value"], "Ana");

    let cases: Vec<(Value, &str)> = vec![
        (
            with("h", "x".repeat(61)),
            "`header.parameters[0].value` has 61 characters; WhatsApp allows at most 60 in a header parameter",
        ),
        (
            with("assunto", "x".repeat(1025)),
            "`body.parameters[1].value` has 1025 characters; WhatsApp allows at most 1024 in a body parameter",
        ),
        (
            with("nome", "a\u{2028}b"),
            "`body.parameters[0].value` contains a line separator (U+2028)",
        ),
        (
            with("nome", "a\u{2029}b"),
            "`body.parameters[0].value` contains a paragraph separator (U+2029)",
        ),
        (
            with("nome", "a\u{85}b"),
            "`body.parameters[0].value` contains a next-line character (U+0085)",
        ),
        (with("nome", "a\nb"), "`body.parameters[0].value` contains a new line"),
        (with("nome", "a\rb"), "`body.parameters[0].value` contains a carriage return"),
        (with("nome", "a\tb"), "`body.parameters[0].value` contains a tab"),
        (with("nome", "a\u{b}b"), "`body.parameters[0].value` contains a vertical tab"),
        (with("nome", "a\u{c}b"), "`body.parameters[0].value` contains a form feed"),
        (with("nome", "a\u{0}b"), "`body.parameters[0].value` contains a NUL character"),
        (
            with("nome", "a     b"),
            "`body.parameters[0].value` contains more than four consecutive spaces",
        ),
        (
            with("nome", "a \u{a0}\u{a0} \u{a0}b"),
            "`body.parameters[0].value` contains more than four consecutive spaces",
        ),
        (
            with("nome", "\u{200b}\u{200d}\u{feff}"),
            "`body.parameters[0].value` is empty (or only spaces and invisible characters)",
        ),
        (
            with("id", "https://suporte.example.com/chamados/T-7"),
            "`buttons[0].parameters[0].value` is a whole link, but the button's URL (https://suporte.example.com/chamados/{{1}}) already starts with `https://suporte.example.com/chamados/`",
        ),
        (
            with("id", "T 7"),
            "`buttons[0].parameters[0].value` does not make a valid link once put in the button's URL (https://suporte.example.com/chamados/{{1}})",
        ),
        (
            json!({"h": "Chamado 7", "nome": "n".repeat(600), "assunto": "a".repeat(600), "id": "T-7"}),
            "`body` would have 1235 characters as the contact reads it",
        ),
    ];
    for (data, needle) in cases {
        let (status, body) = post(&server, "aviso", data).await;
        assert_invalid(status, &body, "acme/aviso.yaml", needle);
    }

    // Name and language from the data: the template they name is looked up
    // per request and the message checked against it, as a fixed name is
    // at load; a malformed name or language says so first.
    let livre = |modelo: &str, idioma: &str| json!({"modelo": modelo, "idioma": idioma, "a": "x"});
    let (status, body) = post(&server, "livre", livre("ticket_activated", "pt_BR")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&server, "livre", livre("qualquer_um", "pt_BR")).await;
    assert_invalid(
        status,
        &body,
        "acme/livre.yaml",
        "`qualquer_um` (pt_BR) is not in the tenant's templates.json",
    );
    let (status, body) = post(&server, "livre", livre("cupom_desconto", "pt_BR")).await;
    assert_invalid(status, &body, "acme/livre.yaml", "`header` does not fit `cupom_desconto` (pt_BR), which takes no header value and the message has one");
    let (status, body) = post(&server, "livre", livre("qualquer_um", "pt-BR")).await;
    assert_invalid(status, &body, "acme/livre.yaml", "`language` must be one of the language codes WhatsApp supports for templates, such as `pt_BR`, `en_US` or `es` (WhatsApp writes it `pt_BR`)");
    let (status, body) = post(&server, "livre", livre("Aviso-Geral", "pt_BR")).await;
    assert_invalid(
        status,
        &body,
        "acme/livre.yaml",
        "`name` must be a WhatsApp template name",
    );

    // A coupon code holds at most 15 characters.
    let (status, body) = post(&server, "cupom", json!({"codigo": "PROMO10"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&server, "cupom", json!({"codigo": "C".repeat(16)})).await;
    assert_invalid(
        status,
        &body,
        "acme/cupom.yaml",
        "has 16 characters; WhatsApp allows at most 15 in a COPY_CODE button's code",
    );
    server.stop().await;
}

#[tokio::test]
async fn named_values_are_answered_in_the_templates_order() {
    let dir = served();
    let server = TestServer::start(dir.path()).await;
    let (status, body) = post(
        &server,
        "lembrete",
        json!({"vencimento": "10/05", "valor": "R$ 10,00"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!([{"type": "TEMPLATE", "name": "lembrete_pagamento", "language": "pt_BR",
                "body": {"parameters": [
                    {"index": 1, "value": "Ana"},
                    {"index": 2, "value": "R$ 10,00"},
                    {"index": 3, "value": "10/05"}]}}])
    );
    server.stop().await;
}

#[test]
fn fill_shows_what_the_contact_reads() {
    let catalogue =
        recado::config::catalogue::Catalogue::parse(fixture().as_bytes(), "acme/templates.json")
            .unwrap();
    let t = catalogue.get("ticket_activated", "pt_BR").unwrap();
    let filled = t.fill(&recado::config::catalogue::Params {
        header: Some("Chamado 7"),
        body: vec!["Ana", "Internet"],
        buttons: vec![Some("T-7"), None],
    });
    assert_eq!(
        filled,
        recado::config::catalogue::Filled {
            header: Some("Suporte: Chamado 7".into()),
            body: "Olá Ana, recebemos seu chamado sobre Internet.".into(),
            footer: Some("Responda SAIR para não receber avisos".into()),
            buttons: vec![
                "[Ver chamado] → https://suporte.example.com/chamados/T-7".into(),
                "[Falar com atendente]".into()
            ],
        }
    );
}

// ---- Reload ----

/// Polls until `errors` satisfies `done`; a hang guard, not a timing claim.
async fn wait_for(server: &TestServer, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let errors = server.status_errors(ADMIN).await;
        if done(&errors) {
            return errors;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {errors:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_broken_catalogue_keeps_the_last_good_one() {
    let dir = served();
    let server = TestServer::start_watching(dir.path(), ADMIN).await;
    let long_body =
        json!({"h": "Chamado 7", "nome": "n".repeat(600), "assunto": "a".repeat(600), "id": "T-7"});
    let (status, before) = post(&server, "aviso", good()).await;
    assert_eq!(status, 200, "{before}");

    std::fs::write(
        dir.path().join("acme/templates.json"),
        "{\"data\": [\n  {\"name\": \n",
    )
    .unwrap();
    let errors = wait_for(&server, |e| {
        e.iter().any(|e| e.starts_with("acme/templates.json:"))
    })
    .await;
    assert_eq!(
        errors,
        ["acme/templates.json:3:1: EOF while parsing a value; expected the API's answer `{\"data\": [...]}`, an array of those, or an array of templates"]
    );
    // The same answers as before, and the catalogue's run-time checks.
    let (status, after) = post(&server, "aviso", good()).await;
    assert_eq!((status, &after), (200, &before));
    let (status, body) = post(&server, "aviso", long_body.clone()).await;
    assert_invalid(
        status,
        &body,
        "acme/aviso.yaml",
        "`body` would have 1235 characters",
    );

    // An integration edited meanwhile is still checked against the last
    // good catalogue: the wrong count is refused and the old version serves.
    std::fs::write(
        dir.path().join("acme/aviso.yaml"),
        ticket("        - ~\n", ""),
    )
    .unwrap();
    wait_for(&server, |e| {
        e.iter().any(|e| {
            e.starts_with("acme/aviso.yaml:10:9: template `ticket_activated` (pt_BR) has 2 buttons")
        })
    })
    .await;
    let (status, again) = post(&server, "aviso", good()).await;
    assert_eq!((status, &again), (200, &before));

    // Fixed: the errors go, and a catalogue change re-checks the
    // integrations (here the body now has three variables).
    std::fs::write(dir.path().join("acme/aviso.yaml"), ticket("", "")).unwrap();
    let three = fixture().replace(
        "recebemos seu chamado sobre {{2}}.",
        "recebemos seu chamado sobre {{2}} em {{3}}.",
    );
    std::fs::write(dir.path().join("acme/templates.json"), three).unwrap();
    let errors = wait_for(&server, |e| {
        !e.iter().any(|e| e.starts_with("acme/templates.json"))
            && e.iter()
                .any(|e| e.contains("has 3 variables in its body, found 2 values"))
    })
    .await;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    // The decision of docs/templates.md: a valid catalogue the integration
    // no longer fits is loaded and reported, and the integration's last
    // good version keeps answering until it is changed.
    let (status, still) = post(&server, "aviso", good()).await;
    assert_eq!((status, &still), (200, &before));
    server.stop().await;
}

#[test]
fn render_show_text_prints_what_the_contact_reads() {
    let demo = common::shipped_demo();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recado"))
        .arg("render")
        .arg("--dir")
        .arg(demo.path())
        .arg("demo/chamado")
        .arg(common::repo().join("examples/chamado.json"))
        .arg("--show-text")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (answer, text) = stdout.split_once("\n\n").unwrap();
    // The JSON is the example's expected answer, unchanged.
    assert_eq!(
        serde_json::from_str::<Value>(answer).unwrap(),
        common::json(common::repo().join("examples/chamado.expected.json"))
    );
    assert_eq!(
        text,
        "── message 1 ──\ntemplate ticket_activated (pt_BR)\n*Suporte: Chamado 2026-0042*\nOlá João, recebemos seu chamado sobre *Troca de equipamento* e ele já está com nossa equipe. Você pode acompanhar o andamento pelo link abaixo.\n_Responda SAIR para não receber avisos_\n[Ver chamado] → https://suporte.example.com/chamados/T-42\n[Falar com atendente]\n"
    );
}

#[test]
fn the_shipped_demo_and_its_test_copy_load_with_their_catalogue() {
    for dir in [common::repo().join("integrations"), common::fixtures()] {
        let snapshot = recado::config::load_dir(&dir);
        let demo = &snapshot.tenants["demo"];
        assert!(demo.catalogue.is_some(), "{}", dir.display());
        assert_eq!(
            snapshot
                .errors
                .get("demo")
                .map(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>()),
            None
        );
    }
}
