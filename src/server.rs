//! Stage 0 and 6, receive and respond: the HTTP surface. The handler is the
//! request's whole path, one stage per line; cross-cutting concerns (body
//! limit, panics) are layers composed once in [`router`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use minijinja::context;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::config::{Integration, Snapshot, Tenant};
use crate::enrich::{Upstream, DEFAULT_CACHE_BYTES};
use crate::error::ApiError;
use crate::ops::{self, AdminToken};
use crate::output::Message;
use crate::render::{render, request_context};
use crate::request::PlatformRequest;
use crate::telemetry::RequestRecord;
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
    /// Guards `GET /admin/status`; `None` turns that endpoint off.
    pub admin_token: Option<AdminToken>,
    /// The HTTP client and answer cache for enrichment calls.
    pub upstream: Arc<Upstream>,
    /// Log contacts' phone numbers and names in full (debugging only: they
    /// are personal data under the LGPD). Masked otherwise.
    pub log_personal_data: bool,
    /// A connection with no request in flight that starts or finishes none
    /// for this long is closed; see [`Activity`].
    pub idle_timeout: Duration,
}

impl AppState {
    pub fn new(snapshot: Snapshot) -> AppState {
        AppState {
            config: Arc::new(ArcSwap::from_pointee(snapshot)),
            body_limit: DEFAULT_BODY_LIMIT,
            admin_token: None,
            upstream: Arc::new(Upstream::new(DEFAULT_CACHE_BYTES)),
            log_personal_data: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

pub fn router(state: AppState) -> Router {
    crate::telemetry::install();
    Router::new()
        .route("/hooks/{integration}", post(hook))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/admin/status", get(ops::status))
        .route("/metrics", get(ops::metrics))
        .fallback(|uri: Uri| async move { ApiError::NoRoute(uri.path().to_owned()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_| panicked()))
}

/// A panic is a bug; the client gets the usual JSON error, the server goes on.
fn panicked() -> Response {
    ApiError::Internal("the request hit a bug in recado; it is logged".into()).into_response()
}

/// `POST /hooks/{integration}` → the integration's name, percent-decoded.
fn webhook_target(req: &Request) -> Option<String> {
    if req.method() != axum::http::Method::POST {
        return None;
    }
    let name = req.uri().path().strip_prefix("/hooks/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(
        percent_encoding::percent_decode_str(name)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// How long a client may take to send a request's body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// See [`AppState::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests started plus requests finished on one connection: odd while one
/// is in flight. A watchdog compares it across `idle_timeout` ticks.
///
/// This replaces hyper's header read timeout, which arms, boxes and drops a
/// timer for every request (about 4% of a webhook's CPU); here a request
/// costs two uncontended atomic adds and the connection one timer per tick.
/// It covers the same attacks and a little more: a client that trickles its
/// headers, one that keeps a connection idle, and one that stops reading its
/// answer are all closed after between one and two `idle_timeout`s. A slow
/// body has its own timeout, and a request waiting on upstreams is bounded
/// by its tenant's deadline.
#[derive(Default)]
struct Activity(std::sync::atomic::AtomicU64);

impl Activity {
    fn count(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Marks a request in flight until the guard is dropped.
    fn busy(self: &Arc<Self>) -> Busy {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Busy(self.clone())
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Waits for the connection task `conn` to end, and aborts it (which closes
/// the socket) once a whole `idle` period passes with no request in flight
/// and none started or finished. A task of its own, so the connection's
/// task never polls a timer per request.
async fn watchdog(mut conn: tokio::task::JoinHandle<()>, activity: Arc<Activity>, idle: Duration) {
    let mut seen = activity.count();
    loop {
        tokio::select! {
            _ = &mut conn => return,
            () = tokio::time::sleep(idle) => {
                let now = activity.count();
                if now == seen && now % 2 == 0 {
                    tracing::debug!(idle = ?idle, "closing an idle or stalled connection");
                    conn.abort();
                    return;
                }
                seen = now;
            }
        }
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight
/// for at most `grace`.
///
/// HTTP/1.1 only, served by hyper's http1 connection directly: the platform
/// speaks plain HTTP/1.1 webhooks, and skipping the version-sniffing
/// connection type of `axum::serve` is measurably cheaper per request.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let idle = state.idle_timeout;
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't die.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let conn = http1::Builder::new().serve_connection(
            TokioIo::new(stream),
            service(app.clone(), state.clone(), activity.clone()),
        );
        let conn = graceful.watch(conn);
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        tokio::spawn(watchdog(conn, activity, idle));
    }
    // Stop accepting, let requests in flight finish (idle keep-alive
    // connections close at once), but not forever.
    drop(listener);
    tracing::info!(in_flight_connections = graceful.count(), grace = ?grace, "shutting down");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?grace, "requests still in flight after the grace period; closing them");
    }
    Ok(())
}

/// One connection's service. The webhook is the one hot route: it is
/// dispatched here directly, which skips the router's per-request boxing and
/// measurably lowers the cost of each call. Everything else goes through the
/// router.
fn service(
    app: Router,
    state: AppState,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let (app, state) = (app.clone(), state.clone());
        let busy = activity.busy();
        async move {
            let _busy = busy;
            let req = req.map(axum::body::Body::new);
            let Some(integration) = webhook_target(&req) else {
                return tower::ServiceExt::oneshot(app, req).await;
            };
            let response = std::panic::AssertUnwindSafe(answer(state, integration, req));
            Ok(futures_util::FutureExt::catch_unwind(response)
                .await
                .unwrap_or_else(|_| panicked()))
        }
    })
}

/// `POST /hooks/{integration}`: the platform's scheduled-message webhook.
async fn hook(
    State(app): State<AppState>,
    Path(integration): Path<String>,
    request: Request,
) -> Response {
    answer(app, integration, request).await
}

/// The webhook's whole path for one request; see [`pipeline`].
async fn answer(app: AppState, integration: String, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // A client that trickles its body must not hold a worker's attention
    // forever (headers have their own timeout, below).
    let body = match tokio::time::timeout_at(
        (started + BODY_READ_TIMEOUT).into(),
        axum::body::to_bytes(body, app.body_limit),
    )
    .await
    {
        Ok(body) => body,
        Err(_) => {
            let e = ApiError::BodyTimeout(BODY_READ_TIMEOUT);
            RequestRecord::default().finish(
                e.status().as_u16(),
                Some(e.code()),
                Some(&e),
                started.elapsed(),
                false,
            );
            return e.into_response();
        }
    };
    // One snapshot for the whole request, even if a reload lands meanwhile.
    let snapshot = app.config.load_full();
    let mut record = RequestRecord::default();
    let result = pipeline(&app, &snapshot, &integration, &parts, body, &mut record).await;
    match result {
        Ok(json) => {
            record.finish(200, None, None, started.elapsed(), app.log_personal_data);
            let mut resp = (StatusCode::OK, json).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => {
            let status = e.status().as_u16();
            record.finish(
                status,
                Some(e.code()),
                Some(&e),
                started.elapsed(),
                app.log_personal_data,
            );
            e.into_response()
        }
    }
}

/// receive → validate request → tenant → enrich → render (+ validate output) → respond.
/// Fills `record` in as it goes, for the log line and the metrics.
async fn pipeline(
    app: &AppState,
    snapshot: &Snapshot,
    integration: &str,
    parts: &Parts,
    body: Result<Bytes, axum::Error>,
    record: &mut RequestRecord,
) -> Result<Vec<u8>, ApiError> {
    let limit = app.body_limit;
    check_content_type(&parts.headers)?;
    let body = body.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
        {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::InvalidRequest(crate::request::RequestError {
                path: String::new(),
                message: format!("cannot read the body: {e}"),
            })
        }
    })?;
    let req = PlatformRequest::parse(&body)?;
    record.request_id = Some(req.id.0);
    if crate::telemetry::access_log_enabled() {
        record.contact = Some((req.contact.key.clone(), req.contact.name.clone()));
    }

    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = token_from(authorization, parts.uri.query());
    let tenant =
        authenticate(snapshot, req.client_id.0, token.as_deref()).ok_or(ApiError::Unauthorized)?;
    record.tenant = Some(tenant.clone());
    let found = tenant
        .integrations
        .get(integration)
        .ok_or_else(|| ApiError::UnknownIntegration(integration.to_owned()))?;
    record.integration = Some(found.clone());

    if body.len() > tenant.limits.max_body_bytes {
        return Err(ApiError::PayloadTooLarge {
            limit: tenant.limits.max_body_bytes,
        });
    }
    // Each tenant has its own slots: one tenant's flood waits on its own
    // limit and never takes the others' capacity.
    let _slot = tenant
        .in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Busy)?;
    let messages = produce(&app.upstream, &tenant, found, &req).await?;
    record.messages = Some(messages.len());
    let mut json = Vec::with_capacity(512);
    serde_json::to_writer(&mut json, &messages).map_err(|e| ApiError::Internal(e.to_string()))?;
    if json.len() > tenant.limits.max_output_bytes {
        return Err(ApiError::OutputTooLarge {
            file: found.file.clone(),
            size: json.len(),
            limit: tenant.limits.max_output_bytes,
        });
    }
    Ok(json)
}

/// enrich → render (+ validate output): the messages `integration` answers
/// for an authenticated request. Also the dry run of `recado render`.
pub async fn produce(
    upstream: &Upstream,
    tenant: &Tenant,
    integration: &Integration,
    req: &PlatformRequest,
) -> Result<Vec<Message>, ApiError> {
    let mut ctx = request_context(req);
    let compiled = integration.program.borrow_dependent();
    if !compiled.calls.is_empty() {
        // Only upstream calls wait, so one timer bounds them by both the
        // integration's `deadline` and the tenant's; rendering is bounded by
        // template fuel. Boxed: the calls' future is large, and inline it
        // would make every request's future large too, enrichment or not.
        let (own, tenant_limit) = (compiled.deadline, tenant.limits.deadline);
        let calls = Box::pin(upstream.run(tenant, integration, &ctx));
        let answers = match tokio::time::timeout(own.min(tenant_limit), calls).await {
            Ok(answers) => answers,
            Err(_) if tenant_limit < own => return Err(ApiError::Timeout(tenant_limit)),
            Err(_) => Err(crate::enrich::EnrichError::Deadline(own)),
        }
        .map_err(|source| ApiError::Upstream {
            file: integration.file.clone(),
            source,
        })?;
        ctx = context! { enrich => answers, ..ctx };
    }
    render(&integration.program, &ctx, tenant.limits.max_messages).map_err(|source| {
        ApiError::Render {
            file: integration.file.clone(),
            source,
        }
    })
}

/// The platform sends `application/json`; a body declared as anything else
/// is refused rather than guessed at. A missing header is tolerated.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let mime = text.split(';').next().unwrap_or("").trim();
    let (kind, subtype) = mime.split_once('/').unwrap_or((mime, ""));
    let json = subtype.eq_ignore_ascii_case("json")
        || subtype.len() > 5
            && subtype
                .get(subtype.len() - 5..)
                .is_some_and(|t| t.eq_ignore_ascii_case("+json"));
    if kind.eq_ignore_ascii_case("application") && json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_owned()))
    }
}
