//! Stage 0, receive: the HTTP surface. Connections (hyper, HTTP/1.1), the
//! watchdog that closes stalled ones, graceful shutdown, and the one router
//! every request goes through, with the cross-cutting layers (access record,
//! panics) composed once in [`router`]. The webhook itself is [`crate::hook`].

use std::sync::Arc;
use std::time::Duration;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::error::ApiError;
use crate::hook::hook;
use crate::ops;
use crate::state::AppState;
use crate::telemetry::AccessLayer;

/// Every route, the webhook included, behind the same layers: the access
/// record (metrics and the log line) outermost, so it also sees the 500 of a
/// request that panicked.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hooks/{integration}", post(hook))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/admin/status", get(ops::status))
        .route("/metrics", get(ops::metrics))
        .merge(crate::studio::routes())
        .fallback(|uri: Uri| async move { ApiError::NoRoute(uri.path().to_owned()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(AccessLayer)
}

/// A panic is a bug: logged with its message, the client gets the usual
/// JSON error (without the message), the server goes on.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(target: "recado::panic", panic = message, "a request hit a bug in recado");
    ApiError::Internal("the request hit a bug in recado; it is logged".into()).into_response()
}

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
    let idle = state.settings.idle_timeout;
    let app = router(state);
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
        let conn = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service(app.clone(), activity.clone()));
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

/// One connection's service: every request goes to the whole router, and
/// counts as activity for the connection's watchdog while in flight.
fn service(
    app: Router,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let busy = activity.busy();
        let response = tower::ServiceExt::oneshot(app.clone(), req.map(axum::body::Body::new));
        async move {
            let _busy = busy;
            response.await
        }
    })
}
