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
pub fn authenticate(
    snapshot: &Snapshot,
    client_id: u64,
    token: Option<&str>,
) -> Option<Arc<Tenant>> {
    let tenant = snapshot.tenant_for_client(client_id);
    let presented: [u8; 32] = Sha256::digest(token.unwrap_or("").as_bytes()).into();
    let digests = tenant.map_or(&[DECOY_DIGEST][..], |t| &t.token_digests[..]);
    // Check every token, without an early exit, so timing says nothing about
    // which one (if any) matched.
    let matched = digests
        .iter()
        .fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&presented));
    let ok: bool = (matched & subtle::Choice::from(u8::from(token.is_some()))).into();
    if ok {
        tenant.cloned()
    } else {
        None
    }
}

/// The token from `Authorization: Bearer …`, else from the `token` query
/// parameter (for platforms that only let a URL be configured).
pub fn token_from<'a>(
    authorization: Option<&'a str>,
    query: Option<&'a str>,
) -> Option<std::borrow::Cow<'a, str>> {
    if let Some(t) = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
    {
        return Some(t.into());
    }
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}
