//! recado answers a chat platform's scheduled-message webhooks from YAML.
//!
//! The request's path, one module per stage, data flowing one way:
//! [`server`] (receive) → [`hook`] (the webhook: [`request`] validate →
//! [`tenant`] find and authenticate → [`enrich`] upstream calls → [`render`]
//! templates → [`output`] contract check) → [`error`] (respond).
//! [`config`] loads and compiles the YAML beside that path as inert data; the
//! path only reads its snapshots. [`state`] holds what handlers share and the
//! request-time state of each tenant; [`telemetry`] records every answer.

pub mod admin;
pub mod config;
pub mod enrich;
pub mod error;
pub mod explain;
pub mod filters;
pub mod forwarded;
pub mod guard;
pub mod hook;
pub mod journal;
pub mod lockout;
pub mod ops;
pub mod output;
pub mod render;
pub mod renewing;
pub mod replay;
pub mod request;
pub mod server;
pub mod state;
pub mod studio;
pub mod telemetry;
pub mod tenant;
pub mod testing;

/// Repeatable pseudo-random numbers (xorshift64) for the differential tests
/// that hold the fast paths equal to their libraries.
#[cfg(test)]
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
