//! `tests:`: the operators' own unit tests, kept in the integration file.
//! Each one is a request (merged over a default platform request), canned
//! answers for the `enrich:` calls, and the whole expected answer, written
//! with the message keys of `messages:` (`text`, `file`, `template`, …).
//!
//! Only the data lives here; running a test needs the render path, which the
//! inert config cannot import (see `crate::testing`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};

use super::message::{one_content, QrKind, TEMPLATE_KEY};
use super::values::checked_map;

/// One entry of `tests:`.
#[derive(Debug, Clone)]
pub struct TestSpec {
    pub name: String,
    /// Merged over the default platform request, mapping by mapping.
    pub request: serde_json::Map<String, serde_json::Value>,
    /// Canned answers of the `enrich:` calls, by call name.
    pub enrich: BTreeMap<String, serde_json::Value>,
    pub expect: Expectation,
}

/// What a test expects: the whole answer, or an error.
#[derive(Debug, Clone)]
pub enum Expectation {
    Messages(Vec<ExpectedMessage>),
    /// An error code (`render_failed`) or text the error's message contains.
    Error(String),
}

/// One message of an expected answer, in the YAML's keys.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectedMessage {
    Qr { kind: QrKind, value: String },
    Template(ExpectedTemplate),
}

/// An expected official-API template message; values listed in order, as in
/// `messages:` (recado numbers the indexes).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectedTemplate {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub body: Vec<String>,
    /// `~` for a button without a parameter.
    #[serde(default)]
    pub buttons: Vec<Option<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TestFields")]
pub(crate) struct RawTest {
    /// Shown when the test fails; unique within the file.
    name: String,
    /// Merged over the default request (id 1, the tenant's first clientId,
    /// origin SCHEDULED_MESSAGE, a contact with uid, key and name): give only
    /// what the test is about, e.g. `data: {valor: 10}`.
    #[serde(default)]
    request: Option<serde_json::Map<String, serde_json::Value>>,
    /// The answer each `enrich:` call gives in this test, by call name.
    /// Tests never call upstreams: every call needs an answer here.
    #[serde(default)]
    enrich: BTreeMap<String, serde_json::Value>,
    /// The whole answer, message by message, with the keys of `messages:`.
    #[serde(default)]
    expect: Option<Vec<ExpectedMessage>>,
    /// The request must fail: an error code (`render_failed`) or text the
    /// error's message contains.
    #[serde(default)]
    expect_error: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ExpectedMessageFields")]
pub(crate) struct RawExpected {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    audio: Option<String>,
    #[serde(default)]
    template: Option<ExpectedTemplate>,
}

impl<'de> Deserialize<'de> for TestSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map::<D, RawTest, _>(
            d,
            "a test: a mapping with `name`, `request`, `enrich` and `expect` or `expect_error`",
        )
    }
}

impl TryFrom<RawTest> for TestSpec {
    type Error = String;

    fn try_from(raw: RawTest) -> Result<Self, String> {
        let expect = match (raw.expect, raw.expect_error) {
            (Some(messages), None) => Expectation::Messages(messages),
            (None, Some(error)) if !error.trim().is_empty() => Expectation::Error(error),
            (None, Some(_)) => {
                return Err("`expect_error` is empty: give an error code such as `render_failed`, or text of the message".into())
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "test \"{}\" has both `expect` and `expect_error`; keep the one this request should give",
                    raw.name
                ))
            }
            (None, None) => {
                return Err(format!(
                    "test \"{}\" expects nothing: add `expect:` (the messages) or `expect_error:` (an error code)",
                    raw.name
                ))
            }
        };
        Ok(TestSpec {
            name: raw.name,
            request: raw.request.unwrap_or_default(),
            enrich: raw.enrich,
            expect,
        })
    }
}

impl<'de> Deserialize<'de> for ExpectedMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_map::<D, RawExpected, _>(
            d,
            "an expected message: a mapping with one of `text`, `file`, `image`, `audio`, `template`",
        )
    }
}

impl TryFrom<RawExpected> for ExpectedMessage {
    type Error = String;

    fn try_from(raw: RawExpected) -> Result<Self, String> {
        Ok(
            match one_content(
                "an expected message",
                [raw.text, raw.file, raw.image, raw.audio],
                raw.template,
            )? {
                Ok((kind, value)) => ExpectedMessage::Qr { kind, value },
                Err(template) => ExpectedMessage::Template(template),
            },
        )
    }
}

impl JsonSchema for TestSpec {
    fn schema_name() -> Cow<'static, str> {
        "Test".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawTest::json_schema(generator);
        schema.insert(
            "oneOf".into(),
            serde_json::json!([{ "required": ["expect"] }, { "required": ["expect_error"] }]),
        );
        schema
    }
}

impl JsonSchema for ExpectedMessage {
    fn schema_name() -> Cow<'static, str> {
        "ExpectedMessage".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawExpected::json_schema(generator);
        let one_of: Vec<serde_json::Value> = QrKind::ALL
            .iter()
            .map(|k| k.key())
            .chain([TEMPLATE_KEY])
            .map(|k| serde_json::json!({ "required": [k] }))
            .collect();
        schema.insert("oneOf".into(), one_of.into());
        schema
    }
}

/// The default request a test's `request:` is merged over. The contact's
/// name is plain ASCII so a test about names sets its own.
pub fn default_request(client_id: u64) -> serde_json::Value {
    serde_json::json!({
        "id": 1,
        "clientId": client_id,
        "origin": "SCHEDULED_MESSAGE",
        "contact": {
            "uid": "test-contact",
            "type": "WHATSAPP",
            "key": "5511999999999",
            "name": "Maria Teste"
        },
        "data": {}
    })
}

/// `over` merged onto `base`: mappings key by key, anything else replaced.
pub fn merge(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(base), serde_json::Value::Object(over)) => {
            for (k, v) in over {
                match base.get_mut(k) {
                    Some(b) => merge(b, v),
                    None => {
                        base.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}
