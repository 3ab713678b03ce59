//! Prefixed, checksummed token formats: `<prefix>_<body><checksum>`.
//!
//! The body is base62 random; the checksum is the CRC32 of everything before
//! it, as six base62 digits. A typo or a truncated copy fails the checksum, so
//! it is refused without a store lookup, and the prefix tells a secret scanner
//! what it found.

use crate::random::random_string;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM_LEN: usize = 6;

/// The shape of one kind of generated value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFormat {
    prefix: &'static str,
    body_len: usize,
}

/// Public client identifiers: 22 base62 characters (131 bits).
pub const CLIENT_ID: TokenFormat = TokenFormat::new("lkc", 22);

/// Client secrets: 43 base62 characters (256 bits).
pub const CLIENT_SECRET: TokenFormat = TokenFormat::new("lks", 43);

/// Access tokens: the 22-character key of their credential, then 43 random
/// base62 characters (256 bits).
pub const ACCESS_TOKEN: TokenFormat = TokenFormat::new("lkt", 22 + 43);

/// The base62 alphabet of every format's body.
pub const BASE62_ALPHABET: &[u8] = BASE62;

/// A value that does not have the expected format. Carries no part of the
/// value, so it is safe to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed {prefix} value")]
pub struct MalformedToken {
    prefix: &'static str,
}

impl TokenFormat {
    /// A format with the given readable prefix and random body length.
    pub const fn new(prefix: &'static str, body_len: usize) -> Self {
        Self { prefix, body_len }
    }

    /// The readable prefix, without the underscore.
    pub fn prefix(&self) -> &'static str {
        self.prefix
    }

    /// Length of every value of this format.
    pub fn len(&self) -> usize {
        self.prefix.len() + 1 + self.body_len + CHECKSUM_LEN
    }

    /// Formats are never empty; present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Draws a new random value.
    pub fn generate(&self) -> String {
        self.generate_with_head("")
    }

    /// Draws a new value whose body starts with `head` (base62, shorter than
    /// the body) and continues with random characters. Access tokens carry
    /// their credential's key this way.
    pub fn generate_with_head(&self, head: &str) -> String {
        debug_assert!(head.len() < self.body_len && head.bytes().all(|b| BASE62.contains(&b)));
        let mut value = String::with_capacity(self.len());
        value.push_str(self.prefix);
        value.push('_');
        value.push_str(head);
        value.push_str(&random_string(BASE62, self.body_len - head.len()));
        let checksum = checksum(value.as_bytes());
        value.extend(checksum.iter().map(|&b| char::from(b)));
        value
    }

    /// The error for a value that is not of this format.
    pub fn malformed(&self) -> MalformedToken {
        MalformedToken {
            prefix: self.prefix,
        }
    }

    /// The body of a well-formed value (between the prefix and the
    /// checksum).
    pub fn body<'a>(&self, value: &'a str) -> Result<&'a str, MalformedToken> {
        self.check(value)?;
        Ok(&value[self.prefix.len() + 1..value.len() - CHECKSUM_LEN])
    }

    /// Checks prefix, length, alphabet and checksum.
    pub fn check(&self, value: &str) -> Result<(), MalformedToken> {
        let malformed = self.malformed();
        if value.len() != self.len() {
            return Err(malformed);
        }
        let bytes = value.as_bytes();
        let (head, expected) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let body_start = self.prefix.len() + 1;
        let well_formed = head.starts_with(self.prefix.as_bytes())
            && head[self.prefix.len()] == b'_'
            // BASE62 is exactly the ASCII letters and digits; this runs on
            // every introspection, where a search of the alphabet per
            // character showed in profiles.
            && head[body_start..].iter().all(u8::is_ascii_alphanumeric)
            && checksum(head) == expected;
        if well_formed { Ok(()) } else { Err(malformed) }
    }
}

fn checksum(data: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut remaining = crc32fast::hash(data);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(remaining % 62) as usize];
        remaining /= 62;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_is_the_ascii_letters_and_digits() {
        let alphanumeric: Vec<u8> = (0..=u8::MAX).filter(u8::is_ascii_alphanumeric).collect();
        let mut alphabet = BASE62.to_vec();
        alphabet.sort_unstable();
        assert_eq!(alphabet, alphanumeric);
    }

    #[test]
    fn generated_values_carry_prefix_and_pass_their_own_check() {
        let secret = CLIENT_SECRET.generate();
        assert!(secret.starts_with("lks_"));
        assert_eq!(secret.len(), CLIENT_SECRET.len());
        assert_eq!(CLIENT_SECRET.check(&secret), Ok(()));
        assert_ne!(secret, CLIENT_SECRET.generate());
    }

    #[test]
    fn one_changed_character_fails_the_checksum() {
        let secret = CLIENT_SECRET.generate();
        let mut bytes = secret.clone().into_bytes();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(CLIENT_SECRET.check(&tampered).is_err());
    }

    #[test]
    fn wrong_prefix_length_or_alphabet_is_malformed() {
        let client_id = CLIENT_ID.generate();
        assert!(CLIENT_SECRET.check(&client_id).is_err());
        assert!(CLIENT_ID.check(&client_id[..client_id.len() - 1]).is_err());
        assert!(CLIENT_ID.check("").is_err());
        let with_symbol = format!("lkc_{}", "!".repeat(28));
        assert!(CLIENT_ID.check(&with_symbol).is_err());
        // Multi-byte characters must not panic the byte slicing.
        let unicode = format!("lkc_{}", "é".repeat(14));
        assert!(CLIENT_ID.check(&unicode).is_err());
    }

    #[test]
    fn a_head_is_kept_and_checked_with_the_rest() {
        let token = ACCESS_TOKEN.generate_with_head("0123456789abcdefghijkl");
        assert!(token.starts_with("lkt_0123456789abcdefghijkl"));
        let body = ACCESS_TOKEN.body(&token).unwrap();
        assert_eq!(body.len(), 65);
        assert!(body.starts_with("0123456789abcdefghijkl"));
        assert!(ACCESS_TOKEN.body("lkt_nope").is_err());
    }

    #[test]
    fn error_does_not_echo_the_value() {
        let message = CLIENT_SECRET
            .check("lks_secret-material")
            .unwrap_err()
            .to_string();
        assert_eq!(message, "malformed lks value");
    }
}
