//! The syntax of Latchkey's identifiers, in one place for the registry
//! (which checks them on every management call) and the token issuer (which
//! receives them in internal calls and must bound them the same way).
//!
//! Each check says what is wrong without echoing the value.

use std::fmt;

/// Longest project ID.
pub const MAX_PROJECT_ID_LEN: usize = 63;
/// Longest owner.
pub const MAX_OWNER_LEN: usize = 128;
/// Longest API identifier (an OAuth scope token).
pub const MAX_API_LEN: usize = 128;
/// Most entries in a credential's `allowed_apis` or `allowed_ips`.
pub const MAX_LIST_ENTRIES: usize = 64;

/// A value that breaks its identifier's rule; displays the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidIdentifier(&'static str);

impl fmt::Display for InvalidIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidIdentifier {}

/// A project ID: 3–63 characters of `a-z0-9-`, starting with a letter and
/// not ending with a hyphen (DNS-label-like, so it is safe in URLs and keys).
pub fn check_project_id(value: &str) -> Result<(), InvalidIdentifier> {
    let bytes = value.as_bytes();
    let valid = (3..=MAX_PROJECT_ID_LEN).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    valid.then_some(()).ok_or(InvalidIdentifier(
        "must be 3 to 63 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'",
    ))
}

/// A credential ID as the registry assigns them (a UUID).
pub fn check_credential_id(value: &str) -> Result<(), InvalidIdentifier> {
    uuid::Uuid::try_parse(value)
        .map(|_| ())
        .map_err(|_| InvalidIdentifier("not a credential ID"))
}

/// An owner: 1–128 characters of letters, digits and `._@:+-` (user IDs and
/// e-mail addresses fit).
pub fn check_owner(value: &str) -> Result<(), InvalidIdentifier> {
    let valid = !value.is_empty()
        && value.len() <= MAX_OWNER_LEN
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b':' | b'+' | b'-')
        });
    valid.then_some(()).ok_or(InvalidIdentifier(
        "must be 1 to 128 characters of letters, digits and '._@:+-'",
    ))
}

/// An API (an OAuth scope token): 1–128 characters of letters, digits and
/// `._:/-`, starting with a letter.
pub fn check_api(value: &str) -> Result<(), InvalidIdentifier> {
    let valid = !value.is_empty()
        && value.len() <= MAX_API_LEN
        && value.as_bytes()[0].is_ascii_alphabetic()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-'));
    valid.then_some(()).ok_or(InvalidIdentifier(
        "must be 1 to 128 characters of letters, digits and '._:/-', starting with a letter",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_dns_label_like() {
        for good in ["ops", "acme-prod-2", &"a".repeat(MAX_PROJECT_ID_LEN)] {
            assert!(check_project_id(good).is_ok(), "{good:?}");
        }
        for bad in ["", "ab", "Ops", "1ops", "ops-", "o_ps", &"a".repeat(64)] {
            assert!(check_project_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn owners_apis_and_credential_ids() {
        assert!(check_owner("alice@example.com").is_ok());
        for bad in ["", "bob smith", &"o".repeat(MAX_OWNER_LEN + 1)] {
            assert!(check_owner(bad).is_err(), "{bad:?}");
        }
        assert!(check_api("orders.read").is_ok());
        assert!(check_api("payments:write/v2").is_ok());
        for bad in ["", "1orders", "has space", &"a".repeat(MAX_API_LEN + 1)] {
            assert!(check_api(bad).is_err(), "{bad:?}");
        }
        assert!(check_credential_id("0193a0a0-0000-7000-8000-000000000001").is_ok());
        assert!(check_credential_id("not-a-uuid").is_err());
    }

    #[test]
    fn rules_name_their_limits() {
        assert!(
            check_owner("")
                .unwrap_err()
                .to_string()
                .contains(&MAX_OWNER_LEN.to_string())
        );
        assert!(
            check_api("")
                .unwrap_err()
                .to_string()
                .contains(&MAX_API_LEN.to_string())
        );
        assert!(
            check_project_id("")
                .unwrap_err()
                .to_string()
                .contains(&MAX_PROJECT_ID_LEN.to_string())
        );
    }
}
