//! Config: the `integrations/` folder, loaded and compiled into a [`Snapshot`]
//! that the request path only reads.
//!
//! Layout: `integrations/<tenant>/tenant.yaml` plus one
//! `integrations/<tenant>/<integration>.yaml` per webhook. A broken
//! integration file is reported and left out; its tenant still serves the
//! others. A broken `tenant.yaml` leaves the whole tenant out.

pub mod compile;
pub mod secret;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use compile::{CompileOptions, Program};
use spec::{IntegrationSpec, TenantSpec, TokenSpec};

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

/// Everything the request path needs, built once per (re)load.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    by_client: HashMap<u64, Arc<Tenant>>,
    /// Every problem found while loading, in file order.
    pub errors: Vec<ConfigError>,
}

impl Snapshot {
    pub fn tenant_for_client(&self, client_id: u64) -> Option<&Arc<Tenant>> {
        self.by_client.get(&client_id)
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
}

#[derive(Debug)]
pub struct Integration {
    pub name: String,
    /// Path relative to the integrations folder, for error messages.
    pub file: String,
    /// SHA-256 of the file's bytes, to tell versions apart.
    pub hash: String,
    pub program: Program,
}

/// Loads every tenant below `root`. Never fails as a whole: problems are
/// collected in [`Snapshot::errors`] and the good parts are served.
pub fn load_dir(root: &Path) -> Snapshot {
    let mut snap = Snapshot::default();
    let entries = match list_dir(root) {
        Ok(e) => e,
        Err(e) => {
            snap.errors.push(ConfigError::whole_file(
                &root.display().to_string(),
                format!("cannot read the folder: {e}"),
            ));
            return snap;
        }
    };
    for path in entries.into_iter().filter(|p| p.is_dir()) {
        let name = file_name(&path);
        match load_tenant(root, &name) {
            Ok((tenant, errors)) => {
                snap.errors.extend(errors);
                if let Some(err) = claim_client_ids(&snap, &tenant) {
                    snap.errors.push(err);
                    continue;
                }
                let tenant = Arc::new(tenant);
                for id in &tenant.client_ids {
                    snap.by_client.insert(*id, tenant.clone());
                }
                snap.tenants.insert(name, tenant);
            }
            Err(errors) => snap.errors.extend(errors),
        }
    }
    snap
}

/// A clientId belongs to one tenant only; a second claim is an error in the
/// claiming tenant's file, so one company can never answer for another.
fn claim_client_ids(snap: &Snapshot, tenant: &Tenant) -> Option<ConfigError> {
    let taken = tenant
        .client_ids
        .iter()
        .find_map(|id| snap.by_client.get(id).map(|owner| (id, owner)))?;
    Some(ConfigError::whole_file(
        &format!("{}/{TENANT_FILE}", tenant.name),
        format!(
            "clientId {} already belongs to tenant `{}`; this tenant is not loaded",
            taken.0, taken.1.name
        ),
    ))
}

/// Loads one tenant folder: `Err` if `tenant.yaml` is unusable, otherwise the
/// tenant with every good integration plus the errors of the bad ones.
pub fn load_tenant(
    root: &Path,
    name: &str,
) -> Result<(Tenant, Vec<ConfigError>), Vec<ConfigError>> {
    let dir = root.join(name);
    let tenant_rel = format!("{name}/{TENANT_FILE}");
    let spec: TenantSpec = parse_yaml(&dir.join(TENANT_FILE), &tenant_rel).map_err(|e| vec![e])?;
    if spec.client_ids.is_empty() || spec.tokens.is_empty() {
        return Err(vec![ConfigError::whole_file(
            &tenant_rel,
            "needs at least one entry in `client_ids` and in `tokens`",
        )]);
    }
    let opts = CompileOptions {
        timezone: spec.timezone.0.clone(),
    };
    let mut tenant = Tenant {
        name: name.to_owned(),
        client_ids: spec.client_ids,
        token_digests: spec
            .tokens
            .iter()
            .map(|t| match t {
                TokenSpec::Sha256(d) => *d,
                TokenSpec::Plain(s) => Sha256::digest(s.expose().as_bytes()).into(),
            })
            .collect(),
        integrations: BTreeMap::new(),
    };
    let mut errors = Vec::new();
    let files = list_dir(&dir).map_err(|e| {
        vec![ConfigError::whole_file(
            name,
            format!("cannot read the folder: {e}"),
        )]
    })?;
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
        if tenant.integrations.contains_key(stem) {
            errors.push(ConfigError::whole_file(
                &rel,
                format!("another file already defines integration `{stem}`"),
            ));
            continue;
        }
        match load_integration(&path, &rel, stem, &opts) {
            Ok(i) => {
                tenant.integrations.insert(stem.to_owned(), Arc::new(i));
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((tenant, errors))
}

/// Parses and compiles one integration file.
pub fn load_integration(
    path: &Path,
    rel: &str,
    name: &str,
    opts: &CompileOptions,
) -> Result<Integration, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::whole_file(rel, format!("cannot read: {e}")))?;
    let spec: IntegrationSpec = parse_yaml_bytes(&bytes, rel)?;
    if spec.messages.is_empty() {
        return Err(ConfigError::whole_file(
            rel,
            "`messages` is empty: list at least one message",
        ));
    }
    let program = compile::compile(&spec, opts)
        .map_err(|e| ConfigError::whole_file(rel, format!("template error: {e}")))?;
    Ok(Integration {
        name: name.to_owned(),
        file: rel.to_owned(),
        hash: hex::encode(&Sha256::digest(&bytes)[..8]),
        program,
    })
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

fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, rel: &str) -> Result<T, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::whole_file(rel, format!("cannot read: {e}")))?;
    parse_yaml_bytes(&bytes, rel)
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
