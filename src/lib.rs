//! recado answers a chat platform's scheduled-message webhooks from YAML.
//!
//! The request's path, one module per stage, data flowing one way:
//! [`server`] (receive) → [`request`] (validate) → [`tenant`] (find and
//! authenticate) → [`render`] (templates) → [`output`] (contract check) →
//! [`server`]/[`error`] (respond). [`config`] loads and compiles the YAML
//! beside that path; the path only reads its snapshots.

pub mod config;
pub mod enrich;
pub mod error;
pub mod filters;
pub mod guard;
pub mod hook;
pub mod ops;
pub mod output;
pub mod render;
pub mod request;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tenant;
