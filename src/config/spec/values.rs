//! Scalars with rules of their own (durations, origins, zones, tokens,
//! secrets), each checked while it is read so its error has a position.

use std::fmt;
use std::time::Duration;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config::secret::Secret;

/// A secret as written in `tenant.yaml` (literal, `${env:NAME}`, `${file:PATH}`).
#[derive(Debug)]
pub struct SecretSpec(pub Secret);

impl<'de> Deserialize<'de> for SecretSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a secret: a literal, `${env:NAME}` or `${file:PATH}`",
            |s| Secret::resolve(s).map(SecretSpec),
        ))
    }
}

/// `scheme://host[:port]`, normalised (lowercase, default port dropped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin(pub String);

impl Origin {
    pub fn parse(s: &str) -> Result<Origin, String> {
        let url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`{s}` must be an http(s) URL with a host"));
        }
        Ok(Origin(url.origin().ascii_serialization()))
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "an origin such as `https://erp.example.com`",
            Origin::parse,
        ))
    }
}

/// An entry of `upstreams:`: an origin, alone (`- https://erp.acme.com.br`)
/// or with the limits that protect the company's system from recado.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    pub origin: Origin,
    /// Calls in flight to this origin for this tenant; more wait for a slot.
    pub max_in_flight: Option<u32>,
    pub breaker: Option<BreakerSpec>,
}

/// `breaker: {failures: 5, cool_down: 30s}`: after `failures` failed calls
/// in a row, calls fail at once for `cool_down`; then one call tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerSpec {
    /// Failed calls in a row (no connection, timeout, 5xx) that open it.
    pub failures: u32,
    /// How long it stays open before one call may try again.
    pub cool_down: DurationSpec,
}

/// The object form of an `upstreams:` entry, as written.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// `scheme://host[:port]`.
    origin: Origin,
    /// Calls in flight to this origin, for this tenant; more wait for a
    /// slot within the call's deadline.
    #[serde(default)]
    max_in_flight: Option<u32>,
    /// Stop calling an origin that keeps failing.
    #[serde(default)]
    breaker: Option<BreakerSpec>,
}

impl TryFrom<RawUpstream> for UpstreamSpec {
    type Error = String;
    fn try_from(raw: RawUpstream) -> Result<UpstreamSpec, String> {
        if raw.max_in_flight == Some(0) {
            return Err("`max_in_flight` must be at least 1 (leave it out for no limit)".into());
        }
        if let Some(b) = &raw.breaker {
            if b.failures == 0 {
                return Err("`breaker.failures` must be at least 1".into());
            }
            if b.cool_down.0.is_zero() {
                return Err("`breaker.cool_down` must be longer than zero, e.g. `30s`".into());
            }
        }
        Ok(UpstreamSpec {
            origin: raw.origin,
            max_in_flight: raw.max_in_flight,
            breaker: raw.breaker,
        })
    }
}

impl<'de> Deserialize<'de> for UpstreamSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UpstreamSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an origin such as `https://erp.example.com`, or `{origin: …, max_in_flight: …, breaker: {failures: …, cool_down: …}}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UpstreamSpec, E> {
                Ok(UpstreamSpec {
                    origin: Origin::parse(v).map_err(E::custom)?,
                    max_in_flight: None,
                    breaker: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UpstreamSpec, A::Error> {
                let raw = RawUpstream::deserialize(MapAccessDeserializer::new(map))?;
                UpstreamSpec::try_from(raw).map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// An IANA time zone name, checked against the bundled zone database.
#[derive(Debug, Clone)]
pub struct Timezone(pub String);

impl Default for Timezone {
    fn default() -> Self {
        Timezone("America/Sao_Paulo".to_owned())
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr("an IANA time zone such as `America/Sao_Paulo`", |s| {
            jiff::tz::TimeZone::get(s)
                .map(|_| Timezone(s.to_owned()))
                .map_err(|_| format!("`{s}` is not a known time zone; use an IANA name such as `America/Sao_Paulo`"))
        }))
    }
}

/// A token as written in `tenant.yaml`: `sha256:<hex>` for a stored hash, or a
/// plain value (literal or `${env:NAME}` / `${file:PATH}`).
#[derive(Debug)]
pub enum TokenSpec {
    Plain(Secret),
    Sha256([u8; 32]),
}

impl TokenSpec {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(hex_digest) = raw.strip_prefix("sha256:") {
            let mut out = [0u8; 32];
            hex::decode_to_slice(hex_digest.trim(), &mut out)
                .map_err(|_| "a `sha256:` token needs exactly 64 hex digits after the prefix")?;
            return Ok(TokenSpec::Sha256(out));
        }
        let secret = Secret::resolve(raw)?;
        let token = secret.expose();
        // `- token-a - token-b` (an indentation slip) is one token with
        // spaces inside: the platform never sends it, every request gets 401.
        if token.chars().any(char::is_whitespace) {
            return Err("a token cannot contain spaces or line breaks; if this line holds two tokens, put each on its own line, starting with a dash and a space".into());
        }
        if token.chars().count() < 8 {
            return Err("a token must be at least 8 characters long".into());
        }
        Ok(TokenSpec::Plain(secret))
    }
}

impl<'de> Deserialize<'de> for TokenSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a token: a literal, `${env:NAME}`, `${file:PATH}` or `sha256:<hex>`",
            TokenSpec::parse,
        ))
    }
}

/// A duration as operators write it: `500ms`, `2s`, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CheckedStr(
            "a duration such as `500ms`, `2s` or `5m`",
            |s| {
                humantime::parse_duration(s).map(DurationSpec).map_err(|e| {
                    format!("`{s}` is not a duration ({e}); write e.g. `500ms`, `2s` or `5m`")
                })
            },
        ))
    }
}

/// Deserializes a mapping as `Raw`, then checks and converts it into `T`
/// inside the visitor: only errors raised there carry the mapping's own
/// position (not the enclosing list's).
pub(super) fn checked_map<'de, D, Raw, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    Raw: Deserialize<'de>,
    T: TryFrom<Raw, Error = String>,
{
    struct V<Raw, T>(&'static str, std::marker::PhantomData<fn(Raw) -> T>);
    impl<'de, Raw: Deserialize<'de>, T: TryFrom<Raw, Error = String>> Visitor<'de> for V<Raw, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = Raw::deserialize(MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(de::Error::custom)
        }
    }
    d.deserialize_map(V(expecting, std::marker::PhantomData))
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
/// Visits a scalar and checks it inside the visitor: only errors raised there
/// carry the scalar's own line and column.
pub(super) struct CheckedStr<T>(pub &'static str, pub fn(&str) -> Result<T, String>);

impl<'de, T> Visitor<'de> for CheckedStr<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.1)(v).map_err(E::custom)
    }
    // YAML turns `when: true` into a bool; the operator meant the expression.
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        (self.1)(if v { "true" } else { "false" }).map_err(E::custom)
    }
}
