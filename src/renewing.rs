//! A map of request-time state that every request reads and few write: a
//! tenant's slots, an integration's metric handles, an origin's breaker.
//! Read under a shared lock; written only when an entry is missing or no
//! longer fits the config (a reload changed its limits), and then made
//! again from the stale one, so what should outlive a reload (counters in
//! flight, metric handles) can be carried over.

use foldhash::HashMap;
use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::{Arc, RwLock, RwLockReadGuard};

pub struct Renewing<K, V>(RwLock<HashMap<K, Arc<V>>>);

impl<K, V> Default for Renewing<K, V> {
    fn default() -> Self {
        Renewing(RwLock::default())
    }
}

impl<K: Eq + Hash, V> Renewing<K, V> {
    /// The entry of `key` if `fits` accepts it; else the one `renew` makes
    /// from the stale entry (if any), which replaces it.
    pub fn get<Q>(
        &self,
        key: &Q,
        fits: impl Fn(&V) -> bool,
        renew: impl FnOnce(Option<&V>) -> V,
    ) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.read().get(key).filter(|v| fits(v)) {
            return v.clone();
        }
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let stale = match map.get(key) {
            // Another request made it between the two locks.
            Some(v) if fits(v) => return v.clone(),
            stale => stale.map(|v| &**v),
        };
        let fresh = Arc::new(renew(stale));
        map.insert(key.to_owned(), fresh.clone());
        fresh
    }

    /// Every entry, for a status page.
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<K, Arc<V>>> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_kept_while_it_fits_renewed_from_the_stale_one() {
        let map: Renewing<String, (u32, u32)> = Renewing::default();
        let limit = |l| move |v: &(u32, u32)| v.0 == l;
        // (limit, generation): a renewal carries the generation over.
        let renew = |l| move |old: Option<&(u32, u32)>| (l, old.map_or(0, |o| o.1 + 1));
        let a = map.get("t", limit(5), renew(5));
        assert_eq!(*a, (5, 0));
        assert!(Arc::ptr_eq(&a, &map.get("t", limit(5), renew(5))));
        assert_eq!(*map.get("t", limit(7), renew(7)), (7, 1));
        assert_eq!(map.read().len(), 1);
    }
}
