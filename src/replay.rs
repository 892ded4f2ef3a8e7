//! Replay of journaled requests ([`crate::journal`]) against the current
//! config: as a dry run with the recorded upstream answers (no network, no
//! runtime: rendering is synchronous), the diff with what was answered then,
//! a journal entry turned into a config test (`tests:`), and the shadow
//! check that replays an edited integration's recent requests before the
//! edit serves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use minijinja::Value;
use serde_json::{json, Value as Json};

use crate::config::spec::ReloadGuard;
use crate::config::{ConfigError, Integration, Snapshot, Tenant};
use crate::error::ApiError;
use crate::explain::without_place;
use crate::journal::{Entry, Journal, Redactor, ShadowReport};
use crate::output::Message;
use crate::render::{render, request_context};
use crate::request::{PlatformRequest, RequestVars};

/// Entries of one integration the shadow check replays, newest first.
pub const SHADOW_ENTRIES: usize = 50;
/// The shadow check of one reload stops replaying after this long, so a
/// reload stays well under a second whatever the templates do.
pub const SHADOW_BUDGET: Duration = Duration::from_millis(500);

/// Why a replay could not produce an answer.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// What the webhook would have answered: the same error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A call of the current version has no recorded answer: it failed
    /// then, its answer was too large to keep, or the edit added it.
    #[error("call `{0}` has no recorded answer (it failed, was too large to keep, or is new); replay with `?live=true` to call the upstream")]
    NoRecordedAnswer(String),
    /// The request body was too large to keep.
    #[error("the request body was not kept (larger than a quarter of the journal's per-integration bytes)")]
    NoBody,
}

impl ReplayError {
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Api(e) => e.code(),
            ReplayError::NoRecordedAnswer(_) => "no_recorded_answer",
            ReplayError::NoBody => "no_body",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ReplayError::Api(e) => e.status().as_u16(),
            ReplayError::NoRecordedAnswer(_) | ReplayError::NoBody => 409,
        }
    }
}

/// enrich (from `answers`) → render (+ validate output): what the webhook
/// would answer for `req` if each upstream call answered as recorded.
pub fn render_with_answers(
    tenant: &Tenant,
    integration: &Integration,
    req: &std::sync::Arc<PlatformRequest>,
    answers: &BTreeMap<String, Value>,
) -> Result<Vec<Message>, ReplayError> {
    let mut ctx = request_context(req);
    let compiled = integration.program.borrow_dependent();
    if !compiled.calls.is_empty() {
        let mut seen = BTreeMap::new();
        for call in &compiled.calls {
            let answer = answers
                .get(&call.name)
                .ok_or_else(|| ReplayError::NoRecordedAnswer(call.name.clone()))?;
            seen.insert(call.name.clone(), answer.clone());
        }
        ctx = RequestVars::with(&ctx, [("enrich", Value::from(seen))]);
    }
    render(&integration.program, &ctx, tenant.limits.max_messages).map_err(|mut source| {
        // Named as the webhook names it (see `hook::render_request`).
        source.locate(integration.positions());
        ReplayError::Api(ApiError::Render {
            file: integration.file.clone(),
            source,
        })
    })
}

/// The answer of a replay (or of the entry as recorded): the messages, or
/// the error's status, code and message. Two errors are the same if they
/// differ only in the line they name (`explain::without_place`): an edit
/// that moves a failing template down a line does not change what fails.
#[derive(Debug, Clone)]
pub enum Outcome {
    Answer(Json),
    Error {
        status: u16,
        code: String,
        message: String,
    },
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Answer(a), Outcome::Answer(b)) => a == b,
            (
                Outcome::Error {
                    status,
                    code,
                    message,
                },
                Outcome::Error {
                    status: s,
                    code: c,
                    message: m,
                },
            ) => status == s && code == c && without_place(message) == without_place(m),
            _ => false,
        }
    }
}

impl Outcome {
    /// What the entry recorded.
    pub fn recorded(e: &Entry) -> Outcome {
        match (e.answer(), &e.error) {
            (Some(a), _) if e.status == 200 => {
                Outcome::Answer(serde_json::from_slice(a).unwrap_or(Json::Null))
            }
            (_, Some((code, message))) => Outcome::Error {
                status: e.status,
                code: (*code).to_owned(),
                message: message.clone(),
            },
            _ => Outcome::Error {
                status: e.status,
                code: "unknown".into(),
                message: String::new(),
            },
        }
    }

    pub fn of(result: Result<Vec<Message>, ReplayError>, tenant: &Tenant, file: &str) -> Outcome {
        let failed = |e: ReplayError| Outcome::Error {
            status: e.status(),
            code: e.code().to_owned(),
            message: e.to_string(),
        };
        match result {
            Ok(messages) => {
                let mut json = Vec::new();
                let _ = crate::output::write_json(&messages, &mut json);
                if json.len() > tenant.limits.max_output_bytes {
                    return failed(ReplayError::Api(ApiError::OutputTooLarge {
                        file: file.to_owned(),
                        size: json.len(),
                        limit: tenant.limits.max_output_bytes,
                    }));
                }
                Outcome::Answer(serde_json::from_slice(&json).unwrap_or(Json::Null))
            }
            Err(e) => failed(e),
        }
    }

    pub fn is_answer(&self) -> bool {
        matches!(self, Outcome::Answer(_))
    }

    pub fn to_json(&self, r: &Redactor) -> Json {
        let mut v = match self {
            Outcome::Answer(a) => json!({"status": 200, "answer": a}),
            Outcome::Error {
                status,
                code,
                message,
            } => json!({"status": status, "error": {"code": code, "message": message}}),
        };
        r.json(&mut v);
        v
    }
}

/// Replays `entry` against `tenant`'s current `integration` with the
/// recorded upstream answers.
pub fn replay_offline(tenant: &Tenant, integration: &Integration, entry: &Entry) -> Outcome {
    let result = parse(entry)
        .and_then(|req| render_with_answers(tenant, integration, &req, &entry.answers()));
    Outcome::of(result, tenant, &integration.file)
}

pub fn parse(entry: &Entry) -> Result<std::sync::Arc<PlatformRequest>, ReplayError> {
    if entry.body().is_empty() {
        return Err(ReplayError::NoBody);
    }
    PlatformRequest::parse(entry.body()).map_err(|e| ReplayError::Api(e.into()))
}

/// One difference between two answers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    /// The message's position (0-based) in the answer.
    pub message: usize,
    /// The field within it (`value`, `body.parameters[0].value`); empty when
    /// the whole message was added or removed.
    pub field: String,
    pub before: Option<Json>,
    pub after: Option<Json>,
}

/// Message by message, field by field. An error on either side is one
/// change of the whole answer (`message` 0, field `error`).
pub fn diff(then: &Outcome, now: &Outcome) -> Vec<Change> {
    match (then, now) {
        (Outcome::Answer(a), Outcome::Answer(b)) => {
            let empty = Vec::new();
            let a = a.as_array().unwrap_or(&empty);
            let b = b.as_array().unwrap_or(&empty);
            let mut out = Vec::new();
            for i in 0..a.len().max(b.len()) {
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) if x != y => {
                        let (mut fx, mut fy) = (BTreeMap::new(), BTreeMap::new());
                        flatten("", x, &mut fx);
                        flatten("", y, &mut fy);
                        let mut fields: Vec<&String> = fx.keys().chain(fy.keys()).collect();
                        fields.sort();
                        fields.dedup();
                        for f in fields {
                            if fx.get(f) != fy.get(f) {
                                out.push(Change {
                                    message: i,
                                    field: f.clone(),
                                    before: fx.get(f).cloned(),
                                    after: fy.get(f).cloned(),
                                });
                            }
                        }
                    }
                    (x, y) if x != y => out.push(Change {
                        message: i,
                        field: String::new(),
                        before: x.cloned(),
                        after: y.cloned(),
                    }),
                    _ => {}
                }
            }
            out
        }
        (a, b) if a == b => Vec::new(),
        (a, b) => {
            let side = |o: &Outcome| match o {
                Outcome::Answer(a) => a.clone(),
                Outcome::Error { code, message, .. } => json!({"code": code, "message": message}),
            };
            vec![Change {
                message: 0,
                field: "error".into(),
                before: Some(side(a)),
                after: Some(side(b)),
            }]
        }
    }
}

fn flatten(prefix: &str, v: &Json, out: &mut BTreeMap<String, Json>) {
    match v {
        Json::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.clone());
        }
    }
}

/// Stand-ins for a contact's personal data in a test written from an entry.
struct Pseudonyms {
    /// (real, stand-in), longest first.
    pairs: Vec<(String, String)>,
    key: String,
    name: String,
}

const NAMES: &[&str] = &["Maria", "Teste", "Souza", "Lima", "Costa", "Rocha"];

impl Pseudonyms {
    fn new(key: &str, name: &str) -> Pseudonyms {
        // Keep the country and area code (not personal) so phone filters
        // still see a plausible number; the rest is made up.
        let digits = key.chars().count();
        let keep: String = key.chars().take(4.min(digits)).collect();
        let fake_key: String = keep
            .chars()
            .chain("9".chars())
            .chain(std::iter::repeat('0'))
            .take(digits.max(keep.len()))
            .collect();
        let words: Vec<&str> = name.split_whitespace().collect();
        let fake_words: Vec<String> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if w.chars().count() <= 2 {
                    (*w).to_owned()
                } else {
                    NAMES[i % NAMES.len()].to_owned()
                }
            })
            .collect();
        let mut pairs = vec![(key.to_owned(), fake_key.clone())];
        if let (Some(real), Some(fake)) = (key.strip_prefix("55"), fake_key.strip_prefix("55")) {
            pairs.push((real.to_owned(), fake.to_owned()));
        }
        for (w, f) in words.iter().zip(&fake_words) {
            if w.chars().count() > 2 {
                pairs.push(((*w).to_owned(), f.clone()));
                pairs.push((w.to_uppercase(), f.to_uppercase()));
                pairs.push((w.to_lowercase(), f.to_lowercase()));
            }
        }
        pairs.sort_by_key(|(r, _)| std::cmp::Reverse(r.len()));
        Pseudonyms {
            pairs,
            key: fake_key,
            name: fake_words.join(" "),
        }
    }

    /// `s` with the contact replaced: a form of at least five characters
    /// (a surname, a number) wherever it occurs (`anasouza@…`), a shorter
    /// one as a whole word only (`Val` in `Val Souza`, never in `valor`).
    fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (real, fake) in &self.pairs {
            if real.is_empty() || !out.contains(real.as_str()) {
                continue;
            }
            let anywhere = real.chars().count() >= 5;
            let mut replaced = String::with_capacity(out.len());
            let mut last = 0;
            for (i, _) in out.match_indices(real.as_str()) {
                let end = i + real.len();
                // Judged on the original text, so that a match skipped just
                // before (`AnaAna`) is still the character before this one.
                let before = out[..i].chars().next_back();
                let after = out[end..].chars().next();
                let whole = !before.is_some_and(char::is_alphanumeric)
                    && !after.is_some_and(char::is_alphanumeric);
                if anywhere || whole {
                    replaced.push_str(&out[last..i]);
                    replaced.push_str(fake);
                    last = end;
                }
            }
            replaced.push_str(&out[last..]);
            out = replaced;
        }
        out
    }

    /// `v` with the contact replaced in its strings and numbers (a phone
    /// may come as a number), and in a key that is the contact itself; other
    /// keys are the integration's own names (`valor`) and stay as they are.
    fn json(&self, v: &Json) -> Json {
        match v {
            Json::String(s) => Json::String(self.text(s)),
            Json::Number(n) => {
                let text = n.to_string();
                let made_up = self.text(&text);
                if made_up == text {
                    v.clone()
                } else {
                    serde_json::from_str::<serde_json::Number>(&made_up)
                        .map_or(Json::String(made_up), Json::Number)
                }
            }
            Json::Array(items) => Json::Array(items.iter().map(|v| self.json(v)).collect()),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| {
                        let key = match self.pairs.iter().find(|(real, _)| real == k) {
                            Some((_, fake)) => fake.clone(),
                            None => k.clone(),
                        };
                        (key, self.json(v))
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// A platform request (its JSON) and the calls' answers with the contact
/// made up, as in a test made from the journal: for `recado render
/// --save-test`, whose test goes into a file that may well be committed.
pub fn made_up(request: &Json, answers: Option<&Json>) -> (Json, Option<Json>) {
    let contact = &request["contact"];
    let p = Pseudonyms::new(
        contact["key"].as_str().unwrap_or(""),
        contact["name"].as_str().unwrap_or(""),
    );
    let mut fake = request.clone();
    if let Some(c) = fake.get_mut("contact").and_then(Json::as_object_mut) {
        c.insert("key".into(), json!(p.key));
        c.insert("name".into(), json!(p.name));
    }
    if let Some(data) = fake.get_mut("data") {
        *data = p.json(data);
    }
    (fake, answers.map(|a| p.json(a)))
}

/// Why an entry cannot become a test.
#[derive(Debug, thiserror::Error)]
pub enum SnippetError {
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("call `{0}` has no recorded answer (it failed without a fallback, or its answer was too large to keep): a test needs every call's answer")]
    NoAnswer(String),
}

/// Turns `entry` into a config test, as a `tests:` YAML snippet to append
/// to the integration file. Unless `personal_data`, the contact is replaced
/// by a made-up one, and the expected answer is the recorded one with the
/// same replacement: rendered again for the made-up contact when the file
/// is still the version the entry ran on, so filters of the name or phone
/// give exactly what they will give in the test.
pub fn test_snippet(
    entry: &Entry,
    current: Option<(&Tenant, &Integration)>,
    personal_data: bool,
) -> Result<String, SnippetError> {
    let req = parse(entry)?;
    let body: Json = serde_json::from_slice(entry.body()).unwrap_or(Json::Null);
    if let Some(c) = entry.calls.iter().find(|c| c.answer.is_none()) {
        return Err(SnippetError::NoAnswer(c.name.clone()));
    }
    let p = Pseudonyms::new(&req.contact.key, &req.contact.name);
    // The made-up contact in the test's request: in `contact`, and in
    // `data`'s texts, where the platform's payload may repeat the contact.
    let mut body = body;
    if !personal_data {
        body["contact"]["key"] = json!(p.key);
        body["contact"]["name"] = json!(p.name);
        if let Some(data) = body.get_mut("data") {
            *data = p.json(data);
        }
    }
    let mut request = json!({ "contact": body["contact"].clone() });
    if let Some(data) = body.get("data").filter(|d| !d.is_null()) {
        request["data"] = data.clone();
    }
    let mut answers = entry.answers();
    let mut enrich: serde_json::Map<String, Json> = answers
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Json::Null)))
        .collect();
    if !personal_data {
        // Upstream answers about the contact name them too.
        enrich = match p.json(&Json::Object(enrich)) {
            Json::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        answers = enrich
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::from_value(v.clone()).unwrap_or_default(),
                )
            })
            .collect();
    }

    let recorded = Outcome::recorded(entry);
    let mut outcome = recorded.clone();
    if !personal_data {
        outcome = match (&recorded, current) {
            (Outcome::Answer(_), Some((t, i))) if i.hash == entry.version() => {
                let fake_body = serde_json::to_vec(&body).unwrap_or_default();
                let again = PlatformRequest::parse(&fake_body)
                    .map_err(|e| ReplayError::Api(e.into()))
                    .and_then(|r| render_with_answers(t, i, &r, &answers));
                match Outcome::of(again, t, &i.file) {
                    o @ Outcome::Answer(_) => o,
                    _ => substitute(&recorded, &p),
                }
            }
            _ => substitute(&recorded, &p),
        };
    }
    let mut test = serde_json::Map::new();
    let name = format!(
        "journal entry {} (request {})",
        entry.seq,
        entry.request_id.map_or("?".into(), |id| id.to_string())
    );
    test.insert("name".into(), json!(name));
    test.insert("request".into(), request);
    if !enrich.is_empty() {
        test.insert("enrich".into(), Json::Object(enrich));
    }
    match &outcome {
        Outcome::Answer(a) => {
            let expect: Vec<Json> = a
                .as_array()
                .map(|m| m.iter().map(expected_message).collect())
                .unwrap_or_default();
            test.insert("expect".into(), Json::Array(expect));
        }
        Outcome::Error { code, .. } => {
            test.insert("expect_error".into(), json!(code));
        }
    }
    let doc = json!({ "tests": [Json::Object(test)] });
    Ok(serde_yaml::to_string(&doc).unwrap_or_default())
}

fn substitute(o: &Outcome, p: &Pseudonyms) -> Outcome {
    match o {
        Outcome::Answer(a) => Outcome::Answer(p.json(a)),
        other => other.clone(),
    }
}

/// A message of an answer in the keys of `messages:` (and of `expect:`).
fn expected_message(m: &Json) -> Json {
    let kind = m["type"].as_str().unwrap_or("").to_lowercase();
    if kind != "template" {
        return json!({ kind: m["value"] });
    }
    let values = |p: &Json| -> Vec<Json> {
        p["parameters"]
            .as_array()
            .map(|ps| ps.iter().map(|x| x["value"].clone()).collect())
            .unwrap_or_default()
    };
    let mut t = serde_json::Map::new();
    t.insert("name".into(), m["name"].clone());
    t.insert("language".into(), m["language"].clone());
    if let Some(header) = m.get("header") {
        if let Some(first) = values(header).into_iter().next() {
            t.insert("header".into(), first);
        }
    }
    if let Some(body) = m.get("body") {
        t.insert("body".into(), Json::Array(values(body)));
    }
    if let Some(buttons) = m["buttons"].as_array() {
        let b: Vec<Json> = buttons
            .iter()
            .map(|b| {
                b["parameters"]
                    .as_array()
                    .and_then(|p| p.first())
                    .map_or(Json::Null, |p| p["value"].clone())
            })
            .collect();
        t.insert("buttons".into(), Json::Array(b));
    }
    json!({ "template": Json::Object(t) })
}

/// Replays the recent entries of `integration` (the version that served
/// them) against `next`, its edited version. Entries that ran on another
/// version than the one serving are replayed too: they are requests that
/// really arrive.
pub fn shadow(
    journal: &Journal,
    tenant: &Tenant,
    prev: &Integration,
    next: &Integration,
    personal_data: bool,
    deadline: Instant,
) -> ShadowReport {
    let entries = journal.recent(&tenant.name, &next.name, SHADOW_ENTRIES);
    let mut report = ShadowReport {
        tenant: tenant.name.clone(),
        integration: next.name.clone(),
        file: next.file.clone(),
        from_version: prev.hash.clone(),
        to_version: next.hash.clone(),
        at: jiff::Timestamp::try_from(SystemTime::now())
            .map(|t| t.to_string())
            .unwrap_or_default(),
        checked: 0,
        changed: 0,
        failed: 0,
        skipped: 0,
        example_changed: None,
        example_failed: None,
        blocked: false,
    };
    for entry in entries {
        if Instant::now() > deadline {
            break;
        }
        // Errors that come before the templates (busy, too large) say
        // nothing about the file.
        if !(entry.status == 200 || matches!(entry.status, 422 | 502 | 504)) {
            continue;
        }
        let then = Outcome::recorded(&entry);
        let now = replay_offline(tenant, next, &entry);
        if let Outcome::Error { code, .. } = &now {
            if code == "no_recorded_answer" || code == "no_body" {
                report.skipped += 1;
                continue;
            }
        }
        report.checked += 1;
        if then == now {
            continue;
        }
        report.changed += 1;
        let r = Redactor::for_body(entry.body(), personal_data);
        if report.example_changed.is_none() {
            let first = diff(&then, &now).into_iter().next();
            let mut v = json!({
                "entry": entry.seq.to_string(),
                "request_id": entry.request_id,
                "change": first,
            });
            r.json(&mut v);
            report.example_changed = Some(v);
        }
        if let (true, Outcome::Error { code, message, .. }) = (then.is_answer(), &now) {
            report.failed += 1;
            if report.example_failed.is_none() {
                report.example_failed = Some(json!({
                    "entry": entry.seq.to_string(),
                    "request_id": entry.request_id,
                    "code": code,
                    "message": r.text(message),
                }));
            }
        }
    }
    report
}

/// The reload gate `recado serve` installs: every integration that changed
/// is shadow-checked against the journal; with `reload_guard: block`, one
/// that would fail a request that was answered keeps its previous version.
pub fn gate(
    journal: Arc<Journal>,
    personal_data: bool,
) -> impl Fn(&Snapshot, Snapshot) -> Snapshot + Send + Sync + 'static {
    move |prev: &Snapshot, mut next: Snapshot| {
        let deadline = Instant::now() + SHADOW_BUDGET;
        let mut blocked = Vec::new();
        for (name, tenant) in &next.tenants {
            let Some(old_tenant) = prev.tenants.get(name) else {
                continue;
            };
            for (iname, integration) in &tenant.integrations {
                let Some(old) = old_tenant.integrations.get(iname) else {
                    continue;
                };
                if Arc::ptr_eq(old, integration) || old.hash == integration.hash {
                    continue;
                }
                let mut report =
                    shadow(&journal, tenant, old, integration, personal_data, deadline);
                if report.failed > 0 && tenant.reload_guard == ReloadGuard::Block {
                    report.blocked = true;
                    blocked.push((name.clone(), iname.clone(), block_error(&report)));
                }
                log(&report);
                journal.set_shadow(report);
            }
        }
        for (tenant, integration, error) in blocked {
            next.keep_previous(prev, &tenant, &integration, error);
        }
        next
    }
}

fn block_error(r: &ShadowReport) -> ConfigError {
    let example = r.example_failed.as_ref().map_or(String::new(), |e| {
        format!(
            "; e.g. journal entry {} (request {}) would now fail with {}: {}",
            e["entry"].as_str().unwrap_or("?"),
            e["request_id"],
            e["code"].as_str().unwrap_or("?"),
            e["message"].as_str().unwrap_or(""),
        )
    });
    ConfigError::whole_file(
        &r.file,
        format!(
            "this version is not served (`reload_guard: block` in tenant.yaml): {} of the {} recent requests replayed were answered and would now fail{example}. Fix the file, or set `reload_guard: warn` to serve it anyway. To see it fail locally: GET /admin/requests/{{entry}}/test gives that request as a test; add it under the file's `tests:` and run `recado test`",
            r.failed, r.checked
        ),
    )
}

fn log(r: &ShadowReport) {
    let labels = [
        ("tenant", r.tenant.clone()),
        ("integration", r.integration.clone()),
    ];
    metrics::gauge!("recado_shadow_changed", &labels).set(r.changed as f64);
    metrics::gauge!("recado_shadow_failed", &labels).set(r.failed as f64);
    let example_changed = r.example_changed.as_ref().map(|e| e.to_string());
    let example_failed = r.example_failed.as_ref().map(|e| e.to_string());
    if r.failed > 0 {
        tracing::warn!(tenant = %r.tenant, integration = %r.integration, checked = r.checked, changed = r.changed, failed = r.failed, blocked = r.blocked, example_failed, example_changed, "shadow check: the edit would fail requests that were answered");
    } else if r.changed > 0 {
        tracing::info!(tenant = %r.tenant, integration = %r.integration, checked = r.checked, changed = r.changed, example_changed, "shadow check: the edit changes answers");
    } else {
        tracing::info!(tenant = %r.tenant, integration = %r.integration, checked = r.checked, skipped = r.skipped, "shadow check: no answer changes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contact is made up wherever it shows (strings, numbers, a key that
    /// is the contact), and nowhere else (`valor` stays `valor`).
    #[test]
    fn the_made_up_contact_replaces_the_real_one_and_nothing_else() {
        let p = Pseudonyms::new("5511987654321", "Val Souza");
        let before = json!({
            "valor": 10,
            "obs": "ligar para Val Souza no 5511987654321; e-mail valsouza@example.com",
            "telefone": 5511987654321u64,
            "local": 11987654321u64,
            "5511987654321": "chave",
            "eco": "ValVal Val",
        });
        let after = p.json(&before);
        let text = after.to_string();
        for real in [
            "Val Souza",
            "Souza",
            "souza",
            "5511987654321",
            "11987654321",
        ] {
            assert!(!text.contains(real), "`{real}` in {text}");
        }
        assert_eq!(after["valor"], 10, "{after}");
        assert!(after["telefone"].is_u64(), "{after}");
        assert_eq!(
            after["obs"],
            "ligar para Maria Teste no 5511900000000; e-mail valteste@example.com"
        );
        // `Val` is short: replaced as a word, never inside one.
        assert_eq!(after["eco"], "ValVal Maria", "{after}");
    }
}
