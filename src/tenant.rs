//! Stage 2, find the tenant: the request's `clientId` picks the tenant, whose
//! token the request must carry. Every failure looks the same from outside.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Snapshot, Tenant};

/// Compared against when the `clientId` is unknown, so that case costs the
/// same time as a wrong token.
const DECOY_DIGEST: [u8; 32] = [0x5a; 32];

/// Returns the tenant owning `client_id` if `token` is one of its tokens.
/// `None` for an unknown client, a missing token and a wrong one alike.
pub fn authenticate<'s>(
    snapshot: &'s Snapshot,
    client_id: u64,
    token: Option<&str>,
) -> Option<&'s Arc<Tenant>> {
    let tenant = snapshot.tenant_for_client(client_id);
    let presented: [u8; 32] = Sha256::digest(token.unwrap_or("").as_bytes()).into();
    let digests = tenant.map_or(&[DECOY_DIGEST][..], |t| &t.token_digests[..]);
    // Check every token, without an early exit, so timing says nothing about
    // which one (if any) matched.
    let presented = words(&presented);
    let matched = digests.iter().fold(subtle::Choice::from(0), |acc, d| {
        acc | words(d).ct_eq(&presented)
    });
    let ok: bool = (matched & subtle::Choice::from(u8::from(token.is_some()))).into();
    if ok {
        tenant
    } else {
        None
    }
}

/// A digest as four words: compared a word at a time (`subtle` hides each
/// comparison from the optimizer, and a byte at a time is 32 of them).
fn words(digest: &[u8; 32]) -> [u64; 4] {
    std::array::from_fn(|i| {
        u64::from_ne_bytes(digest[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
    })
}

/// The token of an `Authorization: Bearer <token>` value. The scheme's
/// name is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` too.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// The token from `Authorization: Bearer …`, else from the `token` query
/// parameter (for platforms that only let a URL be configured).
pub fn token_from<'a>(
    authorization: Option<&'a str>,
    query: Option<&'a str>,
) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(t) = authorization.and_then(bearer_token).map(str::trim) {
        return Some(t.into());
    }
    let query = query?;
    // Without `%` or `+` decoding changes nothing: skip it (the usual case).
    // Byte positions rather than `split`: the query is a few bytes, and a
    // `char` pattern's searcher costs more than the scan.
    // One pass without early exit: the compiler vectorizes it.
    let encoded = query
        .bytes()
        .fold(false, |e, b| e | (b == b'%') | (b == b'+'));
    if !encoded {
        let mut rest = Some(query);
        while let Some(part) = rest {
            let (pair, next) = cut(part, b'&');
            rest = next;
            let (key, value) = cut(pair, b'=');
            if key == "token" {
                return Some(value.unwrap_or("").into());
            }
        }
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

/// `s` split at the first `byte` (an ASCII byte), without the byte.
fn cut(s: &str, byte: u8) -> (&str, Option<&str>) {
    match s.bytes().position(|b| b == byte) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::token_from;

    /// `Bearer` is matched as HTTP says, whatever its case.
    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for (header, token) in [
            ("Bearer demo-token", Some("demo-token")),
            ("bearer demo-token", Some("demo-token")),
            ("BEARER  demo-token", Some("demo-token")),
            ("Basic demo-token", None),
            ("Bearerdemo-token", None),
        ] {
            assert_eq!(token_from(Some(header), None).as_deref(), token, "{header}");
        }
    }

    /// The shortcut for plain queries reads them as the URL decoder does.
    #[test]
    fn plain_queries_read_as_decoded() {
        for query in [
            "token=abc",
            "a=1&token=abc",
            "token",
            "token=",
            "&&token=x&token=y",
            "tokens=1",
            "x=token=1",
            "token=a=b",
            "=token",
            "",
            "a&b",
            "token=%41",
            "token=a+b",
            "%74oken=z",
        ] {
            let decoded = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v);
            assert_eq!(token_from(None, Some(query)), decoded, "{query:?}");
        }
    }
}
