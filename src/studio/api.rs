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
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::{csrf_refused, viewer};
use crate::config::catalogue::Catalogue;
use crate::config::yaml::Positions;
use crate::config::{is_integration_name, load_integration, FieldPath, Integration, Tenant};
use crate::output::Message;
use crate::render::{render_traced, request_context, RenderError};
use crate::request::PlatformRequest;
use crate::state::AppState;

/// Largest preview request: a draft is one integration file.
const MAX_PREVIEW_BYTES: usize = 512 * 1024;

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
        Json(serde_json::json!({ "error": code, "message": message })),
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
                tenant.catalogue.as_deref(),
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
    let request = serde_json::json!({
        "id": 1,
        "clientId": tenant.client_ids.first().copied().unwrap_or(0),
        "origin": "SCHEDULED_MESSAGE",
        "contact": {"uid": "studio", "type": "WHATSAPP", "key": input.contact.key, "name": input.contact.name},
        "data": input.data.unwrap_or_else(|| serde_json::json!({})),
    });
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
        ctx = context! { enrich => Value::from(answers), ..ctx };
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
        Err(e) => {
            let at = position_of_error(&positions, &e);
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

/// The sample picker of an integration's page, when its file has config
/// tests (`tests:`): each test's request and `enrich` answers, ready to
/// preview. Nothing when there are none: the form alone.
pub(super) fn sample_pickers(out: &mut String, _tenant: &Tenant, integration: &Integration) {
    use std::fmt::Write;
    let samples = test_samples(&integration.source);
    if samples.is_empty() {
        return;
    }
    out.push_str("<label for=\"sample\">Usar um teste do arquivo como exemplo</label>\n<select id=\"sample\">\n<option value=\"\">— nenhum: preencher à mão —</option>\n");
    for (name, sample) in samples {
        let _ = writeln!(
            out,
            "<option value=\"{}\" data-sample=\"{}\">{}</option>",
            super::html::Esc(&name),
            super::html::Esc(sample),
            super::html::Esc(&name)
        );
    }
    out.push_str("</select>\n");
}

/// `tests:` of an integration file, read loosely (a sample needs only the
/// request and the call answers): `(name, {contact, data, enrich})`.
fn test_samples(source: &str) -> Vec<(String, serde_json::Value)> {
    let Ok(doc) = serde_yaml::from_str::<serde_json::Value>(source) else {
        return Vec::new();
    };
    let Some(tests) = doc.get("tests").and_then(|t| t.as_array()) else {
        return Vec::new();
    };
    tests
        .iter()
        .enumerate()
        .map(|(n, t)| {
            let name = t
                .get("name")
                .and_then(|v| v.as_str())
                .map_or_else(|| format!("teste {}", n + 1), str::to_owned);
            let request = t.get("request");
            let contact = request.and_then(|r| r.get("contact"));
            let field = |k: &str| contact.and_then(|c| c.get(k)).cloned();
            let sample = serde_json::json!({
                "contact": {
                    "name": field("name").unwrap_or_else(|| "Maria Silva".into()),
                    "key": field("key").unwrap_or_else(|| "5511999990000".into()),
                },
                "data": request.and_then(|r| r.get("data")).cloned().unwrap_or_else(|| serde_json::json!({})),
                "enrich": t.get("enrich").cloned().unwrap_or_else(|| serde_json::json!({})),
            });
            (name, sample)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::test_samples;

    #[test]
    fn config_tests_become_samples() {
        let src = "messages:\n  - text: oi\ntests:\n  - name: em dia\n    request:\n      contact: {name: JOÃO}\n      data: {valor: 10}\n    enrich: {cliente: {plano: Ouro}}\n  - name: vazio\n";
        let s = test_samples(src);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, "em dia");
        assert_eq!(s[0].1["contact"]["name"], "JOÃO");
        assert_eq!(s[0].1["contact"]["key"], "5511999990000");
        assert_eq!(s[0].1["data"]["valor"], 10);
        assert_eq!(s[0].1["enrich"]["cliente"]["plano"], "Ouro");
        assert_eq!(s[1].1["data"], serde_json::json!({}));
        assert!(test_samples("messages: [").is_empty());
        assert!(test_samples("messages:\n  - text: oi\n").is_empty());
    }
}
