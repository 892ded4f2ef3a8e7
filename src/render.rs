//! Stage 4, render: runs an integration's compiled templates over one request
//! and checks every message before it can be answered.
//!
//! Nothing here parses or compiles: the [`Program`] was built at load time.
//! Request data only ever arrives as template *variables*, so `{{ ... }}`
//! inside `data` is printed as text, never evaluated.

use minijinja::value::Serde;
use minijinja::{context, Value};

use crate::config::compile::{CompiledContent, CompiledMessage, Program, Text};
use crate::config::spec::QrKind;
use crate::output::{Button, Message, Parameter, Parameters, TemplateMessage, Violation};
use crate::request::PlatformRequest;

/// Why an integration could not produce its messages for this request.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template or expression failed on this request's data.
    #[error("{path}: {detail}")]
    Template { path: String, detail: String },
    /// A rendered value breaks the platform's contract or WhatsApp's limits.
    #[error("{path}.{}: {}", violation.field, violation.reason)]
    Output { path: String, violation: Violation },
}

impl RenderError {
    /// Where in the integration file the fault is (`messages[1].text`).
    pub fn path(&self) -> &str {
        match self {
            RenderError::Template { path, .. } | RenderError::Output { path, .. } => path,
        }
    }
}

/// The variables every template sees.
pub fn request_context(req: &PlatformRequest) -> Value {
    context! {
        id => req.id.0,
        clientId => req.client_id.0,
        contact => Value::from(Serde(&req.contact)),
        // An absent payload reads as an empty mapping, so `data.x is defined`
        // works and printing `data.x` still fails as undefined.
        data => req.data.clone().unwrap_or_else(|| Value::from(std::collections::BTreeMap::<String, Value>::new())),
    }
}

/// Renders every message of `program` for the request context `ctx`.
pub fn render(program: &Program, ctx: &Value) -> Result<Vec<Message>, RenderError> {
    let messages = &program.borrow_dependent().0;
    let mut out = Vec::with_capacity(messages.len());
    for (i, msg) in messages.iter().enumerate() {
        render_message(i, msg, ctx, &mut out)?;
    }
    Ok(out)
}

fn render_message(
    i: usize,
    msg: &CompiledMessage<'_>,
    ctx: &Value,
    out: &mut Vec<Message>,
) -> Result<(), RenderError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    if let Some(when) = &msg.when {
        let keep = when.eval(ctx).map_err(|e| template_error(at("when"), &e))?;
        if !keep.is_true() {
            return Ok(());
        }
    }
    let Some((list, var)) = &msg.for_each else {
        return emit(&format!("messages[{i}]"), &msg.content, ctx, out);
    };
    let items = list
        .eval(ctx)
        .map_err(|e| template_error(at("for_each"), &e))?;
    let iter = items
        .try_iter()
        .map_err(|e| template_error(at("for_each"), &e))?;
    for (n, item) in iter.enumerate() {
        let item_ctx = context! { ..Value::from_pairs([(var.as_str(), item)]), ..ctx.clone() };
        emit(
            &format!("messages[{i}][item {n}]"),
            &msg.content,
            &item_ctx,
            out,
        )?;
    }
    Ok(())
}

fn emit(
    path: &str,
    content: &CompiledContent<'_>,
    ctx: &Value,
    out: &mut Vec<Message>,
) -> Result<(), RenderError> {
    let text = |field: &str, t: &Text<'_>| -> Result<String, RenderError> {
        match t {
            Text::Literal(s) => Ok(s.clone()),
            Text::Template(tpl) => tpl
                .render(ctx)
                .map_err(|e| template_error(format!("{path}.{field}"), &e)),
        }
    };
    let message = match content {
        CompiledContent::Qr { kind, value } => {
            let rendered = text(kind.key(), value)?;
            match kind {
                // A trailing newline from a YAML block scalar is never meant to be sent.
                QrKind::Text => Message::Text {
                    value: rendered.trim_end().to_owned(),
                },
                QrKind::File => Message::File {
                    value: rendered.trim().to_owned(),
                },
                QrKind::Image => Message::Image {
                    value: rendered.trim().to_owned(),
                },
                QrKind::Audio => Message::Audio {
                    value: rendered.trim().to_owned(),
                },
            }
        }
        CompiledContent::Template {
            name,
            language,
            header,
            body,
            buttons,
        } => {
            let param = |field: String, t: &Text<'_>| text(&field, t).map(|v| v.trim().to_owned());
            let header = header
                .as_ref()
                .map(|h| param("template.header".into(), h))
                .transpose()?;
            let body = body
                .iter()
                .enumerate()
                .map(|(j, b)| param(format!("template.body[{j}]"), b))
                .collect::<Result<Vec<_>, _>>()?;
            let buttons = buttons
                .iter()
                .enumerate()
                .map(|(j, b)| {
                    let parameters = match b {
                        Some(b) => vec![Parameter {
                            index: 1,
                            value: param(format!("template.buttons[{j}]"), b)?,
                        }],
                        None => Vec::new(),
                    };
                    Ok(Button {
                        index: j + 1,
                        parameters,
                    })
                })
                .collect::<Result<Vec<_>, RenderError>>()?;
            Message::Template(TemplateMessage {
                name: param("template.name".into(), name)?,
                language: param("template.language".into(), language)?,
                header: header.map(|h| Parameters::numbered(vec![h])),
                body: (!body.is_empty()).then(|| Parameters::numbered(body)),
                buttons,
            })
        }
    };
    message
        .validate()
        .map_err(|violation| RenderError::Output {
            path: path.to_owned(),
            violation,
        })?;
    out.push(message);
    Ok(())
}

fn template_error(path: String, e: &minijinja::Error) -> RenderError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    RenderError::Template { path, detail }
}
