//! The request journal: the last answers of every integration, kept so an
//! operator can see *that* request (what recado answered, which template or
//! upstream failed), replay it after an edit ([`crate::replay`]), and so a
//! reload can be checked against the requests that really arrive.
//!
//! Request-time state beside the path, owned by [`crate::state::AppState`].
//! One ring per (tenant, integration), bounded by count, bytes and age, so
//! memory stays flat under any traffic. Requests that matched no integration
//! (401, 404, 400 before the tenant is known) are not journaled: their names
//! were chosen by whoever sent them, and the access log already has them.
//!
//! Recording is one lock of the integration's ring and a push of an
//! `Arc<Entry>`; the ring is found once per integration, not per request
//! ([`RingRef`], kept in [`crate::state::TenantState`]). Views (masking,
//! JSON) are built only when an admin asks.
//! With `--journal-file`, the entries are also kept in a file ([`store`]),
//! written by a thread of its own, and read back at start.

mod store;

use std::collections::{BTreeMap, VecDeque};

use foldhash::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::config::Integration;
use crate::enrich::{CallLog, CallOutcome};
use crate::telemetry::{mask_name, mask_phone, RequestRecord};

pub use store::StoreError;

/// Entries kept per integration by default.
pub const DEFAULT_ENTRIES: usize = 200;
/// Bytes (bodies, answers, upstream answers) kept per integration by default.
pub const DEFAULT_BYTES: usize = 1024 * 1024;
/// How long an entry is kept by default.
pub const DEFAULT_AGE: Duration = Duration::from_secs(24 * 3600);
/// What an entry costs beyond its bytes (the struct, the `Arc`, the ring slot).
const ENTRY_OVERHEAD: usize = 256;

/// The journal's bounds, per integration.
#[derive(Debug, Clone, Copy)]
pub struct JournalSettings {
    pub entries: usize,
    pub bytes: usize,
    pub age: Duration,
}

impl Default for JournalSettings {
    fn default() -> JournalSettings {
        JournalSettings {
            entries: DEFAULT_ENTRIES,
            bytes: DEFAULT_BYTES,
            age: DEFAULT_AGE,
        }
    }
}

/// What [`Journal::record`] keeps of one webhook beside its record.
pub struct Exchange<'a> {
    pub status: u16,
    /// How long the answer took, from the request's arrival.
    pub took: Duration,
    /// The request body as received.
    pub body: &'a [u8],
    /// The JSON answered (`None` for an error).
    pub answer: Option<&'a [u8]>,
}

/// One webhook answered.
#[derive(Debug)]
pub struct Entry {
    /// The journal's own number, increasing; the `{entry}` of the admin API.
    pub seq: u64,
    pub at: SystemTime,
    /// The platform's request id.
    pub request_id: Option<u64>,
    /// Its tenant, integration, file and version, shared by the ring's
    /// entries of that version: one reference count per entry, not four.
    pub names: Arc<Names>,
    pub status: u16,
    /// The error's code and message, when the answer is one.
    pub error: Option<(&'static str, String)>,
    pub took: Duration,
    pub calls: Vec<CallOutcome>,
    pub messages: Option<usize>,
    /// The request body (for replay; empty when it was too large to keep),
    /// then the JSON answered: one allocation, the only one besides the
    /// entry's own, so that an entry the ring lets go frees little.
    texts: Box<[u8]>,
    /// Where the answer starts in `texts`; `None` for an error.
    answer_at: Option<usize>,
    size: usize,
}

/// Where an entry comes from.
#[derive(Debug, PartialEq, Eq)]
pub struct Names {
    pub tenant: String,
    pub integration: String,
    /// The integration file (`demo/boleto.yaml`).
    pub file: String,
    /// The file's hash: the config version the request ran on.
    pub version: String,
}

impl Entry {
    pub fn tenant(&self) -> &str {
        &self.names.tenant
    }

    pub fn integration(&self) -> &str {
        &self.names.integration
    }

    /// The integration file (`demo/boleto.yaml`).
    pub fn file(&self) -> &str {
        &self.names.file
    }

    /// The file's hash: the config version the request ran on.
    pub fn version(&self) -> &str {
        &self.names.version
    }

    /// The request body, for replay; empty when it was too large to keep.
    pub fn body(&self) -> &[u8] {
        &self.texts[..self.answer_at.unwrap_or(self.texts.len())]
    }

    /// The JSON answered (`None` for an error).
    pub fn answer(&self) -> Option<&[u8]> {
        self.answer_at.map(|at| &self.texts[at..])
    }

    /// `body` then `answer`, as an entry keeps them.
    fn texts(body: &[u8], answer: Option<&[u8]>) -> (Box<[u8]>, Option<usize>) {
        let answer_at = answer.map(|_| body.len());
        (
            [body, answer.unwrap_or_default()]
                .concat()
                .into_boxed_slice(),
            answer_at,
        )
    }

    /// The recorded upstream answers by call name: what replay feeds the
    /// templates instead of calling the upstreams.
    pub fn answers(&self) -> BTreeMap<String, minijinja::Value> {
        self.calls
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.answer.clone()?)))
            .collect()
    }
}

struct Ring {
    tenant: String,
    integration: String,
    /// The last version seen, shared by its entries.
    version: Option<Arc<Names>>,
    /// The integration (config) that version was taken from: while a
    /// request's integration is this one, the version is the same without
    /// comparing strings. `Weak` keeps the address from being reused.
    seen: Weak<Integration>,
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
}

impl Ring {
    /// The names of an entry of `file` at version `hash`, shared with the
    /// ring's other entries of that version.
    fn share(&mut self, file: &str, hash: &str) -> Arc<Names> {
        match &self.version {
            Some(names) if names.version == hash && names.file == file => names.clone(),
            _ => {
                let names = Arc::new(Names {
                    tenant: self.tenant.clone(),
                    integration: self.integration.clone(),
                    file: file.to_owned(),
                    version: hash.to_owned(),
                });
                self.version = Some(names.clone());
                names
            }
        }
    }

    /// [`Ring::share`] of a request's integration.
    fn share_of(&mut self, integration: &Arc<Integration>) -> Arc<Names> {
        if let (true, Some(names)) = (
            std::ptr::eq(self.seen.as_ptr(), Arc::as_ptr(integration)),
            &self.version,
        ) {
            return names.clone();
        }
        self.seen = Arc::downgrade(integration);
        self.share(&integration.file, &integration.hash)
    }

    fn push(&mut self, entry: Arc<Entry>, limits: &JournalSettings) {
        self.bytes += entry.size;
        let at = entry.at;
        self.entries.push_back(entry);
        self.prune(limits, at);
    }

    fn prune(&mut self, limits: &JournalSettings, now: SystemTime) {
        // One subtraction, then comparisons: entries older than this go.
        let cutoff = now.checked_sub(limits.age);
        while let Some(front) = self.entries.front() {
            let old = cutoff.is_some_and(|c| front.at < c);
            if !(old || self.entries.len() > limits.entries || self.bytes > limits.bytes) {
                break;
            }
            self.bytes -= front.size;
            self.entries.pop_front();
        }
    }
}

type Rings = HashMap<String, HashMap<String, Arc<Mutex<Ring>>>>;

/// One integration's ring, found once ([`Journal::ring_of`]) and kept by the
/// request-time state, so recording a request looks nothing up.
#[derive(Clone)]
pub struct RingRef(Arc<Mutex<Ring>>);

/// The journal: a ring per integration, and the last shadow check of each.
pub struct Journal {
    settings: JournalSettings,
    seq: AtomicU64,
    rings: RwLock<Rings>,
    shadow: Mutex<BTreeMap<String, ShadowReport>>,
    /// The file (`--journal-file`), if any.
    store: Option<store::Store>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Journal {
    pub fn new(settings: JournalSettings) -> Journal {
        Journal {
            settings,
            seq: AtomicU64::new(1),
            rings: RwLock::default(),
            shadow: Mutex::default(),
            store: None,
        }
    }

    /// A journal that also keeps its entries in the SQLite file at `path`
    /// (`--journal-file`, created if missing), starting with the entries
    /// the file holds within `settings`, and numbering on after them.
    pub fn open(settings: JournalSettings, path: &Path) -> Result<Journal, StoreError> {
        let (store, stored) = store::Store::open(path, settings)?;
        let mut journal = Journal::new(settings);
        journal.seq = AtomicU64::new(stored.next_seq);
        let loaded = stored.entries.len();
        for entry in stored.entries {
            journal.load(entry);
        }
        journal.store = Some(store);
        tracing::info!(path = %path.display(), entries = loaded, "journal file opened");
        Ok(journal)
    }

    /// Returns once every entry recorded so far is in the file (at once
    /// without one). For shutdown: the writer runs behind the requests.
    pub fn flush(&self) {
        if let Some(store) = &self.store {
            store.flush();
        }
    }

    /// Puts an entry read from the file in its ring.
    fn load(&self, entry: Entry) {
        let ring = self.ring(entry.tenant(), entry.integration());
        let mut ring = lock(&ring);
        let names = ring.share(entry.file(), entry.version());
        let entry = Entry { names, ..entry };
        ring.push(Arc::new(entry), &self.settings);
    }

    pub fn settings(&self) -> &JournalSettings {
        &self.settings
    }

    /// The ring of `integration` of `tenant`, made on first use. Rings are
    /// never removed, so a [`RingRef`] stays the one queries read.
    pub fn ring_of(&self, tenant: &str, integration: &str) -> RingRef {
        RingRef(self.ring(tenant, integration))
    }

    // Not on the request path (an integration's first request, and loading
    // the file), so the write lock is taken at once.
    fn ring(&self, tenant: &str, integration: &str) -> Arc<Mutex<Ring>> {
        let mut rings = self.rings.write().unwrap_or_else(|e| e.into_inner());
        rings
            .entry(tenant.to_owned())
            .or_default()
            .entry(integration.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Ring {
                    tenant: tenant.to_owned(),
                    integration: integration.to_owned(),
                    version: None,
                    seen: Weak::new(),
                    entries: VecDeque::new(),
                    bytes: 0,
                }))
            })
            .clone()
    }

    /// Records one answered webhook in `ring`, the ring of the request's
    /// integration. Only requests that reached an integration are kept (see
    /// the module's documentation).
    pub fn record(
        &self,
        ring: &RingRef,
        record: &RequestRecord,
        exchange: Exchange<'_>,
        calls: Option<CallLog>,
    ) {
        let (Some(tenant), Some(integration)) = (&record.tenant, &record.integration) else {
            return;
        };
        let Exchange {
            status,
            took,
            body,
            answer,
        } = exchange;
        let calls = calls
            .map(|c| c.into_inner().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or_default();
        // A copy: the received body is a slice of the connection's read
        // buffer, which a reference would keep alive whole.
        let body = if body.len() <= self.settings.bytes / 4 {
            body
        } else {
            &[]
        };
        let error = record.error.clone();
        let size = ENTRY_OVERHEAD
            + body.len()
            + answer.map_or(0, <[u8]>::len)
            + error.as_ref().map_or(0, |(_, m)| m.len())
            + calls
                .iter()
                .map(|c| c.name.len() + if c.answer.is_some() { c.bytes } else { 0 })
                .sum::<usize>();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let at = SystemTime::now();
        let mut ring = lock(&ring.0);
        debug_assert!(ring.tenant == tenant.name && ring.integration == integration.name);
        let names = ring.share_of(integration);
        let (texts, answer_at) = Entry::texts(body, answer);
        let entry = Arc::new(Entry {
            seq,
            at,
            request_id: record.request_id,
            names,
            status,
            error,
            took,
            calls,
            messages: record.messages,
            texts,
            answer_at,
            size,
        });
        match &self.store {
            Some(store) => {
                ring.push(entry.clone(), &self.settings);
                drop(ring);
                store.send(entry);
            }
            None => ring.push(entry, &self.settings),
        }
    }

    /// The entries that pass `filter`, newest first, at most `limit`, all
    /// older than `before` (a cursor) when given.
    pub fn query(&self, filter: &Filter, limit: usize) -> Vec<Arc<Entry>> {
        let rings: Vec<Arc<Mutex<Ring>>> = {
            let all = self.rings.read().unwrap_or_else(|e| e.into_inner());
            all.iter()
                .filter(|(t, _)| filter.tenant.as_deref().is_none_or(|f| f == t.as_str()))
                .flat_map(|(_, is)| is.iter())
                .filter(|(i, _)| {
                    filter
                        .integration
                        .as_deref()
                        .is_none_or(|f| f == i.as_str())
                })
                .map(|(_, r)| r.clone())
                .collect()
        };
        let now = SystemTime::now();
        let mut out: Vec<Arc<Entry>> = Vec::new();
        for ring in rings {
            let mut ring = lock(&ring);
            ring.prune(&self.settings, now);
            out.extend(ring.entries.iter().filter(|e| filter.accepts(e)).cloned());
        }
        out.sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
        out.truncate(limit);
        out
    }

    /// The most recent entries of one integration, newest first.
    pub fn recent(&self, tenant: &str, integration: &str, limit: usize) -> Vec<Arc<Entry>> {
        let filter = Filter {
            tenant: Some(tenant.to_owned()),
            integration: Some(integration.to_owned()),
            ..Filter::default()
        };
        self.query(&filter, limit)
    }

    pub fn get(&self, seq: u64) -> Option<Arc<Entry>> {
        let filter = Filter {
            before: Some(seq + 1),
            ..Filter::default()
        };
        self.query(&filter, 1).into_iter().find(|e| e.seq == seq)
    }

    /// Keeps the report of the last shadow check of its integration.
    pub fn set_shadow(&self, report: ShadowReport) {
        let key = format!("{}/{}", report.tenant, report.integration);
        lock(&self.shadow).insert(key, report);
    }

    pub fn shadow_reports(&self) -> Vec<ShadowReport> {
        lock(&self.shadow).values().cloned().collect()
    }
}

/// Which entries a query wants.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub tenant: Option<String>,
    pub integration: Option<String>,
    pub status: Option<u16>,
    /// The platform's request id.
    pub request_id: Option<u64>,
    pub since: Option<SystemTime>,
    /// Only entries with a smaller `seq` (the pagination cursor).
    pub before: Option<u64>,
    /// Only answers with this many messages (`0`: the contact got nothing).
    pub messages: Option<usize>,
}

impl Filter {
    fn accepts(&self, e: &Entry) -> bool {
        self.status.is_none_or(|s| s == e.status)
            && self.request_id.is_none_or(|id| Some(id) == e.request_id)
            && self.since.is_none_or(|t| e.at >= t)
            && self.before.is_none_or(|b| e.seq < b)
            && self
                .messages
                .is_none_or(|n| e.status == 200 && e.messages == Some(n))
    }
}

/// What the last shadow check of an integration found: its recent requests
/// replayed against the new version of its file, before it served.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    pub tenant: String,
    pub integration: String,
    pub file: String,
    pub from_version: String,
    pub to_version: String,
    pub at: String,
    /// Entries replayed.
    pub checked: usize,
    /// Entries whose answer (or error) would change.
    pub changed: usize,
    /// Entries that were answered and would now fail.
    pub failed: usize,
    /// Entries replayed that could not be replayed offline (an upstream
    /// answer was not recorded).
    pub skipped: usize,
    /// One changed entry: `entry`, `request_id`, `field`, `before`, `after` (masked).
    pub example_changed: Option<Json>,
    /// One entry that would now fail: `entry`, `request_id`, `code`, `message`.
    pub example_failed: Option<Json>,
    /// `reload_guard: block` kept the previous version.
    pub blocked: bool,
}

/// Masks a contact's phone number and name wherever they appear in a view:
/// the request, the answer, upstream answers, error messages. With
/// `--log-personal-data` it shows them as they are.
pub struct Redactor {
    /// (what, its masked form), longest first.
    terms: Vec<(String, String)>,
}

impl Redactor {
    pub fn new(key: &str, name: &str, personal_data: bool) -> Redactor {
        let mut terms: Vec<(String, String)> = Vec::new();
        if !personal_data {
            let mut phone = |p: &str| {
                if p.chars().count() >= 6 {
                    terms.push((p.to_owned(), mask_phone(p)));
                }
            };
            phone(key);
            // The number without the country code, as templates often show it.
            if let Some(local) = key.strip_prefix("55").filter(|l| l.len() >= 10) {
                phone(local);
            }
            let mut word = |w: &str| {
                if w.chars().count() >= 2 && !terms.iter().any(|(t, _)| t == w) {
                    terms.push((w.to_owned(), mask_name(w)));
                }
            };
            let name = name.trim();
            if !name.is_empty() {
                for form in [name.to_owned(), name.to_uppercase(), name.to_lowercase()] {
                    word(&form);
                    for w in form.split_whitespace().filter(|w| w.chars().count() >= 3) {
                        word(w);
                        word(&titlecase(w));
                        word(&w.to_uppercase());
                        word(&w.to_lowercase());
                    }
                }
            }
            terms.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        }
        Redactor { terms }
    }

    /// Reads the contact from a request body (nothing to mask if it has none).
    pub fn for_body(body: &[u8], personal_data: bool) -> Redactor {
        let v: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let field = |f: &str| v["contact"][f].as_str().unwrap_or("").to_owned();
        Redactor::new(&field("key"), &field("name"), personal_data)
    }

    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for (term, masked) in &self.terms {
            if out.contains(term.as_str()) {
                out = replace_words(&out, term, masked);
            }
        }
        out
    }

    /// Masks every string (and object key) of `v`, in place.
    pub fn json(&self, v: &mut Json) {
        if self.terms.is_empty() {
            return;
        }
        match v {
            Json::String(s) => *s = self.text(s),
            Json::Array(items) => items.iter_mut().for_each(|i| self.json(i)),
            Json::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    self.json(&mut v);
                    map.insert(self.text(&k), v);
                }
            }
            Json::Number(n) => {
                // A phone number sent as a number.
                let text = n.to_string();
                if self.terms.iter().any(|(t, _)| *t == text) {
                    *v = Json::String(self.text(&text));
                }
            }
            _ => {}
        }
    }
}

fn titlecase(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(first) => first
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// Replaces `term` where it stands as a whole word (not inside a longer
/// word or number): masking `Ana` must not touch `Anapolis`.
fn replace_words(s: &str, term: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(term) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + term.len()..].chars().next();
        let bounded = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        out.push_str(&rest[..i]);
        if bounded(before) && bounded(after) {
            out.push_str(with);
        } else {
            out.push_str(term);
        }
        rest = &rest[i + term.len()..];
    }
    out.push_str(rest);
    out
}

fn timestamp(t: SystemTime) -> String {
    jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The entry as the admin API lists it: no request body, contact masked
/// everywhere unless `personal_data`.
pub fn summary(e: &Entry, personal_data: bool) -> Json {
    let r = Redactor::for_body(e.body(), personal_data);
    let mut v = summary_with(e, &r);
    r.json(&mut v);
    v
}

fn summary_with(e: &Entry, r: &Redactor) -> Json {
    json!({
        "entry": e.seq.to_string(),
        "time": timestamp(e.at),
        "request_id": e.request_id,
        "tenant": e.tenant(),
        "integration": e.integration(),
        "file": e.file(),
        "version": e.version(),
        "status": e.status,
        "error": e.error.as_ref().map(|(code, message)| json!({"code": code, "message": r.text(message)})),
        "duration_us": e.took.as_micros() as u64,
        "calls": e.calls.iter().map(|c| json!({
            "name": c.name,
            "outcome": c.outcome,
            "duration_us": c.took.as_micros() as u64,
            "cached": c.cached,
        })).collect::<Vec<_>>(),
        "messages": e.messages,
        "answer": e.answer().and_then(|a| serde_json::from_slice::<Json>(a).ok()),
    })
}

/// The entry in full: the request (contact masked, `data` as sent) and
/// every upstream answer recorded.
pub fn detail(e: &Entry, personal_data: bool) -> Json {
    let r = Redactor::for_body(e.body(), personal_data);
    let mut v = summary_with(e, &r);
    let request: Json = serde_json::from_slice(e.body()).unwrap_or(Json::Null);
    v["request"] = request;
    v["body_kept"] = Json::Bool(!e.body().is_empty());
    if let Some(calls) = v["calls"].as_array_mut() {
        for (view, call) in calls.iter_mut().zip(&e.calls) {
            view["answer"] = call
                .answer
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok())
                .unwrap_or(Json::Null);
            view["bytes"] = json!(call.bytes);
        }
    }
    r.json(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_words_in_every_form() {
        let r = Redactor::new("5513999999999", "João da Silva", false);
        assert_eq!(r.text("Olá, João!"), "Olá, J***!");
        assert_eq!(r.text("JOÃO DA SILVA"), "J*** D* S****");
        assert_eq!(r.text("tel 13999999999."), "tel *******9999.");
        assert_eq!(r.text("Joãozinho"), "Joãozinho");
        let mut v = json!({"a": ["João da Silva", 5513999999999u64]});
        r.json(&mut v);
        assert_eq!(v, json!({"a": ["J*** d* S****", "*********9999"]}));
        let open = Redactor::new("5513999999999", "João da Silva", true);
        assert_eq!(open.text("Olá, João!"), "Olá, João!");
    }
}
