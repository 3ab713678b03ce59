//! Client secrets the registry verified, remembered so a client asking for
//! tokens again and again does not cost a registry call (and two SQL
//! queries) each time, so a gateway keeps introspecting while the registry
//! is down, and so the failure counters never refuse a secret known to be
//! right.
//!
//! A remembered verification is never trusted over the registry: it is
//! honoured only while the token store still holds exactly the policy
//! version it was made under. Every registry change of a credential —
//! rotations included — raises the version in the token store before it
//! commits, so a disabled, deleted, narrowed or rotated credential no
//! longer matches, and a store that lost the policy (restarted empty,
//! flushed, evicted) matches nothing: either way the issuer asks the
//! registry again. For issuance the check rides in the issue script's round
//! trip ([`crate::PolicyOrigin::Remembered`]); for introspection callers it
//! is one store read when their short caller-cache entry ends.
//!
//! Two ages: a verification answers issuance for [`FRESH_SECONDS`] (which
//! bounds how long a project policy change — token lifetime, token limit,
//! neither part of the credential's version — takes to apply), and serves as
//! "known good" for [`KNOWN_GOOD_SECONDS`]: introspection callers are
//! verified against it (bound to the store as above) and the failure
//! counters never refuse it. Beyond that, an entry ends when its secret's
//! grace period ends and when the credential expires, and is forgotten when
//! the registry refuses its secret.
//!
//! Only a keyed hash of the secret is kept, under a key of this process.
//!
//! A `moka` cache, bounded in size and in age (an entry past its known-good
//! age is useless): when full it drops the least useful entries, never all
//! of them, and it is read without a global lock on the issuance path.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey_secrets::{HashKey, SecretHash};
use moka::sync::Cache;

use crate::authenticator::AuthenticatedClient;

/// How long a verification answers issuance without asking the registry.
pub(crate) const FRESH_SECONDS: i64 = 30;

/// How long a verification stays known good: as long as the token store
/// keeps a policy nothing writes (a day), so a gateway verified before a
/// registry outage keeps introspecting through it.
pub(crate) const KNOWN_GOOD_SECONDS: i64 = 86_400;

/// Entries kept; past it the least useful go (each only costs a registry
/// call when its client comes back).
const CAPACITY: u64 = 100_000;

#[derive(Debug)]
struct Entry {
    secret: SecretHash,
    client: AuthenticatedClient,
    verified_at: i64,
    /// When the secret or the credential ends, whichever is first.
    ends_at: i64,
}

impl Entry {
    fn answers(&self, presented: &SecretHash, now: i64, max_age: i64) -> bool {
        // Constant-time comparison (SecretHash's equality).
        self.secret == *presented && now < self.ends_at && now < self.verified_at + max_age
    }
}

/// Verified (client ID, secret) pairs, by client ID.
pub(crate) struct AuthenticationCache {
    key: HashKey,
    /// Shared entries: a hit clones an `Arc`, not the client.
    entries: Cache<String, Arc<Entry>>,
}

impl Default for AuthenticationCache {
    fn default() -> Self {
        Self {
            key: HashKey::generate(),
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                // Wall-clock age since the last write; the ages that
                // decide (`FRESH_SECONDS`, `KNOWN_GOOD_SECONDS`) are checked
                // against the verification time on every read.
                .time_to_live(Duration::from_secs(KNOWN_GOOD_SECONDS.unsigned_abs()))
                .build(),
        }
    }
}

impl fmt::Debug for AuthenticationCache {
    // Entries hold secret hashes: never listed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticationCache")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl AuthenticationCache {
    fn find(
        &self,
        client_id: &str,
        secret: &str,
        now: i64,
        max_age: i64,
    ) -> Option<AuthenticatedClient> {
        let presented = self.key.hash(secret);
        let entry = self.entries.get(client_id)?;
        entry
            .answers(&presented, now, max_age)
            .then(|| entry.client.clone())
    }

    /// The client, if `client_id` and `secret` were verified within
    /// [`FRESH_SECONDS`] and the credential allowed `client_ip` then. The
    /// caller must still have the store confirm the policy version.
    pub(crate) fn fresh(
        &self,
        client_id: &str,
        secret: &str,
        client_ip: IpAddr,
        now: i64,
    ) -> Option<AuthenticatedClient> {
        let client = self.find(client_id, secret, now, FRESH_SECONDS)?;
        // An address outside the allowlist: the registry decides (and
        // counts the failure).
        client
            .policy
            .allowed_ips
            .allows(client_ip)
            .then_some(client)
    }

    /// The client, if `client_id` and `secret` were verified within
    /// [`KNOWN_GOOD_SECONDS`] (from any address). The caller must still
    /// have the store confirm the policy version before trusting anything
    /// but the secret itself.
    pub(crate) fn known(
        &self,
        client_id: &str,
        secret: &str,
        now: i64,
    ) -> Option<AuthenticatedClient> {
        self.find(client_id, secret, now, KNOWN_GOOD_SECONDS)
    }

    /// Remembers that the registry verified `client_id` and `secret` at
    /// `now`.
    pub(crate) fn put(
        &self,
        client_id: &str,
        secret: &str,
        client: &AuthenticatedClient,
        now: i64,
    ) {
        let ends_at = [client.secret_expires_at, client.policy.expire_time]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i64::MAX);
        let entry = Entry {
            secret: self.key.hash(secret),
            client: client.clone(),
            verified_at: now,
            ends_at,
        };
        self.entries.insert(client_id.to_owned(), Arc::new(entry));
    }

    /// Forgets `client_id` (its credential changed, or the registry refused
    /// the secret it remembered).
    pub(crate) fn forget(&self, client_id: &str) {
        self.entries.invalidate(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::client;

    #[test]
    fn answers_only_the_same_secret_from_an_allowed_address_while_fresh() {
        let cache = AuthenticationCache::default();
        let inside: IpAddr = "10.0.0.1".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        let mut limited = client(1, &["10.0.0.0/8"]);
        limited.secret_expires_at = Some(1_010);
        cache.put("id", "s3cret", &limited, 1_000);
        assert!(cache.fresh("id", "s3cret", inside, 1_001).is_some());
        assert!(cache.fresh("id", "other", inside, 1_001).is_none());
        assert!(cache.fresh("other-id", "s3cret", inside, 1_001).is_none());
        assert!(cache.fresh("id", "s3cret", outside, 1_001).is_none());
        // The secret's grace period ends at 1 010, for both ages.
        assert!(cache.fresh("id", "s3cret", inside, 1_010).is_none());
        assert!(cache.known("id", "s3cret", 1_010).is_none());

        cache.put("id", "s3cret", &client(1, &[]), 2_000);
        let fresh_end = 2_000 + FRESH_SECONDS;
        assert!(
            cache
                .fresh("id", "s3cret", outside, fresh_end - 1)
                .is_some()
        );
        assert!(cache.fresh("id", "s3cret", outside, fresh_end).is_none());
        // Still known good, far longer, for the right secret only.
        assert!(cache.known("id", "s3cret", fresh_end).is_some());
        let known_end = 2_000 + KNOWN_GOOD_SECONDS;
        assert!(cache.known("id", "s3cret", known_end - 1).is_some());
        assert!(cache.known("id", "s3cret", known_end).is_none());
        assert!(cache.known("id", "wrong", fresh_end).is_none());
        cache.forget("id");
        assert!(cache.fresh("id", "s3cret", outside, 2_001).is_none());
        assert!(cache.known("id", "s3cret", 2_001).is_none());
    }

    #[test]
    fn a_credential_expiry_ends_the_entry() {
        let cache = AuthenticationCache::default();
        let mut expiring = client(1, &[]);
        expiring.policy.expire_time = Some(1_005);
        cache.put("id", "s3cret", &expiring, 1_000);
        assert!(cache.known("id", "s3cret", 1_004).is_some());
        assert!(cache.known("id", "s3cret", 1_005).is_none());
    }
}
