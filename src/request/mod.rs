//! Stage 1, validate the request: the platform's JSON body becomes a typed
//! [`PlatformRequest`], or a [`RequestError`] naming the field at fault.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

mod payload;
mod vars;

pub use payload::{Field, Payload};
pub use vars::{walk, RequestVars};

/// The platform's request, as its contract defines it (`docs/platform-contract.md`).
/// Unknown extra fields are ignored: the platform may add some later, and
/// rejecting them would make every contact of every tenant miss a message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformRequest {
    pub id: NumericId,
    pub client_id: NumericId,
    pub origin: Origin,
    pub contact: Contact,
    /// The "Payload" the company typed in the platform; any JSON value.
    #[serde(default)]
    pub data: Payload,
}

#[derive(Debug, Deserialize)]
pub enum Origin {
    #[serde(rename = "SCHEDULED_MESSAGE")]
    ScheduledMessage,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Contact {
    pub uid: String,
    #[serde(rename = "type")]
    pub kind: ContactType,
    /// Phone number, digits with country code.
    pub key: String,
    pub name: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub enum ContactType {
    #[serde(rename = "WHATSAPP")]
    Whatsapp,
}

impl ContactType {
    /// The platform's name for it, as the request spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ContactType::Whatsapp => "WHATSAPP",
        }
    }
}

/// `id` and `clientId`: the contract shows numbers, but only by example, so a
/// numeric string (`"72"`) is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct NumericId(pub u64);

impl fmt::Display for NumericId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for NumericId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumericId;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or a string of digits")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericId, E> {
                Ok(NumericId(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NumericId, E> {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::invalid_value(de::Unexpected::Str(v), &self));
                }
                v.parse()
                    .map(NumericId)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// Why a body is not a valid platform request.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// Dotted path of the offending field (`contact.name`); empty for the body.
    pub path: String,
    pub message: String,
}

/// Bodies up to this size are parsed whole in one pass, `data` included,
/// before authentication: parsing a few KiB costs no more than scanning
/// them, and the platform's requests are a few hundred bytes. Larger ones
/// (an attacker's, say) have `data` only scanned until the token is good.
pub const ONE_PASS_BYTES: usize = 4 * 1024;

/// The request as far as authentication needs it: every field checked,
/// `data` parsed already (a small body) or only scanned (a large one), so an
/// unauthenticated large body costs a scan, not a parse of its (possibly
/// huge, deeply nested) `data`.
#[derive(Debug)]
pub struct Envelope<'a>(Parsed<'a>);

/// Kept as serde made it: a request is moved into its `Arc` once, not
/// taken apart and put together again (a few hundred bytes copied twice).
#[derive(Debug)]
enum Parsed<'a> {
    Whole(PlatformRequest),
    /// `data` skipped by an iterative scan (no depth limit, no allocation).
    Scanned(ScannedBody<'a>),
}

/// The body with `data` scanned, not parsed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScannedBody<'a> {
    id: NumericId,
    client_id: NumericId,
    origin: Origin,
    contact: Contact,
    #[serde(default, borrow)]
    data: Option<&'a serde_json::value::RawValue>,
}

impl<'a> Envelope<'a> {
    /// Reads and checks every field; `data` is parsed too if the body is at
    /// most [`ONE_PASS_BYTES`], else only scanned. Either way the answer
    /// (and every error) is the same: a one-pass parse that fails is
    /// explained by the two-pass path.
    pub fn parse(body: &'a [u8]) -> Result<Envelope<'a>, RequestError> {
        // Checked once for the whole body: serde_json would check each
        // string on its own (about 4% of a webhook's instructions), and a
        // body that is not UTF-8 is not JSON anyway.
        let text = std::str::from_utf8(body).map_err(|e| RequestError {
            path: String::new(),
            message: format!(
                "malformed JSON: the body is not UTF-8 text (byte {})",
                e.valid_up_to() + 1
            ),
        })?;
        if body.len() <= ONE_PASS_BYTES {
            if let Ok(whole) = serde_json::from_str::<PlatformRequest>(text) {
                check(&whole.contact)?;
                return Ok(Envelope(Parsed::Whole(whole)));
            }
        }
        // Fast path without path tracking; only a body with a wrong field
        // pays for a second, path-tracking pass that names it. Malformed JSON
        // is explained from the first error: it has nothing to name.
        let scanned: ScannedBody<'a> = match serde_json::from_str(text) {
            Ok(e) => e,
            // serde_json calls a number where an enum (`origin`) belongs a
            // syntax error; JSON that parses is explained, with its path.
            Err(e)
                if (e.is_syntax() || e.is_eof())
                    && serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() =>
            {
                return Err(RequestError {
                    path: String::new(),
                    message: shorten_values(&format!("malformed JSON: {e}")),
                })
            }
            Err(_) => return Err(Self::explain(text)),
        };
        check(&scanned.contact)?;
        Ok(Envelope(Parsed::Scanned(scanned)))
    }

    /// The platform's request id.
    pub fn id(&self) -> u64 {
        match &self.0 {
            Parsed::Whole(r) => r.id.0,
            Parsed::Scanned(s) => s.id.0,
        }
    }

    /// The `clientId`: whose request it is.
    pub fn client_id(&self) -> u64 {
        match &self.0 {
            Parsed::Whole(r) => r.client_id.0,
            Parsed::Scanned(s) => s.client_id.0,
        }
    }

    pub fn contact(&self) -> &Contact {
        match &self.0 {
            Parsed::Whole(r) => &r.contact,
            Parsed::Scanned(s) => &s.contact,
        }
    }

    fn explain(body: &str) -> RequestError {
        let mut de = serde_json::Deserializer::from_str(body);
        match serde_path_to_error::deserialize::<_, ScannedBody<'_>>(&mut de) {
            Err(e) => RequestError::from_serde(e),
            Ok(_) => RequestError {
                path: String::new(),
                message: "malformed JSON".into(),
            },
        }
    }

    /// Parses `data` if it was only scanned: the expensive part, for an
    /// authenticated request.
    /// Shared: the template context holds it, and the hook keeps it.
    pub fn into_request(self) -> Result<Arc<PlatformRequest>, RequestError> {
        let scanned = match self.0 {
            Parsed::Whole(request) => return Ok(Arc::new(request)),
            Parsed::Scanned(scanned) => scanned,
        };
        let data = match scanned.data {
            None => Payload::default(),
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| RequestError {
                path: "data".into(),
                message: without_values(&strip_position(&e.to_string())),
            })?,
        };
        Ok(Arc::new(PlatformRequest {
            id: scanned.id,
            client_id: scanned.client_id,
            origin: scanned.origin,
            contact: scanned.contact,
            data,
        }))
    }
}

/// Rules a type cannot express: contact fields must not be blank.
fn check(contact: &Contact) -> Result<(), RequestError> {
    for (path, value) in [
        ("contact.uid", &contact.uid),
        ("contact.key", &contact.key),
        ("contact.name", &contact.name),
    ] {
        if value.trim().is_empty() {
            return Err(RequestError {
                path: path.into(),
                message: "must not be empty".into(),
            });
        }
    }
    Ok(())
}

impl PlatformRequest {
    /// The whole request at once (for `recado render` and tools); the
    /// webhook authenticates between [`Envelope::parse`] and
    /// [`Envelope::into_request`].
    pub fn parse(body: &[u8]) -> Result<Arc<PlatformRequest>, RequestError> {
        Envelope::parse(body)?.into_request()
    }
}

/// How many characters of a value an error message may quote: enough to
/// recognise it, never a way to write an attacker's megabyte into the log.
const QUOTED_CHARS: usize = 40;
/// The longest error message about a request, whatever it quotes.
const MESSAGE_CHARS: usize = 300;

/// `value` as an error message may quote it: at most [`QUOTED_CHARS`]
/// characters, then `…`.
pub fn short(value: &str) -> std::borrow::Cow<'_, str> {
    // No more bytes than the limit in characters: nothing to cut (the usual
    // case, without counting characters).
    if value.len() <= QUOTED_CHARS {
        return value.into();
    }
    match value.char_indices().nth(QUOTED_CHARS) {
        None => value.into(),
        Some((cut, _)) => format!("{}…", &value[..cut]).into(),
    }
}

/// Shortens every quoted part (`` `…` `` or `"…"`) of `msg` to
/// [`QUOTED_CHARS`] characters plus `…`, then the whole to
/// [`MESSAGE_CHARS`]: serde quotes the offending value whole.
pub fn shorten_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len().min(MESSAGE_CHARS + 8));
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '`' && c != '"' {
            continue;
        }
        let mut kept = 0;
        let mut escaped = false;
        for inner in chars.by_ref() {
            let closes = inner == c && !escaped;
            escaped = c == '"' && inner == '\\' && !escaped;
            if closes {
                if kept > QUOTED_CHARS {
                    out.push('…');
                }
                out.push(inner);
                break;
            }
            kept += 1;
            if kept <= QUOTED_CHARS {
                out.push(inner);
            }
        }
    }
    if out.chars().count() > MESSAGE_CHARS {
        let cut = out
            .char_indices()
            .nth(MESSAGE_CHARS)
            .map_or(out.len(), |(i, _)| i);
        out.truncate(cut);
        out.push('…');
    }
    out
}

impl RequestError {
    fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> RequestError {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let inner = e.into_inner();
        let message = match inner.classify() {
            // Only called on JSON that parses: a syntax error here is a
            // value where an enum's text belongs.
            serde_json::error::Category::Syntax if path == "origin" => {
                "must be \"SCHEDULED_MESSAGE\"".to_owned()
            }
            serde_json::error::Category::Syntax if path == "contact.type" => {
                "must be \"WHATSAPP\"".to_owned()
            }
            serde_json::error::Category::Syntax if !path.is_empty() => {
                "has the wrong type".to_owned()
            }
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                path.clear();
                shorten_values(&format!("malformed JSON: {inner}"))
            }
            _ => {
                let text = strip_position(&inner.to_string());
                // serde reports a missing field at its parent; point at the field.
                if let Some(field) = text
                    .strip_prefix("missing field `")
                    .and_then(|r| r.strip_suffix('`'))
                {
                    path = if path.is_empty() {
                        field.to_owned()
                    } else {
                        format!("{path}.{field}")
                    };
                    "required field is missing".to_owned()
                } else {
                    without_values(&text)
                }
            }
        };
        RequestError { path, message }
    }
}

/// serde's words for a value of the wrong type or shape, without the value:
/// it is the contact's phone or name as often as not (`"key": 5513999999999`
/// is refused as ``invalid type: integer `5513999999999` ``), and the answer
/// and the log must not repeat it. recado's own type names become what the
/// platform's document calls them.
pub fn without_values(msg: &str) -> String {
    // The last ", expected" is serde's: a quoted value may hold one too.
    let (head, tail) = match msg.rsplit_once(", expected") {
        Some((head, tail)) => (head, Some(tail)),
        None => (msg, None),
    };
    let mut out = String::with_capacity(msg.len());
    let mut open: Option<char> = None;
    for c in head.chars() {
        match open {
            Some(q) if c == q => open = None,
            Some(_) => {}
            None if c == '`' || c == '"' => {
                open = Some(c);
                if out.ends_with(' ') {
                    out.pop();
                }
            }
            None => out.push(c),
        }
    }
    if let Some(tail) = tail {
        out.push_str(", expected");
        out.push_str(tail);
    }
    // A list where an object belongs is a "length" to serde.
    if out.starts_with("invalid length ") && out.contains("expected struct ") {
        out = match out.split_once(", expected") {
            Some((_, tail)) => format!("invalid type: array, expected{tail}"),
            None => out,
        };
    }
    for (ours, theirs) in [
        (
            "struct ScannedBody with 5 elements",
            "an object with id, clientId, origin, contact and data",
        ),
        (
            "struct ScannedBody",
            "an object with id, clientId, origin, contact and data",
        ),
        (
            "struct PlatformRequest with 5 elements",
            "an object with id, clientId, origin, contact and data",
        ),
        (
            "struct PlatformRequest",
            "an object with id, clientId, origin, contact and data",
        ),
        (
            "struct Contact with 4 elements",
            "an object with uid, type, key and name",
        ),
        ("struct Contact", "an object with uid, type, key and name"),
    ] {
        out = out.replace(ours, theirs);
    }
    shorten_values(&out)
}

/// serde_json appends " at line 1 column 42" to data errors; the path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of the wrong type is named by its path and its kind, never
    /// repeated: it is the contact's phone or name as often as not.
    #[test]
    fn wrong_types_are_named_without_their_values() {
        let contact = r#"{"uid":"1","type":"WHATSAPP","key":"5513999999999","name":"Ana"}"#;
        let envelope = |origin: &str, contact: &str| {
            format!(r#"{{"id":1,"clientId":72,"origin":{origin},"contact":{contact}}}"#)
        };
        let ok = r#""SCHEDULED_MESSAGE""#;
        let cases = [
            (
                envelope(ok, &contact.replace(r#""5513999999999""#, "5513999999999")),
                "contact.key",
                "invalid type: integer, expected a string",
            ),
            (
                envelope(ok, &contact.replace(r#""Ana""#, "12345")),
                "contact.name",
                "invalid type: integer, expected a string",
            ),
            (
                envelope(ok, r#""João da Silva 5513999999999""#),
                "contact",
                "invalid type: string, expected an object with uid, type, key and name",
            ),
            (envelope("5", contact), "origin", r#"must be "SCHEDULED_MESSAGE""#),
            (envelope("null", contact), "origin", r#"must be "SCHEDULED_MESSAGE""#),
            (
                envelope(ok, &contact.replace(r#""WHATSAPP""#, "1")),
                "contact.type",
                r#"must be "WHATSAPP""#,
            ),
            (
                "[1,2]".to_owned(),
                "",
                "invalid type: array, expected an object with id, clientId, origin, contact and data",
            ),
            (
                "null".to_owned(),
                "",
                "invalid type: null, expected an object with id, clientId, origin, contact and data",
            ),
        ];
        for (body, path, message) in cases {
            let e = PlatformRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.path.as_str(), e.message.as_str()),
                (path, message),
                "{body}"
            );
        }
    }

    /// The body is checked as UTF-8 once, up front: a body that is not is
    /// refused wherever the bad byte is (a string, a key, `data`, between
    /// tokens), with where it is and nothing of its content.
    #[test]
    fn a_body_that_is_not_utf8_is_malformed_json() {
        let good = br#"{"id":1,"clientId":72,"origin":"SCHEDULED_MESSAGE","contact":{"uid":"1","type":"WHATSAPP","key":"5511","name":"Ana"},"data":{"x":"y"}}"#;
        assert!(PlatformRequest::parse(good).is_ok());
        let text = std::str::from_utf8(good).unwrap();
        for (at, what) in [
            ("Ana", "a string"),
            ("uid", "a key"),
            ("\"y\"", "data"),
            (",\"data\"", "between tokens"),
        ] {
            let cut = text.find(at).unwrap() + 1;
            let mut bad = good.to_vec();
            bad.insert(cut, 0xff);
            let e = PlatformRequest::parse(&bad).expect_err(what);
            assert_eq!(e.path, "", "{what}");
            assert_eq!(
                e.message,
                format!(
                    "malformed JSON: the body is not UTF-8 text (byte {})",
                    cut + 1
                ),
                "{what}"
            );
        }
    }
}
