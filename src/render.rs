//! Stage 4, render: runs an integration's compiled templates over one request
//! and checks every message before it can be answered.
//!
//! Nothing here parses or compiles: the [`Program`] was built at load time.
//! Request data only ever arrives as template *variables*, so `{{ ... }}`
//! inside `data` is printed as text, never evaluated.

use std::fmt;

use std::sync::Arc;

use minijinja::Value;

use crate::config::catalogue::Catalogue;
use crate::config::compile::{CompiledContent, CompiledMessage, Program, Text};
use crate::config::spec::QrKind;
use crate::explain::{describe, Place};
use crate::output::{Button, Message, Parameter, Parameters, TemplateMessage, Violation};
use crate::request::{PlatformRequest, RequestVars};

/// Why an integration could not produce its messages for this request.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A template or expression failed on this request's data.
    #[error("{path}: {detail} ({path}{place})")]
    Template {
        path: String,
        /// What failed, in the template's own words, never with the
        /// request's values.
        detail: String,
        place: Box<Place>,
    },
    /// More messages than the tenant's `max_messages`.
    #[error("the answer would have more than {limit} messages (the tenant's `max_messages`)")]
    TooManyMessages { limit: usize },
    /// A rendered value breaks the platform's contract or WhatsApp's limits.
    #[error("{path}.{}: {}", violation.field, violation.reason)]
    Output { path: String, violation: Violation },
}

impl RenderError {
    /// Where in the integration file the fault is (`messages[1].text`).
    pub fn path(&self) -> &str {
        match self {
            RenderError::Template { path, .. } | RenderError::Output { path, .. } => path,
            RenderError::TooManyMessages { .. } => "messages",
        }
    }

    /// The file's line and column of a template's failure, once located.
    pub fn located(&self) -> Option<(usize, usize)> {
        match self {
            RenderError::Template { place, .. } => place.at(),
            _ => None,
        }
    }

    /// Puts a template's failure at its line and column in the
    /// integration file's `positions` (see [`Place::locate`]).
    pub fn locate(&mut self, positions: &crate::config::yaml::Positions) {
        if let RenderError::Template { place, .. } = self {
            place.locate(positions);
        }
    }
}

/// The variables every template sees: `id`, `clientId`, `contact`, `data`
/// (see [`RequestVars`]).
pub fn request_context(req: &Arc<PlatformRequest>) -> Value {
    RequestVars::context(req.clone())
}

/// Renders every message of `program` for the request context `ctx`; at
/// most `max_messages` of them (a `for_each` over a huge list stops there).
pub fn render(
    program: &Program,
    ctx: &Value,
    max_messages: usize,
) -> Result<Vec<Message>, RenderError> {
    let messages = &program.borrow_dependent().messages;
    let mut out = Vec::with_capacity(messages.len());
    for (i, msg) in messages.iter().enumerate() {
        render_message(i, msg, ctx, &mut out, max_messages)?;
    }
    Ok(out)
}

/// Like [`render`], also saying which of the file's `messages` made each
/// message (its index in `messages:`), for the studio's preview.
pub fn render_traced(
    program: &Program,
    ctx: &Value,
    max_messages: usize,
) -> Result<Vec<(usize, Message)>, RenderError> {
    let mut out = Vec::new();
    let mut from = Vec::new();
    for (i, msg) in program.borrow_dependent().messages.iter().enumerate() {
        render_message(i, msg, ctx, &mut out, max_messages)?;
        from.resize(out.len(), i);
    }
    Ok(from.into_iter().zip(out).collect())
}

fn render_message(
    index: usize,
    msg: &CompiledMessage<'_>,
    ctx: &Value,
    out: &mut Vec<Message>,
    max_messages: usize,
) -> Result<(), RenderError> {
    let loc = Loc { index, item: None };
    let full = |out: &Vec<Message>| out.len() >= max_messages;
    if let Some(when) = &msg.when {
        let keep = when
            .eval(ctx)
            .map_err(|e| template_error(loc, Field::When, &e, None))?;
        if !keep.is_true() {
            return Ok(());
        }
    }
    let Some((list, var)) = &msg.for_each else {
        if full(out) {
            return Err(RenderError::TooManyMessages {
                limit: max_messages,
            });
        }
        return emit(loc, &msg.content, ctx, out);
    };
    let items = list
        .eval(ctx)
        .and_then(|items| {
            // A text would send one message per character, a mapping one per
            // key: almost always a payload whose shape is not the expected one.
            let kind = match items.kind() {
                minijinja::value::ValueKind::String => "a text",
                minijinja::value::ValueKind::Map => "a mapping",
                _ => return items.try_iter(),
            };
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!("`for_each` needs a list, and this is {kind}; check the payload's shape, or make a list of it (`[data.x]`)"),
            ))
        })
        .map_err(|e| template_error(loc, Field::ForEach, &e, None))?;
    for (n, item) in items.enumerate() {
        if full(out) {
            return Err(RenderError::TooManyMessages {
                limit: max_messages,
            });
        }
        let item_ctx = RequestVars::with(ctx, [(var.as_str(), item)]);
        emit(
            Loc {
                index,
                item: Some(n),
            },
            &msg.content,
            &item_ctx,
            out,
        )?;
    }
    Ok(())
}

/// Which message (and which `for_each` item) is being rendered. Formatted
/// only when something fails, so the success path builds no strings.
#[derive(Clone, Copy)]
struct Loc {
    index: usize,
    item: Option<usize>,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "messages[{}]", self.index)?;
        match self.item {
            Some(n) => write!(f, "[item {n}]"),
            None => Ok(()),
        }
    }
}

/// The YAML key of a template within its message.
#[derive(Clone, Copy)]
enum Field {
    When,
    ForEach,
    Qr(QrKind),
    Name,
    Language,
    Header,
    Body(usize),
    Button(usize),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::When => f.write_str("when"),
            Field::ForEach => f.write_str("for_each"),
            Field::Qr(kind) => f.write_str(kind.key()),
            Field::Name => f.write_str("template.name"),
            Field::Language => f.write_str("template.language"),
            Field::Header => f.write_str("template.header"),
            Field::Body(j) => write!(f, "template.body[{j}]"),
            Field::Button(j) => write!(f, "template.buttons[{j}]"),
        }
    }
}

fn emit(
    loc: Loc,
    content: &CompiledContent<'_>,
    ctx: &Value,
    out: &mut Vec<Message>,
) -> Result<(), RenderError> {
    let text = |field: Field, t: &Text<'_>| {
        t.render(ctx)
            .map_err(|e| template_error(loc, field, &e, t.template_source()))
    };
    // Whitespace around a URL or a template parameter is never meant; a
    // trailing newline from a YAML block scalar is never meant in a text.
    let trimmed = |field: Field, t: &Text<'_>| text(field, t).map(trim);
    let message = match content {
        CompiledContent::Qr { kind, value } => {
            let field = Field::Qr(*kind);
            match kind {
                QrKind::Text => Message::Text {
                    value: trim_end(text(field, value)?),
                },
                QrKind::File => Message::File {
                    value: trimmed(field, value)?,
                },
                QrKind::Image => Message::Image {
                    value: trimmed(field, value)?,
                },
                QrKind::Audio => Message::Audio {
                    value: trimmed(field, value)?,
                },
            }
        }
        CompiledContent::Template {
            name,
            language,
            header,
            body,
            buttons,
            catalogue: _,
            lookup: _,
        } => {
            let header = header
                .as_ref()
                .map(|h| trimmed(Field::Header, h))
                .transpose()?;
            let body = body
                .iter()
                .enumerate()
                .map(|(j, b)| trimmed(Field::Body(j), b))
                .collect::<Result<Vec<_>, _>>()?;
            let buttons = buttons
                .iter()
                .enumerate()
                .map(|(j, b)| {
                    let parameters = match b {
                        Some(b) => vec![Parameter {
                            index: 1,
                            value: trimmed(Field::Button(j), b)?,
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
                name: trimmed(Field::Name, name)?,
                language: trimmed(Field::Language, language)?,
                header: header.map(|h| Parameters::numbered(vec![h])),
                body: (!body.is_empty()).then(|| Parameters::numbered(body)),
                buttons,
            })
        }
    };
    let refused = |violation| RenderError::Output {
        path: loc.to_string(),
        violation,
    };
    let template = match (content, &message) {
        (
            CompiledContent::Template {
                catalogue: None,
                lookup: Some(lookup),
                ..
            },
            Message::Template(t),
        ) => {
            // The name (or language) came from the request: the template
            // it names must be in the catalogue, and the message fit it, as
            // a fixed name is checked at load.
            let Some(found) = lookup.get(&t.name, &t.language) else {
                // A malformed name or language says so first.
                message.validate_with(None).map_err(refused)?;
                return Err(refused(Violation {
                    field: "name".into(),
                    reason: format!(
                        "`{}` ({}) is not in the tenant's templates.json: WhatsApp would refuse the message",
                        crate::request::short(&t.name),
                        crate::request::short(&t.language)
                    ),
                }));
            };
            t.fits(found).map_err(refused)?;
            Some(&**found)
        }
        (CompiledContent::Template { catalogue, .. }, _) => catalogue.as_deref(),
        (CompiledContent::Qr { .. }, _) => None,
    };
    message.validate_with(template).map_err(refused)?;
    out.push(message);
    Ok(())
}

fn trim_end(mut s: String) -> String {
    s.truncate(s.trim_end().len());
    s
}

fn trim(s: String) -> String {
    let s = trim_end(s);
    match s.len() - s.trim_start().len() {
        0 => s,
        n => s[n..].to_owned(),
    }
}

/// Written for the person who must act: what is missing or wrong (by path
/// and type, never by value: request values are personal data), then where
/// in the file: `data.pedido is missing from the request (messages[1].text,
/// line 1 of the template)`, or, once located, `(messages[1].text, line 8,
/// column 33)`.
fn template_error(
    loc: Loc,
    field: Field,
    e: &minijinja::Error,
    source: Option<&str>,
) -> RenderError {
    let (detail, excerpt) = describe(e, source);
    let what = match field {
        Field::When | Field::ForEach => "expression",
        _ => "template",
    };
    RenderError::Template {
        path: format!("{loc}.{field}"),
        detail,
        place: Box::new(Place::new(
            &format!("messages[{}]", loc.index),
            &field.to_string(),
            excerpt,
            e.line(),
            what,
        )),
    }
}

/// The messages as the contact reads them, one block each: a template's
/// text with the values in (header, body, footer, buttons) when `catalogue`
/// has it, its values otherwise. For `recado render --show-text`.
pub fn show_text(messages: &[Message], catalogue: Option<&Catalogue>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        let _ = writeln!(out, "── message {} ──", i + 1);
        match m {
            Message::Text { value } => {
                let _ = writeln!(out, "{value}");
            }
            Message::File { value } => {
                let _ = writeln!(out, "[FILE] {value}");
            }
            Message::Image { value } => {
                let _ = writeln!(out, "[IMAGE] {value}");
            }
            Message::Audio { value } => {
                let _ = writeln!(out, "[AUDIO] {value}");
            }
            Message::Template(t) => {
                let params = t.params();
                match catalogue.and_then(|c| c.get(&t.name, &t.language)) {
                    Some(template) => {
                        let filled = template.fill(&params);
                        let _ = writeln!(out, "template {} ({})", t.name, t.language);
                        if let Some(h) = &filled.header {
                            let _ = writeln!(out, "*{h}*");
                        }
                        let _ = writeln!(out, "{}", filled.body);
                        if let Some(f) = &filled.footer {
                            let _ = writeln!(out, "_{f}_");
                        }
                        for b in &filled.buttons {
                            let _ = writeln!(out, "{b}");
                        }
                    }
                    None => {
                        let _ = writeln!(
                            out,
                            "template {} ({}), not in the catalogue; its values:",
                            t.name, t.language
                        );
                        if let Some(h) = params.header {
                            let _ = writeln!(out, "header: {h}");
                        }
                        for (j, b) in params.body.iter().enumerate() {
                            let _ = writeln!(out, "body {{{{{}}}}}: {b}", j + 1);
                        }
                        for (j, b) in params.buttons.iter().enumerate() {
                            let _ = writeln!(out, "button {}: {}", j + 1, b.unwrap_or("~"));
                        }
                    }
                }
            }
        }
    }
    out
}
