//! Keyed BLAKE3 hashing of secrets.

use std::fmt;

use crate::random::fill_bytes;

/// The server-side key of the secret hashes. Every replica must share it:
/// without it a stolen database cannot be used to test guesses offline, and
/// with a different one no stored secret would match.
#[derive(Clone)]
pub struct HashKey([u8; blake3::KEY_LEN]);

/// A hash key in configuration that is not 64 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("hash key must be 64 hexadecimal digits (32 bytes)")]
pub struct InvalidHashKey;

impl HashKey {
    /// Draws a new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; blake3::KEY_LEN];
        fill_bytes(&mut key);
        Self(key)
    }

    /// Parses a key written as 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Result<Self, InvalidHashKey> {
        let mut key = [0u8; blake3::KEY_LEN];
        hex::decode_to_slice(text.trim(), &mut key).map_err(|_| InvalidHashKey)?;
        Ok(Self(key))
    }

    /// The key as 64 hexadecimal digits, for writing a generated key to disk.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Hashes a secret value under this key.
    pub fn hash(&self, secret: &str) -> SecretHash {
        self.hash_bytes(secret.as_bytes())
    }

    /// Hashes (MACs) arbitrary bytes under this key.
    pub fn hash_bytes(&self, bytes: &[u8]) -> SecretHash {
        SecretHash(blake3::keyed_hash(&self.0, bytes))
    }

    /// A key for another purpose, derived from this one with BLAKE3's key
    /// derivation (`context` names the purpose), so one configured key never
    /// keys two different kinds of hash.
    pub fn derive(&self, context: &str) -> Self {
        Self(blake3::derive_key(context, &self.0))
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(<redacted>)")
    }
}

/// A keyed hash of a secret. Equality is constant-time (BLAKE3's `Hash`
/// compares with `constant_time_eq`), so comparing against a presented secret
/// leaks nothing through timing.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash(blake3::Hash);

impl SecretHash {
    /// The 32 hash bytes, for storage.
    pub fn as_bytes(&self) -> &[u8; blake3::OUT_LEN] {
        self.0.as_bytes()
    }

    /// Rebuilds a hash read from storage; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let bytes: [u8; blake3::OUT_LEN] = bytes.try_into().ok()?;
        Some(Self(blake3::Hash::from_bytes(bytes)))
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_secret_same_key_matches_other_key_does_not() {
        let key = HashKey::generate();
        assert_eq!(key.hash("lks_abc"), key.hash("lks_abc"));
        assert_ne!(key.hash("lks_abc"), key.hash("lks_abd"));
        assert_ne!(key.hash("lks_abc"), HashKey::generate().hash("lks_abc"));
    }

    #[test]
    fn key_round_trips_through_hex_and_bad_hex_is_refused() {
        let key = HashKey::generate();
        let parsed = HashKey::from_hex(&key.to_hex()).expect("valid hex");
        assert_eq!(parsed.hash("x"), key.hash("x"));
        assert_eq!(HashKey::from_hex("abcd").unwrap_err(), InvalidHashKey);
        assert!(HashKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn hash_round_trips_through_bytes() {
        let hash = HashKey::generate().hash("secret");
        assert_eq!(SecretHash::from_slice(hash.as_bytes()), Some(hash));
        assert_eq!(SecretHash::from_slice(&[0u8; 31]), None);
    }

    #[test]
    fn debug_output_redacts_key_and_hash() {
        let key = HashKey::generate();
        assert_eq!(format!("{key:?}"), "HashKey(<redacted>)");
        assert!(!format!("{:?}", key.hash("s")).contains(&key.to_hex()[..8]));
    }
}
