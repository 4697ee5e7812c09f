//! The hard bound on how many keys a [`BlockTable`](crate::block_table::BlockTable) keeps.
//!
//! The keys the config names are bounded by the config: every provider prefix, and every
//! exact model (an entry's, or a fallback a wildcard covers). A wildcard entry
//! (`model: openai/*`) lets the client name the rest: `openai/<anything>` becomes a key
//! of its own once it is blocked or has a trigger history. Those *derived* keys are
//! capped at [`MAX_DERIVED_KEYS`] per kind of entry (pushback blocks, latency blocks,
//! latency histories, failure circuits). At the cap, a new derived key evicts the derived
//! entry that matters least (an ended one first, then the oldest history, then the block
//! that ends soonest); a configured key is never evicted, and never counts towards the cap.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::block_table::BlockKey;

/// At most this many derived (wildcard, client-named) keys per kind of block-table entry.
pub const MAX_DERIVED_KEYS: usize = 1024;

/// Which keys the config names, and how many others a table may keep.
#[derive(Debug, Clone)]
pub struct KeyCap {
    configured: Arc<BTreeSet<String>>,
    limit: usize,
}

impl Default for KeyCap {
    /// No configured models, [`MAX_DERIVED_KEYS`].
    fn default() -> Self {
        KeyCap {
            configured: Arc::default(),
            limit: MAX_DERIVED_KEYS,
        }
    }
}

impl KeyCap {
    /// The cap with `models` (full `prefix/id` strings) as the configured exact models.
    pub fn with_models(&self, models: BTreeSet<String>) -> KeyCap {
        KeyCap {
            configured: Arc::new(models),
            limit: self.limit,
        }
    }

    /// The cap allowing `limit` derived keys per kind of entry.
    pub fn with_limit(&self, limit: usize) -> KeyCap {
        KeyCap {
            configured: Arc::clone(&self.configured),
            limit,
        }
    }

    /// True for a key the config names: a prefix, or a configured exact model. Such keys
    /// are bounded by the config and never evicted.
    pub fn is_configured(&self, key: &BlockKey) -> bool {
        match key {
            BlockKey::Prefix(_) => true,
            BlockKey::Model(m) => self.configured.contains(m),
        }
    }

    /// Makes room in `map` for an entry under `key`, to be inserted next: when `key` is a
    /// derived key not yet in `map` and `map` already holds the limit of derived keys,
    /// removes the derived entries `rank` orders first until one place is free. Call it
    /// after pruning, so that ended entries are gone first. Returns how many it evicted.
    pub fn make_room<V, R: Ord>(
        &self,
        map: &mut BTreeMap<BlockKey, V>,
        key: &BlockKey,
        rank: impl Fn(&V) -> R,
    ) -> usize {
        // Derived keys never outnumber the map: below the limit there is room, and the
        // count (a set lookup per key) is skipped.
        if self.is_configured(key) || map.contains_key(key) || map.len() < self.limit {
            return 0;
        }
        let mut evicted = 0;
        loop {
            let derived = map.keys().filter(|k| !self.is_configured(k)).count();
            if derived < self.limit {
                return evicted;
            }
            let least = map
                .iter()
                .filter(|(k, _)| !self.is_configured(k))
                .min_by_key(|(_, v)| rank(v))
                .map(|(k, _)| k.clone());
            let Some(least) = least else {
                return evicted;
            };
            map.remove(&least);
            evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(m: &str) -> BlockKey {
        BlockKey::Model(m.to_string())
    }

    #[test]
    fn at_the_limit_the_least_derived_entry_goes_and_configured_ones_stay() {
        let cap = KeyCap::default()
            .with_models(["openai/gpt-4o".to_string()].into())
            .with_limit(2);
        let mut map = BTreeMap::new();
        map.insert(model("openai/gpt-4o"), 1);
        map.insert(BlockKey::Prefix("openai".into()), 0);
        map.insert(model("openai/a"), 5);
        map.insert(model("openai/b"), 3);
        assert_eq!(cap.make_room(&mut map, &model("openai/c"), |v| *v), 1);
        assert!(
            !map.contains_key(&model("openai/b")),
            "the lowest rank goes"
        );
        assert!(map.contains_key(&model("openai/gpt-4o")));
        assert!(map.contains_key(&BlockKey::Prefix("openai".into())));
        assert_eq!(cap.make_room(&mut map, &model("openai/a"), |v| *v), 0);
        assert_eq!(
            cap.make_room(&mut map, &model("openai/gpt-4o"), |v| *v),
            0,
            "a configured key needs no room"
        );
    }
}
