//! The journal's admin API: `GET /admin/requests` (filtered, newest first,
//! paginated), `GET /admin/requests/{entry}`, `POST
//! /admin/requests/{entry}/replay` (a dry run against the current config,
//! with the diff) and `GET /admin/requests/{entry}/test` (the entry as a
//! `tests:` snippet). See `docs/journal.md`.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::config::{Integration, Snapshot, Tenant};
use crate::error::ApiError;
use crate::journal::{self, Entry, Filter, Journal, Redactor};
use crate::replay::{self, Outcome, ReplayError};
use crate::state::AppState;

/// Largest page of `GET /admin/requests`.
const MAX_LIMIT: usize = 500;
const DEFAULT_LIMIT: usize = 50;

/// May the request's bearer see `tenant`'s requests (`None`: every
/// tenant's)? Today only the admin token may; the studio will also let a
/// tenant's own tokens in, for their tenant only, here.
pub fn authorize(
    app: &AppState,
    headers: &HeaderMap,
    tenant: Option<&str>,
) -> Result<(), ApiError> {
    let _ = tenant;
    let Some(admin) = &app.settings.admin_token else {
        return Err(ApiError::NoRoute(
            "/admin (start recado with --admin-token to enable it)".into(),
        ));
    };
    let presented = crate::lockout::bearer(headers).unwrap_or("");
    if admin.accepts(presented) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn journal_of(app: &AppState) -> Result<&Arc<Journal>, ApiError> {
    app.journal.as_ref().ok_or_else(|| {
        ApiError::NoRoute("/admin/requests (the journal is off: --journal on)".into())
    })
}

/// A bad query parameter: 400 with what is wrong.
/// A query string that does not parse: serde's words, with the likely
/// parameter when one is misspelt.
fn bad_query(e: &QueryRejection) -> Response {
    let text = e.body_text();
    let text = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    bad(
        "query",
        crate::config::error::with_suggestion(text.to_owned()),
    )
}

fn bad(param: &str, message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "invalid_query", "message": message.into(), "path": param}})),
    )
        .into_response()
}

/// A misspelt parameter (`stauts=502`) is a 400, not a list that looks
/// filtered and is not.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    tenant: Option<String>,
    integration: Option<String>,
    status: Option<String>,
    id: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    messages: Option<String>,
}

/// `GET /admin/requests?tenant=&integration=&status=&id=&since=&messages=&limit=&cursor=`.
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        // Who may not list entries learns nothing of the parameters.
        Err(e) => {
            return match authorize(&app, &headers, None) {
                Err(denied) => denied.into_response(),
                Ok(()) => bad_query(&e),
            }
        }
    };
    if let Err(e) = authorize(&app, &headers, q.tenant.as_deref()) {
        return e.into_response();
    }
    let journal = match journal_of(&app) {
        Ok(j) => j,
        Err(e) => return e.into_response(),
    };
    fn number<T: std::str::FromStr>(v: &Option<String>) -> Result<Option<T>, ()> {
        v.as_deref()
            .map(|s| s.trim().parse::<T>().map_err(|_| ()))
            .transpose()
    }
    let Ok(status) = number::<u16>(&q.status) else {
        return bad("status", "`status` is an HTTP status, e.g. 422");
    };
    let Ok(request_id) = number::<u64>(&q.id) else {
        return bad("id", "`id` is the platform's request id, a number");
    };
    let Ok(limit) = number::<usize>(&q.limit).and_then(|l| {
        l.filter(|l| !(1..=MAX_LIMIT).contains(l))
            .map_or(Ok(l), |_| Err(()))
    }) else {
        return bad(
            "limit",
            format!("`limit` is a number from 1 to {MAX_LIMIT}"),
        );
    };
    let Ok(messages) = number::<usize>(&q.messages) else {
        return bad(
            "messages",
            "`messages` is a number of messages; `messages=0` lists the answers that sent the contact nothing",
        );
    };
    let Ok(before) = number::<u64>(&q.cursor) else {
        return bad(
            "cursor",
            "`cursor` is the `next_cursor` of the previous page",
        );
    };
    let since = match q.since.as_deref().map(str::parse::<jiff::Timestamp>) {
        None => None,
        Some(Ok(t)) => Some(std::time::SystemTime::from(t)),
        Some(Err(_)) => {
            return bad(
                "since",
                "`since` is an RFC 3339 time, e.g. 2026-05-01T12:00:00Z",
            )
        }
    };
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    let filter = Filter {
        tenant: q.tenant,
        integration: q.integration,
        status,
        request_id,
        since,
        before,
        messages,
    };
    let mut entries = journal.query(&filter, limit + 1);
    let more = entries.len() > limit;
    entries.truncate(limit);
    let personal = app.settings.log_personal_data;
    let next_cursor = more
        .then(|| entries.last().map(|e| e.seq.to_string()))
        .flatten();
    Json(json!({
        "entries": entries.iter().map(|e| journal::summary(e, personal)).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    }))
    .into_response()
}

/// The entry named by the path, once the caller may see its tenant.
fn entry(app: &AppState, headers: &HeaderMap, id: &str) -> Result<Arc<Entry>, ApiError> {
    let journal = journal_of(app)?;
    let found = id.parse::<u64>().ok().and_then(|seq| journal.get(seq));
    // Who may see an entry depends on its tenant; an unknown one is 404 only
    // to those who may see every tenant, so others cannot probe for entries.
    let Some(found) = found else {
        authorize(app, headers, None)?;
        return Err(ApiError::NoRoute(format!(
            "/admin/requests/{id} (no such entry: it may have aged out of the journal)"
        )));
    };
    authorize(app, headers, Some(found.tenant()))?;
    Ok(found)
}

/// `GET /admin/requests/{entry}`.
pub async fn detail(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match entry(&app, &headers, &id) {
        Ok(e) => Json(journal::detail(&e, app.settings.log_personal_data)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    live: Option<bool>,
}

/// `POST /admin/requests/{entry}/replay[?live=true]`.
pub async fn replay(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Response {
    let e = match entry(&app, &headers, &id) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let live = match query {
        Ok(Query(q)) => q.live.unwrap_or(false),
        Err(e) => return bad_query(&e),
    };
    let snapshot = app.config.load_full();
    let current = loaded(&snapshot, &e);
    let Some((tenant, integration)) = current else {
        return ApiError::NoRoute(format!(
            "{} (the integration is no longer loaded)",
            e.file()
        ))
        .into_response();
    };
    let now = if live {
        let result = match replay::parse(&e) {
            Ok(req) => {
                let metrics = app.tenants.of(&tenant).metrics.clone();
                crate::hook::produce(&app.upstream, &tenant, &metrics, &integration, &req)
                    .await
                    .map_err(ReplayError::Api)
            }
            Err(err) => Err(err),
        };
        Outcome::of(result, &tenant, &integration.file)
    } else {
        replay::replay_offline(&tenant, &integration, &e)
    };
    let then = Outcome::recorded(&e);
    // Without a recorded answer (the call failed then) or the body, nothing
    // was replayed: that is not a change the operator made.
    let replayed = !matches!(
        &now,
        Outcome::Error { code, .. } if code == "no_recorded_answer" || code == "no_body"
    );
    let r = Redactor::for_body(e.body(), app.settings.log_personal_data);
    let mut changes = if replayed {
        serde_json::to_value(replay::diff(&then, &now)).unwrap_or_default()
    } else {
        json!([])
    };
    r.json(&mut changes);
    Json(json!({
        "entry": e.seq.to_string(),
        "request_id": e.request_id,
        "live": live,
        "version_then": e.version(),
        "version_now": integration.hash,
        "replayed": replayed,
        "changed": if replayed { json!(then != now) } else { serde_json::Value::Null },
        "then": then.to_json(&r),
        "now": now.to_json(&r),
        "diff": changes,
    }))
    .into_response()
}

/// `GET /admin/requests/{entry}/test`: YAML to append to the integration file.
pub async fn test(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let e = match entry(&app, &headers, &id) {
        Ok(e) => e,
        Err(e) => return e.into_response(),
    };
    let snapshot = app.config.load_full();
    let current = loaded(&snapshot, &e);
    let current = current.as_ref().map(|(t, i)| (&**t, &**i));
    match replay::test_snippet(&e, current, app.settings.log_personal_data) {
        Ok(yaml) => ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response(),
        Err(err) => (
            StatusCode::CONFLICT,
            Json(json!({"error": {"code": "not_testable", "message": err.to_string()}})),
        )
            .into_response(),
    }
}

/// The tenant and the integration an entry was answered by, as loaded now
/// (`None` once either is gone).
fn loaded(snapshot: &Snapshot, e: &Entry) -> Option<(Arc<Tenant>, Arc<Integration>)> {
    let tenant = snapshot.tenants.get(e.tenant())?;
    let integration = tenant.integrations.get(e.integration())?;
    Some((tenant.clone(), integration.clone()))
}
