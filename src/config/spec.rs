//! The YAML schema, exactly as operators write it.
//!
//! Everything here is checked *while* serde_yaml deserializes, so that every
//! error carries the file's line and column: serde_yaml stamps the position of
//! the value being read on any error raised inside a `Deserialize` impl. That
//! is why template syntax and variable names are checked in the impls below
//! rather than in a later pass that would have lost the position.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::secret::Secret;

/// `integrations/<tenant>/tenant.yaml`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    /// The platform's `clientId`s that belong to this tenant.
    pub client_ids: Vec<u64>,
    /// Accepted tokens: several at once so a tenant can rotate without downtime.
    pub tokens: Vec<TokenSpec>,
    /// IANA zone for date filters; dates are shown in this zone.
    #[serde(default)]
    pub timezone: Timezone,
    /// Values only upstream-call templates can read, as `secrets.<name>`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSpec>,
    /// `scheme://host[:port]` origins this tenant's calls may reach. When
    /// set, every call must target one of them.
    #[serde(default)]
    pub upstreams: Vec<Origin>,
    /// Overrides of the per-tenant limits (see `docs/integrations.md`).
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// Per-tenant limits; anything left out keeps its default.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Largest request body, in bytes (at most the server's `--body-limit`).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Requests of this tenant served at once; more get 429 with Retry-After.
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Longest time one request may take, upstream calls included.
    #[serde(default)]
    pub deadline: Option<DurationSpec>,
    /// Template fuel: bounds the work one template may do (loops, calls).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Most messages one answer may have.
    #[serde(default)]
    pub max_messages: Option<usize>,
    /// Largest answer, in bytes of JSON.
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
}

/// A secret as written in `tenant.yaml` (literal, `${env:NAME}`, `${file:PATH}`).
#[derive(Debug)]
pub struct SecretSpec(pub Secret);

impl<'de> Deserialize<'de> for SecretSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a secret: a literal, `${env:NAME}` or `${file:PATH}`",
            |s| Secret::resolve(s).map(SecretSpec),
        ))
    }
}

/// `scheme://host[:port]`, normalised (lowercase, default port dropped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin(pub String);

impl Origin {
    pub fn parse(s: &str) -> Result<Origin, String> {
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`{s}` must be an http(s) URL with a host"));
        }
        Ok(Origin(url.origin().ascii_serialization()))
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "an origin such as `https://erp.example.com`",
            Origin::parse,
        ))
    }
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSpec {
    /// Free text for the people who maintain the file.
    #[serde(default)]
    pub description: Option<String>,
    /// Upstream HTTP calls whose JSON answers templates read as `enrich.<name>`.
    #[serde(default)]
    pub enrich: Calls,
    /// Longest time all calls together may take (default 5s).
    #[serde(default)]
    pub deadline: Option<DurationSpec>,
    /// The messages, in the order the contact receives them.
    pub messages: Vec<MessageSpec>,
}

/// A duration as operators write it: `500ms`, `2s`, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a duration such as `500ms`, `2s` or `5m`",
            |s| {
                humantime::parse_duration(s).map(DurationSpec).map_err(|e| {
                    format!("`{s}` is not a duration ({e}); write e.g. `500ms`, `2s` or `5m`")
                })
            },
        ))
    }
}

/// The `enrich:` mapping: named calls, ordered so that every call comes after
/// the calls it reads. A cycle is refused here, with the mapping's position.
#[derive(Debug, Default)]
pub struct Calls {
    /// In dependency order.
    pub calls: Vec<(String, CallSpec)>,
}

impl<'de> Deserialize<'de> for Calls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map::<D, BTreeMap<String, CallSpec>, _>(
            d,
            "a mapping of call names to upstream calls",
        )
    }
}

impl TryFrom<BTreeMap<String, CallSpec>> for Calls {
    type Error = String;

    fn try_from(raw: BTreeMap<String, CallSpec>) -> Result<Self, String> {
        order_calls(raw)
    }
}

/// Deserializes a mapping as `Raw`, then checks and converts it into `T`
/// inside the visitor: only errors raised there carry the mapping's own
/// position (not the enclosing list's).
fn checked_map<'de, D, Raw, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Raw: Deserialize<'de>,
    T: TryFrom<Raw, Error = String>,
{
    struct V<Raw, T>(&'static str, std::marker::PhantomData<fn(Raw) -> T>);
    impl<'de, Raw: Deserialize<'de>, T: TryFrom<Raw, Error = String>> Visitor<'de> for V<Raw, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = Raw::deserialize(MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(expecting, std::marker::PhantomData))
}

/// Topological order of the calls by their `enrich.<name>` reads.
fn order_calls(mut raw: BTreeMap<String, CallSpec>) -> Result<Calls, String> {
    for (name, call) in &raw {
        if !is_identifier(name) {
            return Err(format!(
                "call name `{name}` must be a simple name (letters, digits, `_`)"
            ));
        }
        for dep in &call.deps {
            if !raw.contains_key(dep) {
                return Err(format!(
                    "call `{name}` reads `enrich.{dep}`, but there is no call named `{dep}`"
                ));
            }
        }
    }
    let mut calls = Vec::with_capacity(raw.len());
    let mut done = BTreeSet::new();
    while !raw.is_empty() {
        let ready: Vec<String> = raw
            .iter()
            .filter(|(_, c)| c.deps.iter().all(|d| done.contains(d)))
            .map(|(n, _)| n.clone())
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = raw.keys().map(String::as_str).collect();
            return Err(format!(
                "the calls {} read each other in a cycle; one of them must not read `enrich`",
                stuck.join(", ")
            ));
        }
        for name in ready {
            let call = raw.remove(&name).expect("listed above");
            done.insert(name.clone());
            calls.push((name, call));
        }
    }
    Ok(Calls { calls })
}

/// One upstream call. Every string is a template over the request, the
/// answers of other calls (`enrich`) and the tenant's `secrets`.
#[derive(Debug)]
pub struct CallSpec {
    pub method: HttpMethod,
    pub url: TemplateSrc,
    pub query: BTreeMap<String, TemplateSrc>,
    pub headers: BTreeMap<String, TemplateSrc>,
    /// A JSON body; its string values are templates.
    pub body: Option<serde_yaml::Value>,
    pub body_templates: Vec<TemplateSrc>,
    pub timeout: Option<DurationSpec>,
    pub retries: u32,
    pub cache: Option<DurationSpec>,
    pub max_bytes: Option<usize>,
    pub on_error: OnError,
    pub fallback: Option<serde_yaml::Value>,
    /// The literal `scheme://host[:port]` the URL template starts with, if any.
    pub origin: Option<Origin>,
    /// Calls this one reads (`enrich.<name>`).
    pub deps: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl HttpMethod {
    /// Methods that may be retried without doing the thing twice.
    pub fn idempotent(self) -> bool {
        !matches!(self, HttpMethod::Post | HttpMethod::Patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// The whole request fails; the platform sends nothing.
    #[default]
    Fail,
    /// The call's `fallback` value is used instead.
    Fallback,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CallFields")]
pub(crate) struct RawCall {
    /// HTTP method; default GET.
    #[serde(default)]
    method: Option<HttpMethod>,
    /// The URL; `scheme://host[:port]` must be plain text unless the tenant
    /// lists `upstreams`. Request data may fill in the path.
    url: TemplateSrc,
    /// Query parameters, added to the URL (values are templates).
    #[serde(default)]
    query: BTreeMap<String, TemplateSrc>,
    /// Request headers (values are templates; `secrets.<name>` is readable).
    #[serde(default)]
    headers: BTreeMap<String, TemplateSrc>,
    /// A JSON body; its string values are templates.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    body: Option<serde_yaml::Value>,
    /// Per attempt; default 2s.
    #[serde(default)]
    timeout: Option<DurationSpec>,
    /// Extra attempts on connection errors and 5xx (GET, PUT, DELETE, HEAD); at most 5.
    #[serde(default)]
    retries: Option<u32>,
    /// Keep a successful answer this long (`30s`, `5m`); no caching without it.
    #[serde(default)]
    cache: Option<DurationSpec>,
    /// Largest answer accepted, in bytes; default 1 MiB.
    #[serde(default)]
    max_bytes: Option<usize>,
    /// What a failure means: `fail` (default: nothing is sent) or `fallback`.
    #[serde(default)]
    on_error: Option<OnError>,
    /// The answer to use when the call fails, with `on_error: fallback`.
    #[serde(default)]
    #[schemars(with = "Option<serde_json::Value>")]
    fallback: Option<serde_yaml::Value>,
}

/// Names an upstream-call template may read, beyond the request's.
pub const CALL_NAMES: &[&str] = &["enrich", "secrets"];

impl<'de> Deserialize<'de> for CallSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map::<D, RawCall, _>(d, "an upstream call: a mapping with at least `url`")
    }
}

impl TryFrom<RawCall> for CallSpec {
    type Error = String;

    fn try_from(raw: RawCall) -> Result<Self, String> {
        let method = raw.method.unwrap_or(HttpMethod::Get);
        let origin = literal_origin(&raw.url.source)?;
        let mut body_templates = Vec::new();
        if let Some(body) = &raw.body {
            collect_body_templates(body, &mut body_templates)?;
        }
        if raw.on_error == Some(OnError::Fallback) && raw.fallback.is_none() {
            return Err("`on_error: fallback` needs a `fallback` value".into());
        }
        if raw.fallback.is_some() && raw.on_error != Some(OnError::Fallback) {
            return Err(
                "`fallback` is only used with `on_error: fallback`; add it or remove `fallback`"
                    .into(),
            );
        }
        if raw.retries.is_some_and(|r| r > 5) {
            return Err("`retries` is at most 5".into());
        }
        if raw.retries.is_some_and(|r| r > 0) && !method.idempotent() {
            return Err(format!(
                "{method:?} is not idempotent: it is never retried, remove `retries`"
            ));
        }
        let known: BTreeSet<&str> = CONTEXT_NAMES
            .iter()
            .chain(GLOBAL_NAMES)
            .chain(CALL_NAMES)
            .copied()
            .collect();
        let mut deps = BTreeSet::new();
        let templates = std::iter::once(("url".to_owned(), &raw.url))
            .chain(raw.query.iter().map(|(k, v)| (format!("query.{k}"), v)))
            .chain(raw.headers.iter().map(|(k, v)| (format!("headers.{k}"), v)))
            .chain(body_templates.iter().map(|t| ("body".to_owned(), t)));
        for (field, t) in templates {
            check_vars(&field, &t.vars, &known)?;
            deps.extend(t.enrich_reads());
        }
        for name in raw.headers.keys() {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`{name}` is not a valid HTTP header name"));
            }
        }
        Ok(CallSpec {
            method,
            url: raw.url,
            query: raw.query,
            headers: raw.headers,
            body: raw.body,
            body_templates,
            timeout: raw.timeout,
            retries: raw.retries.unwrap_or(0),
            cache: raw.cache,
            max_bytes: raw.max_bytes,
            on_error: raw.on_error.unwrap_or_default(),
            fallback: raw.fallback,
            origin,
            deps,
        })
    }
}

/// The `scheme://host[:port]` a URL template starts with, when that part is
/// plain text. Request data can then only fill in the path and query.
fn literal_origin(url: &str) -> Result<Option<Origin>, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "`url` must start with `http://` or `https://`, got `{url}`"
        ));
    };
    if !matches!(scheme, "http" | "https") {
        return Err(format!(
            "`url` must start with `http://` or `https://`, got `{url}`"
        ));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains("{{") || authority.contains("{%") {
        // A templated host is allowed only through the tenant's `upstreams`.
        return Ok(None);
    }
    Origin::parse(&format!("{scheme}://{authority}")).map(Some)
}

fn collect_body_templates(v: &serde_yaml::Value, out: &mut Vec<TemplateSrc>) -> Result<(), String> {
    match v {
        serde_yaml::Value::String(s) => out.push(TemplateSrc::parse(s)?),
        serde_yaml::Value::Sequence(items) => {
            for i in items {
                collect_body_templates(i, out)?;
            }
        }
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                if !k.is_string() {
                    return Err("`body` keys must be strings".into());
                }
                collect_body_templates(v, out)?;
            }
        }
        serde_yaml::Value::Tagged(_) => return Err("`body` cannot hold YAML tags".into()),
        _ => {}
    }
    Ok(())
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
#[derive(Debug, Deserialize, JsonSchema)]
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
pub const CONTEXT_NAMES: &[&str] = &["id", "clientId", "contact", "data", "enrich"];
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
        checked_map::<D, RawMessage, _>(
            d,
            "a message: a mapping with one of `text`, `file`, `image`, `audio`, `template`",
        )
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
    /// Dotted paths read below the top level (`enrich.customer`).
    nested: Vec<String>,
}

impl TemplateSrc {
    /// The calls this template reads: `enrich.<name>`.
    pub fn enrich_reads(&self) -> impl Iterator<Item = String> + '_ {
        self.nested
            .iter()
            .filter_map(|p| p.strip_prefix("enrich."))
            .map(|rest| rest.split('.').next().unwrap_or(rest).to_owned())
    }

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
                nested: t.undeclared_variables(true).into_iter().collect(),
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
