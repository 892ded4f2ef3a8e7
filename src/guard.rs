//! Protecting the companies' systems from recado: a scheduled message fires
//! for thousands of contacts at once, and with enrichment each is a call to
//! the company's ERP. Per tenant and origin, as `tenant.yaml` sets under
//! `upstreams:`, a cap on the calls in flight (more wait for a slot, within
//! the call's deadline) and a circuit breaker (after N failures in a row,
//! calls fail at once until a probe succeeds).
//!
//! Request-time state beside the inert config, like [`crate::state`]: kept
//! across reloads while the tenant's settings for the origin are unchanged,
//! so calls in flight keep counting.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use metrics::{counter, gauge, Counter, Gauge};
use serde::Serialize;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::spec::Origin;
use crate::config::{Tenant, UpstreamLimits};
use crate::renewing::Renewing;

/// Every tenant's guards, by tenant name and origin.
#[derive(Default)]
pub struct Guards(Renewing<String, Renewing<Origin, Guard>>);

impl Guards {
    /// The guard of calls from `tenant` to `origin`, if the tenant limits
    /// that origin. Renewed when its limits change.
    pub fn of(&self, tenant: &Tenant, origin: &Origin) -> Option<Arc<Guard>> {
        let limits = tenant.upstream_limits.iter().find(|(o, _)| o == origin)?.1;
        let by_origin = self.0.get(&tenant.name, |_| true, |_| Renewing::default());
        Some(by_origin.get(
            origin,
            |g| g.limits == limits,
            |_| Guard::new(&tenant.name, origin, limits),
        ))
    }

    /// Each guard's state, for `/admin/status`.
    pub fn status(&self) -> Vec<GuardStatus> {
        let mut out: Vec<GuardStatus> = Vec::new();
        for (tenant, by_origin) in self.0.read().iter() {
            for (origin, g) in by_origin.read().iter() {
                out.push(g.status(tenant, origin));
            }
        }
        out.sort_by(|a, b| (&a.tenant, &a.origin).cmp(&(&b.tenant, &b.origin)));
        out
    }
}

/// What `/admin/status` shows of one guard.
#[derive(Debug, Serialize)]
pub struct GuardStatus {
    pub tenant: String,
    pub origin: String,
    pub max_in_flight: Option<u32>,
    pub in_flight: u32,
    /// Calls waiting for a slot now.
    pub waiting: u32,
    /// Calls that had to wait for a slot, since the guard was made.
    pub waited_total: u64,
    /// Calls failed at once by the open breaker, since the guard was made.
    pub rejected_total: u64,
    /// `closed`, `open` or `half_open` (one probe in flight); absent
    /// without a breaker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<&'static str>,
}

/// The calls of one tenant to one origin.
pub struct Guard {
    limits: UpstreamLimits,
    slots: Option<Semaphore>,
    breaker: Option<Mutex<BreakerState>>,
    in_flight: AtomicU32,
    waiting: AtomicU32,
    waited_total: AtomicU64,
    rejected_total: AtomicU64,
    metrics: GuardMetrics,
}

/// Registered once per guard: a labelled lookup per call would cost more
/// than the guard itself.
struct GuardMetrics {
    in_flight: Gauge,
    waiting: Gauge,
    waited: Counter,
    rejected: Counter,
    breaker: Gauge,
}

#[derive(Debug, Clone, Copy)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One call (the probe) is trying the origin; the others fail at once.
    HalfOpen,
}

impl BreakerState {
    fn label(self) -> &'static str {
        match self {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The gauge's value: 0 closed, 1 open, 2 half-open.
    fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed { .. } => 0.0,
            BreakerState::Open { .. } => 1.0,
            BreakerState::HalfOpen => 2.0,
        }
    }
}

/// The breaker is open: the call fails without reaching the origin.
#[derive(Debug)]
pub struct BreakerOpen;

impl Guard {
    fn new(tenant: &str, origin: &Origin, limits: UpstreamLimits) -> Guard {
        let labels = [("tenant", tenant.to_owned()), ("origin", origin.0.clone())];
        let metrics = GuardMetrics {
            in_flight: gauge!("recado_upstream_in_flight", &labels),
            waiting: gauge!("recado_upstream_waiting", &labels),
            waited: counter!("recado_upstream_waited_total", &labels),
            rejected: counter!("recado_upstream_rejected_total", &labels),
            breaker: gauge!("recado_upstream_breaker_state", &labels),
        };
        metrics.breaker.set(0.0);
        Guard {
            limits,
            slots: limits.max_in_flight.map(|n| Semaphore::new(n as usize)),
            breaker: limits
                .breaker
                .map(|_| Mutex::new(BreakerState::Closed { failures: 0 })),
            in_flight: AtomicU32::new(0),
            waiting: AtomicU32::new(0),
            waited_total: AtomicU64::new(0),
            rejected_total: AtomicU64::new(0),
            metrics,
        }
    }

    /// Waits for a slot, then asks the breaker. The returned pass is the
    /// slot; report the call's outcome with [`Pass::finish`].
    pub async fn enter(&self) -> Result<Pass<'_>, BreakerOpen> {
        // An open breaker fails the call before it queues for a slot...
        if self.breaker_state().is_some_and(|s| {
            matches!(s, BreakerState::Open { until } if Instant::now() < until)
                || matches!(s, BreakerState::HalfOpen)
        }) {
            return Err(self.reject());
        }
        let permit = match &self.slots {
            None => None,
            Some(slots) => Some(match slots.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    self.waited_total.fetch_add(1, Ordering::Relaxed);
                    self.metrics.waited.increment(1);
                    let _waiting = Counted::new(&self.waiting, &self.metrics.waiting);
                    slots
                        .acquire()
                        .await
                        .expect("the semaphore is never closed")
                }
            }),
        };
        // ...and calls that waited while it opened fail as they get a slot,
        // instead of each trying the failing origin.
        let probe = self.admit()?;
        Ok(Pass {
            guard: self,
            _permit: permit,
            _in_flight: Counted::new(&self.in_flight, &self.metrics.in_flight),
            probe,
            finished: false,
        })
    }

    fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker
            .as_ref()
            .map(|b| *b.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn reject(&self) -> BreakerOpen {
        self.rejected_total.fetch_add(1, Ordering::Relaxed);
        self.metrics.rejected.increment(1);
        BreakerOpen
    }

    /// Whether the call may go; `Ok(true)` if it is the half-open probe.
    fn admit(&self) -> Result<bool, BreakerOpen> {
        let Some(breaker) = &self.breaker else {
            return Ok(false);
        };
        let mut state = breaker.lock().unwrap_or_else(|e| e.into_inner());
        match *state {
            BreakerState::Closed { .. } => Ok(false),
            BreakerState::Open { until } if Instant::now() >= until => {
                self.set(&mut state, BreakerState::HalfOpen);
                Ok(true)
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen => {
                drop(state);
                Err(self.reject())
            }
        }
    }

    fn set(&self, state: &mut BreakerState, to: BreakerState) {
        if state.label() != to.label() {
            tracing::warn!(target: "recado::upstream", breaker = to.label(), "upstream breaker changed state");
        }
        *state = to;
        self.metrics.breaker.set(to.gauge());
    }

    fn record(&self, probe: bool, upstream_ok: bool) {
        let (Some(breaker), Some((threshold, cool_down))) = (&self.breaker, self.limits.breaker)
        else {
            return;
        };
        let mut state = breaker.lock().unwrap_or_else(|e| e.into_inner());
        let open = BreakerState::Open {
            until: Instant::now() + cool_down,
        };
        let next = match (*state, upstream_ok) {
            (_, true) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, false) if failures + 1 >= threshold => open,
            (BreakerState::Closed { failures }, false) => BreakerState::Closed {
                failures: failures + 1,
            },
            (BreakerState::HalfOpen, false) if probe => open,
            (other, false) => other,
        };
        self.set(&mut state, next);
    }

    fn probe_abandoned(&self) {
        if let Some(breaker) = &self.breaker {
            let mut state = breaker.lock().unwrap_or_else(|e| e.into_inner());
            if matches!(*state, BreakerState::HalfOpen) {
                // The probe was cancelled (the request's deadline): let the
                // next call probe instead of staying half-open for ever.
                self.set(
                    &mut state,
                    BreakerState::Open {
                        until: Instant::now(),
                    },
                );
            }
        }
    }

    fn status(&self, tenant: &str, origin: &Origin) -> GuardStatus {
        GuardStatus {
            tenant: tenant.to_owned(),
            origin: origin.0.clone(),
            max_in_flight: self.limits.max_in_flight,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            waiting: self.waiting.load(Ordering::Relaxed),
            waited_total: self.waited_total.load(Ordering::Relaxed),
            rejected_total: self.rejected_total.load(Ordering::Relaxed),
            breaker: self.breaker_state().map(BreakerState::label),
        }
    }
}

/// A call's slot (if the origin is capped) while it is in flight.
pub struct Pass<'a> {
    guard: &'a Guard,
    _permit: Option<SemaphorePermit<'a>>,
    _in_flight: Counted<'a>,
    probe: bool,
    finished: bool,
}

impl Pass<'_> {
    /// Reports the call's outcome to the breaker: `upstream_ok` unless the
    /// origin could not be reached, timed out, or answered 5xx or 429.
    pub fn finish(mut self, upstream_ok: bool) {
        self.finished = true;
        self.guard.record(self.probe, upstream_ok);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe && !self.finished {
            self.guard.probe_abandoned();
        }
    }
}

/// A count (and its gauge) held up while this lives, cancellation included.
struct Counted<'a>(&'a AtomicU32, &'a Gauge);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicU32, gauge: &'a Gauge) -> Counted<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        gauge.increment(1.0);
        Counted(count, gauge)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        self.1.decrement(1.0);
    }
}
