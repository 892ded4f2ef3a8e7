//! Stage 0 and 6, receive and respond: the HTTP surface. The handler is the
//! request's whole path, one stage per line; cross-cutting concerns (body
//! limit, panics) are layers composed once in [`router`].

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::Snapshot;
use crate::error::ApiError;
use crate::render::{render, request_context};
use crate::request::PlatformRequest;
use crate::tenant::{authenticate, token_from};

/// Largest request body accepted. The platform's requests are a few hundred
/// bytes; the payload an operator types is small too.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The current config. A request loads it once and keeps that snapshot to
    /// the end, so a reload never shows it half of an edit.
    pub config: Arc<ArcSwap<Snapshot>>,
    pub body_limit: usize,
}

impl AppState {
    pub fn new(snapshot: Snapshot) -> AppState {
        AppState {
            config: Arc::new(ArcSwap::from_pointee(snapshot)),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

pub fn router(state: AppState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/hooks/{integration}", post(hook))
        .fallback(|uri: Uri| async move { ApiError::NoRoute(uri.path().to_owned()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("the request hit a bug in recado; it is logged".into())
                .into_response()
        }))
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// `POST /hooks/{integration}`: the platform's scheduled-message webhook.
async fn hook(
    State(app): State<AppState>,
    Path(integration): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let snapshot = app.config.load();
    let result = pipeline(
        &snapshot,
        &integration,
        query.as_deref(),
        &headers,
        body,
        app.body_limit,
    );
    let status = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    };
    match &result {
        Ok((tenant, req_id, n, _)) => tracing::debug!(
            request_id = %req_id, tenant = %tenant, integration = %integration,
            status = status.as_u16(), messages = n, duration_us = started.elapsed().as_micros() as u64,
            "answered"
        ),
        Err(e) => tracing::info!(
            integration = %integration, status = status.as_u16(), code = e.code(),
            duration_us = started.elapsed().as_micros() as u64, error = %e, "refused"
        ),
    }
    match result {
        Ok((_, _, _, json)) => {
            let mut resp = (StatusCode::OK, json).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// receive → validate request → tenant → render (+ validate output) → respond.
fn pipeline(
    snapshot: &Snapshot,
    integration: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<(String, u64, usize, Vec<u8>), ApiError> {
    check_content_type(headers)?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit },
        _ => ApiError::InvalidRequest(crate::request::RequestError {
            path: String::new(),
            message: format!("cannot read the body: {e}"),
        }),
    })?;
    let req = PlatformRequest::parse(&body)?;

    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = token_from(authorization, query);
    let tenant =
        authenticate(snapshot, req.client_id.0, token.as_deref()).ok_or(ApiError::Unauthorized)?;
    let found = tenant
        .integrations
        .get(integration)
        .ok_or_else(|| ApiError::UnknownIntegration(integration.to_owned()))?;

    let ctx = request_context(&req);
    let messages = render(&found.program, &ctx).map_err(|source| ApiError::Render {
        file: found.file.clone(),
        source,
    })?;
    let json = serde_json::to_vec(&messages).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((tenant.name.clone(), req.id.0, messages.len(), json))
}

/// The platform sends `application/json`; a body declared as anything else
/// is refused rather than guessed at. A missing header is tolerated.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let mime = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_owned()))
    }
}
