//! `latchkey_token::parse_token` (the format and checksum check every
//! introspection runs before touching a store), credential keys and the
//! OAuth `scope` parameter, on any input.
//!
//! Holds: no panic; a token that parses is a well-formed `lkt_` value whose
//! first 22 body characters are its credential's key, and that key
//! round-trips through the credential ID (a UUID); parsing is
//! deterministic; the scope list has no empty entry and no space.

#![no_main]

use latchkey_secrets::ACCESS_TOKEN;
use latchkey_token::{CredentialKey, check_scope_syntax, parse_scope_list, parse_token};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = latchkey_fuzz::hash_key();
    match parse_token(text, &key) {
        Ok(parsed) => {
            assert!(ACCESS_TOKEN.check(text).is_ok());
            let body = ACCESS_TOKEN.body(text).expect("a parsed token has a body");
            assert_eq!(&body[..22], parsed.credential.encoded());
            let id = parsed.credential.credential_id();
            assert_eq!(
                CredentialKey::from_credential_id(&id),
                Some(parsed.credential)
            );
            assert_eq!(parse_token(text, &key), Ok(parsed));
        }
        Err(error) => {
            // The refusal names the format only, never the value.
            assert_eq!(error.to_string(), "malformed lkt value");
        }
    }
    if let Some(credential) = CredentialKey::from_credential_id(text) {
        let encoded = credential.encoded();
        assert_eq!(encoded.len(), 22);
        assert_eq!(
            CredentialKey::from_credential_id(&credential.credential_id()),
            Some(credential)
        );
    }
    for scope in parse_scope_list(text) {
        assert!(!scope.is_empty() && !scope.contains(' '));
        if check_scope_syntax(&scope).is_ok() {
            assert!(scope.len() <= latchkey_token::MAX_SCOPE_LEN);
        }
    }
});
