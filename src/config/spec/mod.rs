//! The YAML schema, exactly as operators write it.
//!
//! Everything here is checked *while* serde_yaml deserializes, so that every
//! error carries the file's line and column: serde_yaml stamps the position of
//! the value being read on any error raised inside a `Deserialize` impl. That
//! is why template syntax and variable names are checked in the impls below
//! rather than in a later pass that would have lost the position.

mod call;
mod message;
mod template;
mod values;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) use call::RawCall;
pub use call::{BodyTree, CallSpec, Calls, HttpMethod, OnError};
pub(crate) use message::RawMessage;
pub use message::{
    content_keys, Content, ForEach, MessageSpec, QrKind, TemplateContent, TEMPLATE_KEY,
};
pub use template::{
    take_template_error_pos, ExprSrc, TemplateSrc, CALL_NAMES, CONTEXT_NAMES, GLOBAL_NAMES,
};
pub(crate) use values::RawUpstream;
pub use values::{
    BreakerSpec, DurationSpec, Origin, SecretSpec, Timezone, TokenSpec, UpstreamSpec,
};

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
    /// set, every call must target one of them. An entry may also limit the
    /// calls in flight to it and stop calling it while it keeps failing.
    #[serde(default)]
    pub upstreams: Vec<UpstreamSpec>,
    /// Overrides of the per-tenant limits (see `docs/integrations.md`).
    #[serde(default)]
    pub limits: LimitsSpec,
}

/// Per-tenant limits; anything left out keeps its default.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Largest request body, in bytes (at most 256 KiB, the server's own cap).
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
