//! What every request handler shares: the current config, the server's
//! settings, the upstream client, and the request-time state of each tenant
//! (its concurrency slots, and its integrations' metric handles and journal
//! rings). That state lives here, keyed by tenant, so the config stays inert
//! data that a reload can replace whole.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Integration, Snapshot, Tenant};
use crate::enrich::{Upstream, DEFAULT_CACHE_BYTES};
use crate::journal::{Journal, JournalSettings, RingRef, StoreError};
use crate::renewing::Renewing;
use crate::studio::session::Sessions;
use crate::telemetry::{IntegrationMetrics, TenantMetrics};

/// Largest request body accepted. The platform's requests are a few hundred
/// bytes; the payload an operator types is small too.
pub const DEFAULT_BODY_LIMIT: usize = 256 * 1024;

/// See [`Settings::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// See [`Settings::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// See [`Settings::max_header_bytes`]: nginx's default too.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 8 * 1024;

/// See [`Settings::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The server's settings: everything `recado serve` takes from its flags.
#[derive(Clone)]
pub struct Settings {
    /// Largest request body, for every tenant (a tenant may set less).
    pub body_limit: usize,
    /// Guards `GET /admin/status`; `None` turns that endpoint off.
    pub admin_token: Option<AdminToken>,
    /// Log contacts' phone numbers and names in full (debugging only: they
    /// are personal data under the LGPD). Masked otherwise.
    pub log_personal_data: bool,
    /// A connection with no request in flight that starts or finishes none
    /// for this long is closed.
    pub idle_timeout: Duration,
    /// Upper bound of the upstream answer cache, in bytes.
    pub cache_bytes: u64,
    /// Mark the studio's session cookie `Secure` even when the request does
    /// not say (by `X-Forwarded-Proto: https`) that it came over https.
    pub studio_secure_cookies: bool,
    /// A connection that started a header block and has not finished it
    /// this long after is closed (between one and two of these).
    pub header_timeout: Duration,
    /// Largest header block (request line included); larger gets 431.
    pub max_header_bytes: usize,
    /// Connections open at once, per listener; more are closed at accept.
    pub max_connections: usize,
    /// Connections one client address may have open at once, per listener;
    /// 0 (the default) for no limit but `max_connections`.
    pub max_connections_per_ip: usize,
    /// Signs the studio's session cookies (`--studio-session-key`), the
    /// same on every replica; `None`: a key of the process's own.
    pub studio_session_key: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client, for the sign-in
    /// limit (`--trusted-proxy`); none by default.
    pub trusted_proxies: crate::forwarded::TrustedProxies,
    /// Guards `GET /metrics` on the main listener (the admin token is
    /// accepted too). Without either, `/metrics` is only served on the
    /// metrics listener (`--metrics-listen`), if any.
    pub metrics_token: Option<AdminToken>,
    /// The request journal's bounds; `None` turns it off (`--journal off`).
    pub journal: Option<JournalSettings>,
    /// Also keep the journal in this SQLite file, across restarts
    /// (`--journal-file`); `None` keeps it in memory only.
    pub journal_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            body_limit: DEFAULT_BODY_LIMIT,
            admin_token: None,
            log_personal_data: false,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            cache_bytes: DEFAULT_CACHE_BYTES,
            studio_secure_cookies: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: 0,
            trusted_proxies: crate::forwarded::TrustedProxies::default(),
            studio_session_key: None,
            metrics_token: None,
            journal: Some(JournalSettings::default()),
            journal_file: None,
        }
    }
}

/// The admin token, kept as a digest and compared in constant time.
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        AdminToken(Sha256::digest(token.as_bytes()).into())
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

/// What every handler shares, behind one `Arc`: a request clones it once
/// (one reference count), not each of its parts.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    /// The current config. A request loads it once and keeps that snapshot to
    /// the end, so a reload never shows it half of an edit.
    pub config: Arc<ArcSwap<Snapshot>>,
    pub settings: Arc<Settings>,
    /// The HTTP client and answer cache for enrichment calls.
    pub upstream: Arc<Upstream>,
    pub tenants: Arc<TenantStates>,
    /// The last answers of each integration, for the admin API and the
    /// shadow check; `None` when off.
    pub journal: Option<Arc<Journal>>,
    /// The Prometheus recorder's handle for `GET /metrics`; `None` (no
    /// recorder installed) turns that endpoint off.
    pub metrics: Option<PrometheusHandle>,
    /// The studio's session key, and the sessions signed out here (`/studio`).
    pub studio: Arc<Sessions>,
    /// The last rendered `/metrics` page, served again for a second.
    pub scrapes: Arc<crate::telemetry::MetricsCache>,
    /// Failed sign-ins to the operators' routes, by client address.
    pub lockout: crate::lockout::Lockout,
}

impl AppState {
    /// # Panics
    /// When `settings.journal_file` cannot be opened: [`AppState::open`]
    /// returns that error instead.
    pub fn new(settings: Settings, snapshot: Snapshot) -> AppState {
        AppState::open(settings, snapshot).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`AppState::new`], with the journal's file opened (and read).
    ///
    /// # Panics
    /// When the operating system has no random source for the studio's
    /// session key (Linux has had one since 3.17).
    pub fn open(settings: Settings, snapshot: Snapshot) -> Result<AppState, StoreError> {
        let journal = match (settings.journal, &settings.journal_file) {
            (Some(j), Some(file)) => Some(Arc::new(Journal::open(j, file)?)),
            (Some(j), None) => Some(Arc::new(Journal::new(j))),
            (None, _) => None,
        };
        let studio = Arc::new(
            Sessions::new(settings.studio_session_key.as_deref())
                .expect("the operating system's random source (getrandom) failed"),
        );
        Ok(AppState(Arc::new(Shared {
            config: Arc::new(ArcSwap::from_pointee(snapshot)),
            upstream: Arc::new(Upstream::new(settings.cache_bytes)),
            journal,
            settings: Arc::new(settings),
            tenants: Arc::default(),
            metrics: None,
            studio,
            scrapes: Arc::default(),
            lockout: Default::default(),
        })))
    }

    /// Serves `GET /metrics` from `handle` (the installed recorder's).
    ///
    /// # Panics
    /// Once the state is shared (cloned): set it right after [`AppState::open`].
    pub fn set_metrics(&mut self, handle: PrometheusHandle) {
        Arc::get_mut(&mut self.0)
            .expect("set_metrics before the state is shared")
            .metrics = Some(handle);
    }
}

/// One tenant's request-time state. It outlives config versions: a reload
/// that keeps the tenant's `concurrency` keeps its slots, so requests in
/// flight keep counting.
pub struct TenantState {
    /// The registry it belongs to ([`TenantStates::owner`]).
    owner: u64,
    concurrency: u32,
    /// This tenant's requests in flight, against its `concurrency`.
    pub in_flight: Slots,
    pub metrics: Arc<TenantMetrics>,
    /// Each integration's handles, by name; kept when the state is renewed.
    integrations: Arc<Renewing<String, IntegrationState>>,
}

/// A tenant's requests in flight, at most `limit` at once.
///
/// A counter, not a semaphore: a request over the limit is refused (429),
/// never queued, and tokio's semaphore takes a lock on every release; here
/// a request costs one compare-and-swap and one subtraction.
pub struct Slots {
    limit: u32,
    taken: AtomicU32,
}

impl Slots {
    pub fn new(limit: u32) -> Slots {
        Slots {
            limit,
            taken: AtomicU32::new(0),
        }
    }

    /// A slot, given back when the guard is dropped; `None` when all
    /// `limit` are taken.
    pub fn try_take(&self) -> Option<Slot<'_>> {
        let mut taken = self.taken.load(Ordering::Relaxed);
        loop {
            if taken >= self.limit {
                return None;
            }
            match self.taken.compare_exchange_weak(
                taken,
                taken + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Slot(self)),
                Err(now) => taken = now,
            }
        }
    }

    /// Slots taken now.
    pub fn taken(&self) -> u32 {
        self.taken.load(Ordering::Relaxed)
    }
}

/// One of [`Slots`], held for a request's life.
pub struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::Release);
    }
}

/// What a request of one integration records into, found once per
/// integration so that a request looks up one name, not one per handle.
pub struct IntegrationState {
    pub metrics: Arc<IntegrationMetrics>,
    /// Its journal ring (`None` with the journal off).
    pub journal: Option<RingRef>,
}

impl TenantState {
    /// The handles of `integration` of `tenant` (this state's tenant),
    /// made on its first request.
    pub fn integration(
        &self,
        tenant: &str,
        integration: &str,
        journal: Option<&Journal>,
    ) -> Arc<IntegrationState> {
        self.integrations.get(
            integration,
            |_| true,
            |_| IntegrationState {
                metrics: Arc::new(IntegrationMetrics::new(tenant, integration)),
                journal: journal.map(|j| j.ring_of(tenant, integration)),
            },
        )
    }
}

/// A request-time state found for a config object: borrowed from the
/// object's [`Attached`](crate::config::attached::Attached) slot (every
/// request but the first of a config version), or looked up.
pub enum Held<'a, T> {
    Attached(&'a T),
    Found(Arc<T>),
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Held::Attached(t) => t,
            Held::Found(t) => t,
        }
    }
}

impl TenantState {
    /// [`TenantState::integration`] for `integration`, kept in its slot.
    pub fn integration_of<'i>(
        &self,
        tenant: &str,
        integration: &'i Integration,
        journal: Option<&Journal>,
    ) -> Held<'i, IntegrationState> {
        let find = || self.integration(tenant, &integration.name, journal);
        match integration.attached.get_or_attach(self.owner, find) {
            Some(state) => Held::Attached(state),
            None => Held::Found(find()),
        }
    }
}

/// [`TenantState`] by tenant name.
pub struct TenantStates {
    /// This registry's number, unique in the process: what the config's
    /// attached slots record as their owner.
    owner: u64,
    states: Renewing<String, TenantState>,
}

impl Default for TenantStates {
    fn default() -> TenantStates {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TenantStates {
            owner: NEXT.fetch_add(1, Ordering::Relaxed),
            states: Renewing::default(),
        }
    }
}

impl TenantStates {
    /// [`TenantStates::of`], kept in the tenant's slot: the map is read
    /// once per version of the tenant's config, not once per request. The
    /// state kept is the one that fits that version's `concurrency`.
    pub fn of_attached<'t>(&self, tenant: &'t Tenant) -> Held<'t, TenantState> {
        match tenant
            .attached
            .get_or_attach(self.owner, || self.of(tenant))
        {
            Some(state) => Held::Attached(state),
            None => Held::Found(self.of(tenant)),
        }
    }

    /// The state of `tenant`, created on its first request, and renewed when
    /// its `concurrency` limit changed.
    pub fn of(&self, tenant: &Tenant) -> Arc<TenantState> {
        let limit = tenant.limits.concurrency;
        self.states.get(
            &tenant.name,
            |s| s.concurrency == limit,
            |old| {
                // A renewed state keeps the tenant's metrics and integrations' handles.
                let (metrics, integrations) = old
                    .map(|s| (s.metrics.clone(), s.integrations.clone()))
                    .unwrap_or_else(|| {
                        (Arc::new(TenantMetrics::new(&tenant.name)), Arc::default())
                    });
                TenantState {
                    owner: self.owner,
                    concurrency: limit,
                    in_flight: Slots::new(limit),
                    metrics,
                    integrations,
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Slots, TenantStates};

    /// The config's slots name their owner by this number: a registry made
    /// after another was dropped (maybe at its address) is another owner.
    #[test]
    fn every_registry_is_another_owner() {
        let first = TenantStates::default().owner;
        let second = TenantStates::default().owner;
        assert_ne!(first, second);
    }

    #[test]
    fn slots_are_taken_up_to_the_limit_and_given_back() {
        let slots = Slots::new(2);
        let a = slots.try_take().expect("first");
        let b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none(), "a third over a limit of 2");
        assert_eq!(slots.taken(), 2);
        drop(a);
        let c = slots.try_take().expect("a slot given back is taken again");
        drop((b, c));
        assert_eq!(slots.taken(), 0);
    }

    #[test]
    fn slots_hold_under_contention() {
        let slots = std::sync::Arc::new(Slots::new(3));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (slots, peak) = (slots.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if let Some(_slot) = slots.try_take() {
                            peak.fetch_max(slots.taken(), std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 3);
        assert_eq!(slots.taken(), 0);
    }
}
