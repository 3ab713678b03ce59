//! The in-process token store of the embedded default.

mod snapshot;

pub use self::snapshot::{Restored, Saved, SnapshotError};

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use latchkey_token::{
    CredentialKey, CredentialPolicy, FailureCount, LimitPolicy, Lookup, NewToken, PolicyOrigin,
    PolicyState, StoreError, StoreIssueError, TokenHash, TokenRecord, TokenStore, unix_now,
};

use crate::{MAX_TOMBSTONES, POLICY_RETENTION_SECS, check_not_expired};

/// Independent locks, so requests for different credentials rarely wait on
/// each other. Every operation touches one credential, hence one shard.
const SHARDS: usize = 16;

/// Tokens and policies in this process's memory.
///
/// Expired tokens are dropped when their credential is next touched;
/// [`MemoryTokenStore::sweep`], called periodically, drops the rest and
/// forgets policies no token needs any more, so memory stays bounded.
///
/// A clean shutdown saves them ([`MemoryTokenStore::close_and_save`]) and
/// the next start takes them back ([`MemoryTokenStore::restore`]), so live
/// tokens outlive a restart of the embedded default; a crash loses them
/// (fail closed: clients fetch new tokens).
pub struct MemoryTokenStore {
    shards: Box<[Mutex<HashMap<CredentialKey, Stored>>]>,
    hasher: RandomState,
    /// Failed authentications: key → (count, window end, Unix seconds).
    failures: Mutex<HashMap<String, (u32, i64)>>,
    /// Set, under every shard's lock, once the contents were saved: a write
    /// after that would be missing from the snapshot (a revocation lost
    /// across the restart), so it is refused as unavailable instead, and
    /// whoever asked for it (the registry) does not commit.
    closed: AtomicBool,
}

/// What is kept for one credential.
struct Stored {
    policy: Arc<CredentialPolicy>,
    /// When `policy` was last written (Unix seconds).
    written_at: i64,
    tokens: ByExpiry<Arc<TokenRecord>>,
    /// Tombstones of revoked tokens, until the token would have expired.
    /// At most [`MAX_TOMBSTONES`].
    revoked: ByExpiry<()>,
}

/// Entries by token hash, each with its expiry, indexed by expiry too: an
/// issuance drops its credential's expired tokens and, at the limit,
/// evicts the oldest, and without the index both scanned every live token
/// of the credential (10,000 tokens made each issuance cost milliseconds).
struct ByExpiry<V> {
    entries: HashMap<TokenHash, (i64, V)>,
    /// (expiry, hash) of every entry; ties broken by hash, so the order
    /// does not depend on map order.
    order: BTreeSet<(i64, [u8; 16])>,
}

impl<V> Default for ByExpiry<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<V> ByExpiry<V> {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, hash: &TokenHash) -> Option<&(i64, V)> {
        self.entries.get(hash)
    }

    fn insert(&mut self, hash: TokenHash, expires_at: i64, value: V) {
        if let Some((old, _)) = self.entries.insert(hash, (expires_at, value)) {
            self.order.remove(&(old, hash.0));
        }
        self.order.insert((expires_at, hash.0));
    }

    fn remove(&mut self, hash: &TokenHash) -> Option<(i64, V)> {
        let removed = self.entries.remove(hash)?;
        self.order.remove(&(removed.0, hash.0));
        Some(removed)
    }

    /// Removes and returns the entry expiring first.
    fn pop_first(&mut self) -> Option<(TokenHash, i64, V)> {
        let (expires_at, hash) = self.order.pop_first()?;
        let hash = TokenHash(hash);
        let (_, value) = self.entries.remove(&hash)?;
        Some((hash, expires_at, value))
    }

    /// Drops the entries expired by `now` (at or before it).
    fn drop_expired(&mut self, now: i64) {
        while let Some(&(expires_at, hash)) = self.order.first() {
            if expires_at > now {
                break;
            }
            self.order.pop_first();
            self.entries.remove(&TokenHash(hash));
        }
    }

    /// Takes every entry, earliest expiry first.
    fn take_all(&mut self) -> Vec<(TokenHash, i64, V)> {
        let mut taken = Vec::with_capacity(self.len());
        while let Some(entry) = self.pop_first() {
            taken.push(entry);
        }
        taken
    }
}

impl Stored {
    fn new(policy: &CredentialPolicy, now: i64) -> Self {
        Self {
            policy: Arc::new(policy.clone()),
            written_at: now,
            tokens: ByExpiry::default(),
            revoked: ByExpiry::default(),
        }
    }

    /// Replaces the policy (lookups in flight keep the one they read);
    /// an unchanged one, as on most issuances, is kept as it is.
    fn write_policy(&mut self, policy: &CredentialPolicy, now: i64) {
        if *self.policy != *policy {
            self.policy = Arc::new(policy.clone());
        }
        self.written_at = now;
    }

    /// Drops the tokens expired by `now`, and the tombstones of tokens that
    /// would have.
    fn drop_expired(&mut self, now: i64) {
        self.tokens.drop_expired(now);
        self.revoked.drop_expired(now);
    }

    /// Revokes a token: a live one leaves a tombstone until it would have
    /// expired (see [`MAX_TOMBSTONES`]). Whether it was live.
    fn revoke(&mut self, hash: &TokenHash, now: i64) -> bool {
        let Some((expires_at, _)) = self.tokens.remove(hash) else {
            return false;
        };
        if expires_at <= now {
            return false;
        }
        self.bury(*hash, expires_at);
        true
    }

    /// Adds a tombstone; past the bound, drops the one closest to expiry.
    fn bury(&mut self, hash: TokenHash, until: i64) {
        self.revoked.insert(hash, until, ());
        while self.revoked.len() > MAX_TOMBSTONES {
            if self.revoked.pop_first().is_none() {
                break;
            }
        }
    }

    /// Whether the entry must be kept at `now`: it has live tokens, or its
    /// policy is recent enough to refuse a late issuance.
    fn is_needed(&self, now: i64) -> bool {
        !self.tokens.is_empty()
            || !self.revoked.is_empty()
            || now < self.written_at.saturating_add(POLICY_RETENTION_SECS)
    }

    /// Revokes the `count` tokens closest to expiry (ties broken by hash, so
    /// the choice does not depend on map order), leaving tombstones.
    fn evict_oldest(&mut self, count: usize) {
        for _ in 0..count {
            let Some((hash, expires_at, _)) = self.tokens.pop_first() else {
                break;
            };
            self.bury(hash, expires_at);
        }
    }
}

impl fmt::Debug for MemoryTokenStore {
    // Not the contents: a log line must not dump every token and policy.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryTokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            failures: Mutex::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Refuses a write once the store was closed by a save.
    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "the in-process token store is shutting down".into(),
            ));
        }
        Ok(())
    }

    /// Drops every token expired by `now` and every policy no longer needed:
    /// without live tokens and last written more than a day before `now`.
    pub fn sweep(&self, now: i64) {
        lock(&self.failures).retain(|_, (_, window_end)| *window_end > now);
        for shard in &self.shards {
            lock(shard).retain(|_, stored| {
                stored.drop_expired(now);
                stored.is_needed(now)
            });
        }
    }

    fn shard(&self, credential: CredentialKey) -> MutexGuard<'_, HashMap<CredentialKey, Stored>> {
        // The modulo keeps the value below SHARDS, so the cast cannot truncate.
        let index = (self.hasher.hash_one(credential) % SHARDS as u64) as usize;
        lock(&self.shards[index])
    }
}

/// Locks a shard. A panic while holding it cannot leave an entry half
/// written (every critical section only moves whole values in and out of
/// maps), so a poisoned lock is still safe to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Frees a place under `limit` by evicting the tokens closest to expiry,
/// or refuses; returns how many were evicted.
fn make_room(stored: &mut Stored, limit: LimitPolicy) -> Result<u32, StoreIssueError> {
    let max = limit.max_tokens as usize;
    let live = stored.tokens.len();
    if live < max {
        return Ok(0);
    }
    if !limit.evict_oldest || max == 0 {
        return Err(StoreIssueError::LimitReached(limit.max_tokens));
    }
    let excess = live - max + 1;
    stored.evict_oldest(excess);
    // `excess` is at most `live`, itself bounded by earlier limits (u32).
    Ok(u32::try_from(excess).unwrap_or(u32::MAX))
}

/// Whether a stored policy refuses an issuance under `presented`: it is
/// newer, or the same version's tombstone; and, for a remembered
/// verification, anything but exactly `presented`'s version, active.
fn refuses(stored: &CredentialPolicy, presented: &CredentialPolicy, origin: PolicyOrigin) -> bool {
    match origin {
        PolicyOrigin::Registry => !supersedes(presented, stored),
        PolicyOrigin::Remembered => {
            stored.version != presented.version || stored.state != PolicyState::Active
        }
    }
}

/// Whether `presented` may replace `stored`: a newer version, or the same
/// one unless that is a tombstone (a deletion is never undone under its own
/// version).
fn supersedes(presented: &CredentialPolicy, stored: &CredentialPolicy) -> bool {
    presented.version > stored.version
        || (presented.version == stored.version
            && (stored.state != PolicyState::Deleted || presented.state == PolicyState::Deleted))
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn issue(&self, token: &NewToken<'_>) -> Result<u32, StoreIssueError> {
        check_not_expired(token)?;
        let now = token.now;
        let mut shard = self.shard(token.credential);
        self.check_open()?;
        let mut evicted = 0;
        if let Some(stored) = shard.get_mut(&token.credential) {
            if refuses(&stored.policy, token.policy, token.origin) {
                return Err(StoreIssueError::StalePolicy {
                    held: Some(stored.policy.version),
                });
            }
            stored.drop_expired(now);
            evicted = make_room(stored, token.limit)?;
        } else if token.origin == PolicyOrigin::Remembered {
            // Lost (or never stored): only the registry can vouch again.
            return Err(StoreIssueError::StalePolicy { held: None });
        } else if token.limit.max_tokens == 0 {
            return Err(StoreIssueError::LimitReached(0));
        }
        let stored = shard
            .entry(token.credential)
            .or_insert_with(|| Stored::new(token.policy, now));
        stored.tokens.insert(
            token.hash,
            token.record.expires_at,
            Arc::new(token.record.clone()),
        );
        // Not refused: the presented policy is the stored one, or
        // supersedes it.
        stored.write_policy(token.policy, now);
        Ok(evicted)
    }

    async fn policy(
        &self,
        credential: CredentialKey,
    ) -> Result<Option<Arc<CredentialPolicy>>, StoreError> {
        Ok(self
            .shard(credential)
            .get(&credential)
            .map(|stored| stored.policy.clone()))
    }

    async fn lookup(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<Lookup, StoreError> {
        let now = unix_now();
        let mut shard = self.shard(credential);
        let Some(stored) = shard.get_mut(&credential) else {
            return Ok(Lookup::default());
        };
        let token = match stored.tokens.get(hash) {
            Some((expires_at, record)) if *expires_at > now => Some(record.clone()),
            Some(_) => {
                stored.tokens.remove(hash);
                None
            }
            None => None,
        };
        let revoked = token.is_none()
            && match stored.revoked.get(hash) {
                Some(&(until, ())) if until > now => true,
                Some(_) => {
                    stored.revoked.remove(hash);
                    false
                }
                None => false,
            };
        Ok(Lookup {
            token,
            policy: Some(stored.policy.clone()),
            revoked,
        })
    }

    async fn revoke(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        let now = unix_now();
        let mut shard = self.shard(credential);
        self.check_open()?;
        Ok(shard
            .get_mut(&credential)
            .is_some_and(|stored| stored.revoke(hash, now)))
    }

    async fn apply_policy(
        &self,
        credential: CredentialKey,
        policy: &CredentialPolicy,
        revoke_tokens: bool,
    ) -> Result<u32, StoreError> {
        let now = unix_now();
        let mut shard = self.shard(credential);
        self.check_open()?;
        let Some(stored) = shard.get_mut(&credential) else {
            shard.insert(credential, Stored::new(policy, now));
            return Ok(0);
        };
        let mut revoked = 0;
        if revoke_tokens {
            stored.drop_expired(now);
            revoked = stored.tokens.len();
            let by_expiry = stored.tokens.take_all();
            // A deletion's own tombstone answers for every token.
            if policy.state != PolicyState::Deleted {
                // The latest-expiring ones, should they exceed the bound.
                let skip = by_expiry.len().saturating_sub(MAX_TOMBSTONES);
                for (hash, expires_at, _) in by_expiry.into_iter().skip(skip) {
                    stored.bury(hash, expires_at);
                }
            }
        }
        if supersedes(policy, &stored.policy) {
            stored.write_policy(policy, now);
        }
        Ok(u32::try_from(revoked).unwrap_or(u32::MAX))
    }

    async fn record_failure(
        &self,
        key: &str,
        window_seconds: u32,
    ) -> Result<FailureCount, StoreError> {
        let now = unix_now();
        let mut failures = lock(&self.failures);
        let entry = failures.entry(key.to_owned()).or_insert((0, 0));
        if entry.1 <= now {
            *entry = (0, now + i64::from(window_seconds));
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(FailureCount {
            count: entry.0,
            resets_in: u32::try_from(entry.1 - now).unwrap_or(0),
        })
    }

    async fn failures(&self, key: &str) -> Result<FailureCount, StoreError> {
        let now = unix_now();
        Ok(match lock(&self.failures).get(key) {
            Some(&(count, window_end)) if window_end > now => FailureCount {
                count,
                resets_in: u32::try_from(window_end - now).unwrap_or(0),
            },
            _ => FailureCount::default(),
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential() -> CredentialKey {
        CredentialKey::from_credential_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").unwrap()
    }

    fn policy() -> CredentialPolicy {
        CredentialPolicy {
            version: 1,
            state: PolicyState::Active,
            client_id: "lkc_client".to_owned(),
            project_id: "acme".to_owned(),
            owner: "alice".to_owned(),
            allowed_apis: vec!["read".to_owned()],
            allowed_ips: Default::default(),
            expire_time: None,
        }
    }

    async fn issue(store: &MemoryTokenStore, hash: u8, now: i64, expires_at: i64) {
        let record = TokenRecord {
            issued_at: now,
            expires_at,
            scopes: vec!["read".to_owned()],
        };
        let policy = policy();
        let token = NewToken {
            credential: credential(),
            hash: TokenHash([hash; 16]),
            record: &record,
            policy: &policy,
            origin: PolicyOrigin::Registry,
            limit: LimitPolicy {
                max_tokens: 10,
                evict_oldest: false,
            },
            now,
        };
        store.issue(&token).await.unwrap();
    }

    fn tokens_held(store: &MemoryTokenStore) -> usize {
        store
            .shards
            .iter()
            .map(|shard| {
                lock(shard)
                    .values()
                    .map(|stored| stored.tokens.len())
                    .sum::<usize>()
            })
            .sum()
    }

    fn credentials_held(store: &MemoryTokenStore) -> usize {
        store.shards.iter().map(|shard| lock(shard).len()).sum()
    }

    #[tokio::test]
    async fn sweep_drops_expired_tokens_then_idle_policies() {
        let store = MemoryTokenStore::new();
        let t0 = 1_800_000_000;
        issue(&store, 1, t0, t0 + 60).await;
        issue(&store, 2, t0, t0 + 600).await;

        store.sweep(t0 + 59);
        assert_eq!(tokens_held(&store), 2);
        store.sweep(t0 + 60);
        assert_eq!(tokens_held(&store), 1, "the first token expired");
        store.sweep(t0 + 600);
        assert_eq!(tokens_held(&store), 0);
        assert_eq!(credentials_held(&store), 1, "the policy is kept a day");

        store.sweep(t0 + POLICY_RETENTION_SECS - 1);
        assert_eq!(credentials_held(&store), 1);
        store.sweep(t0 + POLICY_RETENTION_SECS);
        assert_eq!(credentials_held(&store), 0, "an idle policy is forgotten");
    }

    #[tokio::test]
    async fn sweep_keeps_a_tombstone_until_its_token_would_have_expired() {
        let store = MemoryTokenStore::new();
        let t0 = unix_now();
        issue(&store, 1, t0, t0 + 2 * POLICY_RETENTION_SECS).await;
        assert!(
            store
                .revoke(credential(), &TokenHash([1; 16]))
                .await
                .unwrap()
        );
        store.sweep(t0 + POLICY_RETENTION_SECS + 1);
        assert_eq!(credentials_held(&store), 1, "the tombstone keeps its entry");
        store.sweep(t0 + 2 * POLICY_RETENTION_SECS);
        assert_eq!(credentials_held(&store), 0, "then both go");
    }

    #[tokio::test]
    async fn sweep_keeps_a_policy_while_a_token_needs_it() {
        let store = MemoryTokenStore::new();
        let t0 = 1_800_000_000;
        issue(&store, 1, t0, t0 + 2 * POLICY_RETENTION_SECS).await;
        store.sweep(t0 + POLICY_RETENTION_SECS + 1);
        assert_eq!(credentials_held(&store), 1);
        assert_eq!(tokens_held(&store), 1);
    }
}
