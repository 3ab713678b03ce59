//! Client IDs, client secrets and access tokens (`latchkey_secrets`'s
//! prefixed, checksummed formats), hash keys in hex and the identifier
//! rules, on any input.
//!
//! Holds: no panic; a value a format accepts has that format's length,
//! prefix, base62 body and checksum, and changing its last checksum digit
//! makes it malformed; a refusal never echoes the value; a hash key that
//! parses prints back as the same hex (lower case, trimmed); an identifier a rule
//! accepts keeps that rule's length bound.

#![no_main]

use latchkey_fuzz::checksum;
use latchkey_secrets::identifier::{
    MAX_API_LEN, MAX_OWNER_LEN, MAX_PROJECT_ID_LEN, check_api, check_credential_id, check_owner,
    check_project_id,
};
use latchkey_secrets::{ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, HashKey, SecretHash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Any 32 bytes are a stored hash; anything else is not.
    assert_eq!(SecretHash::from_slice(data).is_some(), data.len() == 32);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [CLIENT_ID, CLIENT_SECRET, ACCESS_TOKEN] {
        match format.check(text) {
            Ok(()) => {
                assert_eq!(text.len(), format.len());
                let (head, digits) = text.split_at(text.len() - 6);
                assert_eq!(head.split_once('_').map(|(p, _)| p), Some(format.prefix()));
                assert_eq!(checksum(head.as_bytes()), digits);
                let body = format.body(text).expect("a checked value has a body");
                assert!(body.bytes().all(|b| b.is_ascii_alphanumeric()));
                // One wrong checksum digit is refused.
                let last = text.as_bytes()[text.len() - 1];
                let other = if last == b'0' { '1' } else { '0' };
                let altered = format!("{}{other}", &text[..text.len() - 1]);
                assert!(format.check(&altered).is_err());
            }
            Err(error) => {
                assert!(format.body(text).is_err());
                let message = error.to_string();
                assert_eq!(message, format!("malformed {} value", format.prefix()));
            }
        }
    }
    if let Ok(key) = HashKey::from_hex(text) {
        // Surrounding whitespace is ignored (a key file's newline).
        assert_eq!(key.to_hex(), text.trim().to_ascii_lowercase());
        // The same key hashes the same way.
        let again = HashKey::from_hex(&key.to_hex()).expect("its own hex");
        assert_eq!(key.hash(text), again.hash(text));
    }
    if check_project_id(text).is_ok() {
        assert!((3..=MAX_PROJECT_ID_LEN).contains(&text.len()));
    }
    if check_owner(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= MAX_OWNER_LEN);
    }
    if check_api(text).is_ok() {
        assert!(!text.is_empty() && text.len() <= MAX_API_LEN);
    }
    let _ = check_credential_id(text);
});
