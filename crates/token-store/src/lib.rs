//! Token stores: [`RedisTokenStore`] for production (standalone Redis or
//! Redis Cluster) and [`MemoryTokenStore`] for the embedded default. Both
//! implement [`latchkey_token::TokenStore`] with the same semantics, which
//! one conformance suite (`tests/token_store`) checks.

mod memory;
mod redis;

pub use self::memory::{MemoryTokenStore, Restored, Saved, SnapshotError};
pub use self::redis::{CacheStats, RedisConfig, RedisTokenStore};

use latchkey_token::{NewToken, StoreError};

/// How long a credential's policy outlives its last write when no token
/// needs it longer. A day covers the longest token lifetime the registry
/// allows, so a late issuance still meets the policy (or tombstone) that
/// refuses it.
const POLICY_RETENTION_SECS: i64 = 86_400;

/// Most tombstones of revoked tokens kept per credential. A tombstone lasts
/// until its token would have expired; past this many, those closest to
/// expiry go first and their tokens answer "unknown" instead of "revoked"
/// (inactive either way). Revocations cost no quota (a client may issue and
/// revoke, or issue past its limit under `EVICT_OLDEST`, without end), so
/// the bound is what keeps a churning credential's memory flat.
const MAX_TOMBSTONES: usize = 1000;

/// Refuses a token that is already expired: storing it would only take a
/// place under the limit. The issuer never asks for one, so this is a bug.
fn check_not_expired(token: &NewToken<'_>) -> Result<(), StoreError> {
    if token.record.expires_at <= token.now {
        return Err(StoreError::Internal(
            "refusing to store a token that is already expired".into(),
        ));
    }
    Ok(())
}
