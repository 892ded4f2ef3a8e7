//! Reading one tenant folder: `tenant.yaml` and its integration files,
//! parsed, checked and compiled, reusing whatever did not change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::catalogue::{self, BodyValues, Catalogue};
use super::check::{self, TenantFacts};
use super::compile::{self, CompileOptions};
use super::error::{ConfigError, FieldPath};
use super::spec::{
    Content, IntegrationSpec, Origin, TenantSpec, Timezone, TokenSpec, TEMPLATE_KEY,
};
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
        // Deleting `tenant.yaml` revokes the tenant's tokens at once.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (
                None,
                vec![ConfigError::whole_file(
                    &tenant_rel,
                    format!("cannot read: {e}; {OUT_OF_SERVICE}"),
                )],
            )
        }
        Err(e) => {
            return keep_prev(ConfigError::unreadable(
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
            upstream_limits: p.upstream_limits.clone(),
            opts: p.opts.clone(),
            limits: p.limits.clone(),
            catalogue: None,
            facts: p.facts.clone(),
            reload_guard: p.reload_guard,
        }),
        None => parse_tenant(&bytes, &tenant_rel),
    };
    let mut settings = match settings {
        Ok(s) => s,
        Err(e) => {
            // The tenant stays as it was (or out), but its integrations are
            // still checked, with default settings, so one slip in
            // tenant.yaml does not hide every other error of the folder.
            // Credentials always come from the current file: a revocation
            // is never ignored, even in a file with a mistake.
            let (tenant, mut errors) = with_current_credentials(prev, &bytes, &tenant_rel, e);
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
            return (tenant, errors);
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
            return keep_prev(ConfigError::unreadable(
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
            .map_err(|e| vec![ConfigError::unreadable(&rel, format!("cannot read: {e}"))])
            .and_then(|bytes| match old {
                Some(old) if old.hash == short_hash(&bytes) => Ok(old.clone()),
                _ => load_integration(
                    &bytes,
                    &rel,
                    stem,
                    &settings.opts,
                    &settings.facts,
                    catalogue.as_ref(),
                )
                .and_then(|i| run_tests(i, &settings, &bytes).map_err(|e| vec![e]))
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
        upstream_limits: settings.upstream_limits,
        limits: settings.limits,
        catalogue,
        catalogue_hash,
        reload_guard: settings.reload_guard,
        opts: settings.opts,
        facts: settings.facts,
        attached: Default::default(),
    };
    (Some(Arc::new(tenant)), errors)
}

const OUT_OF_SERVICE: &str = "the tenant is out of service (every request gets 401) until `tenant.yaml` exists and has valid `client_ids` and `tokens`";

/// A `tenant.yaml` with an error keeps the last good version serving, but
/// never with old credentials: a credential change must never be ignored.
/// If the file's `client_ids` and `tokens` can still be read (the mistake
/// is elsewhere), the last good version serves with them; if they cannot
/// (broken YAML, an empty file, an empty list, a token too short or an
/// unset `${env:}`), the tenant is taken out until the file is fixed.
///
/// One slip is read with care: a token entry with spaces inside
/// (`- token-a - token-b`, two tokens merged by an indentation slip) is
/// split into the tokens it was meant to be, and those already in force
/// keep working. Only those: a merged entry can keep a token, never add
/// one, so the operator who meant to rotate still has to fix the file.
fn with_current_credentials(
    prev: Option<&Arc<Tenant>>,
    bytes: &[u8],
    rel: &str,
    mut errors: Vec<ConfigError>,
) -> (Option<Arc<Tenant>>, Vec<ConfigError>) {
    let in_force = prev.map_or(&[][..], |p| &p.token_digests[..]);
    let Some((client_ids, token_digests)) = credentials(bytes, in_force) else {
        errors.push(ConfigError::whole_file(rel, OUT_OF_SERVICE));
        return (None, errors);
    };
    let Some(p) = prev else {
        return (None, errors);
    };
    if p.client_ids == client_ids && p.token_digests == token_digests {
        return (Some(p.clone()), errors);
    }
    let tenant = Tenant {
        client_ids,
        token_digests,
        // Never a file's hash: the next reload parses the file again
        // rather than reusing these mixed settings.
        hash: format!("{}+credentials", p.hash),
        loaded_at: SystemTime::now(),
        ..(**p).clone()
    };
    (Some(Arc::new(tenant)), errors)
}

/// `client_ids` and `tokens` alone, read leniently (other keys ignored);
/// `None` unless both are valid and not empty. A token entry with spaces
/// inside counts for the pieces of it that are in `in_force` (see
/// [`with_current_credentials`]); any other invalid entry makes it `None`.
fn credentials(bytes: &[u8], in_force: &[[u8; 32]]) -> Option<(Vec<u64>, Vec<[u8; 32]>)> {
    #[derive(serde::Deserialize)]
    struct Credentials {
        client_ids: Vec<u64>,
        tokens: Vec<String>,
    }
    let c: Credentials = serde_yaml::from_slice(bytes).ok()?;
    let mut digests = Vec::new();
    for raw in &c.tokens {
        match TokenSpec::parse(raw) {
            Ok(t) => digests.push(token_digest(&t)),
            Err(_) if raw.trim().chars().any(char::is_whitespace) => {
                let kept = raw
                    .split_whitespace()
                    .filter(|piece| *piece != "-")
                    .filter_map(|piece| TokenSpec::parse(piece).ok())
                    .map(|t| token_digest(&t))
                    .filter(|d| in_force.contains(d));
                digests.extend(kept);
            }
            Err(_) => return None,
        }
    }
    (!c.client_ids.is_empty() && !digests.is_empty()).then_some((c.client_ids, digests))
}

fn token_digest(t: &TokenSpec) -> [u8; 32] {
    match t {
        TokenSpec::Sha256(d) => *d,
        TokenSpec::Plain(s) => Sha256::digest(s.expose().as_bytes()).into(),
    }
}

/// serde_yaml quotes the value it refused; under `tokens` or `secrets` that
/// value is a credential (or a `${file:}`'s contents), and the error goes to
/// the log and `/admin/status`. The position says where it is.
/// Only serde_yaml's part of the message is looked at and emptied (after
/// `(YAML: ` when a plain explanation comes first), and only before
/// ", expected": the explanation and the list of fields expected are
/// recado's own text, and naming `tokens` there must not hide the name of a
/// misspelt field (`client_id`), which is no credential.
fn redact_credentials(mut e: ConfigError) -> ConfigError {
    let (own, serde) = match e.message.find("(YAML: ") {
        Some(i) => e.message.split_at(i),
        None => ("", e.message.as_str()),
    };
    // The last ", expected" is serde's: a quoted value may hold one too.
    let (head, tail) = match serde.rsplit_once(", expected") {
        Some((head, tail)) => (head, Some(tail)),
        None => (serde, None),
    };
    // A misspelt field's name is shown when it is close to a real one (a
    // suggestion follows); anything else there may be a token pasted as a
    // key, and is emptied like a value. Then `tokens`, `studio_tokens`,
    // `secrets`; also a file that is not a mapping at all (a symlink to
    // something else): its whole text would be quoted.
    let unknown_field = head.starts_with("unknown field `") && !e.message.contains("did you mean");
    let whole_file = head.starts_with("invalid type") || head.starts_with("(YAML: invalid type");
    if unknown_field || head.contains("tokens") || head.contains("secrets") || whole_file {
        e.message = format!(
            "{own}{}{}",
            super::error::redact_quoted(head),
            tail.map_or(String::new(), |t| format!(", expected{t}"))
        );
    }
    e
}

struct TenantSettings {
    client_ids: Vec<u64>,
    token_digests: Vec<[u8; 32]>,
    studio_token_digests: Vec<[u8; 32]>,
    secrets: Secrets,
    upstreams: Vec<Origin>,
    upstream_limits: Vec<(Origin, UpstreamLimits)>,
    opts: CompileOptions,
    limits: Limits,
    /// `templates.json` and its hash, read apart from `tenant.yaml`.
    catalogue: Option<(String, Arc<Catalogue>)>,
    facts: TenantFacts,
    reload_guard: crate::config::spec::ReloadGuard,
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

/// What stands in for `tenant.yaml`'s required keys while each other key is
/// checked on its own (see [`yaml::each_key_problem`]): empty, which reads,
/// and is refused only after reading.
const REQUIRED_STAND_INS: &[(&str, &str)] = &[("client_ids", "[]"), ("tokens", "[]")];

/// `tenant.yaml`, read and checked. Refused with every top-level key's
/// first problem, not only the file's first.
fn parse_tenant(bytes: &[u8], rel: &str) -> Result<TenantSettings, Vec<ConfigError>> {
    let spec: TenantSpec = yaml::parse(bytes, rel).map_err(|first| {
        yaml::each_key_problem::<TenantSpec>(bytes, rel, REQUIRED_STAND_INS, first)
            .into_iter()
            .map(redact_credentials)
            .collect::<Vec<_>>()
    })?;
    let facts = TenantFacts {
        secrets: Some(spec.secrets.keys().cloned().collect()),
        upstreams: Some(spec.upstreams.iter().map(|u| u.origin.clone()).collect()),
    };
    if spec.client_ids.is_empty() || spec.tokens.is_empty() {
        return Err(vec![ConfigError::whole_file(
            rel,
            "needs at least one entry in `client_ids` and in `tokens`",
        )]);
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
        catalogue: None,
        facts,
        reload_guard: spec.reload_guard,
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
    catalogue: Option<&Arc<Catalogue>>,
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
    let templates =
        check_templates(&spec, bytes, rel, catalogue.map(|c| &**c)).map_err(|e| vec![e])?;
    let program = compile::compile_with(&spec, opts, &templates, catalogue)
        .map_err(|e| vec![ConfigError::whole_file(rel, format!("template error: {e}"))])?;
    let calls: BTreeSet<&str> = spec.enrich.calls.iter().map(|(n, _)| n.as_str()).collect();
    let tests = check_tests(spec.tests.clone(), &calls, bytes, rel).map_err(|e| vec![e])?;
    Ok(Integration {
        name: name.to_owned(),
        file: rel.to_owned(),
        hash: short_hash(bytes),
        loaded_at: SystemTime::now(),
        source: String::from_utf8_lossy(bytes).into(),
        program,
        tests,
        positions: Default::default(),
        attached: Default::default(),
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

/// What a test runs against besides its file: the tenant's settings.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// The tenant's first clientId, for the default request.
    pub client_id: u64,
    pub limits: Limits,
}

/// Runs an integration's `tests:`; `Err` is the first failing test. The
/// runner renders, which this inert module cannot import, so the binary
/// registers it once at start ([`set_test_runner`], done by
/// `recado::testing::install`); without one, tests are not run on load
/// (`recado test` runs them itself, to report every failure in full).
pub type TestRunner = fn(&Integration, &TestEnv) -> Result<(), TestFailed>;

/// Which test failed (its index in `tests:`) and why, in one line.
#[derive(Debug, Clone)]
pub struct TestFailed {
    pub index: usize,
    pub message: String,
}

static TEST_RUNNER: OnceLock<TestRunner> = OnceLock::new();

/// Registers the [`TestRunner`]; the first registration stays.
pub fn set_test_runner(runner: TestRunner) {
    let _ = TEST_RUNNER.set(runner);
}

/// A file whose tests fail is a broken file: its last good version keeps
/// serving. Runs only for a file whose bytes changed (unchanged files are
/// reused by hash before this), without I/O: enrichment is stubbed.
fn run_tests(
    mut integration: Integration,
    settings: &TenantSettings,
    bytes: &[u8],
) -> Result<Integration, ConfigError> {
    if let (Some(runner), false) = (TEST_RUNNER.get(), integration.tests.is_empty()) {
        let env = TestEnv {
            client_id: settings.client_ids.first().copied().unwrap_or_default(),
            limits: settings.limits.clone(),
        };
        if let Err(failed) = runner(&integration, &env) {
            let rel = &integration.file;
            return Err(match test_position(bytes, failed.index) {
                Some(at) => ConfigError::at(rel, at, failed.message),
                None => ConfigError::whole_file(rel, failed.message),
            });
        }
        // A test that expects an error made the file's positions to name
        // it; they are not kept for the version that serves (10,000
        // integrations with such a test would keep 10,000 of them), only
        // made again if a request fails.
        integration.positions = Default::default();
    }
    Ok(integration)
}

/// Checks what can be checked of `tests:` without running them: unique
/// names, answers only for declared calls. Positions are found only for an
/// error: a good file does not pay for them.
fn check_tests(
    tests: Vec<super::spec::TestSpec>,
    calls: &BTreeSet<&str>,
    bytes: &[u8],
    rel: &str,
) -> Result<Vec<super::spec::TestSpec>, ConfigError> {
    let mut names = BTreeSet::new();
    for (i, t) in tests.iter().enumerate() {
        let at = FieldPath::key("tests").at(i);
        if !names.insert(t.name.as_str()) {
            return Err(Positions::of(bytes).error(
                rel,
                &at.then("name"),
                None,
                format!(
                    "another test is already named \"{}\"; give each test its own name",
                    t.name
                ),
            ));
        }
        if let Some(stub) = t.enrich.keys().find(|k| !calls.contains(k.as_str())) {
            return Err(Positions::of(bytes).error(
                rel,
                &at.then("enrich").then(stub),
                None,
                format!("test \"{}\" answers a call `{stub}` that `enrich:` does not declare; fix the name or remove it", t.name),
            ));
        }
    }
    Ok(tests)
}

/// Line and column where entry `index` of `tests:` starts, for reports.
pub fn test_position(bytes: &[u8], index: usize) -> Option<(usize, usize)> {
    let (line, column) = Positions::of(bytes).get(&FieldPath::key("tests").at(index))?;
    Some((line, item_column(bytes, line).unwrap_or(column)))
}

/// The column of a list item's first key (`  - name:` → 5): the parser
/// marks a block mapping after its first key.
fn item_column(bytes: &[u8], line: usize) -> Option<usize> {
    let text = std::str::from_utf8(bytes)
        .ok()?
        .lines()
        .nth(line.checked_sub(1)?)?;
    let rest = text
        .trim_start()
        .strip_prefix('-')
        .unwrap_or(text.trim_start());
    let key = rest.trim_start();
    Some(text.chars().count() - key.chars().count() + 1)
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
