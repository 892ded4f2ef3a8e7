//! The loaded config as the request path sees it: a [`Snapshot`] of tenants
//! and their compiled integrations, built whole by [`reload`] and never
//! changed afterwards. Inert data: nothing here knows of HTTP or metrics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::error::{ConfigError, FieldPath};
use super::load::{file_name, list_dir, load_tenant_from};
use super::tenant::Tenant;
use super::yaml::Positions;
use super::TENANT_FILE;

/// Everything the request path needs, built once per (re)load and never
/// changed afterwards: a reload builds a new snapshot and swaps it in whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    /// Looked up on every request: foldhash, not SipHash.
    pub(super) by_client: foldhash::HashMap<u64, Arc<Tenant>>,
    /// Current problems, by tenant folder (`""` for the root folder itself).
    /// A file listed here is either left out or still served at its last
    /// good version.
    pub errors: BTreeMap<String, Vec<ConfigError>>,
    /// Tenants whose current `tenant.yaml` is not served because it claims
    /// another tenant's clientId. Every reload tries them again, so one
    /// comes in as soon as the other lets the id go, without an edit of its
    /// own.
    pub(super) refused: BTreeSet<String>,
    /// Counts reloads; 0 is the first load.
    pub generation: u64,
}

impl Snapshot {
    pub fn tenant_for_client(&self, client_id: u64) -> Option<&Arc<Tenant>> {
        self.by_client.get(&client_id)
    }

    pub fn all_errors(&self) -> impl Iterator<Item = &ConfigError> {
        self.errors.values().flatten()
    }

    pub fn integration_count(&self) -> usize {
        self.tenants.values().map(|t| t.integrations.len()).sum()
    }

    /// Serves `prev`'s version of `tenant`'s `integration` instead of this
    /// snapshot's (or none, if `prev` had none), and reports `error` as the
    /// file's problem: a reload gate refused the new version.
    pub fn keep_previous(
        &mut self,
        prev: &Snapshot,
        tenant: &str,
        integration: &str,
        error: ConfigError,
    ) {
        let Some(current) = self.tenants.get(tenant) else {
            return;
        };
        let old = prev
            .tenants
            .get(tenant)
            .and_then(|t| t.integrations.get(integration))
            .cloned();
        let kept = Arc::new(current.with_integration(integration, old));
        for owner in self.by_client.values_mut() {
            if owner.name == tenant {
                *owner = kept.clone();
            }
        }
        self.tenants.insert(tenant.to_owned(), kept);
        self.errors
            .entry(tenant.to_owned())
            .or_default()
            .push(error);
    }
}

/// Which tenant folders a reload re-reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every folder (start-up, SIGHUP, a change at the root).
    All,
    /// Only these; the others are carried over untouched.
    Tenants(BTreeSet<String>),
}

/// Loads every tenant below `root`. Never fails as a whole: problems are
/// collected in [`Snapshot::errors`] and the good parts are served.
pub fn load_dir(root: &Path) -> Snapshot {
    reload(root, &Snapshot::default(), &Scope::All)
}

/// Builds the snapshot that follows `prev`, re-reading the folders in
/// `scope`. Work is in proportion to the change: a file whose bytes did not
/// change keeps its compiled version, and a broken file keeps its last good
/// version (a broken `tenant.yaml` keeps the whole tenant as it was).
pub fn reload(root: &Path, prev: &Snapshot, scope: &Scope) -> Snapshot {
    let mut errors = prev.errors.clone();
    let names: BTreeSet<String> = match scope {
        Scope::Tenants(names) => names.union(&prev.refused).cloned().collect(),
        Scope::All => match list_dir(root) {
            Ok(entries) => {
                errors.remove("");
                entries
                    .iter()
                    .filter(|p| p.is_dir())
                    .map(|p| file_name(p))
                    .chain(prev.tenants.keys().cloned())
                    .collect()
            }
            Err(e) => {
                let err = ConfigError::unreadable(
                    &root.display().to_string(),
                    format!("cannot read the folder: {e}"),
                );
                errors.insert(String::new(), vec![err]);
                return Snapshot {
                    tenants: prev.tenants.clone(),
                    by_client: prev.by_client.clone(),
                    errors,
                    refused: prev.refused.clone(),
                    generation: prev.generation + 1,
                };
            }
        },
    };

    let mut tenants = prev.tenants.clone();
    let mut fresh = Vec::new();
    let loaded = load_tenants(root, &names, prev, *scope == Scope::All);
    for (name, (tenant, tenant_errors)) in names.iter().zip(loaded) {
        match tenant_errors.is_empty() {
            true => errors.remove(name),
            false => errors.insert(name.clone(), tenant_errors),
        };
        match tenant {
            Some(t) => {
                if !prev.tenants.get(name).is_some_and(|p| Arc::ptr_eq(p, &t)) {
                    fresh.push(name.clone());
                }
                tenants.insert(name.clone(), t);
            }
            None => {
                tenants.remove(name);
            }
        }
    }
    let (by_client, refused) = assign_client_ids(root, &mut tenants, &fresh, prev, &mut errors);
    Snapshot {
        tenants,
        by_client,
        errors,
        refused,
        generation: prev.generation + 1,
    }
}

/// Loads the `names` folders, several at once when there are many: most of
/// a cold start of thousands of tenants is waiting for the disk, which
/// overlaps even on one core. In the order of `names`.
fn load_tenants(
    root: &Path,
    names: &BTreeSet<String>,
    prev: &Snapshot,
    reread: bool,
) -> Vec<(Option<Arc<Tenant>>, Vec<ConfigError>)> {
    let names: Vec<&String> = names.iter().collect();
    let load = |name: &String| load_tenant_from(root, name, prev.tenants.get(name), reread);
    let workers = (names.len() / 64).clamp(1, 8);
    if workers == 1 {
        return names.into_iter().map(load).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(name) = names.get(i) else {
                            return mine;
                        };
                        mine.push((i, load(name)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("loading a tenant folder panicked"))
            .collect()
    });
    out.sort_unstable_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, loaded)| loaded).collect()
}

/// A clientId belongs to one tenant only. Tenants that did not change keep
/// theirs; a changed tenant that claims another's id is an error in its own
/// `tenant.yaml` and stays at its previous version (or out), so a mistake in
/// one company's file can never take over another company's contacts.
/// Returns the owners by id and the tenants refused.
///
/// Among changed tenants, those that already owned all their ids claim
/// first, then the ones whose `tenant.yaml` is older: at a cold start, with
/// no owners yet, the file edited last is the likelier mistake.
fn assign_client_ids(
    root: &Path,
    tenants: &mut BTreeMap<String, Arc<Tenant>>,
    fresh: &[String],
    prev: &Snapshot,
    errors: &mut BTreeMap<String, Vec<ConfigError>>,
) -> (foldhash::HashMap<u64, Arc<Tenant>>, BTreeSet<String>) {
    let mut refused = BTreeSet::new();
    let mut by_client: foldhash::HashMap<u64, Arc<Tenant>> = Default::default();
    // Token digests too: a token is one company's key, and the same token in
    // two tenants is a copy-paste slip that hands one company the other's.
    let mut by_token: HashMap<[u8; 32], String> = HashMap::new();
    let claim = |by_client: &mut foldhash::HashMap<u64, Arc<Tenant>>,
                 by_token: &mut HashMap<[u8; 32], String>,
                 t: &Arc<Tenant>|
     -> Result<(), Conflict> {
        if let Some((id, owner)) = t
            .client_ids
            .iter()
            .find_map(|id| by_client.get(id).map(|o| (*id, o)))
        {
            return Err(Conflict::ClientId(id, owner.name.clone()));
        }
        if let Some((i, owner)) = t
            .token_digests
            .iter()
            .enumerate()
            .find_map(|(i, d)| by_token.get(d).filter(|o| **o != t.name).map(|o| (i, o)))
        {
            return Err(Conflict::Token(i, owner.clone()));
        }
        for id in &t.client_ids {
            by_client.insert(*id, t.clone());
        }
        for d in &t.token_digests {
            by_token.insert(*d, t.name.clone());
        }
        Ok(())
    };
    for (name, t) in tenants.iter().filter(|(n, _)| !fresh.contains(n)) {
        // Consistent in the previous snapshot, so this cannot fail; if it
        // ever did, the reload thread must report it, not die.
        if let Err(conflict) = claim(&mut by_client, &mut by_token, t) {
            let err = ConfigError::whole_file(name, conflict.to_string());
            errors.entry(name.clone()).or_default().push(err);
        }
    }
    // Tenants that already owned all their ids claim first, so an edit in the
    // same reload batch cannot hand an owner's id to a newcomer.
    let mut fresh = fresh.to_vec();
    fresh.sort_by_key(|n| {
        let t = &tenants[n];
        let owner = t
            .client_ids
            .iter()
            .all(|id| prev.by_client.get(id).is_some_and(|o| &o.name == n));
        (!owner, t.settings_modified)
    });
    for name in &fresh {
        let t = tenants[name].clone();
        if let Err(conflict) = claim(&mut by_client, &mut by_token, &t) {
            let rel = format!("{name}/{TENANT_FILE}");
            let message = format!("{conflict}; this version of the tenant is not loaded");
            let err = match &conflict {
                // Pointed at the token's line; the file is read again only
                // for this error.
                Conflict::Token(i, _) => match std::fs::read(root.join(&rel)) {
                    Ok(bytes) => Positions::of(&bytes).error(
                        &rel,
                        &FieldPath::key("tokens").at(*i),
                        None,
                        message,
                    ),
                    Err(_) => ConfigError::whole_file(&rel, message),
                },
                Conflict::ClientId(..) => ConfigError::whole_file(&rel, message),
            };
            errors.entry(name.clone()).or_default().push(err);
            refused.insert(name.clone());
            match prev
                .tenants
                .get(name)
                .filter(|p| claim(&mut by_client, &mut by_token, p).is_ok())
            {
                Some(p) => tenants.insert(name.clone(), p.clone()),
                None => tenants.remove(name),
            };
        }
    }
    (by_client, refused)
}

/// Why a tenant cannot have what its `tenant.yaml` claims.
#[derive(Debug)]
enum Conflict {
    ClientId(u64, String),
    /// `tokens[i]` is also a token of that tenant.
    Token(usize, String),
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conflict::ClientId(id, owner) => {
                write!(f, "clientId {id} already belongs to tenant `{owner}`")
            }
            Conflict::Token(i, owner) => write!(
                f,
                "`tokens[{i}]` is also a token of tenant `{owner}`; every tenant needs tokens of its own"
            ),
        }
    }
}
