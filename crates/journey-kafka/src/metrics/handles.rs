//! Label handles resolved once. A `with_label_values` lookup hashes every label value, takes the
//! family's lock and clones the child; on the per-event path (decisions, commands, consumed
//! records) that is most of the cost of counting. The handles here are resolved on first use
//! and kept: by an enum's index ([`Slots`]) or by a bounded name such as a journey, topic or
//! channel ([`ByName`]).
//!
//! Handles are resolved lazily, not at construction, so that a series still appears on its
//! first increment as before (no zero series for a journey that never entered anyone).

use rustc_hash::FxHashMap;
use std::sync::{OnceLock, PoisonError, RwLock};

/// One handle per variant of a closed enum, resolved on first use.
pub(crate) struct Slots<T, const N: usize>([OnceLock<T>; N]);

impl<T, const N: usize> Default for Slots<T, N> {
    fn default() -> Self {
        Slots(std::array::from_fn(|_| OnceLock::new()))
    }
}

impl<T, const N: usize> Slots<T, N> {
    /// The handle of slot `i`, resolved by `resolve` the first time.
    #[inline]
    pub(crate) fn get(&self, i: usize, resolve: impl FnOnce() -> T) -> &T {
        self.0[i].get_or_init(resolve)
    }
}

/// Values keyed by a bounded name (journey, topic, channel, reason), created on first use.
/// Reads take a shared lock; only the first use of a name takes the exclusive one.
pub(crate) struct ByName<V>(RwLock<FxHashMap<Box<str>, V>>);

impl<V> Default for ByName<V> {
    fn default() -> Self {
        ByName(RwLock::new(FxHashMap::default()))
    }
}

impl<V: Default> ByName<V> {
    /// Calls `f` with the value of `name`, created (empty) the first time.
    #[inline]
    pub(crate) fn with<R>(&self, name: &str, f: impl FnOnce(&V) -> R) -> R {
        {
            let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(v) = map.get(name) {
                return f(v);
            }
        }
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        f(map.entry(name.into()).or_default())
    }
}
