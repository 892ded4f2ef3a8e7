//! `messages:`: what the contact receives, one entry per message.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::config::catalogue::BodyValues;
use crate::config::FieldPath;

use super::template::{check_vars, ExprSrc, TemplateSrc, CONTEXT_NAMES, GLOBAL_NAMES};
use super::values::{checked_map, is_identifier};

/// One entry of `messages:`. Exactly one of the content keys (`text`, `file`,
/// `image`, `audio`, `template`) must be present.
#[derive(Debug)]
pub struct MessageSpec {
    pub when: Option<ExprSrc>,
    pub for_each: Option<ForEach>,
    pub content: Content,
}

#[derive(Debug)]
pub struct ForEach {
    pub list: ExprSrc,
    /// The name each item gets inside the message's templates.
    pub var: String,
}

// Built once per load and read through references: its size costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Content {
    Qr { kind: QrKind, value: TemplateSrc },
    Template(TemplateContent),
}

/// The four QR-code message types of the platform's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrKind {
    Text,
    File,
    Image,
    Audio,
}

impl QrKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [QrKind; 4] = [QrKind::Text, QrKind::File, QrKind::Image, QrKind::Audio];

    /// The YAML key of this kind (`text:`); `output::Message` names the
    /// platform's `type` (`TEXT`).
    pub fn key(self) -> &'static str {
        match self {
            QrKind::Text => "text",
            QrKind::File => "file",
            QrKind::Image => "image",
            QrKind::Audio => "audio",
        }
    }
}

/// An official-API template. The operator lists values; recado numbers the
/// `index`es, so they can never be out of order or duplicated.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateContent {
    pub name: TemplateSrc,
    pub language: TemplateSrc,
    /// The header's single variable, if the template has one.
    #[serde(default)]
    pub header: Option<TemplateSrc>,
    /// One value per variable of the template's body, in order; or, for a
    /// `parameter_format: NAMED` template in the tenant's catalogue, a
    /// mapping from the variables' names to their values.
    #[serde(default)]
    #[schemars(with = "BodySchema")]
    pub body: BodyValues,
    /// One entry per button of the template, in order; `~` (null) for a button
    /// that takes no parameter.
    #[serde(default)]
    pub buttons: Vec<Option<TemplateSrc>>,
}

/// The schema of [`BodyValues`]: a list, or a mapping by variable name.
#[allow(dead_code)]
#[derive(JsonSchema)]
#[serde(untagged)]
enum BodySchema {
    List(Vec<TemplateSrc>),
    Named(std::collections::BTreeMap<String, TemplateSrc>),
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MessageFields")]
pub(crate) struct RawMessage {
    /// Send this message only if the expression is true, e.g. `data.vencido`.
    #[serde(default)]
    when: Option<ExprSrc>,
    /// Send one message per item of this list, e.g. `data.boletos`.
    #[serde(default)]
    for_each: Option<ExprSrc>,
    /// The item's name inside the message (default `item`).
    #[serde(default, rename = "as")]
    as_name: Option<String>,
    /// A text message (at most 4096 characters).
    #[serde(default)]
    text: Option<TemplateSrc>,
    /// A file, by absolute http(s) URL.
    #[serde(default)]
    file: Option<TemplateSrc>,
    /// An image, by absolute http(s) URL.
    #[serde(default)]
    image: Option<TemplateSrc>,
    /// An audio file, by absolute http(s) URL.
    #[serde(default)]
    audio: Option<TemplateSrc>,
    /// An official-API template.
    #[serde(default)]
    template: Option<TemplateContent>,
}

/// Names a message template may read: the request's fields, plus the globals
/// that [`super::compile`] registers. Anything else is a typo caught at load.
const DEFAULT_ITEM_NAME: &str = "item";

impl<'de> Deserialize<'de> for MessageSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map::<D, RawMessage, _>(
            d,
            "a message: a mapping with one of `text`, `file`, `image`, `audio`, `template`",
        )
    }
}

impl TryFrom<RawMessage> for MessageSpec {
    type Error = String;

    fn try_from(raw: RawMessage) -> Result<Self, String> {
        let content = match one_content(
            "a message",
            [raw.text, raw.file, raw.image, raw.audio],
            raw.template,
        )? {
            Ok((kind, value)) => Content::Qr { kind, value },
            Err(template) => Content::Template(template),
        };

        let for_each = match (raw.for_each, raw.as_name) {
            (Some(list), name) => {
                let var = name.unwrap_or_else(|| DEFAULT_ITEM_NAME.to_owned());
                if !is_identifier(&var) || CONTEXT_NAMES.contains(&var.as_str()) {
                    return Err(format!(
                        "`as: {var}` must be a simple name (letters, digits, `_`) other than {}",
                        CONTEXT_NAMES.join(", ")
                    ));
                }
                Some(ForEach { list, var })
            }
            (None, Some(_)) => {
                return Err(
                    "`as` names the item of `for_each`; add `for_each` or remove `as`".into(),
                )
            }
            (None, None) => None,
        };

        let msg = MessageSpec {
            when: raw.when,
            for_each,
            content,
        };
        msg.check_names()?;
        Ok(msg)
    }
}

impl MessageSpec {
    /// Every variable a template reads must exist; `when` and `for_each` see the
    /// request only, the content also sees the `for_each` item.
    fn check_names(&self) -> Result<(), String> {
        let base: BTreeSet<&str> = CONTEXT_NAMES.iter().chain(GLOBAL_NAMES).copied().collect();
        for (field, expr) in [
            ("when", self.when.as_ref()),
            ("for_each", self.for_each.as_ref().map(|f| &f.list)),
        ] {
            if let Some(expr) = expr {
                check_vars(field, expr.vars(), &base)?;
            }
        }
        let mut with_item = base.clone();
        if let Some(fe) = &self.for_each {
            with_item.insert(fe.var.as_str());
        }
        for (field, src) in self.content.templates() {
            check_vars(&field.to_string(), src.vars(), &with_item)?;
        }
        Ok(())
    }
}

/// `` `text`, `file`, `image`, `audio` or `template` ``, from the kinds.
/// The one content key of a message or an expected message, given in
/// [`QrKind::ALL`]'s order (`text`, `file`, `image`, `audio`) then
/// `template`: the QR-code kind and its value, or the template (`Err`).
pub(crate) fn one_content<S, T>(
    what: &str,
    qr: [Option<S>; 4],
    template: Option<T>,
) -> Result<Result<(QrKind, S), T>, String> {
    let mut found: Vec<Result<(QrKind, S), T>> = QrKind::ALL
        .into_iter()
        .zip(qr)
        .filter_map(|(kind, value)| Some(Ok((kind, value?))))
        .collect();
    found.extend(template.map(Err));
    if found.len() == 1 {
        return Ok(found.pop().expect("one"));
    }
    let keys: Vec<String> = found
        .iter()
        .map(|c| match c {
            Ok((kind, _)) => format!("`{}`", kind.key()),
            Err(_) => format!("`{TEMPLATE_KEY}`"),
        })
        .collect();
    Err(if keys.is_empty() {
        format!("{what} needs one of {}, found none", content_keys())
    } else {
        format!(
            "{what} needs exactly one of {}, found {}: each goes in a list item of its own, e.g. `- {}: …`",
            content_keys(),
            keys.join(" and "),
            keys[1].trim_matches('`'),
        )
    })
}

pub fn content_keys() -> String {
    let keys: Vec<String> = QrKind::ALL
        .iter()
        .map(|k| format!("`{}`", k.key()))
        .collect();
    format!("{} or `{TEMPLATE_KEY}`", keys.join(", "))
}

/// The YAML key of an official-API template message.
pub const TEMPLATE_KEY: &str = "template";

impl Content {
    /// Each template of the message with its path inside the message.
    pub fn templates(&self) -> Vec<(FieldPath, &TemplateSrc)> {
        match self {
            Content::Qr { kind, value } => vec![(FieldPath::key(kind.key()), value)],
            Content::Template(t) => {
                let at = FieldPath::key(TEMPLATE_KEY);
                let mut out = vec![
                    (at.then("name"), &t.name),
                    (at.then("language"), &t.language),
                ];
                if let Some(h) = &t.header {
                    out.push((at.then("header"), h));
                }
                out.extend(t.body.entries());
                out.extend(
                    t.buttons
                        .iter()
                        .enumerate()
                        .filter_map(|(i, b)| b.as_ref().map(|b| (at.then("buttons").at(i), b))),
                );
                out
            }
        }
    }
}
