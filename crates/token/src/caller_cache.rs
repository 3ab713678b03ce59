//! Introspection callers verified recently, so checking a caller costs no
//! round trip on most introspections (see [`crate::caller_auth`]). A leaf
//! module: the cache knows keys and credential IDs, nothing of how a
//! caller is verified.
//!
//! A `moka` cache: entries expire after the caller TTL, the cache is bounded
//! (past its size the least useful entries go, never all of them), and it
//! is read without a global lock on the introspection hot path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

/// How long a verified caller is trusted without looking again, unless
/// `TokenService::with_caller_ttl` says otherwise.
pub const DEFAULT_CALLER_TTL: Duration = Duration::from_secs(30);
/// Most remembered callers (a few per gateway replica in practice).
const MAX_CALLERS: u64 = 10_000;

/// Verified introspection callers: a keyed hash of what a caller presented
/// (and its address) → its credential ID, so every entry of a credential
/// can be dropped when its policy changes.
pub(crate) struct CallerCache {
    entries: Cache<[u8; 32], Arc<str>>,
}

impl Default for CallerCache {
    fn default() -> Self {
        Self::new(DEFAULT_CALLER_TTL)
    }
}

impl fmt::Debug for CallerCache {
    // The entries are keyed by credential material: never listed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl CallerCache {
    /// A cache trusting a caller for `ttl` after its verification.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(MAX_CALLERS)
                .time_to_live(ttl)
                // For `forget`: a policy change drops one credential's
                // entries, which only a predicate over values can find.
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Whether the caller under `key` was verified within the TTL.
    pub(crate) fn get(&self, key: &[u8; 32]) -> bool {
        // A hit clones an `Arc`, not the credential ID.
        self.entries.get(key).is_some()
    }

    /// Remembers a caller of `credential_id` under `key`.
    pub(crate) fn insert(&self, key: [u8; 32], credential_id: String) {
        self.entries.insert(key, Arc::from(credential_id));
    }

    /// Forgets every entry of `credential_id` (reads stop returning them at
    /// once; the cache removes them in its own time).
    pub(crate) fn forget(&self, credential_id: &str) {
        let forgotten: Arc<str> = Arc::from(credential_id);
        if let Err(error) = self
            .entries
            .invalidate_entries_if(move |_, held| **held == *forgotten)
        {
            // Closures are enabled in `new`, so this is a bug; forgetting
            // every caller is safe (each is verified again).
            tracing::error!(%error, "cannot forget one credential's callers; forgetting all");
            self.entries.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn forgetting_a_credential_drops_its_entries_only() {
        let cache = CallerCache::default();
        cache.insert(key(1), "cred-a".to_owned());
        cache.insert(key(2), "cred-a".to_owned());
        cache.insert(key(3), "cred-b".to_owned());
        cache.forget("cred-a");
        assert!(!cache.get(&key(1)));
        assert!(!cache.get(&key(2)));
        assert!(cache.get(&key(3)));
        // Remembered again after the change: trusted again.
        cache.insert(key(1), "cred-a".to_owned());
        assert!(cache.get(&key(1)));
    }

    #[test]
    fn entries_end_with_the_ttl() {
        let cache = CallerCache::new(Duration::from_millis(20));
        cache.insert(key(1), "cred-a".to_owned());
        assert!(cache.get(&key(1)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!cache.get(&key(1)));
    }

    #[test]
    fn a_full_cache_stays_bounded_and_keeps_answering() {
        let cache = CallerCache::default();
        let total = u32::try_from(MAX_CALLERS).unwrap() * 2;
        for n in 0..total {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&n.to_be_bytes());
            cache.insert(key, format!("cred-{n}"));
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.entry_count() <= MAX_CALLERS);
        // Not cleared: most of what it holds is still there.
        assert!(cache.entries.entry_count() >= MAX_CALLERS / 2);
    }
}
