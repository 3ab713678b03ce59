//! What the token store keeps: token records and one policy per credential.

use std::time::{SystemTime, UNIX_EPOCH};

use latchkey_net::IpAllowlist;

/// Seconds since the Unix epoch (OAuth's `iat`/`exp` unit).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

/// Whether a credential's tokens may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyState {
    /// Tokens are honoured.
    Active,
    /// The credential is disabled: tokens are refused until it is enabled.
    Disabled,
    /// The credential is deleted: a tombstone that refuses late issuances.
    Deleted,
}

/// A credential's current rules, kept once beside its tokens. Every
/// introspection applies them, so narrowing the allowlists or disabling the
/// credential reaches tokens already issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialPolicy {
    /// The registry's policy version; a store keeps the highest it has seen
    /// and refuses to go back (late or reordered writes).
    pub version: i64,
    /// Active, disabled or deleted.
    pub state: PolicyState,
    /// The public client ID.
    pub client_id: String,
    /// The credential's project.
    pub project_id: String,
    /// The credential's owner.
    pub owner: String,
    /// The APIs its tokens may call now.
    pub allowed_apis: Vec<String>,
    /// The addresses its tokens may be used from now; empty = any.
    pub allowed_ips: IpAllowlist,
    /// When the credential expires (Unix seconds), if it does.
    pub expire_time: Option<i64>,
}

/// One issued token, as stored under its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Issued at (Unix seconds).
    pub issued_at: i64,
    /// Expires at (Unix seconds).
    pub expires_at: i64,
    /// The scopes granted at issuance.
    pub scopes: Vec<String>,
}

/// How many live tokens a credential may hold and what a new one past the
/// limit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Most live tokens.
    pub max_tokens: u32,
    /// Revoke the token closest to expiry (the oldest, under one TTL)
    /// instead of refusing the new one.
    pub evict_oldest: bool,
}
