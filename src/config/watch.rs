//! Hot reload: file-system events (debounced) and SIGHUP ask for a reload;
//! one thread builds the next [`Snapshot`] off the request path and swaps it
//! in atomically. Requests in flight keep the snapshot they loaded.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use super::{reload, Scope, Snapshot};

/// How long a file must be quiet before it is read: long enough for an
/// editor's save (truncate, write, close) to finish, short enough that an
/// edit is live well within a second.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// How long the files of a changed folder must have been left alone before
/// they are read: a writer that pauses (a slow upload, a script writing
/// piece by piece) for less than this is never read half-way. The debounce
/// only groups events; this is the guarantee. See `docs/integrations.md`,
/// "When an edit is taken".
pub const SETTLE: Duration = Duration::from_millis(500);

/// However busy a folder is, it is read after this long.
const SETTLE_CAP: u32 = 20;

/// Rebuilds and swaps the snapshot. Only one thread calls [`Reloader::reload`]
/// (the watcher's), so a load-then-store cannot lose another reload.
/// Called with every snapshot swapped in.
pub type Observer = Arc<dyn Fn(&Snapshot) + Send + Sync>;

/// Sees every next snapshot before it is swapped in, with the current one,
/// and returns the snapshot to swap in: how the process checks an edit
/// against recent requests (and may keep a previous version) without config
/// knowing of requests.
pub type Gate = Arc<dyn Fn(&Snapshot, Snapshot) -> Snapshot + Send + Sync>;

#[derive(Clone)]
pub struct Reloader {
    root: PathBuf,
    config: Arc<ArcSwap<Snapshot>>,
    observer: Option<Observer>,
    settle: Duration,
    gate: Option<Gate>,
}

impl Reloader {
    pub fn new(root: PathBuf, config: Arc<ArcSwap<Snapshot>>) -> Reloader {
        Reloader {
            root,
            config,
            observer: None,
            settle: SETTLE,
            gate: None,
        }
    }

    /// Another settle time than [`SETTLE`].
    pub fn with_settle(mut self, settle: Duration) -> Reloader {
        self.settle = settle;
        self
    }

    /// Passes every next snapshot through `gate` before it serves.
    pub fn gated_by(
        mut self,
        gate: impl Fn(&Snapshot, Snapshot) -> Snapshot + Send + Sync + 'static,
    ) -> Self {
        self.gate = Some(Arc::new(gate));
        self
    }

    /// Calls `observer` with every snapshot swapped in: how the process
    /// records reloads in its metrics without config knowing of metrics.
    pub fn observed_by(mut self, observer: impl Fn(&Snapshot) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Re-reads `scope`, swaps the result in and logs what changed.
    pub fn reload(&self, scope: &Scope) -> Arc<Snapshot> {
        let started = Instant::now();
        let prev = self.config.load_full();
        let mut next = reload(&self.root, &prev, scope);
        if let Some(gate) = &self.gate {
            next = gate(&prev, next);
        }
        let next = Arc::new(next);
        self.config.store(next.clone());
        log_changes(&prev, &next, started.elapsed());
        if let Some(observe) = &self.observer {
            observe(&next);
        }
        next
    }
}

/// Keeps the watch alive; dropping it stops watching.
pub struct Watcher {
    requests: mpsc::Sender<Scope>,
    _debouncer: Arc<Mutex<Debouncer<RecommendedWatcher, RecommendedCache>>>,
}

impl Watcher {
    /// Asks for a reload (SIGHUP uses this with [`Scope::All`]).
    pub fn request(&self, scope: Scope) {
        let _ = self.requests.send(scope);
    }
}

/// Watches the reloader's folder and each tenant folder in it (not deeper:
/// a symlink in a tenant folder to a big tree would otherwise cost an
/// inotify watch per directory in it), and reloads on every change.
pub fn watch(reloader: Reloader) -> notify_debouncer_full::notify::Result<Watcher> {
    let root = reloader
        .root
        .canonicalize()
        .unwrap_or_else(|_| reloader.root.clone());
    let (tx, rx) = mpsc::channel::<Scope>();
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
    debouncer.watch(&root, RecursiveMode::NonRecursive)?;
    let mut tenants = TenantWatches::default();
    tenants.sync(&mut debouncer, &root, false);
    let debouncer = Arc::new(Mutex::new(debouncer));

    // Weak, so dropping the [`Watcher`] stops the watch and this thread.
    let watches = Arc::downgrade(&debouncer);
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
                let mut scope = rx.try_iter().fold(first, merge);
                // A file is read once it is complete: wait until the
                // folders are quiet, taking in what arrives meanwhile.
                let mut waited = 0;
                while let Some(wait) = unsettled(&reloader.root, &scope, reloader.settle) {
                    if waited >= SETTLE_CAP {
                        break;
                    }
                    waited += 1;
                    std::thread::sleep(wait);
                    scope = rx.try_iter().fold(scope, merge);
                }
                loop {
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
                    let Some(watches) = watches.upgrade() else {
                        return;
                    };
                    // Tenant folders come and go; after a swap of the whole
                    // folder (Kubernetes' `..data`) the same names are new
                    // directories.
                    let mut debouncer = watches.lock().unwrap_or_else(|e| e.into_inner());
                    let added = tenants.sync(&mut debouncer, &root, matches!(scope, Scope::All));
                    if added.is_empty() {
                        break;
                    }
                    // Files written between that reload and the new watch.
                    scope = Scope::Tenants(added);
                }
            }
        })
        .expect("spawning the reload thread");
    Ok(Watcher {
        requests: tx,
        _debouncer: debouncer,
    })
}

/// The tenant folders watched (each alone, not recursively).
#[derive(Default)]
struct TenantWatches(BTreeSet<String>);

impl TenantWatches {
    /// Watches the tenant folders now under `root` and unwatches the gone
    /// ones; with `renew`, watches every folder afresh. Returns the tenants
    /// newly watched.
    fn sync(
        &mut self,
        debouncer: &mut Debouncer<RecommendedWatcher, RecommendedCache>,
        root: &Path,
        renew: bool,
    ) -> BTreeSet<String> {
        let now: BTreeSet<String> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                // A tenant folder may be a symlink (Kubernetes mounts are).
                let is_dir = std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
                (is_dir && !name.starts_with('.')).then_some(name)
            })
            .collect();
        for gone in self.0.iter().filter(|t| renew || !now.contains(*t)) {
            let _ = debouncer.unwatch(root.join(gone));
        }
        if renew {
            self.0.clear();
        }
        self.0.retain(|t| now.contains(t));
        let mut added = BTreeSet::new();
        for tenant in now.difference(&self.0.clone()) {
            match debouncer.watch(root.join(tenant), RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.0.insert(tenant.clone());
                    added.insert(tenant.clone());
                }
                Err(e) => tracing::warn!(tenant, error = %e, "cannot watch a tenant folder"),
            }
        }
        if renew {
            added.clear();
        }
        added
    }
}

/// How much longer to wait before the folders of `scope` count as settled:
/// `None` once every file in them was last modified at least `settle` ago;
/// a write meanwhile moves the newest time and the wait starts over. A
/// modification time in
/// the future (a skewed clock, a copied file) cannot be aged: then the files
/// must look the same across one `settle`.
fn unsettled(root: &Path, scope: &Scope, settle: Duration) -> Option<Duration> {
    let before = fingerprint(root, scope);
    let now = std::time::SystemTime::now();
    let newest = before.iter().map(|(_, _, m)| *m).max()?;
    match now.duration_since(newest) {
        Ok(age) if age >= settle => None,
        Ok(age) => Some(settle - age),
        Err(_) => {
            std::thread::sleep(settle);
            (fingerprint(root, scope) != before).then_some(settle)
        }
    }
}

/// (path, size, modification time) of every file in the folders of `scope`,
/// links followed (a ConfigMap's files are links into `..data`).
fn fingerprint(root: &Path, scope: &Scope) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let folders: Vec<PathBuf> = match scope {
        Scope::Tenants(names) => names.iter().map(|n| root.join(n)).collect(),
        Scope::All => super::load::list_dir(root).unwrap_or_default(),
    };
    let mut out = Vec::new();
    for folder in folders {
        for file in super::load::list_dir(&folder).unwrap_or_default() {
            if let Ok(meta) = std::fs::metadata(&file) {
                if meta.is_file() {
                    if let Ok(modified) = meta.modified() {
                        out.push((file, meta.len(), modified));
                    }
                }
            }
        }
    }
    out
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
    tracing::info!(
        generation = next.generation,
        tenants = next.tenants.len(),
        integrations = next.integration_count(),
        changed,
        removed,
        errors = now.len(),
        // A tenth of a millisecond: `0.989578000001` said nothing more.
        took_ms = (took.as_secs_f64() * 1e4).round() / 10.0,
        "config reloaded"
    );
}
