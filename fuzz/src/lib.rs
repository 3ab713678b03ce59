//! What the fuzz targets share: a made-up hash key, a made-up credential and
//! a well-formed token of it (none of them a real secret: they are fixed
//! text anyone can read here), and the line format of the text targets.

use latchkey_secrets::{ACCESS_TOKEN, BASE62_ALPHABET, HashKey};
use latchkey_token::CredentialKey;

/// The hash key every target hashes with: a fixed pattern, not a secret.
pub const HASH_KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

/// The credential the Envoy target's store holds a token of.
pub const CREDENTIAL_ID: &str = "0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b";

/// The random part of [`token`]: a pattern, so no reader takes it for a
/// leaked token (it still passes the format check, which is the point).
const TOKEN_TAIL: &str = "FuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuzzFuz";

/// The fixed hash key.
pub fn hash_key() -> HashKey {
    HashKey::from_hex(HASH_KEY_HEX).expect("a 64-digit hex key")
}

/// The key of [`CREDENTIAL_ID`].
pub fn credential() -> CredentialKey {
    CredentialKey::from_credential_id(CREDENTIAL_ID).expect("a UUID")
}

/// A well-formed access token of [`credential`]: prefix, the credential's
/// key, a fixed tail and the CRC32 checksum as six base62 digits, the
/// format `latchkey_secrets` checks (recomputed here because the token
/// crate only draws random ones).
pub fn token() -> String {
    let mut value = format!(
        "{}_{}{}",
        ACCESS_TOKEN.prefix(),
        credential().encoded(),
        TOKEN_TAIL
    );
    value.push_str(&checksum(value.as_bytes()));
    debug_assert_eq!(value.len(), ACCESS_TOKEN.len());
    value
}

/// Six base62 digits of the CRC32 of `data`, most significant first.
pub fn checksum(data: &[u8]) -> String {
    let mut remaining = crc32fast::hash(data);
    let mut digits = [b'0'; 6];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62_ALPHABET[(remaining % 62) as usize];
        remaining /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// The `key=value` lines of a text target's input (`None` unless UTF-8).
/// A line without `=` has an empty key; the value is everything after the
/// first `=`.
pub fn fields(data: &[u8]) -> Option<Vec<(&str, &str)>> {
    let text = std::str::from_utf8(data).ok()?;
    Some(
        text.split('\n')
            .map(|line| line.split_once('=').unwrap_or(("", line)))
            .collect(),
    )
}
