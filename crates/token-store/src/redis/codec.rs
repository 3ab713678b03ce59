//! Key names and stored values of the Redis token store.
//!
//! Every key of one credential carries the hash tag `{<credential key>}`, so
//! all of them live in one Cluster slot and each operation is a single-slot
//! command or script:
//!
//! - `<prefix>{K}:p`: the credential's policy, compact JSON;
//! - `<prefix>{K}:h`: the credential's tokens, a hash from each token's 16
//!   raw hash bytes to its record;
//! - `<prefix>{K}:z`: the same token hashes scored by expiry, for the limit,
//!   eviction and purging expired tokens from `h`;
//! - `<prefix>{K}:r`: the hashes of revoked tokens scored by when they
//!   would have expired. Their fields in `h` hold a tombstone (`r:<expiry>`)
//!   instead of a record, so introspection tells "revoked" from "unknown"
//!   in its one round trip; `r` finds them for removal (expired, or past
//!   the bound of tombstones per credential).
//!
//! One hash per credential rather than one key per token because a key
//! costs about 190 bytes of Redis memory on its own (dict entry, key string,
//! value object, expires entry) and a hash field about 80, or 20–40 while
//! the hash is small enough for Redis's listpack encoding (see
//! `docs/decisions.md`, "Redis key layout"). Hash fields have no expiry of
//! their own before Redis 7.4, so a token's expiry is in its record: reads
//! treat an expired field as absent, and the issue script removes expired
//! fields (found through `z`) before adding one; the whole hash expires
//! with its newest token.

use std::fmt::Write as _;

use latchkey_net::IpAllowlist;
use latchkey_token::{CredentialKey, CredentialPolicy, PolicyState, StoreError, TokenRecord};
use serde::{Deserialize, Serialize};

/// The key names of one credential.
#[derive(Debug)]
pub(super) struct CredentialKeys {
    /// `<prefix>{K}:`, the part every key shares.
    base: Vec<u8>,
}

impl CredentialKeys {
    pub(super) fn new(prefix: &str, credential: CredentialKey) -> Self {
        let encoded = credential.encoded();
        // Room for the longest key: `{` `}` `:` and a one-letter suffix.
        let mut base = Vec::with_capacity(prefix.len() + encoded.len() + 4);
        base.extend_from_slice(prefix.as_bytes());
        base.push(b'{');
        base.extend_from_slice(encoded.as_bytes());
        base.extend_from_slice(b"}:");
        Self { base }
    }

    /// The policy's key.
    pub(super) fn policy(&self) -> Vec<u8> {
        self.with_suffix(b"p")
    }

    /// The sorted set of token hashes.
    pub(super) fn index(&self) -> Vec<u8> {
        self.with_suffix(b"z")
    }

    /// The hash of the credential's tokens, whose fields are token hashes.
    pub(super) fn tokens(&self) -> Vec<u8> {
        self.with_suffix(b"h")
    }

    /// The sorted set of revoked token hashes (tombstones).
    pub(super) fn revoked(&self) -> Vec<u8> {
        self.with_suffix(b"r")
    }

    fn with_suffix(&self, suffix: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.base.len() + suffix.len());
        key.extend_from_slice(&self.base);
        key.extend_from_slice(suffix);
        key
    }
}

/// A token's stored value: `<issued_at>:<lifetime>:<scopes>`, scopes
/// space-separated as in OAuth. The lifetime (seconds) is shorter to write
/// than the expiry: values of at most 64 bytes keep a small credential's
/// hash in Redis's compact listpack encoding (`hash-max-listpack-value`),
/// which matters at millions of tokens.
pub(crate) fn encode_token(record: &TokenRecord) -> Vec<u8> {
    let lifetime = record.expires_at.saturating_sub(record.issued_at);
    let scopes_len: usize = record.scopes.iter().map(|scope| scope.len() + 1).sum();
    let mut value = String::with_capacity(24 + scopes_len);
    // Writing to a String cannot fail.
    let _ = write!(value, "{}:{lifetime}:", record.issued_at);
    for (index, scope) in record.scopes.iter().enumerate() {
        if index > 0 {
            value.push(' ');
        }
        value.push_str(scope);
    }
    value.into_bytes()
}

/// What a field of the tokens hash holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StoredToken {
    /// A token, live or expired.
    Issued(TokenRecord),
    /// A revoked token's tombstone, until the token would have expired
    /// (written by the scripts as `r:<expiry>`).
    Revoked { until: i64 },
}

/// Reads a value written by [`encode_token`] or a script's tombstone.
pub(super) fn decode_stored_token(value: &[u8]) -> Result<StoredToken, StoreError> {
    if let Some(until) = value.strip_prefix(b"r:") {
        let until = std::str::from_utf8(until)
            .ok()
            .and_then(|until| until.parse().ok())
            .ok_or_else(|| StoreError::Internal("malformed tombstone in Redis".into()))?;
        return Ok(StoredToken::Revoked { until });
    }
    decode_token(value).map(StoredToken::Issued)
}

/// Reads a value written by [`encode_token`].
pub(crate) fn decode_token(value: &[u8]) -> Result<TokenRecord, StoreError> {
    let corrupt = || StoreError::Internal("malformed token record in Redis".into());
    let text = std::str::from_utf8(value).map_err(|_| corrupt())?;
    // Scopes may contain ':', so they are whatever follows the second one.
    let mut parts = text.splitn(3, ':');
    let (Some(issued_at), Some(lifetime), Some(scopes)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(corrupt());
    };
    let issued_at: i64 = issued_at.parse().map_err(|_| corrupt())?;
    let lifetime: i64 = lifetime.parse().map_err(|_| corrupt())?;
    Ok(TokenRecord {
        issued_at,
        expires_at: issued_at.checked_add(lifetime).ok_or_else(corrupt)?,
        scopes: scopes.split_ascii_whitespace().map(str::to_owned).collect(),
    })
}

/// A policy's state as stored. The scripts compare against `"deleted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredState {
    Active,
    Disabled,
    Deleted,
}

impl From<PolicyState> for StoredState {
    fn from(state: PolicyState) -> Self {
        match state {
            PolicyState::Active => Self::Active,
            PolicyState::Disabled => Self::Disabled,
            PolicyState::Deleted => Self::Deleted,
        }
    }
}

impl From<StoredState> for PolicyState {
    fn from(state: StoredState) -> Self {
        match state {
            StoredState::Active => Self::Active,
            StoredState::Disabled => Self::Disabled,
            StoredState::Deleted => Self::Deleted,
        }
    }
}

/// A policy as written: one-letter names keep the JSON compact. The scripts
/// read `v` (version) and `s` (state).
#[derive(Serialize)]
struct PolicyOut<'a> {
    #[serde(rename = "v")]
    version: i64,
    #[serde(rename = "s")]
    state: StoredState,
    #[serde(rename = "c")]
    client_id: &'a str,
    #[serde(rename = "p")]
    project_id: &'a str,
    #[serde(rename = "o")]
    owner: &'a str,
    #[serde(rename = "a")]
    allowed_apis: &'a [String],
    #[serde(rename = "i")]
    allowed_ips: Vec<String>,
    #[serde(rename = "e", skip_serializing_if = "Option::is_none")]
    expire_time: Option<i64>,
}

/// A policy as read. Unknown fields are ignored, so a newer writer may add
/// some during a rolling upgrade.
#[derive(Deserialize)]
struct PolicyIn {
    #[serde(rename = "v")]
    version: i64,
    #[serde(rename = "s")]
    state: StoredState,
    #[serde(rename = "c")]
    client_id: String,
    #[serde(rename = "p")]
    project_id: String,
    #[serde(rename = "o")]
    owner: String,
    #[serde(rename = "a", default)]
    allowed_apis: Vec<String>,
    #[serde(rename = "i", default)]
    allowed_ips: Vec<String>,
    #[serde(rename = "e", default)]
    expire_time: Option<i64>,
}

/// The largest integer the scripts (Lua numbers are doubles) compare
/// exactly.
const MAX_SCRIPT_INTEGER: i64 = 1 << 53;

/// A policy's stored value.
pub(crate) fn encode_policy(policy: &CredentialPolicy) -> Result<Vec<u8>, StoreError> {
    if !(-MAX_SCRIPT_INTEGER..=MAX_SCRIPT_INTEGER).contains(&policy.version) {
        return Err(StoreError::Internal(
            "policy version out of the range the Redis scripts compare exactly".into(),
        ));
    }
    serde_json::to_vec(&PolicyOut {
        version: policy.version,
        state: policy.state.into(),
        client_id: &policy.client_id,
        project_id: &policy.project_id,
        owner: &policy.owner,
        allowed_apis: &policy.allowed_apis,
        allowed_ips: policy.allowed_ips.to_strings(),
        expire_time: policy.expire_time,
    })
    .map_err(|error| StoreError::Internal(Box::new(error)))
}

/// Reads a value written by [`encode_policy`].
pub(crate) fn decode_policy(value: &[u8]) -> Result<CredentialPolicy, StoreError> {
    let stored: PolicyIn =
        serde_json::from_slice(value).map_err(|error| StoreError::Internal(Box::new(error)))?;
    let allowed_ips = IpAllowlist::parse(&stored.allowed_ips).map_err(|invalid| {
        StoreError::Internal(
            format!(
                "malformed allowed IP in a stored policy: {}",
                invalid.reason
            )
            .into(),
        )
    })?;
    Ok(CredentialPolicy {
        version: stored.version,
        state: stored.state.into(),
        client_id: stored.client_id,
        project_id: stored.project_id,
        owner: stored.owner,
        allowed_apis: stored.allowed_apis,
        allowed_ips,
        expire_time: stored.expire_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential() -> CredentialKey {
        CredentialKey::from_credential_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap()
    }

    #[test]
    fn keys_share_the_credential_hash_tag() {
        let keys = CredentialKeys::new("lk:", credential());
        let tag = format!("{{{}}}", credential().encoded());
        assert_eq!(keys.policy(), format!("lk:{tag}:p").into_bytes());
        assert_eq!(keys.index(), format!("lk:{tag}:z").into_bytes());
        assert_eq!(keys.tokens(), format!("lk:{tag}:h").into_bytes());
        assert_eq!(keys.revoked(), format!("lk:{tag}:r").into_bytes());
    }

    #[test]
    fn tombstones_are_told_from_records() {
        assert_eq!(
            decode_stored_token(b"r:1800003600").unwrap(),
            StoredToken::Revoked {
                until: 1_800_003_600
            }
        );
        let record = decode_stored_token(b"1800000000:3600:a.read").unwrap();
        assert!(matches!(record, StoredToken::Issued(record) if record.scopes == ["a.read"]));
        for value in [&b"r:"[..], b"r:x", b"r:1.5e9"] {
            assert!(
                matches!(decode_stored_token(value), Err(StoreError::Internal(_))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn tokens_round_trip_compactly() {
        let record = TokenRecord {
            issued_at: 1_800_000_000,
            expires_at: 1_800_003_600,
            scopes: vec!["orders.read".to_owned(), "urn:api:write".to_owned()],
        };
        let value = encode_token(&record);
        assert_eq!(value, b"1800000000:3600:orders.read urn:api:write");
        assert_eq!(decode_token(&value).unwrap(), record);

        let no_scopes = TokenRecord {
            scopes: Vec::new(),
            ..record
        };
        assert_eq!(decode_token(&encode_token(&no_scopes)).unwrap(), no_scopes);
    }

    #[test]
    fn malformed_tokens_are_internal_errors() {
        for value in [&b""[..], b"12", b"x:1:read", b"1:y:read", b"\xff:1:a"] {
            assert!(
                matches!(decode_token(value), Err(StoreError::Internal(_))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn policies_round_trip() {
        let policy = CredentialPolicy {
            version: 7,
            state: PolicyState::Disabled,
            client_id: "lkc_abc".to_owned(),
            project_id: "acme".to_owned(),
            owner: "alice@example.com".to_owned(),
            allowed_apis: vec!["orders.read".to_owned()],
            allowed_ips: IpAllowlist::parse(&["10.0.0.0/8", "192.0.2.1"]).unwrap(),
            expire_time: Some(1_900_000_000),
        };
        let value = encode_policy(&policy).unwrap();
        assert!(value.starts_with(br#"{"v":7,"s":"disabled","#), "{value:?}");
        assert_eq!(decode_policy(&value).unwrap(), policy);

        let open = CredentialPolicy {
            state: PolicyState::Deleted,
            allowed_ips: IpAllowlist::default(),
            expire_time: None,
            ..policy
        };
        assert_eq!(decode_policy(&encode_policy(&open).unwrap()).unwrap(), open);
    }

    #[test]
    fn malformed_policies_are_internal_errors() {
        for value in [
            &b"{}"[..],
            b"not json",
            br#"{"v":1,"s":"active","c":"","p":"","o":"","i":["nope"]}"#,
        ] {
            assert!(
                matches!(decode_policy(value), Err(StoreError::Internal(_))),
                "{value:?}"
            );
        }
    }
}
