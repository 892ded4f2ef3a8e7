//! A slot on an inert config object (a tenant, an integration) where the
//! request-time state (`crate::state`) keeps what it found for that object
//! on its first request. Later requests of the same config version borrow
//! it, instead of looking it up by name under a lock and counting a
//! reference: work done once per version, not once per request. The config
//! never reads the slot; a reload makes new objects, with empty slots.

use std::any::Any;
use std::sync::{Arc, OnceLock};

/// What an owner (one request-time registry, named by a process-unique
/// number, never an address, which a later registry could reuse) attached;
/// a clone starts empty.
#[derive(Default)]
pub struct Attached(OnceLock<(u64, Arc<dyn Any + Send + Sync>)>);

impl Attached {
    /// The `T` that `owner` attached, made by `make` on the first call.
    /// `None` when another owner attached first (two servers in one process
    /// sharing a config): that owner's state is never handed to this one.
    pub fn get_or_attach<T: Any + Send + Sync>(
        &self,
        owner: u64,
        make: impl FnOnce() -> Arc<T>,
    ) -> Option<&T> {
        let (by, value) = self.0.get_or_init(|| (owner, make()));
        // One type per slot: the `state` module attaches a tenant's state to
        // a tenant and an integration's to an integration, nothing else.
        (*by == owner).then(|| value.downcast_ref::<T>()).flatten()
    }
}

impl Clone for Attached {
    fn clone(&self) -> Attached {
        Attached::default()
    }
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "Attached(set)"
        } else {
            "Attached(empty)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_per_owner_and_never_given_to_another() {
        let slot = Attached::default();
        let mut made = 0;
        assert_eq!(
            slot.get_or_attach(1, || {
                made += 1;
                Arc::new(7u32)
            }),
            Some(&7)
        );
        assert_eq!(
            slot.get_or_attach(1, || {
                made += 1;
                Arc::new(8u32)
            }),
            Some(&7)
        );
        assert_eq!(made, 1);
        assert_eq!(
            slot.get_or_attach(2, || Arc::new(9u32)),
            None,
            "another owner's state"
        );
        assert_eq!(
            slot.clone().get_or_attach(2, || Arc::new(9u32)),
            Some(&9),
            "a clone starts empty"
        );
    }
}
