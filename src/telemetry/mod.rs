//! What recado tells the people who run it: Prometheus metrics and the one
//! structured log line per request. Beside the request path; the stages only
//! call the small recording functions here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::{Integration, Tenant};

mod format;
mod logs;

pub use format::{subscriber, LineFormat, LogFormat};
pub use logs::{CappedLines, LogBuffer, LogFlushGuard, LogLine, LogWriter, MAX_LOG_LINE};

/// Latency buckets (seconds): webhook answers are sub-millisecond unless an
/// upstream call is involved.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process-wide Prometheus recorder (once) and returns its
/// handle. `main` calls it; a library user that wants `/metrics` does too
/// and hands the handle to [`crate::state::AppState`].
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        // Histogram samples pile up until upkeep folds them into buckets;
        // without it, memory grows with every request between scrapes.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("recado-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            })
            .expect("spawning the metrics upkeep thread");
        handle
    })
}

/// Everything the per-request log line and metrics say, filled in by the
/// webhook handler as far as it got and recorded by the stack's access step
/// ([`record_access`]) once the answer is known.
#[derive(Debug, Default, Clone)]
pub struct RequestRecord {
    pub request_id: Option<u64>,
    pub tenant: Option<Arc<Tenant>>,
    /// The integration's metric handles; set with `integration`.
    pub metrics: Option<Arc<IntegrationMetrics>>,
    /// Only set when the tenant has that integration: a label must never take
    /// a value an outsider chose.
    pub integration: Option<Arc<Integration>>,
    pub messages: Option<usize>,
    /// The contact's phone number and name as the access line shows them
    /// (shortened, and masked unless `personal_data`); only kept when the
    /// access log is on. See [`RequestRecord::keep_contact`].
    pub contact: Option<(String, String)>,
    /// The error's code and message, when the answer is one.
    pub error: Option<(&'static str, String)>,
    /// Log the contact unmasked (`--log-personal-data`).
    pub personal_data: bool,
    /// How long the answer took, when the webhook measured it (for its
    /// journal entry): the stack then reads the clock once, not twice.
    pub took: Option<Duration>,
}

/// Is the per-request line on (`RUST_LOG` at `info` for `recado::access`)?
pub fn access_log_enabled() -> bool {
    tracing::enabled!(target: "recado::access", tracing::Level::INFO)
}

/// Metric handles of one integration's successful requests, registered once
/// (a labelled lookup per request would cost more than the rest of the
/// bookkeeping together) and kept in [`crate::state::TenantState`].
#[derive(Debug)]
pub struct IntegrationMetrics {
    ok: Counter,
    duration: Histogram,
}

impl IntegrationMetrics {
    pub fn new(tenant: &str, integration: &str) -> IntegrationMetrics {
        let labels = [
            ("tenant", tenant.to_owned()),
            ("integration", integration.to_owned()),
        ];
        let mut with_status = labels.to_vec();
        with_status.push(("status", "200".to_owned()));
        IntegrationMetrics {
            ok: counter!("recado_requests_total", &with_status),
            duration: histogram!("recado_request_duration_seconds", &labels),
        }
    }
}

/// One tenant's metric handles, registered on first use and kept across
/// config versions (the labels are the same).
#[derive(Debug)]
pub struct TenantMetrics {
    cache_hits: Counter,
    cache_misses: Counter,
}

impl TenantMetrics {
    pub fn new(tenant: &str) -> TenantMetrics {
        TenantMetrics {
            cache_hits: counter!("recado_cache_hits_total", "tenant" => tenant.to_owned()),
            cache_misses: counter!("recado_cache_misses_total", "tenant" => tenant.to_owned()),
        }
    }

    pub fn cache_lookup(&self, hit: bool) {
        if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        }
        .increment(1);
    }
}

impl RequestRecord {
    /// Records the request's metrics and writes its log line.
    /// Keeps the contact for the access line, as the line shows it: one
    /// string each, made here from the request's (masking is a copy
    /// already, so the request's strings are not cloned first).
    pub fn keep_contact(&mut self, key: &str, name: &str) {
        // Shortened first: a contact field is as long as the sender likes.
        let shown = |s: &str, masked: fn(&str) -> String| {
            let s = crate::request::short(s);
            if self.personal_data {
                s.into_owned()
            } else {
                masked(&s)
            }
        };
        self.contact = Some((shown(key, mask_phone), shown(name, mask_name)));
    }

    pub fn finish(&self, status: u16, took: Duration) {
        let tenant = self.tenant.as_deref().map_or("-", |t| t.name.as_str());
        let integration = self.integration.as_deref().map_or("-", |i| i.name.as_str());
        match (&self.metrics, status) {
            (Some(m), 200) => {
                m.ok.increment(1);
                m.duration.record(took.as_secs_f64());
            }
            _ => {
                let labels = [
                    ("tenant", tenant.to_owned()),
                    ("integration", integration.to_owned()),
                ];
                let mut with_status = labels.to_vec();
                with_status.push(("status", status.to_string()));
                counter!("recado_requests_total", &with_status).increment(1);
                histogram!("recado_request_duration_seconds", &labels).record(took.as_secs_f64());
            }
        }

        let (key, name) = match &self.contact {
            Some((key, name)) => (Some(key.as_str()), Some(name.as_str())),
            None => (None, None),
        };
        tracing::info!(
            target: "recado::access",
            // A `&str`, not the macro's trailing `format_args!`: written as
            // it is rather than through `Debug` (the same line).
            message = "request",
            request_id = self.request_id,
            tenant,
            integration,
            status,
            code = self.error.as_ref().map(|(c, _)| *c),
            duration_us = took.as_micros() as u64,
            messages = self.messages,
            contact_key = key,
            contact_name = name,
            error = self.error.as_ref().map(|(_, m)| m.as_str()),
        );
    }
}

/// The fixed set of routes, as metric labels.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/admin/status" => "/admin/status",
        p if p.starts_with("/admin/requests") => "/admin/requests",
        p if p.starts_with("/hooks/") => WEBHOOK_ROUTE,
        _ => "other",
    }
}

const WEBHOOK_ROUTE: &str = "/hooks/{integration}";

/// Records one answered request, whatever its route (the access step of
/// [`crate::server::App`]'s stack): the webhook's [`RequestRecord`] (metrics
/// and the access line), or for the other routes (and a webhook path the
/// webhook did not take, such as a `GET`) a counter by route. A webhook
/// that panicked before it had a record is recorded as such.
pub fn record_access(
    route: &'static str,
    record: Option<&RequestRecord>,
    status: http::StatusCode,
    took: Duration,
) {
    let status = status.as_u16();
    match record {
        Some(record) => record.finish(status, took),
        None if route == WEBHOOK_ROUTE && status >= 500 => {
            RequestRecord::default().finish(status, took)
        }
        None => {
            counter!("recado_http_requests_total", "route" => route, "status" => status.to_string())
                .increment(1);
            tracing::debug!(target: "recado::access", route, status, duration_us = took.as_micros() as u64, "request");
        }
    }
}

/// `5513999999999` → `*********9999`: enough to tell contacts apart in a
/// support conversation, not enough to call them (LGPD).
pub fn mask_phone(key: &str) -> String {
    if key.is_ascii() {
        let keep = key.len().saturating_sub(4);
        // One allocation (`repeat` and `+` would make two).
        let mut out = String::with_capacity(key.len());
        out.extend(std::iter::repeat_n('*', keep));
        out.push_str(&key[keep..]);
        return out;
    }
    let n = key.chars().count();
    key.chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

/// `João da Silva` → `J*** d* S****`: each space-separated word keeps its
/// first character.
pub fn mask_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut word_start = true;
    for c in name.chars() {
        let shown = c == ' ' || word_start;
        word_start = c == ' ';
        out.push(if shown { c } else { '*' });
    }
    out
}

/// One upstream call attempt.
pub fn upstream_call(
    tenant: &str,
    integration: &str,
    call: &str,
    outcome: &'static str,
    took: Duration,
) {
    let labels = [
        ("tenant", tenant.to_owned()),
        ("integration", integration.to_owned()),
        ("call", call.to_owned()),
    ];
    counter!("recado_upstream_calls_total", &labels).increment(1);
    if outcome != "ok" {
        let mut with_outcome = labels.to_vec();
        with_outcome.push(("error", outcome.to_owned()));
        counter!("recado_upstream_errors_total", &with_outcome).increment(1);
    }
    histogram!("recado_upstream_duration_seconds", &labels).record(took.as_secs_f64());
}

pub fn cache_size(entries: u64, bytes: u64) {
    gauge!("recado_cache_entries").set(entries as f64);
    gauge!("recado_cache_bytes").set(bytes as f64);
}

/// A config (re)load: how many tenants, integrations and errors it left.
pub fn reloaded(snapshot: &crate::config::Snapshot) {
    counter!("recado_reloads_total").increment(1);
    gauge!("recado_tenants_loaded").set(snapshot.tenants.len() as f64);
    gauge!("recado_integrations_loaded").set(snapshot.integration_count() as f64);
    gauge!("recado_config_errors").set(snapshot.all_errors().count() as f64);
    // A reload that could not read a file is retried by the watcher.
    let pending = snapshot.all_errors().any(|e| e.io);
    if pending {
        counter!("recado_reload_failures_total").increment(1);
    }
    gauge!("recado_reload_retries_pending").set(if pending { 1.0 } else { 0.0 });
}

/// How long a rendered `/metrics` page is served again: with thousands of
/// integrations a render is megabytes and tens of milliseconds of CPU, and
/// a client scraping in a loop must not take that from the webhooks.
pub const METRICS_MAX_AGE: Duration = Duration::from_secs(1);

/// The last rendered `/metrics` page. Scrapes within [`METRICS_MAX_AGE`]
/// of a render get its bytes; concurrent scrapes wait for one render.
#[derive(Default)]
pub struct MetricsCache {
    last: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
    renders: AtomicU64,
}

impl MetricsCache {
    /// How many times the page was rendered.
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// The page, rendered anew (after `refresh` updates the gauges that are
    /// read rather than counted) when the last one is older than
    /// [`METRICS_MAX_AGE`].
    pub async fn render(
        &self,
        handle: &PrometheusHandle,
        refresh: impl std::future::Future<Output = ()>,
    ) -> Bytes {
        let mut last = self.last.lock().await;
        if let Some((at, text)) = &*last {
            if at.elapsed() < METRICS_MAX_AGE {
                return text.clone();
            }
        }
        refresh.await;
        let handle = handle.clone();
        // Megabytes of text: off the threads that serve webhooks.
        let text = tokio::task::spawn_blocking(move || {
            handle.run_upkeep();
            Bytes::from(handle.render())
        })
        .await
        .unwrap_or_default();
        self.renders.fetch_add(1, Ordering::Relaxed);
        *last = Some((Instant::now(), text.clone()));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_phone("5513999999999"), "*********9999");
        assert_eq!(mask_phone("123"), "123");
        assert_eq!(mask_name("João da Silva"), "J*** d* S****");
        assert_eq!(mask_phone("+55 (13) 9999"), "*********9999");
        assert_eq!(mask_phone("五五一三九九九九"), "****九九九九");
        assert_eq!(mask_phone(""), "");
        for (name, masked) in [
            ("", ""),
            (" ", " "),
            ("Ana  Souza ", "A**  S**** "),
            ("Ébano Ñ", "É**** Ñ"),
            ("\u{200b}x y", "\u{200b}* y"),
        ] {
            assert_eq!(mask_name(name), masked, "{name:?}");
        }
    }
}
