//! A loaded tenant and its compiled integrations: what [`super::load`]
//! produces and the request path reads.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::catalogue::Catalogue;
use super::check::TenantFacts;
use super::compile::{CompileOptions, Program};
use super::spec::{self, Origin, TestSpec};

#[derive(Debug, Clone)]
pub struct Tenant {
    /// The folder's name.
    pub name: String,
    pub client_ids: Vec<u64>,
    /// SHA-256 of each accepted token: comparing digests keeps the comparison
    /// constant-time whatever the tokens' lengths.
    pub token_digests: Vec<[u8; 32]>,
    /// SHA-256 of each `studio_tokens` entry: who may open this tenant's
    /// pages in the studio.
    pub studio_token_digests: Vec<[u8; 32]>,
    pub integrations: BTreeMap<String, Arc<Integration>>,
    /// Short SHA-256 of `tenant.yaml`, to skip re-reading an unchanged file.
    pub hash: String,
    /// When `tenant.yaml` was last modified, if the file system says.
    pub settings_modified: Option<SystemTime>,
    pub loaded_at: SystemTime,
    /// `secrets:`; only upstream-call templates can read them.
    pub secrets: Secrets,
    /// `upstreams:`; when not empty, the only origins calls may reach.
    pub upstreams: Vec<Origin>,
    /// The `upstreams:` entries that set limits, as numbers; the request
    /// path keeps the slots and breakers (`crate::guard`).
    pub upstream_limits: Vec<(Origin, UpstreamLimits)>,
    pub limits: Limits,
    /// `templates.json`: the WhatsApp templates the company has, when the
    /// folder has one. A broken file keeps the last good catalogue.
    pub catalogue: Option<Arc<Catalogue>>,
    /// Short SHA-256 of the catalogue in use: integrations are checked
    /// against it, so they are reused only while it stays the same.
    pub catalogue_hash: Option<String>,
    /// `reload_guard:`, for the shadow check of edited integrations.
    pub reload_guard: spec::ReloadGuard,
    pub(super) opts: CompileOptions,
    /// What the load-time checks knew of this tenant; its integrations are
    /// checked again when it changes.
    pub(super) facts: TenantFacts,
    /// The request-time state of this version (`crate::state`).
    pub attached: super::attached::Attached,
}

impl Tenant {
    /// This tenant with its integration `name` set to `integration` (removed
    /// when `None`): how a reload keeps an integration's previous version.
    pub fn with_integration(&self, name: &str, integration: Option<Arc<Integration>>) -> Tenant {
        let mut integrations = self.integrations.clone();
        match integration {
            Some(i) => integrations.insert(name.to_owned(), i),
            None => integrations.remove(name),
        };
        Tenant {
            integrations,
            ..self.clone()
        }
    }

    /// The options this tenant's integrations are compiled with, to compile
    /// a draft exactly as the file would be.
    pub fn compile_options(&self) -> &CompileOptions {
        &self.opts
    }

    /// What the checks know of this tenant (secret names, upstreams), to
    /// check a draft exactly as the file would be.
    pub fn facts(&self) -> &TenantFacts {
        &self.facts
    }
}

/// A tenant's limits, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub concurrency: u32,
    pub deadline: std::time::Duration,
    pub max_messages: usize,
    pub max_output_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 256 * 1024,
        concurrency: 64,
        deadline: std::time::Duration::from_secs(10),
        max_messages: 50,
        max_output_bytes: 64 * 1024,
    };

    pub(super) fn from_spec(spec: &spec::LimitsSpec) -> Limits {
        let d = Limits::DEFAULT;
        Limits {
            max_body_bytes: spec.max_body_bytes.unwrap_or(d.max_body_bytes),
            concurrency: spec.concurrency.unwrap_or(d.concurrency).max(1),
            deadline: spec.deadline.map_or(d.deadline, |x| x.0),
            max_messages: spec.max_messages.unwrap_or(d.max_messages),
            max_output_bytes: spec.max_output_bytes.unwrap_or(d.max_output_bytes),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// What protects one origin of a tenant from recado's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamLimits {
    /// Calls in flight at once; `None`: no limit.
    pub max_in_flight: Option<u32>,
    /// Failed calls in a row that open the breaker, and how long it stays
    /// open; `None`: no breaker.
    pub breaker: Option<(u32, std::time::Duration)>,
}

impl UpstreamLimits {
    /// The limits an `upstreams:` entry sets, if any.
    pub(super) fn from_spec(spec: &spec::UpstreamSpec) -> Option<UpstreamLimits> {
        let limits = UpstreamLimits {
            max_in_flight: spec.max_in_flight,
            breaker: spec.breaker.map(|b| (b.failures, b.cool_down.0)),
        };
        (limits.max_in_flight.is_some() || limits.breaker.is_some()).then_some(limits)
    }
}

/// The tenant's secrets as a template value. `Debug` never shows them.
#[derive(Clone)]
pub struct Secrets(pub minijinja::Value);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(***)")
    }
}

#[derive(Debug)]
pub struct Integration {
    pub name: String,
    /// Path relative to the integrations folder, for error messages.
    pub file: String,
    /// Short SHA-256 of the file's bytes, to tell versions apart.
    pub hash: String,
    pub loaded_at: SystemTime,
    /// The file's text as loaded: the studio shows the version that serves.
    pub source: Arc<str>,
    pub program: Program,
    /// The file's `tests:`; see `crate::testing`.
    pub tests: Vec<TestSpec>,
    /// Where each value of `source` is: made on the first request that
    /// fails, to name the file's line (see `crate::explain`), then kept
    /// for this version of the file.
    pub positions: std::sync::OnceLock<super::yaml::Positions>,
    /// The request-time state of this version (`crate::state`).
    pub attached: super::attached::Attached,
}

impl Integration {
    pub fn positions(&self) -> &super::yaml::Positions {
        self.positions
            .get_or_init(|| super::yaml::Positions::of(self.source.as_bytes()))
    }
}
