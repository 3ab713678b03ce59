//! The hash key's fingerprint, kept in the database so that a registry
//! started with another key than the one its secrets were hashed with
//! refuses to start, instead of refusing every secret as `wrong_secret`.

use latchkey_secrets::{HashKey, SecretHash};

/// Names the purpose of the key the fingerprint is made with, so the
/// fingerprint is never a hash any other part of Latchkey makes with the
/// hash key.
const DERIVATION_CONTEXT: &str = "latchkey 2026-11 hash key fingerprint";

/// What is hashed. Not a secret (it has no secret format), the same for
/// every deployment.
const LABEL: &[u8] = b"latchkey hash key fingerprint v1";

/// A keyed BLAKE3 hash of a fixed label under (a key derived from) the hash
/// key: equal for equal keys, different for different ones, and of no help
/// in finding the key (that takes a search of its 256 bits, as for any keyed
/// hash).
#[derive(Clone, PartialEq, Eq)]
pub struct HashKeyFingerprint(SecretHash);

impl HashKeyFingerprint {
    /// The fingerprint of `key`.
    pub fn of(key: &HashKey) -> Self {
        Self(key.derive(DERIVATION_CONTEXT).hash_bytes(LABEL))
    }

    /// The 32 bytes, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Rebuilds a stored fingerprint; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        SecretHash::from_slice(bytes).map(Self)
    }
}

impl std::fmt::Debug for HashKeyFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKeyFingerprint(<redacted>)")
    }
}

/// How the configured hash key compares with the database's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKeyCheck {
    /// The database held no fingerprint (a new database, or one written
    /// before fingerprints existed): this key's is now recorded.
    Recorded,
    /// The database was written with this key.
    Matches,
    /// The database was written with another key: every stored secret would
    /// be refused.
    Differs,
}

impl HashKeyCheck {
    /// Compares the configured key's fingerprint with the stored one.
    pub fn compare(configured: &HashKeyFingerprint, stored: &[u8]) -> Self {
        // A stored value of the wrong length is not this key's either.
        match HashKeyFingerprint::from_slice(stored) {
            Some(stored) if &stored == configured => Self::Matches,
            _ => Self::Differs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_matches_and_another_differs() {
        let key = HashKey::generate();
        let fingerprint = HashKeyFingerprint::of(&key);
        let again = HashKey::from_hex(&key.to_hex()).unwrap();
        assert_eq!(
            HashKeyCheck::compare(&HashKeyFingerprint::of(&again), fingerprint.as_bytes()),
            HashKeyCheck::Matches
        );
        let other = HashKeyFingerprint::of(&HashKey::generate());
        assert_eq!(
            HashKeyCheck::compare(&other, fingerprint.as_bytes()),
            HashKeyCheck::Differs
        );
        assert_eq!(
            HashKeyCheck::compare(&fingerprint, &fingerprint.as_bytes()[..31]),
            HashKeyCheck::Differs
        );
    }

    #[test]
    fn the_fingerprint_is_neither_the_key_nor_a_plain_hash_under_it() {
        let key = HashKey::generate();
        let fingerprint = HashKeyFingerprint::of(&key);
        let stored: String = fingerprint
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_ne!(stored, key.to_hex());
        assert!(!stored.contains(&key.to_hex()[..16]));
        // Not what hashing the label as a secret would store.
        assert_ne!(fingerprint.as_bytes(), key.hash_bytes(LABEL).as_bytes());
        assert_eq!(format!("{fingerprint:?}"), "HashKeyFingerprint(<redacted>)");
    }
}
