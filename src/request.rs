//! Stage 1, validate the request: the platform's JSON body becomes a typed
//! [`PlatformRequest`], or a [`RequestError`] naming the field at fault.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

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
    pub data: Option<minijinja::Value>,
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

impl PlatformRequest {
    pub fn parse(body: &[u8]) -> Result<PlatformRequest, RequestError> {
        // Fast path without path tracking; only a failed parse pays for a
        // second, path-tracking pass that names the field at fault.
        let req: PlatformRequest = match serde_json::from_slice(body) {
            Ok(req) => req,
            Err(_) => return Err(Self::explain(body)),
        };
        req.check()?;
        Ok(req)
    }

    fn explain(body: &[u8]) -> RequestError {
        let mut de = serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, PlatformRequest>(&mut de) {
            Err(e) => RequestError::from_serde(e),
            // Bytes after the object are as malformed as a truncated object.
            Ok(_) => RequestError {
                path: String::new(),
                message: match de.end() {
                    Err(e) => format!("malformed JSON: {e}"),
                    Ok(()) => "malformed JSON".into(),
                },
            },
        }
    }

    /// Rules a type cannot express: contact fields must not be blank.
    fn check(&self) -> Result<(), RequestError> {
        for (path, value) in [
            ("contact.uid", &self.contact.uid),
            ("contact.key", &self.contact.key),
            ("contact.name", &self.contact.name),
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
}

impl RequestError {
    fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> RequestError {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let inner = e.into_inner();
        let message = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                path.clear();
                format!("malformed JSON: {inner}")
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
                    text
                }
            }
        };
        RequestError { path, message }
    }
}

/// serde_json appends " at line 1 column 42" to data errors; the path says more.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
