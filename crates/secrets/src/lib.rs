//! Latchkey's secret material: client IDs, client secrets and (later) access
//! tokens.
//!
//! Every value is drawn from a ChaCha20 generator seeded from the operating
//! system, carries a readable prefix and a CRC32 checksum (like GitHub's
//! `ghp_…` tokens) so secret scanners can spot leaks and malformed input is
//! refused before any store is touched, and is stored only as a keyed BLAKE3
//! hash compared in constant time.
//!
//! [`identifier`] holds the syntax of the other identifiers (project and
//! credential IDs, owners, APIs), shared by the registry and the issuer.

mod format;
mod hash;
mod hash_keys;
pub mod identifier;
mod random;

pub use format::{
    ACCESS_TOKEN, BASE62_ALPHABET, CLIENT_ID, CLIENT_SECRET, MalformedToken, TokenFormat,
};
pub use hash::{HashKey, InvalidHashKey, SecretHash};
pub use hash_keys::{FIRST_HASH_KEY_ID, HashKeyId, HashKeys, InvalidHashKeys};
pub use random::{fill_bytes, random_string};
