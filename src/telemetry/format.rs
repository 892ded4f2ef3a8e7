//! The log line, text or JSON, of every event recado logs.
//!
//! The same lines as tracing-subscriber's `Full` and `Json` formats (with
//! `flatten_event`), written for less: those go through `fmt::Debug` for
//! every field, build the timestamp from scratch and, in JSON, a map per
//! event. For the access line that was about 14,000 instructions a request,
//! a third of all a webhook costs. Here strings and integers are written as
//! they are, the date part of the timestamp is formatted once a second, and
//! JSON strings are escaped in place. The tests compare the lines with
//! tracing-subscriber's own, field by field.
//!
//! Whatever the format, a value cannot start a line of its own or steer a
//! terminal: control characters are escaped in text (`\n`, `\u{1b}`) and in
//! JSON (as JSON does).

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-10T12:00:00.000000Z  INFO recado::access: request status=200 …`
    Text,
    /// One JSON object per line, the fields at the top level.
    Json,
}

/// The event formatter of `recado serve` (and of the tests, so that they
/// see the lines operators see).
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    pub format: LogFormat,
    /// Colours (text only; for a terminal).
    pub ansi: bool,
}

/// A `tracing_subscriber::fmt()` builder writing recado's lines; the caller
/// adds the filter and the writer.
pub fn subscriber(
    format: LogFormat,
    ansi: bool,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    tracing_subscriber::fmt::format::DefaultFields,
    LineFormat,
> {
    tracing_subscriber::fmt().event_format(LineFormat { format, ansi })
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is built in a `String` of this thread, then handed over
        // in one write: `Writer` is a `dyn fmt::Write`, a call per piece.
        LINE.with(|cell| {
            // Busy only if formatting a value logged an event of its own
            // through another dispatcher (tracing drops re-entry into this
            // one); that line gets a `String` of its own.
            let mut spare = String::new();
            let mut shared = cell.try_borrow_mut();
            let line = match &mut shared {
                Ok(line) => &mut **line,
                Err(_) => &mut spare,
            };
            line.clear();
            self.write_line(line, event)?;
            w.write_str(line)
        })
    }
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl LineFormat {
    fn write_line(&self, line: &mut String, event: &Event<'_>) -> fmt::Result {
        // Records from the `log` crate (reqwest's, say) carry their real
        // target and level in fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match self.format {
            LogFormat::Text => {
                let ansi = self.ansi;
                paint(line, ansi, DIM, |l| write_timestamp(l, now));
                line.push(' ');
                let level = *meta.level();
                paint(line, ansi, colour(level), |l| l.push_str(padded(level)));
                line.push(' ');
                paint(line, ansi, DIM, |l| {
                    l.push_str(meta.target());
                    l.push(':');
                });
                line.push(' ');
                let mut fields = Fields {
                    line,
                    format: LogFormat::Text,
                    first: true,
                    result: Ok(()),
                };
                event.record(&mut fields);
                fields.result?;
            }
            LogFormat::Json => {
                line.push_str("{\"timestamp\":\"");
                write_timestamp(line, now);
                line.push_str("\",\"level\":\"");
                line.push_str(meta.level().as_str());
                line.push('"');
                let mut fields = Fields {
                    line,
                    format: LogFormat::Json,
                    first: true,
                    result: Ok(()),
                };
                event.record(&mut fields);
                fields.result?;
                line.push_str(",\"target\":");
                json_string(line, meta.target());
                line.push('}');
            }
        }
        line.push('\n');
        Ok(())
    }
}

const DIM: &str = "2";

fn colour(level: Level) -> &'static str {
    match level {
        Level::TRACE => "35",
        Level::DEBUG => "34",
        Level::INFO => "32",
        Level::WARN => "33",
        Level::ERROR => "31",
    }
}

/// The level as the `Full` format writes it: five columns, right-aligned.
fn padded(level: Level) -> &'static str {
    match level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        Level::ERROR => "ERROR",
    }
}

fn paint(line: &mut String, ansi: bool, style: &str, inner: impl FnOnce(&mut String)) {
    if ansi {
        line.push_str("\x1b[");
        line.push_str(style);
        line.push('m');
    }
    inner(line);
    if ansi {
        line.push_str("\x1b[0m");
    }
}

thread_local! {
    /// The last second formatted (`2026-12-10T12:00:00`) on this thread.
    static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// RFC 3339 in UTC to the microsecond (`2026-12-10T12:00:00.123456Z`), as
/// tracing-subscriber writes it.
fn write_timestamp(line: &mut String, since_epoch: Duration) {
    let secs = since_epoch.as_secs();
    let date = SECOND.with(|cell| {
        let (cached, text) = cell.get();
        if cached == secs {
            return text;
        }
        let full =
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string();
        let mut text = [0; 19];
        text.copy_from_slice(&full.as_bytes()[..19]);
        cell.set((secs, text));
        text
    });
    let mut fraction = *b".000000Z";
    let mut micros = since_epoch.subsec_micros();
    for digit in fraction[1..7].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    for part in [&date[..], &fraction[..]] {
        // ASCII digits and punctuation, written above.
        line.push_str(std::str::from_utf8(part).unwrap_or_default());
    }
}

/// A field's name as the formats write it (`r#type` → `type`); `None` for
/// the `log` crate's metadata, already used by [`NormalizeEvent`].
fn name(field: &Field) -> Option<&'static str> {
    let name = field.name();
    if name.starts_with("log.") {
        return None;
    }
    Some(name.strip_prefix("r#").unwrap_or(name))
}

/// An event's fields, in either format:
/// - text: `message` first and bare, then `name=value`, space-separated;
///   strings quoted as `{:?}` quotes them, other values as `{:?}` writes
///   them, with control characters escaped;
/// - JSON: `,"name":value` per field, as tracing-serde writes them: strings,
///   64-bit integers, booleans and floats as JSON values, anything else
///   (128-bit integers too) as the JSON string of its `{:?}`.
struct Fields<'a> {
    line: &'a mut String,
    format: LogFormat,
    first: bool,
    result: fmt::Result,
}

impl Fields<'_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        let Some(name) = name(field) else { return };
        if self.result.is_err() {
            return;
        }
        match self.format {
            LogFormat::Text => {
                if !std::mem::take(&mut self.first) {
                    self.line.push(' ');
                }
                if name != "message" {
                    self.line.push_str(name);
                    self.line.push('=');
                }
            }
            LogFormat::Json => {
                // A Rust identifier: nothing in it needs escaping.
                self.line.push_str(",\"");
                self.line.push_str(name);
                self.line.push_str("\":");
            }
        }
        self.result = value(self.line);
    }

    /// A value written the same way in both formats.
    fn plain(&mut self, field: &Field, text: &str) {
        self.field(field, |l| {
            l.push_str(text);
            Ok(())
        });
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.format {
            // A message given as a `&str` is written bare, as
            // tracing-subscriber's own visitor writes it.
            LogFormat::Text if field.name() == "message" => {
                self.field(field, |l| Escaping(l).write_str(value))
            }
            LogFormat::Text => self.field(field, |l| debug_str(l, value)),
            LogFormat::Json => self.field(field, |l| {
                json_string(l, value);
                Ok(())
            }),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.plain(field, itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain(field, if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match self.format {
            LogFormat::Text => self.record_debug(field, &value),
            // Rare (no recado event has one): serde_json's own number format.
            LogFormat::Json => match serde_json::to_string(&value) {
                Ok(number) => self.plain(field, &number),
                Err(_) => self.result = Err(fmt::Error),
            },
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match self.format {
            LogFormat::Text => self.field(field, |l| write!(Escaping(l), "{value:?}")),
            LogFormat::Json => self.field(field, |l| {
                l.push('"');
                write!(JsonEscaping(l), "{value:?}")?;
                l.push('"');
                Ok(())
            }),
        }
    }
}

/// `s` as `{:?}` writes it: as it is between quotes when every byte is
/// printable ASCII other than `"` and `\` (names, codes, masked numbers),
/// else through `Debug` itself.
fn debug_str(line: &mut String, s: &str) -> fmt::Result {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        line.push('"');
        line.push_str(s);
        line.push('"');
        return Ok(());
    }
    write!(Escaping(line), "{s:?}")
}

/// Escapes control characters in what is written through it, so that a
/// `Display` value (an error quoting request data) stays on its line.
struct Escaping<'a>(&'a mut String);

impl Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(|c: char| c.is_control()) {
            self.0.push_str(&rest[..at]);
            let c = rest[at..].chars().next().expect("found at `at`");
            match c {
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                '\t' => self.0.push_str("\\t"),
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.push_str(rest);
        Ok(())
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it.
pub(crate) fn json_string(line: &mut String, s: &str) {
    line.push('"');
    json_escape(line, s);
    line.push('"');
}

/// What each byte becomes inside a JSON string: 0 for itself, else the
/// letter after the backslash (`u` for `\u00XX`), as serde_json's table.
const ESCAPE: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

fn json_escape(line: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if !crate::output::needs_json_escape(s) {
        line.push_str(s);
        return;
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        // `i` is at an ASCII byte, so on a character boundary.
        line.push_str(&s[start..i]);
        start = i + 1;
        line.push('\\');
        line.push(char::from(escape));
        if escape == b'u' {
            line.push_str("00");
            line.push(char::from(HEX[usize::from(b >> 4)]));
            line.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    line.push_str(&s[start..]);
}

/// [`json_escape`] for what `write!` formats.
struct JsonEscaping<'a>(&'a mut String);

impl Write for JsonEscaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json_escape(self.0, s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The lines equal tracing-subscriber's for the same events (the
    //! timestamp aside, compared on its own), and the JSON escaping equals
    //! serde_json's.

    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    impl Sink {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    /// Every shape of field recado's events have, and hostile values.
    fn events() {
        let hostile = "a\nINFO forged=1 \x1b[31m \"q\" \\ \u{7f} \u{200b} \u{0301}é ção\t\r\u{1}";
        for value in ["demo", "João da Silva", "J*** d* S****", "", "'", hostile] {
            let error = std::io::Error::other(value);
            tracing::info!(
                target: "recado::access",
                request_id = 3589818u64,
                tenant = value,
                status = 200u16,
                code = Some("unauthorized"),
                missing = None::<&str>,
                delta = -5i64,
                flag = true,
                ratio = 0.25f64,
                big = u128::MAX,
                r#type = "TEXT",
                error = %error,
                debug = ?value,
                "request"
            );
            tracing::warn!(target: "recado::server", reason = value, "message with {} and {value:?}", 1);
            tracing::error!(error = %error, "config error; the file is not served");
            tracing::debug!(value);
        }
        tracing::trace!("trace");
    }

    fn lines_of(builder: impl FnOnce(Sink) -> tracing::Dispatch) -> Vec<String> {
        let sink = Sink::default();
        tracing::dispatcher::with_default(&builder(sink.clone()), events);
        sink.take().lines().map(str::to_owned).collect()
    }

    /// The access line gives its message as a `&str` field, which is
    /// cheaper to visit than the macro's `format_args!`: the line is the
    /// same, in both formats, hostile text included.
    #[test]
    fn a_str_message_is_written_as_a_formatted_one() {
        const VALUES: [&str; 4] = [
            "request",
            "João da Silva",
            "",
            "a\nINFO forged=1 \x1b[31m \"q\" \\ \u{7f}",
        ];
        for format in [LogFormat::Text, LogFormat::Json] {
            let lines = |events: fn()| {
                let sink = Sink::default();
                let dispatch = subscriber(format, false)
                    .with_writer(sink.clone())
                    .finish()
                    .into();
                tracing::dispatcher::with_default(&dispatch, events);
                sink.take()
                    .lines()
                    .map(|l| l[l.find('Z').map_or(0, |z| z + 1)..].to_owned())
                    .collect::<Vec<_>>()
            };
            let as_str = lines(|| {
                for value in VALUES {
                    tracing::info!(target: "recado::access", message = value, status = 200u16);
                }
            });
            let formatted = lines(|| {
                for value in VALUES {
                    tracing::info!(target: "recado::access", status = 200u16, "{}", value);
                }
            });
            assert_eq!(as_str.len(), VALUES.len());
            assert_eq!(as_str, formatted, "{format:?}");
        }
    }

    #[test]
    fn text_lines_equal_tracing_subscribers() {
        use tracing_subscriber::field::MakeExt;
        let ours = lines_of(|sink| {
            subscriber(LogFormat::Text, false)
                .with_max_level(Level::TRACE)
                .with_writer(sink)
                .finish()
                .into()
        });
        // The format recado used before this one: `Full`, with a field
        // formatter that escapes control characters.
        let theirs = lines_of(|sink| {
            let fields = tracing_subscriber::fmt::format::debug_fn(
                |w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
                    if field.name() != "message" {
                        write!(w, "{}=", field.name().trim_start_matches("r#"))?;
                    }
                    let mut escaped = String::new();
                    write!(Escaping(&mut escaped), "{value:?}")?;
                    w.write_str(&escaped)
                },
            )
            .delimited(" ");
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_max_level(Level::TRACE)
                .fmt_fields(fields)
                .with_writer(sink)
                .finish()
                .into()
        });
        assert_eq!(ours.len(), theirs.len());
        assert!(ours.len() > 20);
        for (a, b) in ours.iter().zip(&theirs) {
            // `2026-12-10T12:00:00.123456Z`: 27 bytes.
            assert_eq!(&a[27..], &b[27..]);
            assert!(!a.contains('\x1b'), "{a}");
        }
    }

    #[test]
    fn json_lines_equal_tracing_subscribers() {
        let ours = lines_of(|sink| {
            subscriber(LogFormat::Json, false)
                .with_max_level(Level::TRACE)
                .with_writer(sink)
                .finish()
                .into()
        });
        let theirs = lines_of(|sink| {
            tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_max_level(Level::TRACE)
                .with_writer(sink)
                .finish()
                .into()
        });
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            let strip = |line: &str| {
                let at = line.find(",\"level\"").unwrap();
                line[at..].to_owned()
            };
            // Byte for byte, key order included.
            assert_eq!(strip(a), strip(b));
            let parsed: serde_json::Value = serde_json::from_str(a).unwrap();
            assert_eq!(parsed["timestamp"].as_str().unwrap().len(), 27);
        }
    }

    #[test]
    fn a_value_that_logs_while_formatted_does_not_break_the_line() {
        struct Noisy;
        impl fmt::Debug for Noisy {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                tracing::info!("inner");
                f.write_str("noisy")
            }
        }
        for format in [LogFormat::Text, LogFormat::Json] {
            let lines = lines_of(|sink| {
                let dispatch: tracing::Dispatch =
                    subscriber(format, false).with_writer(sink).finish().into();
                let inner = dispatch.clone();
                tracing::dispatcher::with_default(
                    &inner,
                    || tracing::info!(value = ?Noisy, "outer"),
                );
                dispatch
            });
            let both = lines
                .iter()
                .filter(|l| l.contains("outer") && l.contains("noisy"))
                .count();
            // tracing drops the inner event (no re-entry on one thread);
            // the outer line is whole.
            assert_eq!(both, 1, "{lines:#?}");
        }
    }

    #[test]
    fn timestamps_equal_rfc3339_to_the_microsecond() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000u64 {
            // A walk through time in steps of various sizes, so that the
            // per-second cache is hit and missed.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = Duration::from_micros(if i % 2 == 0 {
                seed % 4_102_444_800_000_000
            } else {
                1_796_000_000_000_000 + i * 700_000
            });
            let mut ours = String::new();
            write_timestamp(&mut ours, at);
            let theirs = humantime::format_rfc3339_micros(UNIX_EPOCH + at).to_string();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn json_escaping_equals_serde_json() {
        let mut samples: Vec<String> = (0u32..0x300)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b{c}"))
            .collect();
        samples.extend(
            [
                "",
                "\"",
                "\\\\\"",
                "é\u{1}ç\u{7f}\u{2028}",
                "\n\r\t\u{8}\u{c}",
            ]
            .map(String::from),
        );
        for s in samples {
            let mut ours = String::new();
            json_string(&mut ours, &s);
            assert_eq!(ours, serde_json::to_string(&s).unwrap(), "{s:?}");
        }
    }
}
