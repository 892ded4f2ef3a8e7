//! Stage 3, enrich: runs an integration's upstream HTTP calls and hands their
//! JSON answers to the templates as `enrich.<name>`.
//!
//! Calls of one dependency level run concurrently; the levels, like every
//! template, were resolved at load time. Answers are cached per tenant in
//! moka, bounded by bytes; concurrent misses for one key make one call.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use futures_util::stream::{FuturesUnordered, StreamExt};
use minijinja::Value;

use crate::request::RequestVars;
use moka::future::Cache;
use moka::Expiry;
use sha2::{Digest, Sha256};

use crate::config::compile::{BodyNode, CompiledCall, Text};
use crate::config::holes::{HOLE_CLOSE, HOLE_OPEN};
use crate::config::spec::Origin;
use crate::config::{Integration, Tenant};
use crate::explain::{describe, Excerpt, Place};
use crate::guard::{Guard, Guards};
use crate::telemetry::TenantMetrics;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Default bound of the answer cache, in bytes of upstream JSON.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Largest upstream answer a [`CallLog`] keeps (larger ones are recorded
/// without their value, and cannot be replayed offline).
pub const MAX_LOGGED_ANSWER: usize = 64 * 1024;

/// One upstream call of one request, as the request journal keeps it.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub name: String,
    /// `ok`, or the error's [`EnrichError::kind`].
    pub outcome: &'static str,
    pub took: Duration,
    /// Answered from the cache.
    pub cached: bool,
    /// The value the templates saw (the fallback when the call failed and
    /// declared one); `None` when the call failed without a fallback or the
    /// answer was larger than [`MAX_LOGGED_ANSWER`].
    pub answer: Option<Value>,
    /// Size of the upstream's JSON (an estimate for a fallback).
    pub bytes: usize,
}

/// Where [`Upstream::run_logged`] reports each call. A mutex because the
/// calls of one level run concurrently; it is never contended across requests.
pub type CallLog = std::sync::Mutex<Vec<CallOutcome>>;

/// Why a call failed. Messages never contain a URL, a header or a body: those
/// may carry the tenant's secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnrichError {
    #[error("call `{call}`: cannot reach the upstream ({detail})")]
    Unreachable { call: String, detail: String },
    #[error("call `{call}`: the upstream did not answer within {timeout:?}")]
    Timeout { call: String, timeout: Duration },
    #[error("call `{call}`: the upstream answered HTTP {status}")]
    Status { call: String, status: u16 },
    #[error("call `{call}`: the upstream's answer is not JSON")]
    NotJson { call: String },
    #[error("call `{call}`: the upstream's answer is larger than {limit} bytes")]
    TooLarge { call: String, limit: usize },
    #[error("call `{call}`: the request would go to {origin}, which this integration may not reach; request data can change a call's path or query, never its host")]
    Refused { call: String, origin: String },
    /// One of the call's templates failed on this request, or rendered
    /// something that cannot be sent (not a URL, not a header value).
    #[error("call `{call}`: {detail} ({}{place})", place.key())]
    Template {
        call: String,
        /// What failed, in the template's own words (see [`crate::explain`]).
        detail: String,
        place: Box<Place>,
    },
    #[error("the upstream calls took longer than the integration's deadline of {0:?}")]
    Deadline(Duration),
    #[error("call `{call}`: {origin} kept failing, so recado stopped calling it for a while (its `breaker` in `upstreams:` is open)")]
    Unavailable { call: String, origin: String },
}

impl EnrichError {
    pub fn call(&self) -> Option<&str> {
        match self {
            EnrichError::Unreachable { call, .. }
            | EnrichError::Timeout { call, .. }
            | EnrichError::Status { call, .. }
            | EnrichError::NotJson { call }
            | EnrichError::TooLarge { call, .. }
            | EnrichError::Refused { call, .. }
            | EnrichError::Template { call, .. }
            | EnrichError::Unavailable { call, .. } => Some(call),
            EnrichError::Deadline(_) => None,
        }
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EnrichError::Unreachable { .. } => "unreachable",
            EnrichError::Timeout { .. } => "timeout",
            EnrichError::Status { .. } => "status",
            EnrichError::NotJson { .. } => "not_json",
            EnrichError::TooLarge { .. } => "too_large",
            EnrichError::Refused { .. } => "refused",
            EnrichError::Template { .. } => "template",
            EnrichError::Deadline(_) => "deadline",
            EnrichError::Unavailable { .. } => "unavailable",
        }
    }

    /// Worth another try of an idempotent call: the upstream may be back.
    fn retryable(&self) -> bool {
        match self {
            EnrichError::Unreachable { .. } => true,
            EnrichError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A cached upstream answer.
#[derive(Clone)]
struct Answer {
    value: Value,
    ttl: Duration,
    bytes: u32,
}

struct PerEntryTtl;

impl Expiry<[u8; 32], Answer> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _: &[u8; 32],
        answer: &Answer,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(answer.ttl)
    }
}

/// What an entry costs besides its value: the key, moka's node, the
/// `Answer`, the index structures (measured order of magnitude).
const ENTRY_OVERHEAD: u64 = 200;

/// The memory a parsed answer holds, estimated: every `Value` slot, plus
/// string bytes and map/list headers. Upstream JSON bytes say little: a
/// `[0,0,0]` is 2 bytes per item in JSON and a whole `Value` parsed.
fn value_weight(v: &Value) -> u64 {
    const SLOT: u64 = std::mem::size_of::<Value>() as u64;
    // An `Arc`'d container's header and the allocation's rounding.
    const HEADER: u64 = 32;
    match v.kind() {
        minijinja::value::ValueKind::String => {
            SLOT + HEADER + v.as_str().map_or(0, |s| s.len() as u64)
        }
        minijinja::value::ValueKind::Seq => {
            SLOT + HEADER
                + v.try_iter()
                    .map_or(0, |items| items.map(|i| value_weight(&i)).sum())
        }
        minijinja::value::ValueKind::Map => {
            SLOT + HEADER
                + v.try_iter().map_or(0, |keys| {
                    keys.map(|k| {
                        // Key, value and the map's own per-entry bookkeeping.
                        let item = v.get_item(&k).unwrap_or_default();
                        value_weight(&k) + value_weight(&item) + 16
                    })
                    .sum()
                })
        }
        _ => SLOT,
    }
}

type AnswerCache = Cache<[u8; 32], Answer>;

/// One cache per tenant, each `cache_bytes / tenants` large: a tenant
/// flooding distinct keys evicts only its own entries. moka cannot resize
/// a cache, so when the number of tenants changes the caches start over.
struct Shares {
    tenants: usize,
    by_tenant: HashMap<String, AnswerCache>,
}

/// The one HTTP client (connection reuse, rustls) and the answer caches.
pub struct Upstream {
    client: reqwest::Client,
    cache_bytes: u64,
    caches: RwLock<Shares>,
    /// The tenants' caps and breakers per origin (`upstreams:`).
    pub guards: Guards,
}

impl Upstream {
    pub fn new(cache_bytes: u64) -> Upstream {
        let client = reqwest::Client::builder()
            // A redirect could lead anywhere; the host must stay the one in the YAML.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("recado/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend is compiled in");
        Upstream {
            client,
            cache_bytes,
            caches: RwLock::new(Shares {
                tenants: 1,
                by_tenant: HashMap::new(),
            }),
            guards: Guards::default(),
        }
    }

    /// How many tenants share the cache (the webhook tells it from its
    /// snapshot; a change starts the caches over).
    pub fn set_tenants(&self, tenants: usize) {
        let tenants = tenants.max(1);
        if self
            .caches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .tenants
            == tenants
        {
            return;
        }
        let mut shares = self.caches.write().unwrap_or_else(|e| e.into_inner());
        shares.tenants = tenants;
        shares.by_tenant.clear();
    }

    fn cache_of(&self, tenant: &str) -> AnswerCache {
        if let Some(c) = self
            .caches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_tenant
            .get(tenant)
        {
            return c.clone();
        }
        let mut shares = self.caches.write().unwrap_or_else(|e| e.into_inner());
        let share = self.cache_bytes / shares.tenants as u64;
        shares
            .by_tenant
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Cache::builder()
                    .max_capacity(share)
                    .weigher(|_, a: &Answer| a.bytes.max(1))
                    .expire_after(PerEntryTtl)
                    .build()
            })
            .clone()
    }

    /// Entries and weighted size (estimated bytes of memory), for metrics.
    pub async fn cache_stats(&self) -> (u64, u64) {
        let caches: Vec<AnswerCache> = self
            .caches
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_tenant
            .values()
            .cloned()
            .collect();
        let (mut entries, mut bytes) = (0, 0);
        for cache in caches {
            // moka applies inserts and evictions lazily; settle them first.
            cache.run_pending_tasks().await;
            entries += cache.entry_count();
            bytes += cache.weighted_size();
        }
        (entries, bytes)
    }

    /// Runs every call of `integration` for one request; returns the answers
    /// by call name. `vars` are the request's template variables. The
    /// caller bounds it by the deadlines.
    pub async fn run(
        &self,
        tenant: &Tenant,
        metrics: &TenantMetrics,
        integration: &Integration,
        vars: &Value,
    ) -> Result<Value, EnrichError> {
        self.run_logged(tenant, metrics, integration, vars, None)
            .await
    }

    /// [`Upstream::run`], reporting each call's outcome to `log`.
    pub async fn run_logged(
        &self,
        tenant: &Tenant,
        metrics: &TenantMetrics,
        integration: &Integration,
        vars: &Value,
        log: Option<&CallLog>,
    ) -> Result<Value, EnrichError> {
        let compiled = integration.program.borrow_dependent();
        let mut answers: BTreeMap<String, Value> = BTreeMap::new();
        let levels = compiled
            .calls
            .iter()
            .map(|c| c.level)
            .max()
            .map_or(0, |m| m + 1);
        for level in 0..levels {
            // Still the request's own object, for the fast path.
            let ctx = RequestVars::with(
                vars,
                [
                    ("enrich", Value::from(answers.clone())),
                    ("secrets", tenant.secrets.0.clone()),
                ],
            );
            let calls: Vec<&CompiledCall<'_>> =
                compiled.calls.iter().filter(|c| c.level == level).collect();
            // A call that fails without a fallback fails the request: the
            // others of its level still running are dropped then (their
            // slots and a breaker's probe are given back), rather than
            // awaited for an answer nobody will read. Those that finished
            // before it are recorded as usual, in the order declared.
            let mut fatal = None;
            let results: Vec<_> = match calls.as_slice() {
                [one] => vec![Some(
                    self.timed(tenant, metrics, integration, one, &ctx).await,
                )],
                many => {
                    let ctx = &ctx;
                    let mut running: FuturesUnordered<_> = many
                        .iter()
                        .enumerate()
                        .map(|(i, c)| async move {
                            (i, self.timed(tenant, metrics, integration, c, ctx).await)
                        })
                        .collect();
                    let mut done: Vec<_> = many.iter().map(|_| None).collect();
                    while let Some((i, r)) = running.next().await {
                        if r.0.is_err() && many[i].fallback.is_none() {
                            fatal = Some((many[i], r));
                            break;
                        }
                        done[i] = Some(r);
                    }
                    done
                }
            };
            let finished = calls
                .into_iter()
                .zip(results)
                .filter_map(|(call, r)| Some((call, r?)));
            for (call, (result, cached, took)) in finished {
                let outcome = match &result {
                    Ok(_) => "ok",
                    Err(e) => e.kind(),
                };
                let (value, bytes) = match (result, &call.fallback) {
                    (Ok(a), _) => (a.value, a.bytes as usize),
                    (Err(e), Some(fallback)) => {
                        // The failure itself was logged as a warning where
                        // it happened: one line for it, not two.
                        tracing::info!(integration = %integration.file, call = %call.name, error_code = e.kind(), "using the call's fallback");
                        (fallback.clone(), 0)
                    }
                    (Err(e), None) => {
                        log_call(log, call, outcome, took, cached, None, 0);
                        return Err(e);
                    }
                };
                log_call(log, call, outcome, took, cached, Some(&value), bytes);
                answers.insert(call.name.clone(), value);
            }
            if let Some((call, (Err(e), cached, took))) = fatal {
                log_call(log, call, e.kind(), took, cached, None, 0);
                return Err(e);
            }
        }
        Ok(Value::from(answers))
    }

    /// [`Upstream::call`] and how long it took.
    async fn timed(
        &self,
        tenant: &Tenant,
        metrics: &TenantMetrics,
        integration: &Integration,
        c: &CompiledCall<'_>,
        ctx: &Value,
    ) -> (Result<Answer, EnrichError>, bool, Duration) {
        let started = std::time::Instant::now();
        let (result, cached) = self.call(tenant, metrics, integration, c, ctx).await;
        (result, cached, started.elapsed())
    }

    /// One call, and whether its answer came from the cache.
    async fn call(
        &self,
        tenant: &Tenant,
        metrics: &TenantMetrics,
        integration: &Integration,
        c: &CompiledCall<'_>,
        ctx: &Value,
    ) -> (Result<Answer, EnrichError>, bool) {
        let mut request = match prepare(tenant, c, ctx) {
            Ok(r) => r,
            Err(e) => return (Err(e), false),
        };
        let mut hit = false;
        let result = match c.cache_ttl {
            None => match request.finish_url(c) {
                Ok(()) => {
                    self.fetch(tenant, integration, c, &request, Duration::ZERO)
                        .await
                }
                Err(e) => Err(e),
            },
            Some(ttl) => {
                let key = request.cache_key(&tenant.name, ttl, c.max_bytes);
                let cache = self.cache_of(&tenant.name);
                // A plain lookup first: hits are the common case, and cheaper
                // than setting up a coalesced load.
                let cached = cache.get(&key).await;
                metrics.cache_lookup(cached.is_some());
                hit = cached.is_some();
                match cached {
                    Some(hit) => Ok(hit),
                    None => match request.finish_url(c) {
                        Ok(()) => cache
                            .try_get_with(key, self.fetch(tenant, integration, c, &request, ttl))
                            .await
                            .map_err(|e| (*e).clone()),
                        Err(e) => Err(e),
                    },
                }
            }
        };
        if let Err(e) = &result {
            tracing::warn!(integration = %integration.file, call = %c.name, error = %e, "upstream call failed");
        }
        (result, hit)
    }

    /// One call with its retries: idempotent methods only, on connection
    /// errors and 5xx, with exponential backoff.
    async fn fetch(
        &self,
        tenant: &Tenant,
        integration: &Integration,
        c: &CompiledCall<'_>,
        request: &Prepared,
        ttl: Duration,
    ) -> Result<Answer, EnrichError> {
        // Only tenants that limit an origin pay for finding its guard.
        let guard = match tenant.upstream_limits.is_empty() {
            true => None,
            false => self.guards.of(
                tenant,
                &Origin(request.url().origin().ascii_serialization()),
            ),
        };
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let result = match &guard {
                None => self.attempt(c, request, ttl).await,
                Some(guard) => self.guarded_attempt(guard, c, request, ttl).await,
            };
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            };
            crate::telemetry::upstream_call(
                &tenant.name,
                &integration.name,
                &c.name,
                outcome,
                started.elapsed(),
            );
            match result {
                Err(e) if c.idempotent && attempt < c.retries && e.retryable() => {
                    tokio::time::sleep(Duration::from_millis(50) * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// One attempt within the origin's slots and breaker.
    async fn guarded_attempt(
        &self,
        guard: &Guard,
        c: &CompiledCall<'_>,
        request: &Prepared,
        ttl: Duration,
    ) -> Result<Answer, EnrichError> {
        let Ok(pass) = guard.enter().await else {
            return Err(EnrichError::Unavailable {
                call: c.name.clone(),
                origin: request.url().origin().ascii_serialization(),
            });
        };
        let result = self.attempt(c, request, ttl).await;
        pass.finish(!matches!(
            &result,
            Err(EnrichError::Unreachable { .. } | EnrichError::Timeout { .. })
                | Err(EnrichError::Status {
                    status: 429 | 500..,
                    ..
                })
        ));
        result
    }

    async fn attempt(
        &self,
        c: &CompiledCall<'_>,
        request: &Prepared,
        ttl: Duration,
    ) -> Result<Answer, EnrichError> {
        let call = || c.name.clone();
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                EnrichError::Timeout {
                    call: call(),
                    timeout: c.timeout,
                }
            } else {
                EnrichError::Unreachable {
                    call: call(),
                    detail: error_chain(&e.without_url()),
                }
            }
        };
        let mut builder = self
            .client
            .request(c.method.clone(), request.url().clone())
            .headers(request.headers.clone())
            .timeout(c.timeout);
        if let Some(body) = &request.body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let mut resp = builder.send().await.map_err(transport)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(EnrichError::Status {
                call: call(),
                status: status.as_u16(),
            });
        }
        let too_large = || EnrichError::TooLarge {
            call: call(),
            limit: c.max_bytes,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > c.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if buf.len() + chunk.len() > c.max_bytes {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        // HEAD, or a 204: nothing to parse; the call succeeded with `null`.
        let value: Value = if buf.is_empty() {
            Value::from(())
        } else {
            serde_json::from_slice(&buf).map_err(|_| EnrichError::NotJson { call: call() })?
        };
        // Weighed only when it will be cached.
        let bytes = if ttl.is_zero() {
            0
        } else {
            ENTRY_OVERHEAD + value_weight(&value)
        };
        Ok(Answer {
            value,
            ttl,
            bytes: u32::try_from(bytes).unwrap_or(u32::MAX),
        })
    }
}

/// Reports one call to the journal's log, if there is one.
fn log_call(
    log: Option<&CallLog>,
    c: &CompiledCall<'_>,
    outcome: &'static str,
    took: Duration,
    cached: bool,
    value: Option<&Value>,
    bytes: usize,
) {
    let Some(log) = log else { return };
    // A fallback's size is unknown: measure it, only when logging.
    let bytes = match value {
        Some(v) if bytes == 0 => serde_json::to_vec(v).map_or(0, |b| b.len()),
        _ => bytes,
    };
    let answer = value.filter(|_| bytes <= MAX_LOGGED_ANSWER).cloned();
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(CallOutcome {
            name: c.name.clone(),
            outcome,
            took,
            cached,
            answer,
            bytes,
        });
}

/// The error and its causes, e.g. "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// A call's rendered request. The URL is parsed only when needed: to check
/// an origin its literal prefix does not fix, and to send the request. A
/// cache hit with a fixed origin never parses it.
struct Prepared {
    /// The rendered `url`, trimmed.
    raw_url: String,
    /// `raw_url` parsed, then (by [`Prepared::finish_url`]) with the query.
    url: Option<url::Url>,
    /// The rendered `query`, names from the YAML.
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    method: http::Method,
}

impl Prepared {
    /// Everything that can change the answer, under the tenant's name: two
    /// tenants never share an entry, even for the same URL.
    fn cache_key(&self, tenant: &str, ttl: Duration, max_bytes: usize) -> [u8; 32] {
        let mut h = Sha256::new();
        let mut part = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        part(tenant.as_bytes());
        // A call's own settings too: an answer cached under a long TTL or a
        // large `max_bytes` must not serve a call that asked otherwise.
        part(&ttl.as_nanos().to_le_bytes());
        part(&(max_bytes as u64).to_le_bytes());
        part(self.method.as_str().as_bytes());
        part(self.raw_url.as_bytes());
        for (name, value) in &self.query {
            part(name.as_bytes());
            part(value.as_bytes());
        }
        let mut headers: Vec<_> = self.headers.iter().collect();
        headers.sort_by(|a, b| {
            a.0.as_str()
                .cmp(b.0.as_str())
                .then(a.1.as_bytes().cmp(b.1.as_bytes()))
        });
        for (name, value) in headers {
            part(name.as_str().as_bytes());
            part(value.as_bytes());
        }
        part(self.body.as_deref().unwrap_or_default());
        h.finalize().into()
    }

    /// Parses the URL if the origin check did not, and adds the query.
    fn finish_url(&mut self, c: &CompiledCall<'_>) -> Result<(), EnrichError> {
        let mut url = match self.url.take() {
            Some(url) => url,
            None => parse_url(c, &self.raw_url)?,
        };
        if !self.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.query {
                pairs.append_pair(k, v);
            }
        }
        self.url = Some(url);
        Ok(())
    }

    fn url(&self) -> &url::Url {
        self.url
            .as_ref()
            .expect("finish_url runs before a request is sent")
    }
}

fn parse_url(c: &CompiledCall<'_>, raw: &str) -> Result<url::Url, EnrichError> {
    url::Url::parse(raw).map_err(|e| {
        template_error(
            c,
            "url",
            format!("the rendered `url` is not a URL: {e}"),
            None,
            None,
        )
    })
}

/// A failure of the call's template at `key` (`url`, `headers.Authorization`,
/// `body`), or of what it rendered; `excerpt` and `line` where minijinja
/// said which expression failed.
fn template_error(
    c: &CompiledCall<'_>,
    key: &str,
    detail: String,
    excerpt: Option<Excerpt>,
    line: Option<usize>,
) -> EnrichError {
    EnrichError::Template {
        call: c.name.clone(),
        detail,
        place: Box::new(Place::new(
            &format!("enrich.{}", c.name),
            key,
            excerpt,
            line,
            "template",
        )),
    }
}

/// A call's template that failed on the request, told as a message's is.
fn render_error(
    c: &CompiledCall<'_>,
    key: &str,
    t: &Text<'_>,
    e: &minijinja::Error,
) -> EnrichError {
    let (detail, excerpt) = describe(e, t.template_source());
    template_error(c, key, detail, excerpt, e.line())
}

/// Renders a call's URL, query, headers and body, and checks where it goes.
fn prepare(tenant: &Tenant, c: &CompiledCall<'_>, ctx: &Value) -> Result<Prepared, EnrichError> {
    let render = |key: &str, t: &Text<'_>| t.render(ctx).map_err(|e| render_error(c, key, t, &e));
    let mut raw_url = render("url", &c.url)?;
    if raw_url.contains(HOLE_OPEN) {
        raw_url = encode_holes(&raw_url)
            .map_err(|reason| template_error(c, "url", reason.to_string(), None, None))?;
    }
    raw_url.truncate(raw_url.trim_end().len());
    if raw_url.starts_with(char::is_whitespace) {
        raw_url = raw_url.trim_start().to_owned();
    }
    // The fixed origin, when the rendered URL starts with its literal prefix.
    let fixed = c.origin.as_ref().filter(|_| {
        c.origin_prefix
            .as_deref()
            .is_some_and(|prefix| raw_url.starts_with(prefix))
    });
    let (url, origin) = match fixed {
        Some(origin) => (None, std::borrow::Cow::Borrowed(origin)),
        None => {
            let url = parse_url(c, &raw_url)?;
            let origin = Origin(url.origin().ascii_serialization());
            (Some(url), std::borrow::Cow::Owned(origin))
        }
    };
    let allowed = match &c.origin {
        Some(fixed) => *fixed == *origin,
        None => tenant.upstreams.contains(&origin),
    } && (tenant.upstreams.is_empty() || tenant.upstreams.contains(&origin));
    if !allowed {
        return Err(EnrichError::Refused {
            call: c.name.clone(),
            origin: origin.into_owned().0,
        });
    }
    let query = c
        .query
        .iter()
        .map(|(k, t)| Ok((k.clone(), render(&format!("query.{k}"), t)?)))
        .collect::<Result<_, EnrichError>>()?;
    let mut headers = HeaderMap::new();
    for (name, t) in &c.headers {
        let value = render(&format!("headers.{name}"), t)?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| {
            template_error(
                c,
                &format!("headers.{name}"),
                "the rendered value is not a valid header value".into(),
                None,
                None,
            )
        })?;
        headers.insert(name.clone(), value);
    }
    let body = match &c.body {
        Some(node) => Some(
            serde_json::to_vec(&render_body(node, &render)?)
                .map_err(|e| template_error(c, "body", e.to_string(), None, None))?,
        ),
        None => None,
    };
    Ok(Prepared {
        raw_url,
        url,
        query,
        headers,
        body,
        method: c.method.clone(),
    })
}

/// Encodes a value that fills a path segment: `/ ? # %` and `\\` included,
/// so it stays one segment (`../../admin` → `..%2F..%2Fadmin`).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');
/// A value in the query: also `& = + ;`, so it stays one value.
const QUERY_VALUE: &AsciiSet = &SEGMENT.add(b'&').add(b'=').add(b'+').add(b';');

/// Where in a URL the scan is.
#[derive(Clone, Copy, PartialEq)]
enum UrlPart {
    /// Scheme and authority: values here are taken as they are; the origin
    /// check decides whether the result may be called.
    Head {
        after_scheme: bool,
    },
    Path,
    Query,
    Fragment,
}

/// The rendered URL with each marked value (see
/// [`crate::config::holes::push_hole`]) percent-encoded for the part it
/// lands in. A path segment made only of dots by a value is refused: `..`
/// and `%2e%2e` alike would climb the path.
fn encode_holes(rendered: &str) -> Result<String, String> {
    let mut scan = Scan {
        out: String::with_capacity(rendered.len() + 16),
        part: UrlPart::Head {
            after_scheme: false,
        },
        segment: 0,
        segment_has_value: false,
    };
    let mut rest = rendered;
    loop {
        let (literal, hole) = match rest.split_once(HOLE_OPEN) {
            Some((literal, after)) => {
                let (value, tail) = after.split_once(HOLE_CLOSE).unwrap_or((after, ""));
                rest = tail;
                (literal, Some(value))
            }
            None => (std::mem::take(&mut rest), None),
        };
        scan.advance(literal)?;
        let Some(value) = hole else { break };
        match scan.part {
            UrlPart::Head { .. } => scan.advance(value)?,
            UrlPart::Path => {
                scan.out.extend(utf8_percent_encode(value, SEGMENT));
                scan.segment_has_value = true;
            }
            UrlPart::Query | UrlPart::Fragment => {
                scan.out.extend(utf8_percent_encode(value, QUERY_VALUE));
            }
        }
    }
    if scan.part == UrlPart::Path {
        check_segment(&scan.out[scan.segment..], scan.segment_has_value)?;
    }
    Ok(scan.out)
}

struct Scan {
    out: String,
    part: UrlPart,
    /// Where the current path segment starts in `out`.
    segment: usize,
    segment_has_value: bool,
}

impl Scan {
    /// Literal text, and values before the path, move the scan along.
    fn advance(&mut self, text: &str) -> Result<(), String> {
        for c in text.chars() {
            if self.part == UrlPart::Path && matches!(c, '/' | '?' | '#') {
                check_segment(&self.out[self.segment..], self.segment_has_value)?;
            }
            self.out.push(c);
            self.part = match (self.part, c) {
                (
                    UrlPart::Head {
                        after_scheme: false,
                    },
                    _,
                ) if self.out.ends_with("://") => UrlPart::Head { after_scheme: true },
                (UrlPart::Head { after_scheme: true } | UrlPart::Path, '/') => UrlPart::Path,
                (UrlPart::Head { after_scheme: true } | UrlPart::Path, '?') => UrlPart::Query,
                (UrlPart::Head { after_scheme: true } | UrlPart::Path | UrlPart::Query, '#') => {
                    UrlPart::Fragment
                }
                (part, _) => part,
            };
            if self.part == UrlPart::Path && c == '/' {
                self.segment = self.out.len();
                self.segment_has_value = false;
            }
        }
        Ok(())
    }
}

fn check_segment(segment: &str, has_value: bool) -> Result<(), String> {
    let dots = segment.to_ascii_lowercase().replace("%2e", ".");
    if has_value && (dots == "." || dots == "..") {
        return Err(
            "a value placed in the URL's path makes a `.` or `..` segment, which would change the path"
                .into(),
        );
    }
    Ok(())
}

fn render_body(
    node: &BodyNode<'_>,
    render: &dyn Fn(&str, &Text<'_>) -> Result<String, EnrichError>,
) -> Result<serde_json::Value, EnrichError> {
    // A failure deep in the body names its part (`body.cliente.nome`): each
    // level adds its own as the error comes up, so success builds no path.
    let nest = |mut e: EnrichError, segment: std::fmt::Arguments<'_>| {
        if let EnrichError::Template { place, .. } = &mut e {
            place.nest(&segment.to_string());
        }
        e
    };
    Ok(match node {
        BodyNode::Null => serde_json::Value::Null,
        BodyNode::Bool(b) => serde_json::Value::Bool(*b),
        BodyNode::Number(n) => serde_json::Value::Number(n.clone()),
        BodyNode::Text(t) => serde_json::Value::String(render("body", t)?),
        BodyNode::List(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(j, i)| render_body(i, render).map_err(|e| nest(e, format_args!("[{j}]"))))
                .collect::<Result<_, _>>()?,
        ),
        BodyNode::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let v = render_body(v, render).map_err(|e| nest(e, format_args!(".{k}")))?;
                    Ok((k.clone(), v))
                })
                .collect::<Result<_, EnrichError>>()?,
        ),
    })
}
