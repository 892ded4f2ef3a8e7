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
mod test;
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
    take_template_error_pos, take_unknown_read, unknown_read_message, ExprSrc, TemplateSrc,
    CALL_NAMES, CONTEXT_NAMES, GLOBAL_NAMES,
};
pub use test::{default_request, merge, Expectation, ExpectedMessage, ExpectedTemplate, TestSpec};
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
    /// Tokens that sign in to the studio (`/studio`) and see only this
    /// tenant; same forms as `tokens`. None: only the admin token sees it.
    #[serde(default)]
    pub studio_tokens: Vec<TokenSpec>,
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
    /// What happens when an edited integration file would make requests
    /// that were answered fail (replayed from the journal before the edit
    /// goes live): `warn` (default) serves the edit and reports it, `block`
    /// keeps the previous version.
    #[serde(default)]
    pub reload_guard: ReloadGuard,
}

/// See [`TenantSpec::reload_guard`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReloadGuard {
    /// Serve the edit; report what it changes.
    #[default]
    Warn,
    /// Keep the previous version when a request that was answered would now fail.
    Block,
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
    #[serde(deserialize_with = "at_most_max_messages")]
    #[schemars(with = "Vec<MessageSpec>")]
    pub messages: Vec<MessageSpec>,
    /// The operators' tests of this file: a request, canned `enrich`
    /// answers, the expected answer. A file whose tests fail is not loaded.
    #[serde(default)]
    pub tests: Vec<TestSpec>,
}

/// Most messages one integration file may list: a file of tens of thousands
/// costs gigabytes to compile; a long list from data is `for_each`'s job.
pub const MAX_MESSAGES_PER_FILE: usize = 500;

fn at_most_max_messages<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<MessageSpec>, D::Error> {
    struct Capped;
    impl<'de> serde::de::Visitor<'de> for Capped {
        type Value = Vec<MessageSpec>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(f, "a list of at most {MAX_MESSAGES_PER_FILE} messages")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(m) = seq.next_element()? {
                if out.len() == MAX_MESSAGES_PER_FILE {
                    return Err(serde::de::Error::custom(format!(
                        "more than {MAX_MESSAGES_PER_FILE} messages in one file; split them over several integrations, or build a long list with `for_each`"
                    )));
                }
                out.push(m);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Capped)
}
