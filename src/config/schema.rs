//! JSON Schemas of the two file kinds, derived from the very types the loader
//! deserializes (so they cannot drift), for editors: `recado schema`.
//! Types with hand-written `Deserialize` impls describe themselves here.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use super::spec::{
    CallSpec, Calls, DurationSpec, ExprSrc, IntegrationSpec, MessageSpec, Origin, QrKind, RawCall,
    RawMessage, RawUpstream, SecretSpec, TemplateSrc, TenantSpec, Timezone, TokenSpec,
    UpstreamSpec, TEMPLATE_KEY,
};

/// The schema of `integrations/<tenant>/<integration>.yaml`.
pub fn integration() -> Schema {
    titled(schemars::schema_for!(IntegrationSpec), "recado integration")
}

/// The schema of `integrations/<tenant>/tenant.yaml`.
pub fn tenant() -> Schema {
    titled(schemars::schema_for!(TenantSpec), "recado tenant")
}

fn titled(mut schema: Schema, title: &str) -> Schema {
    schema.insert("title".into(), title.into());
    schema
}

macro_rules! string_schema {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

string_schema!(TemplateSrc, "Template", {
    "type": "string",
    "description": "Text, or a minijinja template over contact, data, id, clientId (and enrich)."
});
string_schema!(ExprSrc, "Expression", {
    "type": ["string", "boolean"],
    "description": "A minijinja expression, e.g. `data.boletos | length > 0`."
});
string_schema!(TokenSpec, "Token", {
    "type": "string",
    "minLength": 8,
    "description": "A token: a literal, `${env:NAME}`, `${file:PATH}` or `sha256:<64 hex digits>`."
});
string_schema!(SecretSpec, "Secret", {
    "type": "string",
    "description": "A literal, `${env:NAME}` or `${file:PATH}`."
});
string_schema!(Origin, "Origin", {
    "type": "string",
    "pattern": "^https?://[^/?#]+/?$",
    "description": "`scheme://host[:port]`, e.g. `https://erp.example.com`."
});
string_schema!(DurationSpec, "Duration", {
    "type": "string",
    "pattern": "^[0-9]+(\\.[0-9]+)?\\s*(ns|us|ms|s|m|h|d)$",
    "description": "A duration: `500ms`, `2s`, `5m`."
});
string_schema!(Timezone, "Timezone", {
    "type": "string",
    "description": "An IANA time zone, e.g. `America/Sao_Paulo`."
});

impl JsonSchema for MessageSpec {
    fn schema_name() -> Cow<'static, str> {
        "Message".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawMessage::json_schema(generator);
        // Exactly one content key.
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

impl JsonSchema for CallSpec {
    fn schema_name() -> Cow<'static, str> {
        "Call".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        RawCall::json_schema(generator)
    }
}

impl JsonSchema for Calls {
    fn schema_name() -> Cow<'static, str> {
        "Calls".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let call = generator.subschema_for::<CallSpec>();
        json_schema!({
            "type": "object",
            "description": "Upstream calls by name; templates read each answer as `enrich.<name>`.",
            "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
            "additionalProperties": call
        })
    }
}

impl JsonSchema for UpstreamSpec {
    fn schema_name() -> Cow<'static, str> {
        "Upstream".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [generator.subschema_for::<Origin>(), generator.subschema_for::<RawUpstream>()]
        })
    }
}
