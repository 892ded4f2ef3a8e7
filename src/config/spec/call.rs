//! `enrich:`: the upstream calls of an integration, in dependency order.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config::FieldPath;

use super::template::{check_vars, TemplateSrc, CALL_NAMES, CONTEXT_NAMES, GLOBAL_NAMES};
use super::values::{checked_map, is_identifier, DurationSpec, Origin};

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
    pub body: Option<BodyTree>,
    pub timeout: Option<DurationSpec>,
    pub retries: u32,
    pub cache: Option<DurationSpec>,
    pub max_bytes: Option<usize>,
    /// Set exactly when the YAML says `on_error: fallback` (checked while
    /// reading), so it alone decides what a failure means.
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
    body: Option<BodyTree>,
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
        for name in raw.headers.keys() {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("`{name}` is not a valid HTTP header name"));
            }
        }
        let call = CallSpec {
            method,
            url: raw.url,
            query: raw.query,
            headers: raw.headers,
            body: raw.body,
            timeout: raw.timeout,
            retries: raw.retries.unwrap_or(0),
            cache: raw.cache,
            max_bytes: raw.max_bytes,
            fallback: raw.fallback,
            origin,
            deps: BTreeSet::new(),
        };
        let mut deps = BTreeSet::<String>::new();
        for (field, t) in call.templates() {
            check_vars(&field.to_string(), t.vars(), &known)?;
            deps.extend(t.enrich_reads());
        }
        Ok(CallSpec { deps, ..call })
    }
}

impl CallSpec {
    /// Every template of the call with its path inside the call
    /// (`url`, `query.page`, `headers.Authorization`, `body.customer.id`).
    pub fn templates(&self) -> Vec<(FieldPath, &TemplateSrc)> {
        let mut out = vec![(FieldPath::key("url"), &self.url)];
        out.extend(
            self.query
                .iter()
                .map(|(k, v)| (FieldPath::key("query").then(k), v)),
        );
        out.extend(
            self.headers
                .iter()
                .map(|(k, v)| (FieldPath::key("headers").then(k), v)),
        );
        if let Some(body) = &self.body {
            body.templates(FieldPath::key("body"), &mut out);
        }
        out
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

/// A call's JSON `body` as one parsed tree whose strings are templates,
/// each checked where it stands (so its error has its own line).
#[derive(Debug, Clone)]
pub enum BodyTree {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(TemplateSrc),
    List(Vec<BodyTree>),
    Map(Vec<(String, BodyTree)>),
}

impl BodyTree {
    fn templates<'a>(&'a self, at: FieldPath, out: &mut Vec<(FieldPath, &'a TemplateSrc)>) {
        match self {
            BodyTree::Text(t) => out.push((at, t)),
            BodyTree::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.templates(at.at(i), out);
                }
            }
            BodyTree::Map(entries) => {
                for (k, v) in entries {
                    v.templates(at.then(k), out);
                }
            }
            BodyTree::Null | BodyTree::Bool(_) | BodyTree::Number(_) => {}
        }
    }
}

impl<'de> Deserialize<'de> for BodyTree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BodyTree;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value (its strings are templates)")
            }
            fn visit_unit<E: de::Error>(self) -> Result<BodyTree, E> {
                Ok(BodyTree::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<BodyTree, E> {
                Ok(BodyTree::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<BodyTree, E> {
                Ok(BodyTree::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BodyTree, E> {
                Ok(BodyTree::Number(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BodyTree, E> {
                Ok(BodyTree::Number(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<BodyTree, E> {
                serde_json::Number::from_f64(v)
                    .map(BodyTree::Number)
                    .ok_or_else(|| E::custom("a number in `body` must be finite"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BodyTree, E> {
                TemplateSrc::parse(v).map(BodyTree::Text).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BodyTree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(BodyTree::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BodyTree, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<BodyKey>()? {
                    entries.push((key.0, map.next_value()?));
                }
                Ok(BodyTree::Map(entries))
            }
            fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<BodyTree, A::Error> {
                Err(de::Error::custom("`body` cannot hold YAML tags"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A key of a `body` mapping: JSON keys are strings.
struct BodyKey(String);

impl<'de> Deserialize<'de> for BodyKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = BodyKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key (JSON keys are strings)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BodyKey, E> {
                Ok(BodyKey(v.to_owned()))
            }
        }
        d.deserialize_str(V)
    }
}
