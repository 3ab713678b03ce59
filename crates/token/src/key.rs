//! Access tokens and the keys they are stored under.

use std::fmt;

use latchkey_secrets::{ACCESS_TOKEN, BASE62_ALPHABET, HashKey, MalformedToken};
use uuid::Uuid;

/// Length of a credential key: a UUID in base62.
const KEY_LEN: usize = 22;
/// Bytes of the keyed hash a token is stored under. 128 bits cannot be
/// guessed without the key and keep each stored token small.
pub const TOKEN_HASH_LEN: usize = 16;

/// A credential's ID in the compact form tokens carry and store keys use
/// as their hash tag: the UUID's 128 bits as 22 base62 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialKey(u128);

impl CredentialKey {
    /// The key of a credential ID (a UUID in any standard text form).
    pub fn from_credential_id(credential_id: &str) -> Option<Self> {
        Uuid::try_parse(credential_id)
            .ok()
            .map(|id| Self(id.as_u128()))
    }

    /// The credential ID (hyphenated UUID) this key stands for.
    pub fn credential_id(&self) -> String {
        Uuid::from_u128(self.0).hyphenated().to_string()
    }

    /// The 22-character base62 form.
    pub fn encoded(&self) -> String {
        let mut digits = [b'0'; KEY_LEN];
        let mut rest = self.0;
        for digit in digits.iter_mut().rev() {
            *digit = BASE62_ALPHABET[(rest % 62) as usize];
            rest /= 62;
        }
        digits.iter().map(|&b| char::from(b)).collect()
    }

    fn decode(text: &str) -> Option<Self> {
        if text.len() != KEY_LEN {
            return None;
        }
        let mut value: u128 = 0;
        for byte in text.bytes() {
            let digit = BASE62_ALPHABET.iter().position(|&b| b == byte)? as u128;
            value = value.checked_mul(62)?.checked_add(digit)?;
        }
        Some(Self(value))
    }
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialKey({})", self.credential_id())
    }
}

impl fmt::Display for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encoded())
    }
}

/// The keyed hash a token is stored under.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; TOKEN_HASH_LEN]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

/// A well-formed token, split into what the store needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken {
    /// The credential the token was issued to.
    pub credential: CredentialKey,
    /// The token's keyed hash.
    pub hash: TokenHash,
}

/// Draws a new token for `credential` and returns it with its parsed form.
pub fn new_token(credential: CredentialKey, key: &HashKey) -> (String, ParsedToken) {
    let token = ACCESS_TOKEN.generate_with_head(&credential.encoded());
    let parsed = ParsedToken {
        credential,
        hash: hash_token(&token, key),
    };
    (token, parsed)
}

/// Checks a presented token's format and checksum (no store access) and
/// hashes it.
pub fn parse_token(token: &str, key: &HashKey) -> Result<ParsedToken, MalformedToken> {
    let body = ACCESS_TOKEN.body(token)?;
    // Valid base62 whose key overflows 128 bits was not made here.
    let credential =
        CredentialKey::decode(&body[..KEY_LEN]).ok_or_else(|| ACCESS_TOKEN.malformed())?;
    Ok(ParsedToken {
        credential,
        hash: hash_token(token, key),
    })
}

/// The keyed hash of a token already parsed (its format checked), under
/// `key`: for looking it up under an older hash key.
pub(crate) fn hash_token(token: &str, key: &HashKey) -> TokenHash {
    let full = key.hash(token);
    let mut truncated = [0u8; TOKEN_HASH_LEN];
    truncated.copy_from_slice(&full.as_bytes()[..TOKEN_HASH_LEN]);
    TokenHash(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_keys_round_trip() {
        let id = Uuid::now_v7().to_string();
        let key = CredentialKey::from_credential_id(&id).unwrap();
        assert_eq!(key.credential_id(), id);
        assert_eq!(key.encoded().len(), KEY_LEN);
        assert_eq!(CredentialKey::decode(&key.encoded()), Some(key));
        let max = CredentialKey(u128::MAX);
        assert_eq!(CredentialKey::decode(&max.encoded()), Some(max));
        assert_eq!(
            CredentialKey::decode("zzzzzzzzzzzzzzzzzzzzzz"),
            None,
            "overflow"
        );
    }

    #[test]
    fn tokens_name_their_credential_and_hash_with_the_key() {
        let hash_key = HashKey::generate();
        let credential = CredentialKey::from_credential_id(&Uuid::now_v7().to_string()).unwrap();
        let (token, parsed) = new_token(credential, &hash_key);
        assert!(token.starts_with("lkt_"));
        assert_eq!(parse_token(&token, &hash_key), Ok(parsed));
        assert_eq!(parsed.credential, credential);
        let other_key = HashKey::generate();
        assert_ne!(parse_token(&token, &other_key).unwrap().hash, parsed.hash);
        assert!(parse_token(&token[..token.len() - 1], &hash_key).is_err());
        assert!(parse_token("Bearer abc", &hash_key).is_err());
    }
}
