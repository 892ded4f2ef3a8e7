//! What recado tells the people who run it: Prometheus metrics and the one
//! structured log line per request. Beside the request path; the stages only
//! call the small recording functions here.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds): webhook answers are sub-millisecond unless an
/// upstream call is involved.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Everything the per-request log line and metrics say, filled in by the
/// pipeline as far as it got.
#[derive(Debug, Default)]
pub struct RequestRecord {
    pub request_id: Option<u64>,
    pub tenant: Option<String>,
    /// Only set when the tenant has an integration of that name: a label
    /// must never take a value an outsider chose.
    pub integration: Option<String>,
    pub messages: Option<usize>,
    pub contact_key: Option<String>,
    pub contact_name: Option<String>,
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
        let tenant = self.tenant.as_deref().unwrap_or("-").to_owned();
        let integration = self.integration.as_deref().unwrap_or("-").to_owned();
        counter!("recado_requests_total", "tenant" => tenant.clone(), "integration" => integration.clone(), "status" => status.to_string())
            .increment(1);
        histogram!("recado_request_duration_seconds", "tenant" => tenant.clone(), "integration" => integration.clone())
            .record(took.as_secs_f64());

        let key = self.contact_key.as_deref().map(|k| {
            if personal_data {
                k.to_owned()
            } else {
                mask_phone(k)
            }
        });
        let name = self.contact_name.as_deref().map(|n| {
            if personal_data {
                n.to_owned()
            } else {
                mask_name(n)
            }
        });
        tracing::info!(
            target: "recado::access",
            request_id = self.request_id,
            tenant = %tenant,
            integration = %integration,
            status,
            code,
            duration_us = took.as_micros() as u64,
            messages = self.messages,
            contact_key = key.as_deref(),
            contact_name = name.as_deref(),
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

pub fn cache_lookup(tenant: &str, hit: bool) {
    let name = if hit {
        "recado_cache_hits_total"
    } else {
        "recado_cache_misses_total"
    };
    counter!(name, "tenant" => tenant.to_owned()).increment(1);
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
