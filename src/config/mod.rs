//! Config: the `integrations/` folder, loaded and compiled into a [`Snapshot`]
//! that the request path only reads.
//!
//! Layout: `integrations/<tenant>/tenant.yaml` plus one
//! `integrations/<tenant>/<integration>.yaml` per webhook. A broken
//! integration file is reported and left out; its tenant still serves the
//! others. A broken `tenant.yaml` leaves the whole tenant out.

pub mod compile;
pub mod interpolation;
pub mod schema;
pub mod secret;
pub mod spec;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use compile::{CompileOptions, Program};
use spec::{IntegrationSpec, Origin, TenantSpec, TokenSpec};

pub const TENANT_FILE: &str = "tenant.yaml";

/// A problem in a config file, written for the person who must fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    /// Path relative to the integrations folder (`demo/boleto.yaml`).
    pub file: String,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl ConfigError {
    fn whole_file(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// Everything the request path needs, built once per (re)load and never
/// changed afterwards: a reload builds a new snapshot and swaps it in whole.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    by_client: HashMap<u64, Arc<Tenant>>,
    /// Current problems, by tenant folder (`""` for the root folder itself).
    /// A file listed here is either left out or still served at its last
    /// good version.
    pub errors: BTreeMap<String, Vec<ConfigError>>,
    /// Tenants whose current `tenant.yaml` is not served because it claims
    /// another tenant's clientId. Every reload tries them again, so one
    /// comes in as soon as the other lets the id go, without an edit of its
    /// own.
    refused: BTreeSet<String>,
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
}

#[derive(Debug)]
pub struct Tenant {
    /// The folder's name.
    pub name: String,
    pub client_ids: Vec<u64>,
    /// SHA-256 of each accepted token: comparing digests keeps the comparison
    /// constant-time whatever the tokens' lengths.
    pub token_digests: Vec<[u8; 32]>,
    pub integrations: BTreeMap<String, Arc<Integration>>,
    /// Short SHA-256 of `tenant.yaml`, to skip re-reading an unchanged file.
    pub hash: String,
    /// When `tenant.yaml` was last modified, if the file system says.
    pub settings_modified: Option<SystemTime>,
    pub loaded_at: SystemTime,
    /// `secrets:`; only upstream-call templates can read them.
    pub secrets: Secrets,
    /// `upstreams:`; when not empty, the only origins calls may reach.
    pub upstreams: Vec<Origin>,
    pub limits: Limits,
    /// Permits for this tenant's requests in flight. Carried over a reload
    /// while the limit is unchanged, so requests in flight keep counting.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Answer-cache counters, registered on first use.
    pub cache_metrics: std::sync::OnceLock<crate::telemetry::CacheMetrics>,
    opts: CompileOptions,
}

/// A tenant's limits, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub concurrency: u32,
    pub deadline: std::time::Duration,
    pub max_messages: usize,
    pub max_output_bytes: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 256 * 1024,
        concurrency: 64,
        deadline: std::time::Duration::from_secs(10),
        max_messages: 50,
        max_output_bytes: 64 * 1024,
    };

    fn from_spec(spec: &spec::LimitsSpec) -> Limits {
        let d = Limits::DEFAULT;
        Limits {
            max_body_bytes: spec.max_body_bytes.unwrap_or(d.max_body_bytes),
            concurrency: spec.concurrency.unwrap_or(d.concurrency).max(1),
            deadline: spec.deadline.map_or(d.deadline, |x| x.0),
            max_messages: spec.max_messages.unwrap_or(d.max_messages),
            max_output_bytes: spec.max_output_bytes.unwrap_or(d.max_output_bytes),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::DEFAULT
    }
}

/// The tenant's secrets as a template value. `Debug` never shows them.
#[derive(Clone)]
pub struct Secrets(pub minijinja::Value);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secrets(***)")
    }
}

#[derive(Debug)]
pub struct Integration {
    pub name: String,
    /// Path relative to the integrations folder, for error messages.
    pub file: String,
    /// Short SHA-256 of the file's bytes, to tell versions apart.
    pub hash: String,
    pub loaded_at: SystemTime,
    pub program: Program,
    /// This version's metric handles, registered by its first request.
    pub metrics: std::sync::OnceLock<crate::telemetry::IntegrationMetrics>,
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
                let err = ConfigError::whole_file(
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
    for name in &names {
        let (tenant, tenant_errors) =
            load_tenant_from(root, name, prev.tenants.get(name), *scope == Scope::All);
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
    let (by_client, refused) = assign_client_ids(&mut tenants, &fresh, prev, &mut errors);
    Snapshot {
        tenants,
        by_client,
        errors,
        refused,
        generation: prev.generation + 1,
    }
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
    tenants: &mut BTreeMap<String, Arc<Tenant>>,
    fresh: &[String],
    prev: &Snapshot,
    errors: &mut BTreeMap<String, Vec<ConfigError>>,
) -> (HashMap<u64, Arc<Tenant>>, BTreeSet<String>) {
    let mut refused = BTreeSet::new();
    let mut by_client: HashMap<u64, Arc<Tenant>> = HashMap::new();
    let claim =
        |by_client: &mut HashMap<u64, Arc<Tenant>>, t: &Arc<Tenant>| -> Result<(), (u64, String)> {
            if let Some((id, owner)) = t
                .client_ids
                .iter()
                .find_map(|id| by_client.get(id).map(|o| (*id, o)))
            {
                return Err((id, owner.name.clone()));
            }
            for id in &t.client_ids {
                by_client.insert(*id, t.clone());
            }
            Ok(())
        };
    for (name, t) in tenants.iter().filter(|(n, _)| !fresh.contains(n)) {
        // Consistent in the previous snapshot, so this cannot fail; if it
        // ever did, the reload thread must report it, not die.
        if let Err((id, owner)) = claim(&mut by_client, t) {
            let err = ConfigError::whole_file(
                name,
                format!("clientId {id} is also claimed by `{owner}`"),
            );
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
        if let Err((id, owner)) = claim(&mut by_client, &t) {
            let err = ConfigError::whole_file(
                &format!("{name}/{TENANT_FILE}"),
                format!("clientId {id} already belongs to tenant `{owner}`; this version of the tenant is not loaded"),
            );
            errors.entry(name.clone()).or_default().push(err);
            refused.insert(name.clone());
            match prev
                .tenants
                .get(name)
                .filter(|p| claim(&mut by_client, p).is_ok())
            {
                Some(p) => tenants.insert(name.clone(), p.clone()),
                None => tenants.remove(name),
            };
        }
    }
    (by_client, refused)
}

/// Loads one tenant folder, reusing from `prev` whatever did not change.
/// Returns the tenant to serve (`None`: the folder is gone, or never loaded
/// well) and the folder's current problems.
///
/// With `reread_settings`, `tenant.yaml` is parsed even when its bytes did
/// not change, so the `${env:}`/`${file:}` secrets and tokens it names are
/// read again (SIGHUP).
pub fn load_tenant_from(
    root: &Path,
    name: &str,
    prev: Option<&Arc<Tenant>>,
    reread_settings: bool,
) -> (Option<Arc<Tenant>>, Vec<ConfigError>) {
    let dir = root.join(name);
    if !dir.is_dir() {
        return (None, Vec::new());
    }
    let tenant_rel = format!("{name}/{TENANT_FILE}");
    let keep_prev = |err: ConfigError| (prev.cloned(), vec![err]);
    let bytes = match std::fs::read(dir.join(TENANT_FILE)) {
        Ok(b) => b,
        Err(e) => {
            return keep_prev(ConfigError::whole_file(
                &tenant_rel,
                format!("cannot read: {e}"),
            ))
        }
    };
    let hash = short_hash(&bytes);
    let settings_modified = std::fs::metadata(dir.join(TENANT_FILE))
        .and_then(|m| m.modified())
        .ok();
    let settings = match prev.filter(|p| p.hash == hash && !reread_settings) {
        Some(p) => TenantSettings {
            client_ids: p.client_ids.clone(),
            token_digests: p.token_digests.clone(),
            secrets: p.secrets.clone(),
            upstreams: p.upstreams.clone(),
            opts: p.opts.clone(),
            limits: p.limits.clone(),
        },
        None => match parse_tenant(&bytes, &tenant_rel) {
            Ok(s) => s,
            Err(e) => return keep_prev(e),
        },
    };
    // Compiled integrations can be reused only if they were compiled with
    // the same options.
    let reusable = prev.filter(|p| p.opts == settings.opts);

    let mut errors = Vec::new();
    let mut integrations = BTreeMap::new();
    let files = match list_dir(&dir) {
        Ok(f) => f,
        Err(e) => {
            return keep_prev(ConfigError::whole_file(
                name,
                format!("cannot read the folder: {e}"),
            ))
        }
    };
    for path in files {
        let file = file_name(&path);
        let Some(stem) = file
            .strip_suffix(".yaml")
            .or_else(|| file.strip_suffix(".yml"))
        else {
            continue;
        };
        if file == TENANT_FILE || !path.is_file() {
            continue;
        }
        let rel = format!("{name}/{file}");
        if !is_integration_name(stem) {
            errors.push(ConfigError::whole_file(
                &rel,
                "an integration's file name becomes its URL: use lowercase letters, digits, `-` and `_`",
            ));
            continue;
        }
        if integrations.contains_key(stem) {
            errors.push(ConfigError::whole_file(
                &rel,
                format!("another file already defines integration `{stem}`"),
            ));
            continue;
        }
        let old = reusable
            .and_then(|p| p.integrations.get(stem))
            .filter(|i| i.file == rel);
        let loaded = std::fs::read(&path)
            .map_err(|e| ConfigError::whole_file(&rel, format!("cannot read: {e}")))
            .and_then(|bytes| match old {
                Some(old) if old.hash == short_hash(&bytes) => Ok(old.clone()),
                _ => load_integration(&bytes, &rel, stem, &settings.opts).map(Arc::new),
            });
        match loaded {
            Ok(i) => {
                integrations.insert(stem.to_owned(), i);
            }
            Err(e) => {
                // The last good version keeps serving until the file is fixed.
                if let Some(old) = prev.and_then(|p| p.integrations.get(stem)) {
                    integrations.insert(stem.to_owned(), old.clone());
                }
                errors.push(e);
            }
        }
    }

    if let Some(p) = prev {
        let unchanged = p.hash == hash
            && p.token_digests == settings.token_digests
            && p.secrets.0 == settings.secrets.0
            && p.integrations.len() == integrations.len()
            && p.integrations
                .iter()
                .zip(&integrations)
                .all(|((a, x), (b, y))| a == b && Arc::ptr_eq(x, y));
        if unchanged {
            return (Some(p.clone()), errors);
        }
    }
    let tenant = Tenant {
        name: name.to_owned(),
        client_ids: settings.client_ids,
        token_digests: settings.token_digests,
        integrations,
        hash,
        settings_modified,
        loaded_at: SystemTime::now(),
        cache_metrics: std::sync::OnceLock::new(),
        in_flight: match prev.filter(|p| p.limits.concurrency == settings.limits.concurrency) {
            Some(p) => p.in_flight.clone(),
            None => Arc::new(tokio::sync::Semaphore::new(
                settings.limits.concurrency as usize,
            )),
        },
        secrets: settings.secrets,
        upstreams: settings.upstreams,
        limits: settings.limits,
        opts: settings.opts,
    };
    (Some(Arc::new(tenant)), errors)
}

struct TenantSettings {
    client_ids: Vec<u64>,
    token_digests: Vec<[u8; 32]>,
    secrets: Secrets,
    upstreams: Vec<Origin>,
    opts: CompileOptions,
    limits: Limits,
}

fn parse_tenant(bytes: &[u8], rel: &str) -> Result<TenantSettings, ConfigError> {
    let spec: TenantSpec = parse_yaml_bytes(bytes, rel)?;
    if spec.client_ids.is_empty() || spec.tokens.is_empty() {
        return Err(ConfigError::whole_file(
            rel,
            "needs at least one entry in `client_ids` and in `tokens`",
        ));
    }
    Ok(TenantSettings {
        client_ids: spec.client_ids,
        token_digests: spec
            .tokens
            .iter()
            .map(|t| match t {
                TokenSpec::Sha256(d) => *d,
                TokenSpec::Plain(s) => Sha256::digest(s.expose().as_bytes()).into(),
            })
            .collect(),
        secrets: Secrets(minijinja::Value::from(
            spec.secrets
                .into_iter()
                .map(|(k, v)| (k, minijinja::Value::from(v.0.expose())))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        )),
        upstreams: spec.upstreams,
        opts: CompileOptions {
            timezone: spec.timezone.0,
            fuel: spec.limits.fuel.unwrap_or(compile::DEFAULT_FUEL),
        },
        limits: Limits::from_spec(&spec.limits),
    })
}

/// Parses and compiles one integration file.
pub fn load_integration(
    bytes: &[u8],
    rel: &str,
    name: &str,
    opts: &CompileOptions,
) -> Result<Integration, ConfigError> {
    let spec: IntegrationSpec = parse_yaml_bytes(bytes, rel)?;
    if spec.messages.is_empty() {
        return Err(ConfigError::whole_file(
            rel,
            "`messages` is empty: list at least one message",
        ));
    }
    let calls: BTreeSet<&str> = spec.enrich.calls.iter().map(|(n, _)| n.as_str()).collect();
    for (i, msg) in spec.messages.iter().enumerate() {
        for (field, src) in msg.content.templates() {
            if let Some(unknown) = src.enrich_reads().find(|r| !calls.contains(r.as_str())) {
                return Err(ConfigError::whole_file(
                    rel,
                    format!("messages[{i}].{field} reads `enrich.{unknown}`, but `enrich:` has no call named `{unknown}`"),
                ));
            }
        }
    }
    let program = compile::compile(&spec, opts)
        .map_err(|e| ConfigError::whole_file(rel, format!("template error: {e}")))?;
    Ok(Integration {
        name: name.to_owned(),
        file: rel.to_owned(),
        hash: short_hash(bytes),
        loaded_at: SystemTime::now(),
        program,
        metrics: std::sync::OnceLock::new(),
    })
}

fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Names that can appear in `/hooks/{integration}`.
pub fn is_integration_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn parse_yaml_bytes<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    rel: &str,
) -> Result<T, ConfigError> {
    spec::take_template_error_pos();
    serde_yaml::from_slice(bytes).map_err(|e| yaml_error(bytes, rel, &e))
}

/// Turns serde_yaml's error into file:line:col. For a template syntax error
/// serde_yaml points at the start of the string; the template's own line and
/// column are added so the position lands on the faulty character.
fn yaml_error(bytes: &[u8], rel: &str, e: &serde_yaml::Error) -> ConfigError {
    let text = e.to_string();
    let Some(loc) = e.location() else {
        return ConfigError::whole_file(rel, text);
    };
    // The position goes in front, as file:line:col; drop serde_yaml's copy.
    let suffix = format!(" at line {} column {}", loc.line(), loc.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    let (mut line, mut column) = (loc.line(), loc.column());
    if let Some((tl, tc)) = spec::take_template_error_pos() {
        let source = String::from_utf8_lossy(bytes);
        let start = source.get(loc.index()..).unwrap_or("");
        match start.chars().next() {
            // Block scalar (`|` or `>`): the template starts on the next line.
            Some('|' | '>') => {
                line += tl;
                let indent = source
                    .lines()
                    .nth(line - 1)
                    .map_or(0, |l| l.len() - l.trim_start().len());
                column = indent + tc;
            }
            // Quoted scalar: skip the opening quote on the first line.
            Some('"' | '\'') if tl == 1 => column += tc,
            _ if tl == 1 => column += tc - 1,
            _ => {
                line += tl - 1;
                column = tc;
            }
        }
    }
    ConfigError {
        file: rel.to_owned(),
        line: Some(line),
        column: Some(column),
        message,
    }
}

fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        // Hidden entries include Kubernetes' `..data` and editors' swap files.
        if !file_name(&path).starts_with('.') {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
