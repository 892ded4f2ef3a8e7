//! Reading one tenant folder: `tenant.yaml` and its integration files,
//! parsed, checked and compiled, reusing whatever did not change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::catalogue::{self, BodyValues, Catalogue};
use super::check::{self, TenantFacts};
use super::compile::{self, CompileOptions};
use super::error::{ConfigError, FieldPath};
use super::spec::{
    Content, IntegrationSpec, Origin, TenantSpec, Timezone, TokenSpec, TEMPLATE_KEY,
};
use super::tenant::{Integration, Limits, Secrets, Tenant};
use super::yaml::{self, Positions};
use super::TENANT_FILE;

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
        Some(p) => Ok(TenantSettings {
            client_ids: p.client_ids.clone(),
            token_digests: p.token_digests.clone(),
            studio_token_digests: p.studio_token_digests.clone(),
            secrets: p.secrets.clone(),
            upstreams: p.upstreams.clone(),
            opts: p.opts.clone(),
            limits: p.limits.clone(),
            catalogue: None,
            facts: p.facts.clone(),
        }),
        None => parse_tenant(&bytes, &tenant_rel),
    };
    let mut settings = match settings {
        Ok(s) => s,
        Err(e) => {
            // The tenant stays as it was (or out), but its integrations are
            // still checked, with default settings, so one slip in
            // tenant.yaml does not hide every other error of the folder.
            let mut errors = vec![e];
            if let Ok(files) = list_dir(&dir) {
                let opts = CompileOptions {
                    timezone: Timezone::default().0,
                    fuel: compile::DEFAULT_FUEL,
                };
                for (stem, rel, path) in integration_files(name, &files, &mut errors) {
                    let loaded = std::fs::read(&path)
                        .map_err(|e| {
                            vec![ConfigError::whole_file(&rel, format!("cannot read: {e}"))]
                        })
                        .and_then(|b| {
                            let facts = TenantFacts::default();
                            load_integration(&b, &rel, &stem, &opts, &facts, None)
                        });
                    if let Err(e) = loaded {
                        errors.extend(e);
                    }
                }
            }
            return (prev.cloned(), errors);
        }
    };
    let mut errors = Vec::new();
    settings.catalogue = load_catalogue(&dir, name, prev, &mut errors);
    let catalogue_hash = settings.catalogue.as_ref().map(|(h, _)| h.clone());
    let catalogue = settings.catalogue.as_ref().map(|(_, c)| c.clone());
    // Compiled integrations can be reused only if they were compiled with
    // the same options and checked against the same secrets, upstreams and
    // catalogue.
    let reusable = prev.filter(|p| {
        p.opts == settings.opts && p.facts == settings.facts && p.catalogue_hash == catalogue_hash
    });

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
    for (stem, rel, path) in integration_files(name, &files, &mut errors) {
        let stem = stem.as_str();
        let old = reusable
            .and_then(|p| p.integrations.get(stem))
            .filter(|i| i.file == rel);
        let loaded = std::fs::read(&path)
            .map_err(|e| vec![ConfigError::whole_file(&rel, format!("cannot read: {e}"))])
            .and_then(|bytes| match old {
                Some(old) if old.hash == short_hash(&bytes) => Ok(old.clone()),
                _ => load_integration(
                    &bytes,
                    &rel,
                    stem,
                    &settings.opts,
                    &settings.facts,
                    catalogue.as_deref(),
                )
                .map(Arc::new),
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
                errors.extend(e);
            }
        }
    }

    if let Some(p) = prev {
        let unchanged = p.hash == hash
            && p.token_digests == settings.token_digests
            && p.studio_token_digests == settings.studio_token_digests
            && p.secrets.0 == settings.secrets.0
            && p.catalogue_hash == catalogue_hash
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
        studio_token_digests: settings.studio_token_digests,
        integrations,
        hash,
        settings_modified,
        loaded_at: SystemTime::now(),
        secrets: settings.secrets,
        upstreams: settings.upstreams,
        limits: settings.limits,
        catalogue,
        catalogue_hash,
        opts: settings.opts,
        facts: settings.facts,
    };
    (Some(Arc::new(tenant)), errors)
}

struct TenantSettings {
    client_ids: Vec<u64>,
    token_digests: Vec<[u8; 32]>,
    studio_token_digests: Vec<[u8; 32]>,
    secrets: Secrets,
    upstreams: Vec<Origin>,
    opts: CompileOptions,
    limits: Limits,
    /// `templates.json` and its hash, read apart from `tenant.yaml`.
    catalogue: Option<(String, Arc<Catalogue>)>,
    facts: TenantFacts,
}

/// Reads `templates.json`, if the folder has one. A broken or unreadable
/// catalogue is reported and the last good one kept, so the integrations
/// stay checked against what was known to be true.
fn load_catalogue(
    dir: &Path,
    name: &str,
    prev: Option<&Arc<Tenant>>,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, Arc<Catalogue>)> {
    let rel = format!("{name}/{}", catalogue::FILE);
    let last_good = || {
        let p = prev?;
        Some((p.catalogue_hash.clone()?, p.catalogue.clone()?))
    };
    let bytes = match std::fs::read(dir.join(catalogue::FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            errors.push(ConfigError::whole_file(&rel, format!("cannot read: {e}")));
            return last_good();
        }
    };
    let hash = short_hash(&bytes);
    if let Some(p) = prev.filter(|p| p.catalogue_hash.as_deref() == Some(hash.as_str())) {
        return Some((hash, p.catalogue.clone()?));
    }
    match Catalogue::parse(&bytes, &rel) {
        Ok(c) => Some((hash, Arc::new(c))),
        Err(e) => {
            errors.push(e);
            last_good()
        }
    }
}

/// The folder's integration files as (name, path relative to the root, path);
/// files whose names cannot be integrations are reported in `errors`.
fn integration_files(
    tenant: &str,
    files: &[PathBuf],
    errors: &mut Vec<ConfigError>,
) -> Vec<(String, String, PathBuf)> {
    let mut out: Vec<(String, String, PathBuf)> = Vec::new();
    for path in files {
        let file = file_name(path);
        let Some(stem) = file
            .strip_suffix(".yaml")
            .or_else(|| file.strip_suffix(".yml"))
        else {
            continue;
        };
        if file == TENANT_FILE || !path.is_file() {
            continue;
        }
        let rel = format!("{tenant}/{file}");
        if !is_integration_name(stem) {
            errors.push(ConfigError::whole_file(
                &rel,
                "an integration's file name becomes its URL: use lowercase letters, digits, `-` and `_`",
            ));
            continue;
        }
        if out.iter().any(|(s, _, _)| s == stem) {
            errors.push(ConfigError::whole_file(
                &rel,
                format!("another file already defines integration `{stem}`"),
            ));
            continue;
        }
        out.push((stem.to_owned(), rel, path.clone()));
    }
    out
}

fn parse_tenant(bytes: &[u8], rel: &str) -> Result<TenantSettings, ConfigError> {
    let spec: TenantSpec = yaml::parse(bytes, rel)?;
    let facts = TenantFacts {
        secrets: Some(spec.secrets.keys().cloned().collect()),
        upstreams: Some(spec.upstreams.clone()),
    };
    if spec.client_ids.is_empty() || spec.tokens.is_empty() {
        return Err(ConfigError::whole_file(
            rel,
            "needs at least one entry in `client_ids` and in `tokens`",
        ));
    }
    Ok(TenantSettings {
        client_ids: spec.client_ids,
        token_digests: digests(&spec.tokens),
        studio_token_digests: digests(&spec.studio_tokens),
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
        catalogue: None,
        facts,
    })
}

fn digests(tokens: &[TokenSpec]) -> Vec<[u8; 32]> {
    tokens
        .iter()
        .map(|t| match t {
            TokenSpec::Sha256(d) => *d,
            TokenSpec::Plain(s) => Sha256::digest(s.expose().as_bytes()).into(),
        })
        .collect()
}

/// Parses, checks and compiles one integration file. `facts` is what is
/// known of its tenant (secrets, upstreams); every `template` message is
/// checked against `catalogue` when the tenant has one. Reports every
/// problem the checks after parsing find, not just the first; a YAML or
/// schema error stops at itself.
pub fn load_integration(
    bytes: &[u8],
    rel: &str,
    name: &str,
    opts: &CompileOptions,
    facts: &TenantFacts,
    catalogue: Option<&Catalogue>,
) -> Result<Integration, Vec<ConfigError>> {
    let spec: IntegrationSpec = yaml::parse(bytes, rel).map_err(|e| vec![e])?;
    if spec.messages.is_empty() {
        return Err(vec![ConfigError::whole_file(
            rel,
            "`messages` is empty: list at least one message",
        )]);
    }
    let findings = check::integration(&spec, facts);
    if !findings.is_empty() {
        let positions = Positions::of(bytes);
        let mut errors: Vec<ConfigError> = findings
            .into_iter()
            .map(|f| positions.error(rel, &f.path, f.inner, f.message))
            .collect();
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        return Err(errors);
    }
    let templates = check_templates(&spec, bytes, rel, catalogue).map_err(|e| vec![e])?;
    let program = compile::compile_with(&spec, opts, &templates)
        .map_err(|e| vec![ConfigError::whole_file(rel, format!("template error: {e}"))])?;
    Ok(Integration {
        name: name.to_owned(),
        file: rel.to_owned(),
        hash: short_hash(bytes),
        loaded_at: SystemTime::now(),
        source: String::from_utf8_lossy(bytes).into(),
        program,
    })
}

/// The catalogue's template for each message (by index), once every
/// `template` message is checked against it.
fn check_templates(
    spec: &IntegrationSpec,
    bytes: &[u8],
    rel: &str,
    catalogue: Option<&Catalogue>,
) -> Result<Vec<Option<Arc<catalogue::Template>>>, ConfigError> {
    let mut out = Vec::with_capacity(spec.messages.len());
    for (i, msg) in spec.messages.iter().enumerate() {
        let Content::Template(t) = &msg.content else {
            out.push(None);
            continue;
        };
        let at = FieldPath::key("messages").at(i);
        let fail = |path: FieldPath, msg: String| {
            Positions::of(bytes).error(rel, &path.under(&at), None, msg)
        };
        let named = matches!(t.body, BodyValues::Named(_));
        // A mapping's first value: the mapping's own position is a colon.
        let body_at = || {
            t.body.entries().first().map_or_else(
                || FieldPath::key(TEMPLATE_KEY).then("body"),
                |(p, _)| p.clone(),
            )
        };
        let Some(catalogue) = catalogue else {
            if named {
                return Err(fail(
                    body_at(),
                    format!("body values by name need the tenant's template catalogue ({}) to know their order; add the catalogue (see docs/templates.md) or list the values in order", catalogue::FILE),
                ));
            }
            out.push(None);
            continue;
        };
        let found = catalogue.check(t).map_err(|(path, msg)| fail(path, msg))?;
        if named && found.is_none() {
            return Err(fail(
                body_at(),
                "body values by name need a fixed `name` and `language` (no `{{ }}`), so the catalogue can order them; list the values in order".to_owned(),
            ));
        }
        out.push(found);
    }
    Ok(out)
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

pub(super) fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
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

pub(super) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
