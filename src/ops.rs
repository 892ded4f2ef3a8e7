//! Endpoints for the people who run recado, beside the webhook path:
//! `GET /healthz` (alive), `GET /readyz` (config loaded) and
//! `GET /admin/status` (what is loaded, and every config error) and
//! `GET /metrics` (Prometheus).

use std::time::SystemTime;

use crate::config::{ConfigError, Snapshot};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once at least one integration is loaded: a replica with an empty or
/// unreadable folder should not receive the platform's traffic.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let snapshot = app.config.load();
    if snapshot.integration_count() > 0 {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no integration loaded\n").into_response()
    }
}

/// `GET /metrics` on the main listener: Prometheus text format, with
/// `Authorization: Bearer <--metrics-token or --admin-token>`. It names
/// every tenant, and a render costs CPU, so it is not open to whoever can
/// reach the webhook port.
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let tokens = [&app.settings.metrics_token, &app.settings.admin_token];
    if tokens.iter().all(|t| t.is_none()) {
        return ApiError::NoRoute(
            "/metrics (start recado with --metrics-token, or serve it apart with --metrics-listen)"
                .into(),
        )
        .into_response();
    }
    let presented = bearer(&headers);
    if !tokens
        .iter()
        .flat_map(|t| t.iter())
        .any(|t| t.accepts(presented))
    {
        return ApiError::Unauthorized.into_response();
    }
    metrics_unguarded(State(app)).await
}

/// `GET /metrics` without credentials, for the metrics listener.
pub async fn metrics_unguarded(State(app): State<AppState>) -> Response {
    let Some(handle) = &app.metrics else {
        return ApiError::NoRoute("/metrics (no metrics recorder is installed)".into())
            .into_response();
    };
    let upstream = app.upstream.clone();
    let text = app
        .scrapes
        .render(handle, async move {
            let (entries, bytes) = upstream.cache_stats().await;
            crate::telemetry::cache_size(entries, bytes);
        })
        .await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn bearer(headers: &HeaderMap) -> &str {
    crate::lockout::bearer(headers).unwrap_or("")
}

/// `GET /admin/status` with `Authorization: Bearer <admin token>`.
pub async fn status(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(admin) = &app.settings.admin_token else {
        return ApiError::NoRoute(
            "/admin/status (start recado with --admin-token to enable it)".into(),
        )
        .into_response();
    };
    if !admin.accepts(bearer(&headers)) {
        return ApiError::Unauthorized.into_response();
    }
    let snapshot = app.config.load();
    let mut status = Status::of(&snapshot);
    status.upstreams = app.upstream.guards.status();
    let mut status = serde_json::to_value(status).unwrap_or_default();
    // What the last shadow check of each edited integration found.
    if let Some(journal) = &app.journal {
        status["shadow"] = serde_json::to_value(journal.shadow_reports()).unwrap_or_default();
    }
    Json(status).into_response()
}

#[derive(Serialize)]
struct Status<'a> {
    generation: u64,
    tenants: Vec<TenantStatus<'a>>,
    /// Every current problem, as `recado check` prints them.
    errors: Vec<ErrorStatus<'a>>,
    /// The slots and breakers of origins that tenants limit (`upstreams:`),
    /// once a call has gone to them.
    upstreams: Vec<crate::guard::GuardStatus>,
}

#[derive(Serialize)]
struct TenantStatus<'a> {
    name: &'a str,
    client_ids: &'a [u64],
    hash: &'a str,
    loaded_at: String,
    integrations: Vec<IntegrationStatus<'a>>,
    errors: Vec<ErrorStatus<'a>>,
}

#[derive(Serialize)]
struct IntegrationStatus<'a> {
    name: &'a str,
    file: &'a str,
    hash: &'a str,
    loaded_at: String,
}

#[derive(Serialize)]
struct ErrorStatus<'a> {
    file: &'a str,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
    /// `file:line:col: message`.
    text: String,
    /// The file could not be read; the reload is being retried.
    retrying: bool,
}

impl<'a> Status<'a> {
    fn of(snapshot: &'a Snapshot) -> Status<'a> {
        let errors_of = |tenant: &str| -> Vec<ErrorStatus<'a>> {
            snapshot
                .errors
                .get(tenant)
                .into_iter()
                .flatten()
                .map(ErrorStatus::of)
                .collect()
        };
        Status {
            generation: snapshot.generation,
            tenants: snapshot
                .tenants
                .values()
                .map(|t| TenantStatus {
                    name: &t.name,
                    client_ids: &t.client_ids,
                    hash: &t.hash,
                    loaded_at: timestamp(t.loaded_at),
                    integrations: t
                        .integrations
                        .values()
                        .map(|i| IntegrationStatus {
                            name: &i.name,
                            file: &i.file,
                            hash: &i.hash,
                            loaded_at: timestamp(i.loaded_at),
                        })
                        .collect(),
                    errors: errors_of(&t.name),
                })
                .collect(),
            errors: snapshot.all_errors().map(ErrorStatus::of).collect(),
            upstreams: Vec::new(),
        }
    }
}

impl<'a> ErrorStatus<'a> {
    fn of(e: &'a ConfigError) -> ErrorStatus<'a> {
        ErrorStatus {
            file: &e.file,
            line: e.line,
            column: e.column,
            message: &e.message,
            text: e.to_string(),
            retrying: e.io,
        }
    }
}

fn timestamp(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}
