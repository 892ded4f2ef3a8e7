//! The journal's file (`--journal-file`): an SQLite database holding what
//! the rings hold (the raw request body included, for replay), so the
//! history survives a restart. Off unless asked for; see `docs/journal.md`.
//!
//! Written off the request path: [`Store::send`] hands the entry to a
//! bounded channel and one writer thread inserts in batches, one
//! transaction each, pruning the integrations it touched to the journal's
//! bounds. When the channel is full the entry is left out of the file only
//! (it stays in memory), counted in `recado_journal_dropped_total`: a slow
//! disk must never slow the webhook down.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use serde::{Deserialize, Deserializer, Serialize};

use super::{Entry, JournalSettings};
use crate::enrich::CallOutcome;

/// Entries waiting for the writer; more are left out of the file.
const QUEUE: usize = 10_000;
/// Most entries written in one transaction.
const BATCH: usize = 512;
/// How often the whole file is pruned by age, so that integrations no
/// request reaches any more age out too.
const SWEEP: Duration = Duration::from_secs(60);
/// The schema's version, kept in `PRAGMA user_version`.
const SCHEMA: i64 = 1;

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ns INTEGER NOT NULL,
        request_id INTEGER,
        tenant TEXT NOT NULL,
        integration TEXT NOT NULL,
        file TEXT NOT NULL,
        version TEXT NOT NULL,
        status INTEGER NOT NULL,
        error TEXT,
        took_us INTEGER NOT NULL,
        calls TEXT NOT NULL,
        messages INTEGER,
        answer BLOB,
        body BLOB NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS entries_by_integration ON entries (tenant, integration, seq);
";

const INSERT: &str = "INSERT OR REPLACE INTO entries
    (seq, at_ns, request_id, tenant, integration, file, version, status, error, took_us, calls, messages, answer, body, size)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

/// Older than the age bound, or beyond the newest `entries`.
const PRUNE_COUNT_AGE: &str = "DELETE FROM entries
    WHERE tenant = ?1 AND integration = ?2
    AND (at_ns < ?3 OR seq <= (SELECT seq FROM entries WHERE tenant = ?1 AND integration = ?2
                               ORDER BY seq DESC LIMIT 1 OFFSET ?4))";

/// As the ring does: the newest entries whose sizes add up to the bound.
const PRUNE_BYTES: &str = "DELETE FROM entries WHERE seq IN (
    SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS total
                     FROM entries WHERE tenant = ?1 AND integration = ?2)
    WHERE total > ?3)";

const SELECT: &str = "SELECT seq, at_ns, request_id, tenant, integration, file, version, status,
    error, took_us, calls, messages, answer, body, size FROM entries ORDER BY seq";

/// Why the journal file cannot be used. recado does not start then: the
/// operator asked for a history that would silently not be kept.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the journal file {} (--journal-file): {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the journal file {} (--journal-file) cannot be used: {source}; is it an SQLite file written by recado?", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("the journal file {} (--journal-file) was written by another version of recado (schema {found}, this one reads {expected}); move it away or delete it (see docs/journal.md)", path.display())]
    Schema {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
}

enum Msg {
    Entry(Arc<Entry>),
    /// Answered once everything sent before it is written.
    Flush(SyncSender<()>),
}

/// The open file: the writer's queue and thread.
pub(super) struct Store {
    queue: Option<SyncSender<Msg>>,
    writer: Option<JoinHandle<()>>,
}

/// What the file held at start.
pub(super) struct Stored {
    /// Oldest first.
    pub entries: Vec<Entry>,
    /// After the highest number the file ever held.
    pub next_seq: u64,
}

impl Store {
    /// Opens `path` (created with mode 0600 when missing), prunes it to
    /// `settings`, reads its entries, and starts the writer.
    pub(super) fn open(
        path: &Path,
        settings: JournalSettings,
    ) -> Result<(Store, Stored), StoreError> {
        create_private(path)?;
        let sqlite = |source: rusqlite::Error| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(sqlite)?;
        if found != 0 && found != SCHEMA {
            return Err(StoreError::Schema {
                path: path.to_owned(),
                found,
                expected: SCHEMA,
            });
        }
        // WAL: the admin API's reads never wait for the writer; NORMAL: a
        // power cut may lose the last batch, never corrupt the file.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; {CREATE} PRAGMA user_version = {SCHEMA};"
        ))
        .map_err(sqlite)?;
        // Read before pruning, so numbers go on even if every entry aged
        // out; `sqlite_sequence` remembers the highest ever inserted.
        let highest: Option<i64> = conn
            .query_row(
                "SELECT MAX(n) FROM (SELECT seq AS n FROM sqlite_sequence WHERE name = 'entries'
                                     UNION ALL SELECT MAX(seq) FROM entries)",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        prune_all(&conn, &settings).map_err(sqlite)?;
        let entries = read_all(&conn).map_err(sqlite)?;
        let (queue, received) = mpsc::sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || write_loop(conn, received, settings))
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        let store = Store {
            queue: Some(queue),
            writer: Some(writer),
        };
        let next_seq = highest.map_or(1, |h| u64::try_from(h).unwrap_or(0) + 1);
        Ok((store, Stored { entries, next_seq }))
    }

    /// Queues `entry` for the file, or drops it from the file when the
    /// writer is that far behind. Never waits.
    pub(super) fn send(&self, entry: Arc<Entry>) {
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|q| q.try_send(Msg::Entry(entry)).is_ok());
        if !sent {
            metrics::counter!("recado_journal_dropped_total").increment(1);
        }
    }

    pub(super) fn flush(&self) {
        let Some(queue) = &self.queue else { return };
        let (done, wait) = mpsc::sync_channel(1);
        if queue.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for Store {
    /// The writer writes what is queued, then ends.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Creates the file readable by its owner only: it holds personal data.
/// An existing file keeps its mode (the operator's choice), with a warning
/// when others may read it. SQLite gives its `-wal` and `-shm` files the
/// database file's mode.
fn create_private(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_or(0, |m| m.permissions().mode()) & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = %format!("{mode:o}"),
                "the journal file may be read by other users; it holds personal data: chmod 600 it"
            );
        }
    }
    drop(file);
    Ok(())
}

fn write_loop(mut conn: Connection, queue: Receiver<Msg>, settings: JournalSettings) {
    let mut failing = false;
    let mut swept = Instant::now();
    loop {
        let first = match queue.recv_timeout(SWEEP) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut entries = Vec::new();
        let mut flushes = Vec::new();
        let mut next = first;
        while let Some(msg) = next {
            match msg {
                Msg::Entry(e) => entries.push(e),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if entries.len() < BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if !entries.is_empty() {
            match write(&mut conn, &entries, &settings) {
                Ok(()) => failing = false,
                Err(e) => {
                    metrics::counter!("recado_journal_dropped_total")
                        .increment(entries.len() as u64);
                    // Once per run of failures, not once per batch.
                    if !failing {
                        tracing::error!(error = %e, "cannot write the journal file; its entries stay in memory only");
                    }
                    failing = true;
                }
            }
        }
        if swept.elapsed() >= SWEEP {
            swept = Instant::now();
            if let Err(e) =
                conn.execute("DELETE FROM entries WHERE at_ns < ?1", [cutoff(&settings)])
            {
                tracing::warn!(error = %e, "cannot prune the journal file by age");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn write(
    conn: &mut Connection,
    entries: &[Arc<Entry>],
    settings: &JournalSettings,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        for e in entries {
            let error = e.error.as_ref().map(|(code, message)| {
                serde_json::json!({"code": code, "message": message}).to_string()
            });
            let calls: Vec<CallRef<'_>> = e.calls.iter().map(CallRef::from).collect();
            let calls = serde_json::to_string(&calls).unwrap_or_else(|_| "[]".into());
            insert.execute(params![
                e.seq as i64,
                nanos(e.at),
                e.request_id.map(|r| r as i64),
                e.tenant(),
                e.integration(),
                e.file(),
                e.version(),
                e.status,
                error,
                e.took.as_micros() as i64,
                calls,
                e.messages.map(|m| m as i64),
                e.answer(),
                e.body(),
                e.size as i64,
            ])?;
        }
    }
    let touched: BTreeSet<(&str, &str)> = entries
        .iter()
        .map(|e| (e.tenant(), e.integration()))
        .collect();
    for (tenant, integration) in touched {
        prune(&tx, tenant, integration, settings)?;
    }
    tx.commit()
}

fn prune(
    conn: &Connection,
    tenant: &str,
    integration: &str,
    settings: &JournalSettings,
) -> rusqlite::Result<()> {
    let keep = i64::try_from(settings.entries).unwrap_or(i64::MAX);
    let bytes = i64::try_from(settings.bytes).unwrap_or(i64::MAX);
    conn.prepare_cached(PRUNE_COUNT_AGE)?.execute(params![
        tenant,
        integration,
        cutoff(settings),
        keep
    ])?;
    conn.prepare_cached(PRUNE_BYTES)?
        .execute(params![tenant, integration, bytes])?;
    Ok(())
}

/// At start, with bounds that may have changed since the file was written.
fn prune_all(conn: &Connection, settings: &JournalSettings) -> rusqlite::Result<()> {
    let pairs: Vec<(String, String)> = conn
        .prepare("SELECT DISTINCT tenant, integration FROM entries")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (tenant, integration) in pairs {
        prune(conn, &tenant, &integration, settings)?;
    }
    Ok(())
}

/// Every entry, oldest first. A row that cannot be read back (edited by
/// hand) is skipped with a warning rather than keeping recado from starting.
fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Entry>> {
    let mut stmt = conn.prepare(SELECT)?;
    let rows = stmt.query_map([], |r| {
        Ok(Row {
            seq: r.get(0)?,
            at_ns: r.get(1)?,
            request_id: r.get(2)?,
            tenant: r.get(3)?,
            integration: r.get(4)?,
            file: r.get(5)?,
            version: r.get(6)?,
            status: r.get(7)?,
            error: r.get(8)?,
            took_us: r.get(9)?,
            calls: r.get(10)?,
            messages: r.get(11)?,
            answer: r.get(12)?,
            body: r.get(13)?,
            size: r.get(14)?,
        })
    })?;
    let mut entries = Vec::new();
    let mut unreadable = 0usize;
    for row in rows {
        match row.map_err(|e| e.to_string()).and_then(Row::into_entry) {
            Ok(entry) => entries.push(entry),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            entries = unreadable,
            "journal file: entries that cannot be read back were skipped"
        );
    }
    Ok(entries)
}

struct Row {
    seq: i64,
    at_ns: i64,
    request_id: Option<i64>,
    tenant: String,
    integration: String,
    file: String,
    version: String,
    status: i64,
    error: Option<String>,
    took_us: i64,
    calls: String,
    messages: Option<i64>,
    answer: Option<Vec<u8>>,
    body: Vec<u8>,
    size: i64,
}

impl Row {
    fn into_entry(self) -> Result<Entry, String> {
        let error = match self.error {
            Some(text) => {
                let e: StoredError = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                Some((intern(&e.code), e.message))
            }
            None => None,
        };
        let calls: Vec<StoredCall> =
            serde_json::from_str(&self.calls).map_err(|e| e.to_string())?;
        let (texts, answer_at) = Entry::texts(&self.body, self.answer.as_deref());
        Ok(Entry {
            seq: u64::try_from(self.seq).map_err(|e| e.to_string())?,
            at: UNIX_EPOCH + Duration::from_nanos(u64::try_from(self.at_ns).unwrap_or(0)),
            request_id: self.request_id.map(|r| r as u64),
            names: Arc::new(super::Names {
                tenant: self.tenant,
                integration: self.integration,
                file: self.file,
                version: self.version,
            }),
            status: u16::try_from(self.status).map_err(|e| e.to_string())?,
            error,
            took: Duration::from_micros(u64::try_from(self.took_us).unwrap_or(0)),
            calls: calls.into_iter().map(StoredCall::into_outcome).collect(),
            messages: self.messages.and_then(|m| usize::try_from(m).ok()),
            texts,
            answer_at,
            size: usize::try_from(self.size).unwrap_or(0),
        })
    }
}

#[derive(Deserialize)]
struct StoredError {
    code: String,
    message: String,
}

/// A [`CallOutcome`] as written.
#[derive(Serialize)]
struct CallRef<'a> {
    name: &'a str,
    outcome: &'a str,
    took_us: u64,
    cached: bool,
    /// Absent when not recorded; `null` is an answer (an empty body).
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<&'a minijinja::Value>,
    bytes: usize,
}

impl<'a> From<&'a CallOutcome> for CallRef<'a> {
    fn from(c: &'a CallOutcome) -> CallRef<'a> {
        CallRef {
            name: &c.name,
            outcome: c.outcome,
            took_us: c.took.as_micros() as u64,
            cached: c.cached,
            answer: c.answer.as_ref(),
            bytes: c.bytes,
        }
    }
}

/// A [`CallOutcome`] as read back.
#[derive(Deserialize)]
struct StoredCall {
    name: String,
    outcome: String,
    took_us: u64,
    cached: bool,
    #[serde(default, deserialize_with = "present")]
    answer: Option<minijinja::Value>,
    bytes: usize,
}

/// A present `answer`, even `null`, is `Some`; only a missing one is `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<minijinja::Value>, D::Error> {
    minijinja::Value::deserialize(d).map(Some)
}

impl StoredCall {
    fn into_outcome(self) -> CallOutcome {
        CallOutcome {
            name: self.name,
            outcome: intern(&self.outcome),
            took: Duration::from_micros(self.took_us),
            cached: self.cached,
            answer: self.answer,
            bytes: self.bytes,
        }
    }
}

/// Entries keep error codes and call outcomes as `&'static str` (recado's
/// own few words); read back from the file, each distinct one is leaked
/// once. A file edited to hold many gets `unknown` past the first 64.
fn intern(s: &str) -> &'static str {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = seen.iter().find(|k| **k == s) {
        return known;
    }
    if seen.len() >= 64 || s.len() > 64 {
        return "unknown";
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    seen.push(leaked);
    leaked
}

/// As written: nanoseconds since the Unix epoch, good until 2262, so the
/// time reads back exactly as it was.
fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Entries written before this are past the age bound.
fn cutoff(settings: &JournalSettings) -> i64 {
    nanos(
        SystemTime::now()
            .checked_sub(settings.age)
            .unwrap_or(UNIX_EPOCH),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_null_answer_stays_recorded() {
        let null: StoredCall = serde_json::from_str(
            r#"{"name":"a","outcome":"ok","took_us":1,"cached":false,"answer":null,"bytes":0}"#,
        )
        .unwrap();
        assert!(null.answer.is_some());
        let missing: StoredCall = serde_json::from_str(
            r#"{"name":"a","outcome":"timeout","took_us":1,"cached":false,"bytes":0}"#,
        )
        .unwrap();
        assert!(missing.answer.is_none());
        assert_eq!(intern("timeout"), "timeout");
        assert!(std::ptr::eq(intern("timeout"), intern("timeout")));
    }
}
