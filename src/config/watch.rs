//! Hot reload: file-system events (debounced) and SIGHUP ask for a reload;
//! one thread builds the next [`Snapshot`] off the request path and swaps it
//! in atomically. Requests in flight keep the snapshot they loaded.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use super::{reload, Scope, Snapshot};

/// How long a file must be quiet before it is read: long enough for an
/// editor's save (truncate, write, close) to finish, short enough that an
/// edit is live well within a second.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Rebuilds and swaps the snapshot. Only one thread calls [`Reloader::reload`]
/// (the watcher's), so a load-then-store cannot lose another reload.
#[derive(Clone)]
pub struct Reloader {
    root: PathBuf,
    config: Arc<ArcSwap<Snapshot>>,
}

impl Reloader {
    pub fn new(root: PathBuf, config: Arc<ArcSwap<Snapshot>>) -> Reloader {
        Reloader { root, config }
    }

    /// Re-reads `scope`, swaps the result in and logs what changed.
    pub fn reload(&self, scope: &Scope) -> Arc<Snapshot> {
        let started = Instant::now();
        let prev = self.config.load_full();
        let next = Arc::new(reload(&self.root, &prev, scope));
        self.config.store(next.clone());
        log_changes(&prev, &next, started.elapsed());
        next
    }
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Watcher {
    requests: mpsc::Sender<Scope>,
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

impl Watcher {
    /// Asks for a reload (SIGHUP uses this with [`Scope::All`]).
    pub fn request(&self, scope: Scope) {
        let _ = self.requests.send(scope);
    }
}

/// Watches the reloader's folder recursively and reloads on every change.
pub fn watch(reloader: Reloader) -> notify_debouncer_full::notify::Result<Watcher> {
    let root = reloader
        .root
        .canonicalize()
        .unwrap_or_else(|_| reloader.root.clone());
    let (tx, rx) = mpsc::channel::<Scope>();
    std::thread::Builder::new()
        .name("recado-reload".into())
        .spawn(move || {
            // A reload that could not read something (too many open files,
            // a folder briefly unreadable) is tried again, backing off,
            // until it can: a lost reload could be a lost revocation.
            let mut retry: Option<(Scope, Duration)> = None;
            loop {
                let first = match &retry {
                    None => match rx.recv() {
                        Ok(scope) => scope,
                        Err(_) => return,
                    },
                    Some((scope, wait)) => match rx.recv_timeout(*wait) {
                        Ok(asked) => merge(asked, scope.clone()),
                        Err(mpsc::RecvTimeoutError::Timeout) => scope.clone(),
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    },
                };
                // Merge whatever queued up while the last reload ran.
                let scope = rx.try_iter().fold(first, merge);
                let next = reloader.reload(&scope);
                retry = unreadable(&next).map(|again| {
                    let wait = retry
                        .as_ref()
                        .map_or(RETRY_FIRST, |(_, w)| (*w * 2).min(RETRY_MAX));
                    tracing::warn!(
                        retry_in_ms = wait.as_millis() as u64,
                        "config could not be read; retrying"
                    );
                    (again, wait)
                });
                crate::telemetry::reload_retry(retry.is_some());
            }
        })
        .expect("spawning the reload thread");

    let events = tx.clone();
    let event_root = root.clone();
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let scope = match result {
            // The kernel's queue overflowed: events were lost, read everything.
            Ok(events) if events.iter().any(|e| e.need_rescan()) => Some(Scope::All),
            Ok(events) => events
                .iter()
                // Reading a file is an event too (our own reads among them).
                .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                .flat_map(|e| e.paths.iter())
                .map(|p| scope_for(&event_root, p))
                .reduce(merge),
            Err(errors) => {
                for e in errors {
                    tracing::warn!(error = %e, "file watch error; reloading everything");
                }
                Some(Scope::All)
            }
        };
        if let Some(scope) = scope {
            let _ = events.send(scope);
        }
    })?;
    debouncer.watch(&root, RecursiveMode::Recursive)?;
    Ok(Watcher {
        requests: tx,
        _debouncer: debouncer,
    })
}

/// First and longest wait before a reload that could not read is retried.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What to read again: the tenants (or, for the root, everything) whose
/// files could not be read.
fn unreadable(snapshot: &Snapshot) -> Option<Scope> {
    let failing = snapshot
        .errors
        .iter()
        .filter(|(_, errors)| errors.iter().any(|e| e.io))
        .map(|(tenant, _)| tenant.clone())
        .collect::<BTreeSet<String>>();
    if failing.is_empty() {
        None
    } else if failing.contains("") {
        Some(Scope::All)
    } else {
        Some(Scope::Tenants(failing))
    }
}

/// The tenant folder a changed path belongs to. A change at the root itself,
/// or in a hidden entry there (Kubernetes' `..data`), re-reads everything.
fn scope_for(root: &Path, path: &Path) -> Scope {
    let first = path
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next());
    match first {
        Some(Component::Normal(name)) => {
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                Scope::All
            } else {
                Scope::Tenants(BTreeSet::from([name.into_owned()]))
            }
        }
        _ => Scope::All,
    }
}

fn merge(a: Scope, b: Scope) -> Scope {
    match (a, b) {
        (Scope::Tenants(mut x), Scope::Tenants(y)) => {
            x.extend(y);
            Scope::Tenants(x)
        }
        _ => Scope::All,
    }
}

fn log_changes(prev: &Snapshot, next: &Snapshot, took: Duration) {
    let old: BTreeSet<String> = prev.all_errors().map(|e| e.to_string()).collect();
    for e in next.all_errors() {
        if !old.contains(&e.to_string()) {
            tracing::error!(error = %e, "config error; the last good version (if any) keeps serving");
        }
    }
    let now: BTreeSet<String> = next.all_errors().map(|e| e.to_string()).collect();
    for fixed in old.difference(&now) {
        tracing::info!(was = %fixed, "config error resolved");
    }
    let mut changed = 0;
    let mut removed = 0;
    for (tenant, t) in &next.tenants {
        for (name, i) in &t.integrations {
            let before = prev
                .tenants
                .get(tenant)
                .and_then(|p| p.integrations.get(name));
            if !before.is_some_and(|b| Arc::ptr_eq(b, i)) {
                changed += 1;
            }
        }
    }
    for (tenant, t) in &prev.tenants {
        removed += t
            .integrations
            .keys()
            .filter(|n| {
                next.tenants
                    .get(tenant)
                    .is_none_or(|nt| !nt.integrations.contains_key(*n))
            })
            .count();
    }
    crate::telemetry::reloaded(next.tenants.len(), next.integration_count(), now.len());
    tracing::info!(
        generation = next.generation,
        tenants = next.tenants.len(),
        integrations = next.integration_count(),
        changed,
        removed,
        errors = now.len(),
        took_ms = took.as_secs_f64() * 1e3,
        "config reloaded"
    );
}
