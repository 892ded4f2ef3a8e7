//! Studio sessions: who signed in, kept in memory with an expiry. A leaf
//! module (no server state) so `crate::state` can hold the store.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// A session lasts this long after signing in, used or not.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Beyond this many live sessions the oldest is dropped: signing in needs a
/// valid token, but a script that signs in in a loop must not grow memory.
const MAX_SESSIONS: usize = 10_000;

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

#[derive(Debug, Clone)]
pub struct Session {
    pub who: Who,
    /// Every POST of this session must carry it (`X-CSRF-Token` or the
    /// `csrf` form field).
    pub csrf: String,
    expires: Instant,
}

impl Session {
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// The live sessions, by id.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    /// Opens a session for `who`; returns its id (the cookie's value).
    pub fn open(&self, who: Who) -> Result<(String, Session), getrandom::Error> {
        let id = random_hex()?;
        let session = Session {
            who,
            csrf: random_hex()?,
            expires: Instant::now() + SESSION_TTL,
        };
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        all.retain(|_, s| s.expires > now);
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                all.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// 256 random bits from the OS, as 64 hex digits.
fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_find_and_close() {
        let store = Sessions::default();
        let (id, s) = store.open(Who::Admin).unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, s.csrf);
        assert_eq!(store.get(&id).unwrap().who, Who::Admin);
        assert!(s.csrf_matches(&s.csrf));
        assert!(!s.csrf_matches("x"));
        store.close(&id);
        assert!(store.get(&id).is_none());
    }
}
