//! Several hash keys with IDs, so the hash key can rotate: new hashes use
//! the current key, and a stored hash names the key it was made with (its
//! ID), which verifies it until it is rotated away.

use std::collections::BTreeMap;
use std::fmt;

use crate::hash::HashKey;

/// A hash key's ID: a small positive number the operator chooses (the key
/// configured before rotation existed is 1). Stored beside every hash.
pub type HashKeyId = u32;

/// The ID of the key configured without one (and of every hash stored
/// before key IDs existed).
pub const FIRST_HASH_KEY_ID: HashKeyId = 1;

/// The hash keys in use: the current one, which hashes everything new, and
/// older ones that still verify what was hashed with them.
#[derive(Clone)]
pub struct HashKeys {
    current: HashKeyId,
    keys: BTreeMap<HashKeyId, HashKey>,
}

/// Why a set of hash keys was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHashKeys {
    /// Key IDs start at 1 (0 is easily an unset value).
    #[error("hash key ID 0 is not allowed (IDs start at 1)")]
    ZeroId,
    /// Two keys under one ID.
    #[error("hash key ID {0} is given twice")]
    DuplicateId(HashKeyId),
    /// The same key under two IDs: a stored ID would not say which key.
    #[error("hash keys {0} and {1} are the same key")]
    SameKey(HashKeyId, HashKeyId),
}

impl HashKeys {
    /// `current` under `current_id`, and `older` keys by ID.
    pub fn new(
        current_id: HashKeyId,
        current: HashKey,
        older: impl IntoIterator<Item = (HashKeyId, HashKey)>,
    ) -> Result<Self, InvalidHashKeys> {
        let mut keys: BTreeMap<HashKeyId, HashKey> = BTreeMap::new();
        for (id, key) in std::iter::once((current_id, current)).chain(older) {
            if id == 0 {
                return Err(InvalidHashKeys::ZeroId);
            }
            // Configuration time, not a secret comparison: plain equality.
            if let Some((&same, _)) = keys
                .iter()
                .find(|(_, known)| known.to_hex() == key.to_hex())
            {
                return Err(InvalidHashKeys::SameKey(same.min(id), same.max(id)));
            }
            if keys.insert(id, key).is_some() {
                return Err(InvalidHashKeys::DuplicateId(id));
            }
        }
        Ok(Self {
            current: current_id,
            keys,
        })
    }

    /// One key, as ID 1: a deployment that never rotated.
    pub fn single(key: HashKey) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(FIRST_HASH_KEY_ID, key);
        Self {
            current: FIRST_HASH_KEY_ID,
            keys,
        }
    }

    /// The ID of the key new hashes are made with.
    pub fn current_id(&self) -> HashKeyId {
        self.current
    }

    /// The key new hashes are made with.
    pub fn current(&self) -> &HashKey {
        // `new` and `single` always insert the current key.
        &self.keys[&self.current]
    }

    /// The key of `id`, if configured.
    pub fn get(&self, id: HashKeyId) -> Option<&HashKey> {
        self.keys.get(&id)
    }

    /// Every key by ID, in ID order.
    pub fn iter(&self) -> impl Iterator<Item = (HashKeyId, &HashKey)> {
        self.keys.iter().map(|(&id, key)| (id, key))
    }

    /// The older keys (all but the current one), in ID order.
    pub fn older(&self) -> impl Iterator<Item = (HashKeyId, &HashKey)> {
        self.iter().filter(|&(id, _)| id != self.current)
    }
}

impl From<HashKey> for HashKeys {
    fn from(key: HashKey) -> Self {
        Self::single(key)
    }
}

impl fmt::Debug for HashKeys {
    // The IDs only: never a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashKeys")
            .field("current", &self.current)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_key_hashes_and_older_ones_stay_reachable_by_id() {
        let first = HashKey::generate();
        let second = HashKey::generate();
        let keys = HashKeys::new(2, second.clone(), [(1, first.clone())]).unwrap();
        assert_eq!(keys.current_id(), 2);
        assert_eq!(keys.current().hash("s"), second.hash("s"));
        assert_eq!(keys.get(1).map(|key| key.hash("s")), Some(first.hash("s")));
        assert!(keys.get(3).is_none());
        assert_eq!(keys.older().map(|(id, _)| id).collect::<Vec<_>>(), [1]);
        assert_eq!(keys.iter().map(|(id, _)| id).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn ambiguous_sets_are_refused() {
        let key = HashKey::generate();
        assert_eq!(
            HashKeys::new(1, key.clone(), [(1, HashKey::generate())]).unwrap_err(),
            InvalidHashKeys::DuplicateId(1)
        );
        assert_eq!(
            HashKeys::new(2, key.clone(), [(1, key.clone())]).unwrap_err(),
            InvalidHashKeys::SameKey(1, 2)
        );
        assert_eq!(
            HashKeys::new(0, key, []).unwrap_err(),
            InvalidHashKeys::ZeroId
        );
    }

    #[test]
    fn a_single_key_is_id_1_and_debug_shows_no_key() {
        let key = HashKey::generate();
        let keys = HashKeys::from(key.clone());
        assert_eq!(keys.current_id(), FIRST_HASH_KEY_ID);
        let shown = format!("{keys:?}");
        assert!(!shown.contains(&key.to_hex()[..8]), "{shown}");
        assert!(shown.contains("current: 1"), "{shown}");
    }
}
