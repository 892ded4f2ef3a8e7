//! Failed sign-ins, counted per client address, for the operators' surfaces
//! (`/studio`, `/admin/*`, `/metrics`): a script that guesses tokens gets
//! [`LIMIT`] wrong guesses a minute from one address, then a 429 for every
//! attempt, right or wrong, until enough of its failures have drained.
//!
//! A leaky bucket per address: each failure adds one, one drains every
//! [`DRAIN`], and an address with [`LIMIT`] or more is locked out. An
//! operator's typos drain within a minute; a success does not empty the
//! bucket, so a route that answers 200 to anything cannot be used to reset it.
//!
//! Not the webhook's: the platform's requests come from a few shared
//! addresses (and behind a reverse proxy every client has the proxy's), so a
//! lockout there would let anyone who knows a `clientId` stop a company's
//! messages. Webhook tokens rely on their length (at least 8 characters,
//! checked at load) instead. Behind a reverse proxy, the operators'
//! surfaces also see one address: a stranger's failures lock the operators
//! out too, for a minute at most. Rate-limit at the proxy there.
//!
//! Request-time state beside the inert config, like [`crate::state`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// Addresses tracked at most. Past it, drained buckets are dropped; if none
/// is, a new address's failures are not counted (logged once per sweep).
const MAX_ADDRESSES: usize = 100_000;

/// The client's address, as the server saw the connection. Requests the
/// server did not make (a router called directly) read `0.0.0.0`.
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

/// Refused without looking at the token: the address failed too often.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-ins from this address; try again in {} s", retry_after.as_secs())]
pub struct Locked {
    pub retry_after: Duration,
}

impl IntoResponse for Locked {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {
            "code": "too_many_failures",
            "message": self.to_string(),
        }});
        let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(self.retry_after.as_secs()),
        );
        resp
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures not yet drained, as of `at`.
    level: u32,
    at: Instant,
}

impl Bucket {
    /// The level now, and when it was last a whole number of drains ago.
    fn drained(self, now: Instant) -> Bucket {
        let steps = now.saturating_duration_since(self.at).as_secs() / DRAIN.as_secs();
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        Bucket {
            level: self.level.saturating_sub(steps),
            at: self.at + DRAIN * steps.min(self.level),
        }
    }

    /// How long until the address may try again, if it is locked out.
    fn locked_for(self, now: Instant) -> Option<Duration> {
        let b = self.drained(now);
        (b.level >= LIMIT).then(|| {
            // Below the limit after `level - LIMIT + 1` more drains.
            let until = b.at + DRAIN * (b.level - LIMIT + 1);
            until
                .saturating_duration_since(now)
                .max(Duration::from_secs(1))
        })
    }
}

/// Every tracked address's bucket.
#[derive(Default)]
pub struct Lockout {
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// `buckets.len()`, read without the lock: with nothing tracked (the
    /// usual case), a sign-in costs one atomic load here.
    tracked: AtomicUsize,
}

impl Lockout {
    /// `Err` if `peer` may not try a token now: nothing is checked then.
    pub fn check(&self, peer: Peer) -> Result<(), Locked> {
        // Nothing tracked (the usual case): one atomic load, no lock.
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let locked = self
            .lock()
            .get(&peer.0)
            .and_then(|b| b.locked_for(Instant::now()));
        match locked {
            None => Ok(()),
            Some(retry_after) => {
                counter!("recado_signin_refused_total").increment(1);
                Err(Locked { retry_after })
            }
        }
    }

    /// Counts a wrong token from `peer`.
    pub fn failed(&self, peer: Peer) {
        counter!("recado_signin_failures_total").increment(1);
        let now = Instant::now();
        let mut buckets = self.lock();
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&peer.0) {
            buckets.retain(|_, b| b.drained(now).level > 0);
        }
        if buckets.len() >= MAX_ADDRESSES && !buckets.contains_key(&peer.0) {
            tracing::warn!(
                "{MAX_ADDRESSES} addresses with failed sign-ins: this one is not counted"
            );
            return;
        }
        let b = buckets
            .entry(peer.0)
            .or_insert(Bucket { level: 0, at: now });
        let mut drained = b.drained(now);
        if drained.level == 0 {
            drained.at = now;
        }
        drained.level = drained.level.saturating_add(1);
        *b = drained;
        if drained.level == LIMIT {
            tracing::warn!(peer = %peer.0, "too many failed sign-ins; this address is locked out for a while");
        }
        // Drained buckets are dropped now and then, so that `tracked` goes
        // back to zero once the failures are old.
        if buckets.len() > 1 && buckets.len().is_power_of_two() {
            buckets.retain(|_, b| b.drained(now).level > 0);
        }
        self.tracked.store(buckets.len(), Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> Peer {
        Peer(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
    }

    #[test]
    fn locks_after_the_limit_and_drains() {
        let lockout = Lockout::default();
        for _ in 0..LIMIT {
            assert_eq!(lockout.check(peer(1)), Ok(()));
            lockout.failed(peer(1));
        }
        let locked = lockout.check(peer(1)).unwrap_err();
        assert!(locked.retry_after <= DRAIN && locked.retry_after >= Duration::from_secs(1));
        // Another address is not locked out.
        assert_eq!(lockout.check(peer(2)), Ok(()));
        // One drain later, the address may try again.
        let later = Instant::now() + DRAIN;
        let b = lockout.lock()[&peer(1).0];
        assert_eq!(b.locked_for(later), None);
        assert_eq!(b.drained(later).level, LIMIT - 1);
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
    }
}
