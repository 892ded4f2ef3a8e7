//! Studio sessions: a cookie signed with the session key (HMAC-SHA-256), so
//! that every replica accepts it, a restarted one too, and nothing is
//! stored per sign-in. It names who signed in (the admin, or a tenant), the
//! token they signed in with (by an id, never its digest: a digest in a
//! cookie could be tested against guesses offline), when it expires, and a
//! random nonce (two sign-ins never share a cookie).
//! The token must still be configured for the session to count, so
//! removing or changing a token signs its sessions out at the next reload.
//!
//! The key comes from `--studio-session-key`, the same on every replica;
//! without it, each process draws its own, and a restart signs everyone
//! out (as does a request that lands on another replica).
//!
//! Signing out forgets the cookie in the browser and revokes it on the
//! replica that served the sign-out, in memory: another replica, or this
//! one after a restart, would still accept a copy of it until it expires.
//! A stolen cookie is ended for good only by removing or changing its token,
//! or by changing the key. A leaf module (no server state) so
//! `crate::state` can hold it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// A session lasts this long after signing in, used or not.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Signed-out sessions remembered at most (until each would have expired);
/// past it, the one closest to expiring is forgotten first.
const MAX_REVOKED: usize = 10_000;

/// The shortest `--studio-session-key`.
pub const MIN_KEY_CHARS: usize = 32;

/// The cookie's layout version; a cookie of another version is no session.
const VERSION: u8 = 1;
/// The payload: version, expiry, token id, nonce, scope; then a tenant's name.
const FIXED: usize = 1 + 8 + 8 + NONCE + 1;
const NONCE: usize = 16;
/// How far ahead of this replica's clock another's may have set an expiry.
const CLOCK_SKEW: u64 = 300;

/// Who is looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The admin token: every tenant.
    Admin,
    /// One of a tenant's `studio_tokens`, by its digest: that tenant only,
    /// and only while the token is still listed in its `tenant.yaml`.
    Tenant { name: String, digest: [u8; 32] },
}

impl Who {
    pub fn sees(&self, tenant: &str) -> bool {
        match self {
            Who::Admin => true,
            Who::Tenant { name, .. } => name == tenant,
        }
    }
}

/// Whose session, as its cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Tenant(String),
}

/// A session whose cookie's signature checked out.
#[derive(Debug, Clone)]
pub struct Session {
    pub scope: Scope,
    /// The id of the token it was opened with ([`Sessions::token_id`]).
    pub token: [u8; 8],
    /// Every POST of this session must carry it (`X-CSRF-Token` or the
    /// `csrf` form field). Derived from the cookie: nothing to store.
    pub csrf: String,
    /// Its signature, which names it in the revoked list.
    mac: [u8; 32],
    /// Seconds since the Unix epoch (wall clock: replicas share it).
    expires: u64,
}

impl Session {
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// The session key, and the sessions signed out on this replica.
pub struct Sessions {
    key: [u8; 32],
    revoked: Mutex<HashMap<[u8; 32], u64>>,
}

impl Sessions {
    /// Signs with a key derived from `secret` (`--studio-session-key`), or
    /// with a random one of its own when there is none.
    pub fn new(secret: Option<&str>) -> Result<Sessions, getrandom::Error> {
        let key = match secret {
            // Labelled, so that a secret reused elsewhere (an admin token,
            // whose plain SHA-256 recado keeps) never is the key itself.
            Some(s) => hmac_of(s.as_bytes(), b"recado studio session key v1", &[]),
            None => {
                let mut key = [0u8; 32];
                getrandom::fill(&mut key)?;
                key
            }
        };
        Ok(Sessions {
            key,
            revoked: Mutex::default(),
        })
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        hmac_of(&self.key, label, parts)
    }

    /// How a cookie names the token whose digest is `digest`.
    pub fn token_id(&self, digest: &[u8; 32]) -> [u8; 8] {
        let mac = self.mac(b"token", &[digest]);
        mac[..8].try_into().expect("8 of 32 bytes")
    }

    /// A session for `scope`, opened with the token of digest `token`: the
    /// cookie's value, and the session it stands for.
    pub fn open(
        &self,
        scope: Scope,
        token: &[u8; 32],
    ) -> Result<(String, Session), getrandom::Error> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce)?;
        let expires = now() + SESSION_TTL.as_secs();
        let token = self.token_id(token);
        let mut payload = vec![VERSION];
        payload.extend_from_slice(&expires.to_be_bytes());
        payload.extend_from_slice(&token);
        payload.extend_from_slice(&nonce);
        match &scope {
            Scope::Admin => payload.push(b'A'),
            Scope::Tenant(name) => {
                payload.push(b'T');
                payload.extend_from_slice(name.as_bytes());
            }
        }
        let mac = self.mac(b"session", &[&payload]);
        let cookie = format!("{}.{}", hex::encode(&payload), hex::encode(mac));
        Ok((cookie, self.session(scope, token, mac, expires)))
    }

    fn session(&self, scope: Scope, token: [u8; 8], mac: [u8; 32], expires: u64) -> Session {
        Session {
            scope,
            token,
            csrf: hex::encode(self.mac(b"csrf", &[&mac])),
            mac,
            expires,
        }
    }

    /// The session this cookie value stands for, if its signature is ours,
    /// it has not expired and it was not signed out here.
    pub fn get(&self, cookie: &str) -> Option<Session> {
        let (payload, mac) = cookie.split_once('.')?;
        let payload = hex::decode(payload).ok()?;
        let presented: [u8; 32] = hex::decode(mac).ok()?.try_into().ok()?;
        let mac = self.mac(b"session", &[&payload]);
        if !bool::from(mac.ct_eq(&presented)) {
            return None;
        }
        if payload.len() < FIXED || payload[0] != VERSION {
            return None;
        }
        let expires = u64::from_be_bytes(payload[1..9].try_into().ok()?);
        // Not expired, and not further ahead than a session can last (a
        // replica's clock running ahead, or a lowered TTL).
        let now = now();
        if expires <= now || expires > now + SESSION_TTL.as_secs() + CLOCK_SKEW {
            return None;
        }
        let token = payload[9..17].try_into().ok()?;
        let scope = match (payload[FIXED - 1], &payload[FIXED..]) {
            (b'A', []) => Scope::Admin,
            (b'T', name) if !name.is_empty() => {
                Scope::Tenant(String::from_utf8(name.to_vec()).ok()?)
            }
            _ => return None,
        };
        if self.lock().contains_key(&mac) {
            return None;
        }
        Some(self.session(scope, token, mac, expires))
    }

    /// Signs `session` out on this replica.
    pub fn close(&self, session: &Session) {
        let mut revoked = self.lock();
        let now = now();
        revoked.retain(|_, expires| *expires > now);
        if revoked.len() >= MAX_REVOKED {
            if let Some(soonest) = revoked.iter().min_by_key(|(_, e)| **e).map(|(m, _)| *m) {
                revoked.remove(&soonest);
            }
        }
        revoked.insert(session.mac, session.expires);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u64>> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// HMAC-SHA-256 of `label`, a zero byte, then `parts`: each use of the key
/// has its own label, and no label is a prefix of another's input.
fn hmac_of(key: &[u8], label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(label);
    mac.update(&[0]);
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_cookie_is_a_session_on_any_replica_with_the_key() {
        let digest = [7u8; 32];
        let a = Sessions::new(Some("the same key on every replica, 32+")).unwrap();
        let b = Sessions::new(Some("the same key on every replica, 32+")).unwrap();
        let (cookie, s) = a.open(Scope::Tenant("acme".into()), &digest).unwrap();
        assert_eq!(s.scope, Scope::Tenant("acme".into()));
        assert_eq!(s.token, a.token_id(&digest));
        assert_eq!(s.csrf.len(), 64);
        assert!(!cookie.contains(&s.csrf));
        assert!(s.csrf_matches(&s.csrf));
        assert!(!s.csrf_matches("x"));
        // Another replica with the key accepts it, with the same CSRF token.
        let on_b = b.get(&cookie).expect("accepted by another replica");
        assert_eq!((on_b.scope, on_b.csrf), (s.scope.clone(), s.csrf.clone()));
        // Another key, a changed byte, another layout: no session.
        let other = Sessions::new(None).unwrap();
        assert!(other.get(&cookie).is_none());
        let (payload, mac) = cookie.split_once('.').unwrap();
        let mut forged = hex::decode(payload).unwrap();
        *forged.last_mut().unwrap() ^= 1;
        let forged = format!("{}.{mac}", hex::encode(forged));
        assert!(a.get(&forged).is_none());
        assert!(a.get("garbage").is_none() && a.get("a.b").is_none());
        // The admin's session has no tenant.
        let (admin, _) = a.open(Scope::Admin, &digest).unwrap();
        assert_eq!(b.get(&admin).unwrap().scope, Scope::Admin);
        // Two sign-ins in the same second are two sessions.
        let (again, s2) = a.open(Scope::Tenant("acme".into()), &digest).unwrap();
        assert_ne!(again, cookie);
        assert_ne!(s2.csrf, s.csrf);
        // Signed out here: refused here, still accepted elsewhere; the other
        // sign-in of the same token goes on.
        a.close(&s);
        assert!(a.get(&cookie).is_none());
        assert!(b.get(&cookie).is_some());
        assert!(a.get(&again).is_some());
    }

    /// A payload signed with the key but not of the layout is no session.
    #[test]
    fn only_the_layout_it_signs_is_a_session() {
        let sessions = Sessions::new(None).unwrap();
        let signed = |payload: &[u8]| {
            let mac = sessions.mac(b"session", &[payload]);
            sessions.get(&format!("{}.{}", hex::encode(payload), hex::encode(mac)))
        };
        let payload = |version: u8, expires: u64, scope: &[u8]| {
            let mut p = vec![version];
            p.extend_from_slice(&expires.to_be_bytes());
            p.extend_from_slice(&[0; 8 + NONCE]);
            p.extend_from_slice(scope);
            p
        };
        let soon = now() + 60;
        let far = now() + SESSION_TTL.as_secs() + CLOCK_SKEW + 60;
        assert_eq!(
            signed(&payload(VERSION, soon, b"A")).unwrap().scope,
            Scope::Admin
        );
        assert_eq!(
            signed(&payload(VERSION, soon, b"Tacme")).unwrap().scope,
            Scope::Tenant("acme".into())
        );
        for (refused, why) in [
            (payload(VERSION + 1, soon, b"A"), "version"),
            (payload(VERSION, now() - 1, b"A"), "expired"),
            (payload(VERSION, far, b"A"), "too far ahead"),
            (payload(VERSION, soon, b"Aacme"), "admin with a name"),
            (payload(VERSION, soon, b"T"), "tenant without one"),
            (payload(VERSION, soon, b"T\xff"), "not UTF-8"),
            (payload(VERSION, soon, b"X"), "unknown scope"),
            (vec![VERSION; 10], "short"),
        ] {
            assert!(signed(&refused).is_none(), "{why}");
        }
    }
}
