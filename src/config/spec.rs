//! The YAML schema, exactly as operators write it.
//!
//! Everything here is checked *while* serde_yaml deserializes, so that every
//! error carries the file's line and column: serde_yaml stamps the position of
//! the value being read on any error raised inside a `Deserialize` impl. That
//! is why template syntax and variable names are checked in the impls below
//! rather than in a later pass that would have lost the position.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::secret::Secret;

/// `integrations/<tenant>/tenant.yaml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// The platform's `clientId`s that belong to this tenant.
    pub client_ids: Vec<u64>,
    /// Accepted tokens: several at once so a tenant can rotate without downtime.
    pub tokens: Vec<TokenSpec>,
    /// IANA zone for date filters; dates are shown in this zone.
    #[serde(default)]
    pub timezone: Timezone,
}

/// An IANA time zone name, checked against the bundled zone database.
#[derive(Debug, Clone)]
pub struct Timezone(pub String);

impl Default for Timezone {
    fn default() -> Self {
        Timezone("America/Sao_Paulo".to_owned())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr("an IANA time zone such as `America/Sao_Paulo`", |s| {
            jiff::tz::TimeZone::get(s)
                .map(|_| Timezone(s.to_owned()))
                .map_err(|_| format!("`{s}` is not a known time zone; use an IANA name such as `America/Sao_Paulo`"))
        }))
    }
}

/// A token as written in `tenant.yaml`: `sha256:<hex>` for a stored hash, or a
/// plain value (literal or `${env:NAME}` / `${file:PATH}`).
#[derive(Debug)]
pub enum TokenSpec {
    Plain(Secret),
    Sha256([u8; 32]),
}

impl TokenSpec {
    fn parse(raw: &str) -> Result<Self, String> {
        if let Some(hex_digest) = raw.strip_prefix("sha256:") {
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_digest.trim(), &mut out)
                .map_err(|_| "a `sha256:` token needs exactly 64 hex digits after the prefix")?;
            return Ok(TokenSpec::Sha256(out));
        }
        let secret = Secret::resolve(raw)?;
        if secret.expose().chars().count() < 8 {
            return Err("a token must be at least 8 characters long".into());
        }
        Ok(TokenSpec::Plain(secret))
    }
}

impl<'de> Deserialize<'de> for TokenSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a token: a literal, `${env:NAME}`, `${file:PATH}` or `sha256:<hex>`",
            TokenSpec::parse,
        ))
    }
}

/// `integrations/<tenant>/<integration>.yaml`: what one webhook URL answers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    /// Free text for the people who maintain the file.
    #[serde(default)]
    pub description: Option<String>,
    /// The messages, in the order the contact receives them.
    pub messages: Vec<MessageSpec>,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateContent {
    pub name: TemplateSrc,
    pub language: TemplateSrc,
    /// The header's single variable, if the template has one.
    #[serde(default)]
    pub header: Option<TemplateSrc>,
    /// One value per variable of the template's body, in order.
    #[serde(default)]
    pub body: Vec<TemplateSrc>,
    /// One entry per button of the template, in order; `~` (null) for a button
    /// that takes no parameter.
    #[serde(default)]
    pub buttons: Vec<Option<TemplateSrc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    #[serde(default)]
    when: Option<ExprSrc>,
    #[serde(default)]
    for_each: Option<ExprSrc>,
    #[serde(default, rename = "as")]
    as_name: Option<String>,
    #[serde(default)]
    text: Option<TemplateSrc>,
    #[serde(default)]
    file: Option<TemplateSrc>,
    #[serde(default)]
    image: Option<TemplateSrc>,
    #[serde(default)]
    audio: Option<TemplateSrc>,
    #[serde(default)]
    template: Option<TemplateContent>,
}

/// Names a message template may read: the request's fields, plus the globals
/// that [`super::compile`] registers. Anything else is a typo caught at load.
pub const CONTEXT_NAMES: &[&str] = &["id", "clientId", "contact", "data"];
pub const GLOBAL_NAMES: &[&str] = &[
    "DATE_FORMAT",
    "DATETIME_FORMAT",
    "TIME_FORMAT",
    "TIMEZONE",
    "now",
    "range",
    "dict",
    "namespace",
    "cycler",
    "joiner",
];
const DEFAULT_ITEM_NAME: &str = "item";

impl<'de> Deserialize<'de> for MessageSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a message: a mapping with one of `text`, `file`, `image`, `audio`, `template`",
                )
            }
            // The checks run inside the visitor so the error gets this
            // mapping's position, not the enclosing list's.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<MessageSpec, A::Error> {
                let raw = RawMessage::deserialize(MapAccessDeserializer::new(map))?;
                MessageSpec::try_from(raw).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

impl TryFrom<RawMessage> for MessageSpec {
    type Error = String;

    fn try_from(raw: RawMessage) -> Result<Self, String> {
        let mut contents = Vec::new();
        for (kind, value) in [
            (QrKind::Text, raw.text),
            (QrKind::File, raw.file),
            (QrKind::Image, raw.image),
            (QrKind::Audio, raw.audio),
        ] {
            if let Some(value) = value {
                contents.push(Content::Qr { kind, value });
            }
        }
        if let Some(t) = raw.template {
            contents.push(Content::Template(t));
        }
        if contents.len() != 1 {
            return Err(format!(
                "a message needs exactly one of `text`, `file`, `image`, `audio` or `template`, found {}",
                contents.len()
            ));
        }
        let content = contents.pop().expect("checked above");

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
                check_vars(field, &expr.vars, &base)?;
            }
        }
        let mut with_item = base.clone();
        if let Some(fe) = &self.for_each {
            with_item.insert(fe.var.as_str());
        }
        for (field, src) in self.content.templates() {
            check_vars(&field, &src.vars, &with_item)?;
        }
        Ok(())
    }
}

impl Content {
    /// Each template of the message with the YAML key that holds it.
    pub fn templates(&self) -> Vec<(String, &TemplateSrc)> {
        match self {
            Content::Qr { kind, value } => vec![(kind.key().to_owned(), value)],
            Content::Template(t) => {
                let mut out = vec![
                    ("template.name".to_owned(), &t.name),
                    ("template.language".to_owned(), &t.language),
                ];
                if let Some(h) = &t.header {
                    out.push(("template.header".to_owned(), h));
                }
                out.extend(
                    t.body
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (format!("template.body[{i}]"), b)),
                );
                out.extend(t.buttons.iter().enumerate().filter_map(|(i, b)| {
                    b.as_ref().map(|b| (format!("template.buttons[{i}]"), b))
                }));
                out
            }
        }
    }
}

fn check_vars(field: &str, vars: &[String], known: &BTreeSet<&str>) -> Result<(), String> {
    match vars.iter().find(|v| !known.contains(v.as_str())) {
        None => Ok(()),
        Some(unknown) => Err(format!(
            "`{field}` reads `{unknown}`, which does not exist; a template can read {}",
            known
                .iter()
                .filter(|k| !GLOBAL_NAMES.contains(k))
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

thread_local! {
    /// Line and column *inside* the template string of the last syntax error
    /// raised by [`TemplateSrc`]. serde's error type can only carry a message,
    /// and the loader needs both numbers to point into the YAML file.
    static TEMPLATE_ERROR_POS: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Takes the position left by the last template syntax error, if any.
pub fn take_template_error_pos() -> Option<(usize, usize)> {
    TEMPLATE_ERROR_POS.with(|c| c.take())
}

/// A minijinja template as written in YAML, syntax-checked on deserialization.
#[derive(Debug, Clone)]
pub struct TemplateSrc {
    pub source: String,
    /// Top-level variables the template reads.
    vars: Vec<String>,
}

impl TemplateSrc {
    /// Text without any `{{`, `{%` or `{#` needs no rendering at all.
    pub fn is_literal(&self) -> bool {
        !(self.source.contains("{{") || self.source.contains("{%") || self.source.contains("{#"))
    }
}

impl TemplateSrc {
    fn parse(source: &str) -> Result<Self, String> {
        let env = minijinja::Environment::empty();
        match env.template_from_str(source) {
            Ok(t) => Ok(TemplateSrc {
                vars: t.undeclared_variables(false).into_iter().collect(),
                source: source.to_owned(),
            }),
            Err(e) => Err(syntax_error(source, &e)),
        }
    }
}

impl<'de> Deserialize<'de> for TemplateSrc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a string (text or a minijinja template)",
            TemplateSrc::parse,
        ))
    }
}

/// Visits a scalar and checks it inside the visitor: only errors raised there
/// carry the scalar's own line and column.
struct CheckedStr<T>(&'static str, fn(&str) -> Result<T, String>);

impl<'de, T> Visitor<'de> for CheckedStr<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
    // YAML turns `when: true` into a bool; the operator meant the expression.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        (self.1)(if v { "true" } else { "false" }).map_err(E::custom)
    }
}

/// A minijinja expression (`when`, `for_each`), syntax-checked on deserialization.
#[derive(Debug, Clone)]
pub struct ExprSrc {
    pub source: String,
    vars: Vec<String>,
}

impl ExprSrc {
    fn parse(source: &str) -> Result<Self, String> {
        let env = minijinja::Environment::empty();
        match env.compile_expression(source) {
            Ok(e) => Ok(ExprSrc {
                vars: e.undeclared_variables(false).into_iter().collect(),
                source: source.to_owned(),
            }),
            Err(e) => Err(syntax_error(source, &e)),
        }
    }
}

impl<'de> Deserialize<'de> for ExprSrc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedStr(
            "an expression, e.g. `data.boletos | length > 0`",
            ExprSrc::parse,
        ))
    }
}

fn syntax_error(source: &str, e: &minijinja::Error) -> String {
    let line = e.line().unwrap_or(1);
    let col = e
        .range()
        .map(|r| {
            let start = r.start.min(source.len());
            let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
            source[line_start..start].chars().count() + 1
        })
        .unwrap_or(1);
    TEMPLATE_ERROR_POS.with(|c| c.set(Some((line, col))));
    format!(
        "template syntax error: {}",
        e.detail().unwrap_or("invalid syntax")
    )
}
