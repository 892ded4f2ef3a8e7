//! Failed sign-ins, counted per client address, for the operators' surfaces
//! (`/studio`, `/admin/*`, `/metrics`): a script that guesses tokens gets
//! [`LIMIT`] wrong guesses a minute from one address, then a 429 for every
//! attempt, right or wrong, until enough of its failures have drained.
//!
//! A leaky bucket per address: each failure adds one, one drains every
//! [`DRAIN`], and an address with [`LIMIT`] or more is locked out: ten
//! guesses at once, then one every 6 s. An attempt counts from its start
//! (guesses sent together cannot all pass before the first fails) and a
//! good token takes only its own attempt back, so a route that answers 200
//! to anything cannot be used to empty the bucket. An IPv6 client is
//! counted by its /64. The count is per replica.
//!
//! Not the webhook's: the platform's requests come from a few shared
//! addresses (and behind a reverse proxy every client has the proxy's), so a
//! lockout there would let anyone who knows a `clientId` stop a company's
//! messages. Webhook tokens rely on their length (at least 8 characters,
//! checked at load) instead. Behind a reverse proxy, name it with
//! `--trusted-proxy` so that each client is counted by the address the
//! proxy forwards ([`crate::forwarded`]); otherwise every client has the
//! proxy's address, and a stranger who keeps guessing keeps the operators
//! locked out as long as they go on.
//!
//! Request-time state beside the inert config, like [`crate::state`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::counter;

/// Failures in the bucket that lock an address out.
pub const LIMIT: u32 = 10;
/// One failure drains from the bucket every this long: [`LIMIT`] failures
/// a minute keep an address at the edge.
pub const DRAIN: Duration = Duration::from_secs(6);
/// Addresses tracked at most. Past it, drained buckets are dropped (at most
/// one sweep per [`DRAIN`]); if none is, a new address's failures are not
/// counted (logged once per sweep).
const MAX_ADDRESSES: usize = 100_000;

/// The client's address: the connection's, or behind a trusted proxy the
/// one it forwards ([`crate::forwarded`]). Requests the server did not
/// make (a router called directly) read `0.0.0.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Peer>()
            .copied()
            .unwrap_or(Peer(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// The token of `Authorization: Bearer <token>`: how every operators' route
/// reads it, and what the sign-in layer counts as a presented token.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()
        .and_then(crate::tenant::bearer_token)
}

/// Refused without looking at the token: the address failed too often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-ins from this address; try again in {} s", self.seconds())]
pub struct Locked {
    pub retry_after: Duration,
}

impl Locked {
    /// Whole seconds to wait, rounded up: a client that waits that long is
    /// let in.
    pub fn seconds(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

impl IntoResponse for Locked {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "code": "too_many_failures",
            "message": self.to_string(),
        }});
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(self.seconds()));
        resp
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures (and attempts in flight) not yet drained, as of `at`.
    level: u32,
    at: Instant,
}

impl Bucket {
    /// The level now, and when it was last a whole number of drains ago.
    fn drained(self, now: Instant) -> Bucket {
        let steps = now.saturating_duration_since(self.at).as_secs() / DRAIN.as_secs();
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        if steps >= self.level {
            return Bucket { level: 0, at: now };
        }
        Bucket {
            level: self.level - steps,
            at: self.at + DRAIN * steps,
        }
    }

    /// How long until the address may try again, if it is locked out.
    fn locked_for(self, now: Instant) -> Option<Duration> {
        let b = self.drained(now);
        (b.level >= LIMIT).then(|| {
            // Below the limit after `level - LIMIT + 1` more drains.
            let until = b.at + DRAIN * (b.level - LIMIT + 1);
            until.saturating_duration_since(now)
        })
    }
}

/// The key an address is counted under: an IPv6 client controls a whole
/// /64 (its last 64 bits are its own to pick), so that is one client.
fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[derive(Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    /// When a full table was last swept of drained buckets.
    swept: Option<Instant>,
}

/// Every tracked address's bucket.
#[derive(Default)]
pub struct Lockout(Mutex<Table>);

/// One sign-in under way: counted as a failure from the start, so that
/// guesses sent at once cannot all pass before the first one fails; a
/// success takes it back ([`Attempt::passed`]).
#[must_use]
pub struct Attempt<'a> {
    lockout: &'a Lockout,
    key: Option<IpAddr>,
}

impl Lockout {
    /// Starts a sign-in from `peer`, or `Err` if its address may not try a
    /// token now: nothing is checked then, and nothing is counted.
    pub fn attempt(&self, peer: Peer) -> Result<Attempt<'_>, Locked> {
        let now = Instant::now();
        let key = key(peer.0);
        let mut table = self.lock();
        if let Some(retry_after) = table.buckets.get(&key).and_then(|b| b.locked_for(now)) {
            counter!("recado_signin_refused_total").increment(1);
            return Err(Locked { retry_after });
        }
        if table.buckets.len() >= MAX_ADDRESSES && !table.buckets.contains_key(&key) {
            // At most one sweep per drain: a full table of live buckets
            // must not cost every sign-in a scan.
            if table.swept.is_none_or(|t| now.duration_since(t) >= DRAIN) {
                table.swept = Some(now);
                table.buckets.retain(|_, b| b.drained(now).level > 0);
                if table.buckets.len() >= MAX_ADDRESSES {
                    tracing::warn!("{MAX_ADDRESSES} addresses with failed sign-ins: new addresses are not counted until some drain");
                }
            }
            if table.buckets.len() >= MAX_ADDRESSES {
                return Ok(Attempt {
                    lockout: self,
                    key: None,
                });
            }
        }
        let b = table
            .buckets
            .entry(key)
            .or_insert(Bucket { level: 0, at: now });
        let mut drained = b.drained(now);
        drained.level = drained.level.saturating_add(1);
        *b = drained;
        Ok(Attempt {
            lockout: self,
            key: Some(key),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Attempt<'_> {
    /// The token was good: the attempt is not a failure.
    pub fn passed(self) {
        let Some(key) = self.key else { return };
        let mut table = self.lockout.lock();
        if let Some(b) = table.buckets.get_mut(&key) {
            b.level = b.level.saturating_sub(1);
            if b.level == 0 {
                table.buckets.remove(&key);
            }
        }
    }

    /// The token was wrong: the attempt stays counted.
    pub fn failed(self) {
        counter!("recado_signin_failures_total").increment(1);
        let Some(key) = self.key else { return };
        let level = self.lockout.lock().buckets.get(&key).map_or(0, |b| b.level);
        if level == LIMIT {
            tracing::warn!(peer = %key, "too many failed sign-ins; this address is locked out for a while");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> Peer {
        Peer(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
    }

    fn fail(lockout: &Lockout, p: Peer) -> Result<(), Locked> {
        lockout.attempt(p).map(Attempt::failed)
    }

    #[test]
    fn locks_after_the_limit_and_drains() {
        let lockout = Lockout::default();
        for _ in 0..LIMIT {
            assert_eq!(fail(&lockout, peer(1)), Ok(()));
        }
        let locked = lockout.attempt(peer(1)).err().expect("locked out");
        assert!(locked.retry_after <= DRAIN && locked.seconds() >= 1);
        // Another address is not locked out; a success is not counted.
        lockout.attempt(peer(2)).unwrap().passed();
        assert!(!lockout.lock().buckets.contains_key(&peer(2).0));
        // One drain later, the address may try again.
        let later = Instant::now() + DRAIN;
        let b = lockout.lock().buckets[&peer(1).0];
        assert_eq!(b.locked_for(later), None);
        assert_eq!(b.drained(later).level, LIMIT - 1);
    }

    #[test]
    fn attempts_in_flight_count_at_once() {
        let lockout = Lockout::default();
        // Sent together: each is counted before any has been answered.
        let pending: Vec<_> = (0..LIMIT)
            .map(|_| lockout.attempt(peer(1)).unwrap())
            .collect();
        assert!(lockout.attempt(peer(1)).is_err());
        for a in pending {
            a.passed();
        }
        assert!(lockout.lock().buckets.is_empty());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped), peer(1).0);
    }

    #[test]
    fn drain_arithmetic() {
        let t0 = Instant::now();
        let b = Bucket { level: 12, at: t0 };
        // 12 failures: locked until 3 have drained.
        assert_eq!(b.locked_for(t0), Some(DRAIN * 3));
        assert_eq!(
            b.locked_for(t0 + DRAIN * 2 + Duration::from_secs(1)),
            Some(DRAIN - Duration::from_secs(1))
        );
        assert_eq!(b.locked_for(t0 + DRAIN * 3), None);
        assert_eq!(b.drained(t0 + DRAIN * 100).level, 0);
        let wait = Locked {
            retry_after: Duration::from_millis(5_100),
        };
        assert_eq!(wait.seconds(), 6);
    }
}
