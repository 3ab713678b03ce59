//! The token store interface. Implementations: Redis (production) and an
//! in-process map (embedded default); one conformance suite checks both.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::TokenStoreError;
use crate::key::{CredentialKey, TokenHash};
use crate::model::{CredentialPolicy, LimitPolicy, TokenRecord};

/// A token to store, with the policy it was issued under.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// The credential.
    pub credential: CredentialKey,
    /// The token's hash.
    pub hash: TokenHash,
    /// What the token grants.
    pub record: &'a TokenRecord,
    /// The credential's policy as the registry just reported it.
    pub policy: &'a CredentialPolicy,
    /// The project's limit.
    pub limit: LimitPolicy,
    /// Now (Unix seconds); tokens expired by then no longer count.
    pub now: i64,
    /// Brute-force counters that must be under their limits, checked with
    /// the write (see [`TokenStore::issue`]).
    pub guards: &'a [FailureGuard<'a>],
}

/// A failure counter an issuance must find under `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureGuard<'a> {
    /// The counter's key, as given to [`TokenStore::record_failure`].
    pub key: &'a str,
    /// Failures that refuse the issuance.
    pub limit: u32,
}

/// What one introspection read returns. Shared, not owned: a store that
/// keeps them in memory (the in-process store, the Redis store's cache)
/// hands out a reference count, not a copy of every string, on the hot
/// path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The token, if the store has it.
    pub token: Option<Arc<TokenRecord>>,
    /// The credential's policy, if the store has it.
    pub policy: Option<Arc<CredentialPolicy>>,
}

/// Failed authentications counted under one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures in the current window.
    pub count: u32,
    /// Seconds until the window ends (0 when nothing is counted).
    pub resets_in: u32,
}

/// Storage of access tokens and their credentials' policies.
///
/// Every method touches the keys of one credential only (one Redis Cluster
/// slot) and is atomic; an issuance's failure guards are the one exception,
/// read with the write where the store can and just before it otherwise.
#[async_trait]
pub trait TokenStore: Debug + Send + Sync + 'static {
    /// Stores a token and the policy it was issued under, enforcing the
    /// limit atomically: past it, `LimitReached` (nothing written) or, with
    /// `evict_oldest`, the live token closest to expiry is revoked. Refuses
    /// with `StalePolicy` when the store holds a newer policy version (the
    /// credential changed after it was authenticated) or a deleted one of the
    /// same version. Refuses with `TooManyFailures` (nothing written) when a
    /// counter of `token.guards` has reached its limit: issuance reads them
    /// anyway, and reading them with the write saves a round trip. Returns
    /// how many tokens were evicted.
    async fn issue(&self, token: &NewToken<'_>) -> Result<u32, TokenStoreError>;

    /// Reads a token and its credential's policy together (one round trip).
    async fn lookup(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<Lookup, TokenStoreError>;

    /// Revokes one token; `false` if it did not exist.
    async fn revoke(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<bool, TokenStoreError>;

    /// Stores `policy` unless a newer version is stored; live tokens follow
    /// it from now on. With `revoke_tokens`, also revokes every token of the
    /// credential (whatever the version comparison). Returns how many tokens
    /// were revoked.
    async fn apply_policy(
        &self,
        credential: CredentialKey,
        policy: &CredentialPolicy,
        revoke_tokens: bool,
    ) -> Result<u32, TokenStoreError>;

    /// Counts one failed client authentication under `key` (a client ID or
    /// a source address) in a fixed window of `window_seconds` that starts
    /// with the first failure. Shared by every replica, so a limit holds
    /// across all of them.
    async fn record_failure(
        &self,
        key: &str,
        window_seconds: u32,
    ) -> Result<FailureCount, TokenStoreError>;

    /// The failures counted under `key` in its current window.
    async fn failures(&self, key: &str) -> Result<FailureCount, TokenStoreError>;

    /// [`TokenStore::failures`] of each of `keys`, in order. Every token
    /// request reads two counters (its client ID's and its address's), so a
    /// store may read them together; this default reads them one by one.
    async fn failures_of(&self, keys: &[&str]) -> Result<Vec<FailureCount>, TokenStoreError> {
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            counts.push(self.failures(key).await?);
        }
        Ok(counts)
    }

    /// Refuses with `TooManyFailures` (the first counter of `guards` at its
    /// limit, with the seconds left in its window) when one is; reads them
    /// with [`TokenStore::failures_of`].
    async fn check_guards(&self, guards: &[FailureGuard<'_>]) -> Result<(), TokenStoreError> {
        let keys: Vec<&str> = guards.iter().map(|guard| guard.key).collect();
        let counts = self.failures_of(&keys).await?;
        match counts
            .iter()
            .zip(guards)
            .find(|(counted, guard)| counted.count >= guard.limit)
        {
            Some((counted, _)) => Err(TokenStoreError::TooManyFailures {
                retry_after: counted.resets_in,
            }),
            None => Ok(()),
        }
    }

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), TokenStoreError>;
}
