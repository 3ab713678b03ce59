//! Recently verified client credentials, so a client asking for tokens
//! again and again does not cost a registry call (and two SQL queries) each
//! time.
//!
//! It stays exact through the policy version: every registry change of a
//! credential — rotations included — raises the version in the token store
//! before it commits, and the issue script refuses a token stored under an
//! older version (`StalePolicy`). The issuer then forgets the entry and asks
//! the registry again, which answers with the new state (or refuses the
//! secret). So a disabled, deleted, narrowed or rotated credential is
//! refused at once on every replica, as without the cache. Beyond that, an
//! entry ends when its secret's grace period ends, when the credential
//! expires, and after [`MAX_AGE_SECONDS`] (which bounds how long a project
//! policy change — token lifetime, token limit — takes to apply).
//!
//! Only the keyed hash of the secret is kept, under a key of this process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use latchkey_secrets::{HashKey, SecretHash};

use crate::authenticator::AuthenticatedClient;

/// Longest time an entry is trusted without asking the registry.
pub(crate) const MAX_AGE_SECONDS: i64 = 30;

/// Entries kept; when full the cache starts over (cheap, and only costs
/// registry calls).
const CAPACITY: usize = 100_000;

#[derive(Debug)]
struct Entry {
    secret: SecretHash,
    client: AuthenticatedClient,
    valid_until: i64,
}

/// Verified (client ID, secret) pairs.
#[derive(Debug)]
pub(crate) struct AuthenticationCache {
    key: HashKey,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for AuthenticationCache {
    fn default() -> Self {
        Self {
            key: HashKey::generate(),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl AuthenticationCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The client, if `client_id` and `secret` were verified recently and
    /// the credential still allows `client_ip` at `now`.
    pub(crate) fn get(
        &self,
        client_id: &str,
        secret: &str,
        client_ip: IpAddr,
        now: i64,
    ) -> Option<AuthenticatedClient> {
        let presented = self.key.hash(secret);
        let entries = self.lock();
        let entry = entries.get(client_id)?;
        // Constant-time comparison (SecretHash's equality).
        if entry.secret != presented || entry.valid_until <= now {
            return None;
        }
        let policy = &entry.client.policy;
        if !policy.allowed_ips.allows(client_ip) {
            // The registry decides (and counts the failure).
            return None;
        }
        Some(entry.client.clone())
    }

    /// Remembers that the registry verified `client_id` and `secret`.
    pub(crate) fn put(
        &self,
        client_id: &str,
        secret: &str,
        client: &AuthenticatedClient,
        now: i64,
    ) {
        let mut valid_until = now + MAX_AGE_SECONDS;
        for end in [client.secret_expires_at, client.policy.expire_time]
            .into_iter()
            .flatten()
        {
            valid_until = valid_until.min(end);
        }
        let entry = Entry {
            secret: self.key.hash(secret),
            client: client.clone(),
            valid_until,
        };
        let mut entries = self.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(client_id) {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), entry);
    }

    /// Forgets `client_id` (its credential changed).
    pub(crate) fn forget(&self, client_id: &str) {
        self.lock().remove(client_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CredentialPolicy, LimitPolicy, PolicyState};
    use latchkey_net::IpAllowlist;

    fn client(secret_expires_at: Option<i64>, ips: &[&str]) -> AuthenticatedClient {
        AuthenticatedClient {
            credential_id: "c".into(),
            policy: CredentialPolicy {
                version: 1,
                state: PolicyState::Active,
                client_id: "id".into(),
                project_id: "p".into(),
                owner: "o".into(),
                allowed_apis: vec![],
                allowed_ips: IpAllowlist::parse(
                    &ips.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                )
                .unwrap(),
                expire_time: None,
            },
            limit: LimitPolicy {
                max_tokens: 1,
                evict_oldest: false,
            },
            token_ttl_seconds: 60,
            secret_expires_at,
        }
    }

    #[test]
    fn answers_only_the_same_secret_from_an_allowed_address_while_fresh() {
        let cache = AuthenticationCache::default();
        let inside: IpAddr = "10.0.0.1".parse().unwrap();
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        cache.put("id", "s3cret", &client(Some(1_010), &["10.0.0.0/8"]), 1_000);
        assert!(cache.get("id", "s3cret", inside, 1_001).is_some());
        assert!(cache.get("id", "other", inside, 1_001).is_none());
        assert!(cache.get("other-id", "s3cret", inside, 1_001).is_none());
        assert!(cache.get("id", "s3cret", outside, 1_001).is_none());
        // The secret's grace period ends at 1 010.
        assert!(cache.get("id", "s3cret", inside, 1_010).is_none());
        cache.put("id", "s3cret", &client(None, &[]), 2_000);
        assert!(
            cache
                .get("id", "s3cret", outside, 2_000 + MAX_AGE_SECONDS - 1)
                .is_some()
        );
        assert!(
            cache
                .get("id", "s3cret", outside, 2_000 + MAX_AGE_SECONDS)
                .is_none()
        );
        cache.forget("id");
        assert!(cache.get("id", "s3cret", outside, 2_001).is_none());
    }
}
