//! Stage 0, receive: the HTTP surface. Connections (hyper, HTTP/1.1), the
//! watchdog that closes stalled ones, graceful shutdown, and the one stack
//! every request goes through, with the cross-cutting layers (access record,
//! panics) composed once in [`app`]. The webhook itself is [`crate::hook`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::FutureExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use metrics::{counter, gauge, Gauge};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::admin;
use crate::error::ApiError;
use crate::hook::{answer, hook, Answer};
use crate::lockout::Peer;
use crate::ops;
use crate::state::{AppState, Settings};

/// The one stack every request goes through, the webhook included: the
/// access record (metrics and the log line) outermost, so it also sees the
/// 500 of a request that panicked, then panics → 500, then the dispatch to
/// the webhook or the router. Each stage is a plain call in [`App::respond`]
/// rather than a tower layer: the same order for every route, without a
/// boxed body, a boxed future and a response extension per request.
#[derive(Clone)]
pub struct App {
    /// `None` on the metrics listener, which serves only its router.
    state: Option<AppState>,
    router: Router,
}

/// Builds the stack for the main listener.
pub fn app(state: AppState) -> App {
    App {
        router: routes(state.clone()),
        state: Some(state),
    }
}

/// The route table: every route but the webhook's POST, which
/// [`App::respond`] hands to [`hook`] directly. The webhook's path is here
/// too, so that other methods get the router's 405.
fn routes(state: AppState) -> Router {
    Router::new()
        .route("/hooks/{integration}", post(unreachable_hook))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/admin/status", get(ops::status))
        .route("/metrics", get(ops::metrics))
        .route("/admin/requests", get(admin::list))
        .route("/admin/requests/{entry}", get(admin::detail))
        .route("/admin/requests/{entry}/replay", post(admin::replay))
        .route("/admin/requests/{entry}/test", get(admin::test))
        .merge(crate::studio::routes())
        .fallback(|uri: Uri| async move {
            ApiError::NoRoute(format!(
                "{}; webhooks are POST /hooks/{{integration}}",
                uri.path()
            ))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            sign_ins,
        ))
        .with_state(state)
}

/// Operators' tokens (`/admin/*`, `/metrics`, `/studio`) may be guessed
/// [`crate::lockout::LIMIT`] times from one address, then one every
/// [`crate::lockout::DRAIN`]: a request that presents one
/// (`Authorization: Bearer`, or the studio's sign-in form) from an address
/// locked out gets 429 without its token being looked at, and a 401 answer
/// to one counts as a failure, whatever the route. The webhook is not here
/// (see [`crate::lockout`]).
async fn sign_ins(
    axum::extract::State(state): axum::extract::State<AppState>,
    peer: Peer,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let sign_in = req.uri().path() == crate::studio::LOGIN_PATH;
    // Only a bearer token is recado's: a proxy's `Basic` credentials, say,
    // are not a guess at one.
    if !sign_in && crate::lockout::bearer(req.headers()).is_none() {
        return next.run(req).await;
    }
    let attempt = match state.lockout.attempt(peer) {
        Ok(attempt) => attempt,
        Err(locked) if sign_in => return crate::studio::locked_out(locked),
        Err(locked) => return locked.into_response(),
    };
    let resp = next.run(req).await;
    if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
        attempt.failed();
    } else {
        attempt.passed();
    }
    resp
}

/// Never called: [`is_webhook`] takes every POST this route matches (one
/// non-empty path segment) before the router sees it. Answers as if the
/// route were not there.
async fn unreachable_hook(uri: Uri) -> ApiError {
    ApiError::NoRoute(format!(
        "{}; webhooks are POST /hooks/{{integration}}",
        uri.path()
    ))
}

/// `POST /hooks/{integration}`: the webhook. Matched here rather than by
/// the router, which would cost the webhook (nearly all the traffic) a route
/// lookup, path parameters and a boxed body and service per request; it
/// matches exactly what the router's `/hooks/{integration}` would.
fn is_webhook<B>(req: &hyper::Request<B>) -> bool {
    req.method() == hyper::Method::POST
        && req
            .uri()
            .path()
            .strip_prefix("/hooks/")
            .is_some_and(|name| !name.is_empty() && !name.bytes().any(|b| b == b'/'))
}

impl App {
    /// Answers one request: access record → panic guard → dispatch.
    async fn respond(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        body_limit: usize,
        peer: Peer,
    ) -> Answer {
        let started = Instant::now();
        let route = crate::telemetry::route_label(req.uri().path());
        // The webhook fills it in as far as it gets; a panic leaves it as
        // it was, and the access line still says which tenant it was.
        let mut record = None;
        // The webhook's future is made here, not inside another one: each
        // level of `async fn` copies its callee's future (kilobytes) once
        // more. The other routes' futures are boxed, so that the router's
        // (large) does not grow every webhook's.
        let answer = match (&self.state, is_webhook(&req)) {
            (Some(state), true) => {
                AssertUnwindSafe(hook(state, req, started, &mut record))
                    .catch_unwind()
                    .await
            }
            _ => {
                let other = Box::pin(self.clone().dispatch(req, body_limit, peer));
                AssertUnwindSafe(other).catch_unwind().await.map(answer)
            }
        };
        let response = answer.unwrap_or_else(|panic| crate::hook::answer(panicked(panic)));
        let took = record
            .as_ref()
            .and_then(|r| r.took)
            .unwrap_or_else(|| started.elapsed());
        crate::telemetry::record_access(route, record.as_ref(), response.status(), took);
        response
    }

    /// Every route but the webhook.
    async fn dispatch(
        self: Arc<Self>,
        mut req: hyper::Request<Incoming>,
        body_limit: usize,
        peer: Peer,
    ) -> Response {
        // The routes that check operators' tokens need the client's address
        // (behind a trusted proxy, the one it forwards).
        let peer = match &self.state {
            Some(state) => Peer(state.settings.trusted_proxies.client(peer.0, req.headers())),
            None => peer,
        };
        req.extensions_mut().insert(peer);
        if hyper::body::Body::is_end_stream(req.body()) {
            let answer = self
                .router
                .clone()
                .oneshot(req.map(axum::body::Body::new))
                .await;
            answer.into_response()
        } else {
            // A body to an operators' route (not the hot path).
            let cap = if req.uri().path() == crate::studio::PREVIEW_PATH {
                crate::studio::MAX_PREVIEW_BYTES
            } else {
                body_limit.min(DRAIN_BYTES)
            };
            drained(self.router.clone(), req, cap).await
        }
    }
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

/// What one connection's watchdog needs to know, kept in three counters
/// the connection's task bumps.
///
/// This replaces hyper's header read timeout, which arms, boxes and drops a
/// timer for every request (about 4% of a webhook's CPU); here a request
/// costs two uncontended atomic adds, a socket read one plain atomic store,
/// and the connection one timer per tick. A client that trickles or stalls
/// its header block is closed after between one and two `header_timeout`s;
/// one that keeps a connection idle, or stops reading its answer, after
/// between one and two `idle_timeout`s. A slow body has its own timeout,
/// and a request waiting on upstreams is bounded by its tenant's deadline.
#[derive(Default)]
struct Activity {
    /// Requests started plus requests finished: odd while one is in flight.
    requests: AtomicU64,
    /// Socket reads that returned bytes. Only the connection's task writes it.
    reads: AtomicU64,
    /// `reads` when the last request finished: more reads since mean the
    /// next header block has started.
    reads_at_finish: AtomicU64,
    /// The server is shutting down: the connection finishes the request in
    /// flight, if any, and closes (see [`Graceful`]).
    stopping: AtomicBool,
    /// Wakes the connection's task, so that it sees `stopping`.
    waker: Mutex<Option<Waker>>,
}

impl Activity {
    fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }

    /// Bytes came in since the last request finished, and no request has
    /// started since: a header block is on its way.
    fn header_started(&self) -> bool {
        self.requests() % 2 == 0 && self.reads.load(Relaxed) != self.reads_at_finish.load(Relaxed)
    }

    fn read(&self) {
        // One writer: a plain store, no locked instruction.
        self.reads
            .store(self.reads.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Tells the connection to shut down gracefully.
    fn stop(&self) {
        self.stopping.store(true, SeqCst);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Marks a request in flight until the guard is dropped.
    /// Only the connection's task starts and finishes its requests, so
    /// `requests` has one writer: plain stores, no locked instruction.
    fn bump_requests(&self) {
        self.requests
            .store(self.requests.load(Relaxed).wrapping_add(1), Relaxed);
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.bump_requests();
        Busy(self.clone())
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .reads_at_finish
            .store(activity.reads.load(Relaxed), Relaxed);
        activity.bump_requests();
    }
}

/// The socket as hyper sees it: counts reads for the watchdog, and closes
/// with a lingering drain (see [`linger`]).
struct Socket {
    stream: Option<TcpStream>,
    activity: Arc<Activity>,
    /// hyper shut our side down: it closes the connection, the client may
    /// still be sending.
    shut_down: bool,
    /// The client closed its side: nothing left to drain.
    eof: bool,
}

impl Socket {
    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(
            self.stream
                .as_mut()
                .expect("the stream is only taken on drop"),
        )
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.stream().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            if buf.filled().len() > before {
                self.activity.read();
            } else {
                self.eof = true;
            }
        }
        polled
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.shut_down = true;
        self.stream().poll_shutdown(cx)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.shut_down && !self.eof {
            if let (Some(stream), Ok(runtime)) =
                (self.stream.take(), tokio::runtime::Handle::try_current())
            {
                runtime.spawn(linger(stream));
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection that shuts down gracefully (finishes the request in
    /// flight, then closes; at once when idle) when its [`Activity`] is
    /// stopped. It replaces hyper-util's `GracefulShutdown`, whose watch
    /// channel costs a mutex round trip on every poll of every connection:
    /// here a poll costs one atomic load. The waker is taken once, at the
    /// first poll: this future is its own task's whole future, and any waker
    /// of a tokio task wakes that task.
    struct Graceful<C> {
        #[pin]
        conn: C,
        activity: Arc<Activity>,
        state: GracefulState,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum GracefulState {
    New,
    Serving,
    ShuttingDown,
}

impl<C> Future for Graceful<C>
where
    C: hyper_util::server::graceful::GracefulConnection,
{
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if *this.state == GracefulState::New {
            *this
                .activity
                .waker
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            *this.state = GracefulState::Serving;
        }
        if *this.state == GracefulState::Serving && this.activity.stopping.load(SeqCst) {
            this.conn.as_mut().graceful_shutdown();
            *this.state = GracefulState::ShuttingDown;
        }
        this.conn.poll(cx)
    }
}

/// How long, and how much, a closing connection still reads.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Reads and drops what the client still sends after we closed our side,
/// for a bounded time and amount, before closing the socket. Closing with
/// unread bytes makes the kernel reset the connection, and a client still
/// writing its request (a body over the limit, which got its 413 early)
/// sees a broken pipe instead of the answer: nginx's lingering close.
async fn linger(mut stream: TcpStream) {
    let drain = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// When the watchdog closes a connection.
#[derive(Clone, Copy)]
struct Limits {
    idle: Duration,
    header: Duration,
}

/// Waits for the connection task `conn` to end, and aborts it (which closes
/// the socket) when it stalls: see [`Activity`]. On shutdown, a connection
/// with a header block under way and no request in flight is closed at once
/// (hyper closes idle ones itself, and would wait for the header block).
/// A task of its own, so the connection's task never polls a timer per
/// request.
async fn watchdog(
    mut conn: tokio::task::JoinHandle<()>,
    activity: Arc<Activity>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    // A zero timeout would spin; a millisecond is as good as zero here.
    let tick = limits.idle.min(limits.header).max(Duration::from_millis(1));
    let mut seen = activity.requests();
    let mut quiet = Duration::ZERO;
    let mut header: Option<Duration> = None;
    let mut stopping = *stop.borrow();
    if stopping {
        activity.stop();
    }
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                activity.stop();
            }
            () = tokio::time::sleep(tick) => {
                let now = activity.requests();
                if now != seen || now % 2 == 1 {
                    seen = now;
                    quiet = Duration::ZERO;
                    header = None;
                    continue;
                }
                quiet += tick;
                if activity.header_started() {
                    header = Some(header.map_or(Duration::ZERO, |h| h + tick));
                }
                if quiet >= limits.idle || header.is_some_and(|h| h >= limits.header) {
                    tracing::debug!(?quiet, "closing an idle or stalled connection");
                    conn.abort();
                    return;
                }
            }
        }
        if stopping && activity.header_started() {
            tracing::debug!("shutting down: closing a connection with an unfinished header block");
            conn.abort();
            return;
        }
    }
}

/// A connection's place under `--max-connections` (and under
/// `--max-connections-per-ip`, when set), and its count in the
/// `recado_connections` gauge, until dropped.
struct Slot {
    _permit: OwnedSemaphorePermit,
    gauge: Gauge,
    address: Option<(Arc<PerAddress>, IpAddr)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
        if let Some((per, ip)) = &self.address {
            per.release(*ip);
        }
    }
}

/// Connections open per client address, for `--max-connections-per-ip`:
/// one client cannot take every slot of `--max-connections`. Off by
/// default: the platform opens many connections from a few addresses when a
/// scheduled message fires, and a refused connection is a message not sent.
struct PerAddress {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    /// Takes a place for `ip`, unless it already has `limit` connections.
    fn take(&self, ip: IpAddr) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.limit {
            return false;
        }
        *n += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::hash_map::Entry::Occupied(mut e) = open.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
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
    let settings = state.settings.clone();
    serve_stack(
        listener,
        app(state),
        &settings,
        Writes::OneCopy,
        shutdown,
        grace,
    )
    .await
}

/// Serves only `GET /metrics`, without credentials, for `--metrics-listen`:
/// an address only Prometheus reaches. The same stack, without the webhook.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let settings = state.settings.clone();
    let app = App {
        router: Router::new()
            .route("/metrics", get(ops::metrics_unguarded))
            .fallback(|uri: Uri| async move {
                ApiError::NoRoute(format!(
                    "{}; webhooks are POST /hooks/{{integration}}",
                    uri.path()
                ))
            })
            .with_state(state),
        state: None,
    };
    serve_stack(listener, app, &settings, Writes::Gathered, shutdown, grace).await
}

/// How hyper writes an answer's head and body.
#[derive(Clone, Copy, PartialEq)]
enum Writes {
    /// The body copied after the head, one `write(2)`: cheaper for the
    /// webhook's few hundred bytes (−4.9 % CPU per request, docs/scaling.md).
    /// A large page (the studio's, `/metrics` on this listener) is copied
    /// too, and the connection's write buffer keeps its size until it
    /// closes; those pages are the signed-in operators'.
    OneCopy,
    /// Head and body gathered with `writev(2)`, no copy: the metrics
    /// listener's, whose one page can be megabytes, scraped on a
    /// connection kept open.
    Gathered,
}

async fn serve_stack(
    listener: TcpListener,
    app: App,
    settings: &Settings,
    writes: Writes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    // Shared by every connection: a request clones one `Arc`, not each of
    // the app's handles.
    let app = Arc::new(app);
    let limits = Limits {
        idle: settings.idle_timeout,
        header: settings.header_timeout,
    };
    let mut http = http1::Builder::new();
    http
        // A client may send its request and shut down its write side; it
        // still wants the answer.
        .half_close(true)
        .writev(writes == Writes::Gathered)
        .max_header_size(settings.max_header_bytes)
        // The read buffer is what a stalled header block holds; hyper's
        // default is ~400 KiB per connection.
        .max_buf_size(settings.max_header_bytes.max(16 * 1024));
    // At most u32::MAX, so that shutdown can wait for every slot at once.
    let capacity = settings.max_connections.min(u32::MAX as usize);
    let slots = Arc::new(Semaphore::new(capacity));
    let open = gauge!("recado_connections");
    let refused = counter!("recado_connections_refused_total");
    let refused_per_ip = counter!("recado_connections_refused_per_ip_total");
    let per_address = (settings.max_connections_per_ip > 0).then(|| {
        Arc::new(PerAddress {
            limit: settings.max_connections_per_ip,
            open: Mutex::default(),
        })
    });
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => (stream, Peer(addr.ip())),
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't die.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let address = match &per_address {
            Some(per) if !per.take(peer.0) => {
                refused_per_ip.increment(1);
                tracing::debug!(peer = %peer.0, "--max-connections-per-ip reached; closing a new connection");
                drop(stream);
                continue;
            }
            Some(per) => Some((per.clone(), peer.0)),
            None => None,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if let Some((per, ip)) = address {
                per.release(ip);
            }
            // Closed at once: the descriptor and its buffers are back, and
            // the client learns now rather than after a timeout.
            refused.increment(1);
            tracing::debug!("--max-connections reached; closing a new connection");
            drop(stream);
            continue;
        };
        open.increment(1.0);
        let slot = Slot {
            _permit: permit,
            gauge: open.clone(),
            address,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let socket = Socket {
            stream: Some(stream),
            activity: activity.clone(),
            shut_down: false,
            eof: false,
        };
        let conn = http.serve_connection(
            TokioIo::new(socket),
            service(app.clone(), activity.clone(), settings.body_limit, peer),
        );
        let conn = Graceful {
            conn,
            activity: activity.clone(),
            state: GracefulState::New,
        };
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let stopping = stopping.clone();
        tokio::spawn(async move {
            watchdog(conn, activity, limits, stopping).await;
            drop(slot);
        });
    }
    // Stop accepting, let requests in flight finish (idle keep-alive
    // connections close at once, half-sent ones too), but not forever.
    drop(listener);
    let _ = stop.send(true);
    let open = capacity - slots.available_permits();
    tracing::info!(in_flight_connections = open, grace = ?grace, "shutting down");
    // Each connection holds its slot until it has closed: all of them back
    // means every connection is done.
    if tokio::time::timeout(grace, slots.acquire_many(capacity as u32))
        .await
        .is_err()
    {
        tracing::warn!(grace = ?grace, "requests still in flight after the grace period; closing them");
    }
    Ok(())
}

/// How much of a body a route that does not read it is read and dropped,
/// so the connection can serve the next request.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// One connection's service: every request goes to the whole stack, and
/// counts as activity for the connection's watchdog while in flight.
fn service(
    app: Arc<App>,
    activity: Arc<Activity>,
    body_limit: usize,
    peer: Peer,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = Answer,
    Error = Infallible,
    Future = impl Future<Output = Result<Answer, Infallible>> + Send,
> + Clone {
    hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = activity.busy();
        // Boxed: the future is a few kilobytes, and a fresh allocation is
        // memory the allocator just freed (in cache), where a slot kept per
        // connection is cold by the time that connection's next request
        // comes (measured: fewer data-cache misses per request).
        let answer = Box::pin(app.clone().respond(req, body_limit, peer));
        async move {
            let _busy = busy;
            Ok(answer.await)
        }
    })
}

/// A request with a body to a route other than the webhook (not the hot
/// path): the body is read whole, at most `limit` bytes, before the route
/// sees it, so the connection can serve the next request. A body too big
/// or too slow is answered here (413 or 408, with `Connection: close`:
/// hyper gives up on a connection whose body was not read, without
/// telling the client), never handed to the route as an empty one.
async fn drained(router: Router, req: hyper::Request<Incoming>, limit: usize) -> Response {
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(DRAIN_TIME, Limited::new(body, limit).collect()).await;
    let refused = match collected {
        Ok(Ok(c)) => {
            let body = axum::body::Body::from(c.to_bytes());
            return router
                .oneshot(hyper::Request::from_parts(parts, body))
                .await
                .into_response();
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => ApiError::PayloadTooLarge { limit },
        Ok(Err(e)) => ApiError::InvalidRequest(crate::request::RequestError {
            path: String::new(),
            message: format!("cannot read the body: {e}"),
        }),
        Err(_) => ApiError::BodyTimeout(DRAIN_TIME),
    };
    let mut response = refused.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handler that panics answers the usual JSON 500, is counted, and
    /// the server goes on serving (on the connection it was on, too).
    #[tokio::test]
    async fn a_panic_is_a_json_500_counted_and_survived_and_routes_are_counted() {
        let metrics = crate::telemetry::install();
        let app = App {
            router: Router::new()
                .route(
                    "/boom",
                    get(|| async {
                        if true {
                            panic!("the test's own panic");
                        }
                        "unreached"
                    }),
                )
                .route("/fine", get(|| async { "fine" }))
                .route("/hooks/{integration}", post(unreachable_hook)),
            state: None,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = Settings::default();
        let server = serve_stack(
            listener,
            app,
            &settings,
            Writes::OneCopy,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        );
        let client = async move {
            let client = reqwest::Client::new();
            let boom = client
                .get(format!("http://{addr}/boom"))
                .send()
                .await
                .unwrap();
            assert_eq!(boom.status(), 500);
            let body: serde_json::Value = boom.json().await.unwrap();
            assert_eq!(body["error"]["code"], "internal", "{body}");
            assert!(!body.to_string().contains("the test's own panic"), "{body}");
            let fine = client
                .get(format!("http://{addr}/fine"))
                .send()
                .await
                .unwrap();
            assert_eq!(fine.text().await.unwrap(), "fine");
            // A webhook path the webhook did not take is counted by route.
            let get = client
                .get(format!("http://{addr}/hooks/x"))
                .send()
                .await
                .unwrap();
            assert_eq!(get.status(), 405);
            stop.send(()).unwrap();
        };
        let (served, ()) = tokio::join!(server, client);
        served.unwrap();
        assert!(
            metrics
                .render()
                .contains(r#"recado_http_requests_total{route="other",status="500"} 1"#),
            "{}",
            metrics.render()
        );
        assert!(
            metrics.render().contains(
                r#"recado_http_requests_total{route="/hooks/{integration}",status="405"} 1"#
            ),
            "{}",
            metrics.render()
        );
    }
}
