//! Reading one tenant folder: `tenant.yaml` and its integration files,
//! parsed, checked and compiled, reusing whatever did not change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::compile::{self, CompileOptions};
use super::error::{ConfigError, FieldPath};
use super::spec::{IntegrationSpec, Origin, TenantSpec, TokenSpec};
use super::tenant::{Integration, Limits, Secrets, Tenant, UpstreamLimits};
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
        Some(p) => TenantSettings {
            client_ids: p.client_ids.clone(),
            token_digests: p.token_digests.clone(),
            secrets: p.secrets.clone(),
            upstreams: p.upstreams.clone(),
            upstream_limits: p.upstream_limits.clone(),
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
        secrets: settings.secrets,
        upstreams: settings.upstreams,
        upstream_limits: settings.upstream_limits,
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
    upstream_limits: Vec<(Origin, UpstreamLimits)>,
    opts: CompileOptions,
    limits: Limits,
}

fn parse_tenant(bytes: &[u8], rel: &str) -> Result<TenantSettings, ConfigError> {
    let spec: TenantSpec = yaml::parse(bytes, rel)?;
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
        upstream_limits: spec
            .upstreams
            .iter()
            .filter_map(|u| Some((u.origin.clone(), UpstreamLimits::from_spec(u)?)))
            .collect(),
        upstreams: spec.upstreams.into_iter().map(|u| u.origin).collect(),
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
    let spec: IntegrationSpec = yaml::parse(bytes, rel)?;
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
                let path = field.under(&FieldPath::key("messages").at(i));
                let inner = position_of(&src.source, &format!("enrich.{unknown}"));
                return Err(Positions::of(bytes).error(
                    rel,
                    &path,
                    inner,
                    format!("`{path}` reads `enrich.{unknown}`, but `enrich:` has no call named `{unknown}`; declare it under `enrich:` or fix the name"),
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

/// Line and column (1-based) of the first `needle` in a template's text.
fn position_of(text: &str, needle: &str) -> Option<(usize, usize)> {
    let at = text.find(needle)?;
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some((line, column))
}
