//! What recado tells the people who run it: Prometheus metrics and the one
//! structured log line per request. Beside the request path; the stages only
//! call the small recording functions here.

use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;

use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::config::{Integration, Tenant};

/// Latency buckets (seconds): webhook answers are sub-millisecond unless an
/// upstream call is involved.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
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
/// pipeline as far as it got.
#[derive(Debug, Default)]
pub struct RequestRecord {
    pub request_id: Option<u64>,
    pub tenant: Option<Arc<Tenant>>,
    /// Only set when the tenant has that integration: a label must never take
    /// a value an outsider chose.
    pub integration: Option<Arc<Integration>>,
    pub messages: Option<usize>,
    /// The contact's phone number and name; only kept when the access log
    /// is on.
    pub contact: Option<(String, String)>,
}

/// Is the per-request line on (`RUST_LOG` at `info` for `recado::access`)?
pub fn access_log_enabled() -> bool {
    tracing::enabled!(target: "recado::access", tracing::Level::INFO)
}

/// Metric handles of one integration's successful requests, registered once
/// (a labelled lookup per request would cost more than the rest of the
/// bookkeeping together).
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

impl RequestRecord {
    /// Records the request's metrics and writes its log line.
    pub fn finish(
        &self,
        status: u16,
        code: Option<&str>,
        error: Option<&dyn std::fmt::Display>,
        took: Duration,
        personal_data: bool,
    ) {
        let tenant = self.tenant.as_deref().map_or("-", |t| t.name.as_str());
        let integration = self.integration.as_deref().map_or("-", |i| i.name.as_str());
        match (&self.integration, status) {
            (Some(i), 200) => {
                let m = i
                    .metrics
                    .get_or_init(|| IntegrationMetrics::new(tenant, &i.name));
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

        let shown = |masked: fn(&str) -> String, s: &str| {
            if personal_data {
                s.to_owned()
            } else {
                masked(s)
            }
        };
        tracing::info!(
            target: "recado::access",
            request_id = self.request_id,
            tenant,
            integration,
            status,
            code,
            duration_us = took.as_micros() as u64,
            messages = self.messages,
            contact_key = self.contact.as_ref().map(|(k, _)| shown(mask_phone, k)),
            contact_name = self.contact.as_ref().map(|(_, n)| shown(mask_name, n)),
            error = error.map(tracing::field::display),
            "request"
        );
    }
}

/// `5513999999999` → `*********9999`: enough to tell contacts apart in a
/// support conversation, not enough to call them (LGPD).
pub fn mask_phone(key: &str) -> String {
    let n = key.chars().count();
    key.chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

/// `João da Silva` → `J*** d* S****`.
pub fn mask_name(name: &str) -> String {
    name.split(' ')
        .map(|w| {
            w.chars()
                .enumerate()
                .map(|(i, c)| if i == 0 { c } else { '*' })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
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

/// A tenant's answer-cache counters, registered once like
/// [`IntegrationMetrics`].
#[derive(Debug)]
pub struct CacheMetrics {
    hits: Counter,
    misses: Counter,
}

pub fn cache_lookup(tenant: &Tenant, hit: bool) {
    let m = tenant.cache_metrics.get_or_init(|| CacheMetrics {
        hits: counter!("recado_cache_hits_total", "tenant" => tenant.name.clone()),
        misses: counter!("recado_cache_misses_total", "tenant" => tenant.name.clone()),
    });
    if hit { &m.hits } else { &m.misses }.increment(1);
}

pub fn cache_size(entries: u64, bytes: u64) {
    gauge!("recado_cache_entries").set(entries as f64);
    gauge!("recado_cache_bytes").set(bytes as f64);
}

pub fn reloaded(tenants: usize, integrations: usize, errors: usize) {
    counter!("recado_reloads_total").increment(1);
    gauge!("recado_tenants_loaded").set(tenants as f64);
    gauge!("recado_integrations_loaded").set(integrations as f64);
    gauge!("recado_config_errors").set(errors as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_phone("5513999999999"), "*********9999");
        assert_eq!(mask_phone("123"), "123");
        assert_eq!(mask_name("João da Silva"), "J*** d* S****");
    }
}
