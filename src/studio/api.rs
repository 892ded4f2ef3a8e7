//! `POST /studio/api/preview`: renders an integration (the version serving,
//! or a draft sent in the request) for a sample request, with recado's own
//! loader and renderer. Never calls an upstream: each `enrich` call's answer
//! is a sample sent with the request. A draft is compiled in memory only; it
//! is never written anywhere.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use minijinja::Value;
use serde::{Deserialize, Serialize};
use serde_json::Value as JsonValue;

use super::{csrf_refused, viewer};
use crate::config::catalogue::Catalogue;
use crate::config::spec::{default_request, merge, TestSpec};
use crate::config::yaml::Positions;
use crate::config::{is_integration_name, load_integration, FieldPath, Integration, Tenant};
use crate::journal::{Entry, Redactor};
use crate::output::Message;
use crate::render::{render_traced, request_context, RenderError};
use crate::request::{PlatformRequest, RequestVars};
use crate::state::AppState;

/// Largest preview request: a draft is one integration file.
pub const MAX_PREVIEW_BYTES: usize = 512 * 1024;

#[derive(Deserialize)]
struct PreviewIn {
    tenant: String,
    integration: String,
    /// A draft of the integration file; none: the version serving.
    #[serde(default)]
    yaml: Option<String>,
    #[serde(default)]
    contact: ContactIn,
    #[serde(default)]
    data: Option<serde_json::Value>,
    /// Sample answers of the `enrich` calls, by call name.
    #[serde(default)]
    enrich: BTreeMap<String, Value>,
    /// The rest of a picked sample's request (`id`, `origin`,
    /// `contact.uid`…), under `contact` and `data`.
    #[serde(default)]
    request: Option<JsonValue>,
}

#[derive(Deserialize)]
#[serde(default)]
struct ContactIn {
    name: String,
    key: String,
}

impl Default for ContactIn {
    fn default() -> Self {
        ContactIn {
            name: "Maria Silva".into(),
            key: "5511999990000".into(),
        }
    }
}

#[derive(Serialize, Default)]
struct PreviewOut {
    /// `serving` or `draft`.
    source: &'static str,
    /// The serving version's hash (none for a draft).
    hash: Option<String>,
    messages: Vec<Bubble>,
    /// Why nothing would be sent, at its line when known. Any error means the
    /// contact gets nothing.
    errors: Vec<Problem>,
    /// Things worth knowing that do not stop the answer.
    notes: Vec<String>,
    /// The webhook's answer as the platform would get it.
    answer: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Bubble {
    /// The line of the `messages:` entry that made it.
    line: Option<usize>,
    message: Message,
    /// A TEMPLATE as the contact reads it, when the tenant's catalogue
    /// (`templates.json`) has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<TemplateText>,
}

#[derive(Serialize)]
struct TemplateText {
    header: Option<String>,
    body: String,
    footer: Option<String>,
    buttons: Vec<ButtonText>,
}

#[derive(Serialize)]
struct ButtonText {
    text: String,
    /// What the button opens or copies, when it has a value.
    value: Option<String>,
}

fn template_text(catalogue: Option<&Catalogue>, message: &Message) -> Option<TemplateText> {
    let Message::Template(t) = message else {
        return None;
    };
    let filled = catalogue?.get(&t.name, &t.language)?.fill(&t.params());
    Some(TemplateText {
        header: filled.header,
        body: filled.body,
        footer: filled.footer,
        buttons: filled
            .buttons
            .into_iter()
            .map(|b| {
                // `[label] → link` or `[label] code`, as `Template::fill` writes them.
                match b.strip_prefix('[').and_then(|r| r.split_once(']')) {
                    Some((label, rest)) => {
                        let rest = rest.trim().trim_start_matches('→').trim();
                        ButtonText {
                            text: label.to_owned(),
                            value: (!rest.is_empty()).then(|| rest.to_owned()),
                        }
                    }
                    None => ButtonText {
                        text: b,
                        value: None,
                    },
                }
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct Problem {
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        // The shape of every other error recado answers.
        Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

pub async fn preview(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let snapshot = app.config.load();
    let Some(v) = viewer(&app, &snapshot, &headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in to the studio, or send a studio token as `Authorization: Bearer`",
        );
    };
    if let Some(session) = &v.session {
        let presented = headers
            .get("x-csrf-token")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !session.csrf_matches(presented) {
            return csrf_refused();
        }
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the preview request as `application/json`",
        );
    }
    if body.len() > MAX_PREVIEW_BYTES {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the preview request is larger than 512 KiB",
        );
    }
    let input: PreviewIn = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("the preview request is not valid: {e}"),
            )
        }
    };
    let not_found = || {
        refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such tenant or integration for this sign-in",
        )
    };
    let Some(tenant) = snapshot
        .tenants
        .get(&input.tenant)
        .filter(|_| v.who.sees(&input.tenant))
    else {
        return not_found();
    };
    let serving = tenant.integrations.get(&input.integration);
    if serving.is_none() && (input.yaml.is_none() || !is_integration_name(&input.integration)) {
        return not_found();
    }
    Json(run(tenant, serving, input)).into_response()
}

fn run(tenant: &Tenant, serving: Option<&Arc<Integration>>, input: PreviewIn) -> PreviewOut {
    let mut out = PreviewOut::default();
    let (integration, source): (Arc<Integration>, Arc<str>) = match (&input.yaml, serving) {
        (None, Some(i)) => {
            out.source = "serving";
            out.hash = Some(i.hash.clone());
            (i.clone(), i.source.clone())
        }
        (Some(yaml), _) => {
            out.source = "draft";
            let rel = format!("{}/{}.yaml", tenant.name, input.integration);
            match load_integration(
                yaml.as_bytes(),
                &rel,
                &input.integration,
                tenant.compile_options(),
                tenant.facts(),
                tenant.catalogue.as_ref(),
            ) {
                Ok(i) => (Arc::new(i), yaml.as_str().into()),
                Err(errors) => {
                    out.errors = errors
                        .into_iter()
                        .map(|e| Problem {
                            line: e.line,
                            column: e.column,
                            message: e.message,
                        })
                        .collect();
                    return out;
                }
            }
        }
        (None, None) => return out,
    };
    let mut request = serde_json::json!({
        "id": 1,
        "clientId": tenant.client_ids.first().copied().unwrap_or(0),
        "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": "studio", "type": "WHATSAPP"},
    });
    if let Some(extra) = input.request.as_ref().filter(|r| r.is_object()) {
        merge(&mut request, extra);
    }
    if !request["contact"].is_object() {
        request["contact"] = serde_json::json!({});
    }
    request["contact"]["key"] = input.contact.key.into();
    request["contact"]["name"] = input.contact.name.into();
    request["data"] = input.data.unwrap_or_else(|| serde_json::json!({}));
    let req = match PlatformRequest::parse(request.to_string().as_bytes()) {
        Ok(r) => r,
        Err(e) => {
            let field = if e.path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", e.path)
            };
            out.errors.push(Problem {
                line: None,
                column: None,
                message: format!("o pedido de exemplo não é válido: {field}{}", e.message),
            });
            return out;
        }
    };
    let mut ctx = request_context(&req);
    let calls = &integration.program.borrow_dependent().calls;
    if !calls.is_empty() {
        let mut answers = BTreeMap::new();
        for call in calls {
            match input.enrich.get(&call.name) {
                Some(sample) => {
                    answers.insert(call.name.clone(), sample.clone());
                }
                None => out.notes.push(format!(
                    "Sem resposta de exemplo para a chamada `{}`: o que a lê não pode ser mostrado.",
                    call.name
                )),
            }
        }
        for name in input.enrich.keys() {
            if !calls.iter().any(|c| &c.name == name) {
                out.notes.push(format!(
                    "A resposta de exemplo `{name}` não corresponde a nenhuma chamada de `enrich:`."
                ));
            }
        }
        ctx = RequestVars::with(&ctx, [("enrich", Value::from(answers))]);
    }
    let positions = Positions::of(source.as_bytes());
    match render_traced(&integration.program, &ctx, tenant.limits.max_messages) {
        Ok(messages) => {
            let plain: Vec<&Message> = messages.iter().map(|(_, m)| m).collect();
            let answer = serde_json::to_value(&plain).unwrap_or_default();
            let size = answer.to_string().len();
            if size > tenant.limits.max_output_bytes {
                out.errors.push(Problem {
                    line: None,
                    column: None,
                    message: format!(
                        "a resposta teria {size} bytes, mais que o limite da empresa ({} bytes, `max_output_bytes`)",
                        tenant.limits.max_output_bytes
                    ),
                });
            }
            out.answer = Some(answer);
            out.messages = messages
                .into_iter()
                .map(|(i, message)| Bubble {
                    line: positions
                        .get(&FieldPath::key("messages").at(i))
                        .map(|(l, _)| l),
                    template: template_text(tenant.catalogue.as_deref(), &message),
                    message,
                })
                .collect();
        }
        Err(mut e) => {
            // Where the failing expression is, as the webhook names it;
            // else the deepest place of the error's path.
            e.locate(&positions);
            let at = e.located().or_else(|| position_of_error(&positions, &e));
            out.errors.push(Problem {
                line: at.map(|a| a.0),
                column: at.map(|a| a.1),
                message: e.to_string(),
            });
        }
    }
    out
}

/// The deepest place of a render error's path (`messages[1][item 0].template.body[0]`)
/// that the file has a position for.
fn position_of_error(positions: &Positions, e: &RenderError) -> Option<(usize, usize)> {
    let mut path = FieldPath::root();
    let mut found = None;
    for part in e.path().split('.') {
        let (key, indexes) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            path = path.then(key);
            found = positions.get(&path).or(found);
        }
        for index in indexes.split('[') {
            // `[item 0]` is a `for_each` item, not a place in the file.
            if let Ok(n) = index.trim_end_matches(']').parse() {
                path = path.at(n);
                found = positions.get(&path).or(found);
            }
        }
    }
    found
}

/// Recent journal entries of an integration offered as samples.
const JOURNAL_SAMPLES: usize = 10;

/// The sample picker of an integration's page: the file's `tests:` (the
/// first one is picked when the page opens) and the integration's recent
/// requests from the journal, each ready to preview. Nothing when there are
/// neither: the form alone.
pub(super) fn sample_pickers(
    out: &mut String,
    app: &AppState,
    tenant: &Tenant,
    integration: &Integration,
) {
    use super::html::Esc;
    use std::fmt::Write;
    let client_id = tenant.client_ids.first().copied().unwrap_or(0);
    let tests: Vec<(&str, JsonValue)> = integration
        .tests
        .iter()
        .map(|t| (t.name.as_str(), test_sample(t, client_id)))
        .collect();
    let personal = app.settings.log_personal_data;
    let recent: Vec<(String, String, JsonValue)> = app
        .journal
        .as_ref()
        .map(|j| j.recent(&tenant.name, &integration.name, JOURNAL_SAMPLES))
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let sample = journal_sample(e, personal)?;
            let id = e
                .request_id
                .map_or_else(|| "sem id".to_owned(), |id| id.to_string());
            let label = format!(
                "Pedido {id} · {} · {}",
                e.status,
                super::html::when(tenant, e.at)
            );
            Some((format!("journal:{}", e.seq), label, sample))
        })
        .collect();
    if tests.is_empty() && recent.is_empty() {
        return;
    }
    out.push_str("<label for=\"sample\">Usar como exemplo</label>\n<select id=\"sample\">\n<option value=\"\">— nenhum: preencher à mão —</option>\n");
    if !tests.is_empty() {
        out.push_str("<optgroup label=\"Testes do arquivo (tests:)\">\n");
        for (n, (name, sample)) in tests.iter().enumerate() {
            let _ = writeln!(
                out,
                "<option value=\"test:{n}\" data-sample=\"{}\"{}>{}</option>",
                Esc(sample),
                if n == 0 { " selected" } else { "" },
                Esc(name)
            );
        }
        out.push_str("</optgroup>\n");
    }
    if !recent.is_empty() {
        out.push_str("<optgroup label=\"Pedidos recentes (diário)\">\n");
        for (value, label, sample) in &recent {
            let _ = writeln!(
                out,
                "<option value=\"{}\" data-sample=\"{}\">{}</option>",
                Esc(value),
                Esc(sample),
                Esc(label)
            );
        }
        out.push_str("</optgroup>\n");
    }
    out.push_str("</select>\n");
    if !recent.is_empty() && !personal {
        out.push_str("<p class=\"hint\">Nos pedidos recentes, o nome e o telefone do contato aparecem mascarados, também na pré-visualização.</p>\n");
    }
}

/// A config test as a sample: its request merged over the default request,
/// as `recado test` runs it, and its `enrich` answers.
fn test_sample(test: &TestSpec, client_id: u64) -> JsonValue {
    let mut request = default_request(client_id);
    merge(&mut request, &JsonValue::Object(test.request.clone()));
    let enrich = serde_json::to_value(&test.enrich).unwrap_or_default();
    sample_of(request, enrich)
}

/// A journal entry as a sample: the request it got and the upstream answers
/// recorded, with the contact masked as the admin API masks it (unless
/// `--log-personal-data`): the page must not show who it was. None when the
/// body was too large to keep.
fn journal_sample(e: &Entry, personal_data: bool) -> Option<JsonValue> {
    if e.body().is_empty() {
        return None;
    }
    let mut request: JsonValue = serde_json::from_slice(e.body()).ok()?;
    if !request.is_object() {
        return None;
    }
    let mut enrich = serde_json::to_value(e.answers()).ok()?;
    let r = Redactor::for_body(e.body(), personal_data);
    r.json(&mut request);
    r.json(&mut enrich);
    Some(sample_of(request, enrich))
}

/// `{contact: {name, key}, data, enrich, request}`: the form's fields, and
/// the rest of the request (id, origin, contact.uid…) for the preview.
fn sample_of(mut request: JsonValue, enrich: JsonValue) -> JsonValue {
    let data = request
        .as_object_mut()
        .and_then(|o| o.remove("data"))
        .unwrap_or_else(|| serde_json::json!({}));
    let mut contact = request
        .get_mut("contact")
        .and_then(JsonValue::as_object_mut)
        .map(|c| {
            let mut take = |k: &str| match c.remove(k) {
                Some(JsonValue::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            (take("name"), take("key"))
        })
        .unwrap_or_default();
    if contact.0.is_empty() && contact.1.is_empty() {
        let d = ContactIn::default();
        contact = (d.name, d.key);
    }
    serde_json::json!({
        "contact": {"name": contact.0, "key": contact.1},
        "data": data,
        "enrich": enrich,
        "request": request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_tests_become_samples_over_the_default_request() {
        let src = "messages:\n  - text: oi\ntests:\n  - name: em dia\n    request:\n      contact: {name: JOÃO}\n      origin: OUTRA\n      data: {valor: 10}\n    enrich: {cliente: {plano: Ouro}}\n    expect: [{text: oi}]\n";
        let spec: crate::config::spec::IntegrationSpec =
            crate::config::yaml::parse(src.as_bytes(), "t/i.yaml").unwrap();
        let s = test_sample(&spec.tests[0], 72);
        assert_eq!(s["contact"]["name"], "JOÃO");
        assert_eq!(s["contact"]["key"], "5511999999999", "the default's");
        assert_eq!(s["data"]["valor"], 10);
        assert_eq!(s["enrich"]["cliente"]["plano"], "Ouro");
        assert_eq!(s["request"]["origin"], "OUTRA");
        assert_eq!(s["request"]["clientId"], 72);
        assert!(s["request"].get("data").is_none());
        assert!(s["request"]["contact"].get("name").is_none());
    }
}
