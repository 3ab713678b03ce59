//! Introspection callers verified recently, so checking a caller costs no
//! round trip on most introspections (see [`crate::caller_auth`]). A leaf
//! module: the cache knows keys and credential IDs, nothing of how a
//! caller is verified.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a verified caller is trusted without looking again, unless
/// `TokenService::with_caller_ttl` says otherwise.
pub const DEFAULT_CALLER_TTL: Duration = Duration::from_secs(30);
/// Most remembered callers; past it the cache starts over.
const MAX_CALLERS: usize = 10_000;

#[derive(Debug)]
struct Entry {
    credential_id: String,
    valid_until: Instant,
}

/// Verified introspection callers.
#[derive(Debug)]
pub(crate) struct CallerCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    ttl: Duration,
}

impl Default for CallerCache {
    fn default() -> Self {
        Self::new(DEFAULT_CALLER_TTL)
    }
}

impl CallerCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub(crate) fn get(&self, key: &[u8; 32]) -> bool {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key)
            .is_some_and(|entry| entry.valid_until > Instant::now())
    }

    pub(crate) fn insert(&self, key: [u8; 32], credential_id: String) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_CALLERS {
            let now = Instant::now();
            entries.retain(|_, entry| entry.valid_until > now);
            if entries.len() >= MAX_CALLERS {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                credential_id,
                valid_until: Instant::now() + self.ttl,
            },
        );
    }

    /// Forgets every entry of `credential_id`.
    pub(crate) fn forget(&self, credential_id: &str) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|_, entry| entry.credential_id != credential_id);
    }
}

