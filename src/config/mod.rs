//! Config: the `integrations/` folder, loaded and compiled into a [`Snapshot`]
//! that the request path only reads. Inert data: nothing here knows of HTTP,
//! metrics or the upstream client; request-time state lives beside it
//! (`crate::state`), keyed by tenant and integration.
//!
//! Layout: `integrations/<tenant>/tenant.yaml` plus one
//! `integrations/<tenant>/<integration>.yaml` per webhook. A broken
//! integration file is reported and left out; its tenant still serves the
//! others. A broken `tenant.yaml` leaves the whole tenant out.
//!
//! Stages, one module each: [`spec`] (the YAML's types, checked while read)
//! → [`yaml`] (positions) → [`compile`] (templates) → [`load`] (one tenant
//! folder into a [`tenant::Tenant`], with its [`catalogue`] of WhatsApp templates) → [`snapshot`] (all tenants, reload) → [`watch`] (when to reload).

pub mod attached;
pub mod catalogue;
pub mod check;
pub mod compile;
pub mod error;
pub mod holes;
pub mod interpolation;
pub mod load;
pub mod schema;
pub mod secret;
pub mod snapshot;
pub mod spec;
pub mod tenant;
pub mod watch;
pub mod yaml;

pub use error::{ConfigError, FieldPath};
pub use load::{
    is_integration_name, load_integration, load_tenant_from, set_test_runner, test_position,
    TestEnv, TestFailed, TestRunner,
};
pub use snapshot::{load_dir, reload, Scope, Snapshot};
pub use tenant::{Integration, Limits, Secrets, Tenant, UpstreamLimits};

pub const TENANT_FILE: &str = "tenant.yaml";
