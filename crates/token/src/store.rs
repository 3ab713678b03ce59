//! The token store interface. Implementations: Redis (production) and an
//! in-process map (embedded default); one conformance suite checks both.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{StoreError, StoreIssueError};
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
    /// The credential's policy the client was verified under.
    pub policy: &'a CredentialPolicy,
    /// Where that verification comes from, which decides what the store
    /// must hold for the token to be stored.
    pub origin: PolicyOrigin,
    /// The project's limit.
    pub limit: LimitPolicy,
    /// Now (Unix seconds); tokens expired by then no longer count.
    pub now: i64,
}

/// Where the policy of an issuance comes from.
///
/// The registry is the source of truth and the token store a copy that can
/// be lost (a Redis restarted empty, flushed, evicting, or failed over to a
/// replica that missed writes). A verification the issuer remembers is
/// therefore honoured only while the store still holds exactly the policy
/// version it was made under: a store that lost the policy, or holds another
/// version, sends the issuance back to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// The registry has just verified the client and answered with this
    /// policy. The store writes it when it holds no policy or an older one
    /// (a first issuance, or a store that lost the policy).
    Registry,
    /// A verification the issuer remembers: the store must hold exactly
    /// this version, active, or the issuance is refused with
    /// [`StoreIssueError::StalePolicy`] and nothing is written.
    Remembered,
}

/// A failure counter a verification at the registry must find under
/// `limit` (see [`TokenStore::check_guards`]).
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
    /// The store holds a tombstone for the token: it was revoked (by its
    /// client, by eviction at the token limit, or with every token of its
    /// credential) and would otherwise still be live. `token` is `None`
    /// then. A tombstone lasts until the token would have expired, within
    /// the store's bound on tombstones per credential.
    pub revoked: bool,
}

/// What [`TokenStore::check_guards`] found: a counted answer, not a store
/// failure, so it is no error variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardCheck {
    /// Every counter is under its limit.
    Clear,
    /// A counter is at its limit.
    AtLimit {
        /// Seconds until that counter's window ends.
        retry_after: u32,
    },
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
/// slot) and is atomic; the failure counters live apart, under keys of
/// their own.
#[async_trait]
pub trait TokenStore: Debug + Send + Sync + 'static {
    /// Stores a token and the policy it was issued under, enforcing the
    /// limit atomically: past it, `LimitReached` (nothing written) or, with
    /// `evict_oldest`, the live token closest to expiry is revoked (and
    /// leaves a tombstone, as [`TokenStore::revoke`] does).
    ///
    /// Refuses with `StalePolicy` (nothing written, the held version
    /// reported) when the store holds a newer policy version (the credential
    /// changed after it was authenticated) or a deleted one of the same
    /// version; and, for a [`PolicyOrigin::Remembered`] verification, unless
    /// it holds exactly the presented version, active. The check and the
    /// write are one atomic step (one script on Redis, on the credential's
    /// slot). Returns how many tokens were evicted.
    async fn issue(&self, token: &NewToken<'_>) -> Result<u32, StoreIssueError>;

    /// Reads a token and its credential's policy together (one round trip).
    async fn lookup(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<Lookup, StoreError>;

    /// The credential's policy, if the store holds one (one read, or none
    /// when a store's exact cache holds it).
    async fn policy(
        &self,
        credential: CredentialKey,
    ) -> Result<Option<Arc<CredentialPolicy>>, StoreError>;

    /// Revokes one token; `false` if it was not live. A live token leaves a
    /// tombstone until it would have expired, so introspection answers
    /// "revoked" rather than "unknown" ([`Lookup::revoked`]); tombstones
    /// do not count against the token limit.
    async fn revoke(&self, credential: CredentialKey, hash: &TokenHash)
    -> Result<bool, StoreError>;

    /// Stores `policy` unless a newer version is stored, or the same
    /// version's tombstone (a deletion is never undone under its own
    /// version); live tokens follow it from now on. With `revoke_tokens`,
    /// also revokes every token of the credential (whatever the version
    /// comparison), each leaving a tombstone unless `policy` is a deletion
    /// (whose own tombstone answers for every token). Returns how many
    /// tokens were revoked. A store configured
    /// to wait for replicas (Redis `revocation_replicas`) returns only once
    /// they acknowledged the change, or fails with `Unavailable`.
    async fn apply_policy(
        &self,
        credential: CredentialKey,
        policy: &CredentialPolicy,
        revoke_tokens: bool,
    ) -> Result<u32, StoreError>;

    /// Counts one failed client authentication under `key` (a client ID and
    /// source address pair, or a source address) in a fixed window of `window_seconds` that starts
    /// with the first failure. Shared by every replica, so a limit holds
    /// across all of them.
    async fn record_failure(
        &self,
        key: &str,
        window_seconds: u32,
    ) -> Result<FailureCount, StoreError>;

    /// The failures counted under `key` in its current window.
    async fn failures(&self, key: &str) -> Result<FailureCount, StoreError>;

    /// [`TokenStore::failures`] of each of `keys`, in order. A verification
    /// at the registry reads two counters (its client ID and address pair's
    /// and its address's), so a store may read them together; this default
    /// reads them one by one.
    async fn failures_of(&self, keys: &[&str]) -> Result<Vec<FailureCount>, StoreError> {
        let mut counts = Vec::with_capacity(keys.len());
        for key in keys {
            counts.push(self.failures(key).await?);
        }
        Ok(counts)
    }

    /// [`GuardCheck::AtLimit`] (the first counter of `guards` at its
    /// limit, with the seconds left in its window) when one is; reads them
    /// with [`TokenStore::failures_of`].
    async fn check_guards(&self, guards: &[FailureGuard<'_>]) -> Result<GuardCheck, StoreError> {
        let keys: Vec<&str> = guards.iter().map(|guard| guard.key).collect();
        let counts = self.failures_of(&keys).await?;
        Ok(
            match counts
                .iter()
                .zip(guards)
                .find(|(counted, guard)| counted.count >= guard.limit)
            {
                Some((counted, _)) => GuardCheck::AtLimit {
                    retry_after: counted.resets_in,
                },
                None => GuardCheck::Clear,
            },
        )
    }

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
