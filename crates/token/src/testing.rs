//! Fakes for the domain's unit tests: a registry whose answers a test sets
//! (and can stop), and a token store with the conformance suite's rules.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use latchkey_net::IpAllowlist;
use latchkey_secrets::{HashKey, HashKeys};

use crate::authenticator::{AuthenticatedClient, ClientAuthenticator};
use crate::error::{ClientRefusal, IssueError, StoreError, StoreIssueError};
use crate::key::{CredentialKey, TokenHash};
use crate::model::{CredentialPolicy, LimitPolicy, PolicyState, TokenRecord};
use crate::service::TokenService;
use crate::store::{FailureCount, Lookup, NewToken, PolicyOrigin, TokenStore};
use crate::usage::UsageTracker;

/// The credential every fake client belongs to.
pub(crate) const CREDENTIAL_ID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
/// Its client ID.
pub(crate) const CLIENT_ID: &str = "lkc_4vJq0cZbW3mKx9TnR2pLs8aQ1fYhD6";
/// Its secret.
pub(crate) const SECRET: &str = "lks_the-right-secret";

/// The credential's store key.
pub(crate) fn credential() -> CredentialKey {
    CredentialKey::from_credential_id(CREDENTIAL_ID).unwrap()
}

/// An active client of policy `version`, allowed from `ips` (any if
/// empty), holding `orders.read` and `tokens:introspect`.
pub(crate) fn client(version: i64, ips: &[&str]) -> AuthenticatedClient {
    AuthenticatedClient {
        credential_id: CREDENTIAL_ID.to_owned(),
        policy: CredentialPolicy {
            version,
            state: PolicyState::Active,
            client_id: CLIENT_ID.to_owned(),
            project_id: "acme".to_owned(),
            owner: "alice".to_owned(),
            allowed_apis: vec!["orders.read".to_owned(), "tokens:introspect".to_owned()],
            allowed_ips: IpAllowlist::parse(
                &ips.iter().map(|ip| (*ip).to_owned()).collect::<Vec<_>>(),
            )
            .unwrap(),
            expire_time: None,
        },
        limit: LimitPolicy {
            max_tokens: 100,
            evict_oldest: false,
        },
        token_ttl_seconds: 3600,
        secret_expires_at: None,
    }
}

/// What the fake registry answers for [`CLIENT_ID`].
#[derive(Debug)]
pub(crate) enum Answer {
    /// The secret and the client it verifies.
    Client(String, Box<AuthenticatedClient>),
    /// Every secret refused with this reason.
    Refused(&'static str),
}

/// A registry whose answers the test sets.
#[derive(Debug)]
pub(crate) struct FakeRegistry {
    pub(crate) answer: Mutex<Answer>,
    /// Answers `Unavailable` (a stopped database).
    pub(crate) down: AtomicBool,
    pub(crate) authentications: AtomicUsize,
    /// `(credential, held version)` of every reconcile call.
    pub(crate) reconciles: Mutex<Vec<(String, i64)>>,
    /// Whether reconcile settles (re-applies the committed state above the
    /// held version, to `store`) or does nothing.
    pub(crate) settles: AtomicBool,
    pub(crate) store: Arc<FakeStore>,
}

impl FakeRegistry {
    /// A registry verifying [`SECRET`] for `client`.
    pub(crate) fn new(client: AuthenticatedClient, store: Arc<FakeStore>) -> Self {
        Self {
            answer: Mutex::new(Answer::Client(SECRET.to_owned(), Box::new(client))),
            down: AtomicBool::new(false),
            authentications: AtomicUsize::new(0),
            reconciles: Mutex::new(Vec::new()),
            settles: AtomicBool::new(true),
            store,
        }
    }

    /// Changes the credential as the registry does: the new policy goes to
    /// the store first.
    pub(crate) async fn change(&self, change: impl FnOnce(&mut AuthenticatedClient)) {
        let client = {
            let mut answer = self.answer.lock().unwrap();
            let Answer::Client(_, client) = &mut *answer else {
                panic!("no client to change");
            };
            change(client);
            client.policy.version += 1;
            client.clone()
        };
        self.store
            .apply_policy(credential(), &client.policy, false)
            .await
            .unwrap();
    }

    pub(crate) fn calls(&self) -> usize {
        self.authentications.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ClientAuthenticator for FakeRegistry {
    async fn authenticate(
        &self,
        client_id: &str,
        client_secret: &str,
        client_ip: IpAddr,
    ) -> Result<AuthenticatedClient, IssueError> {
        self.authentications.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(IssueError::Unavailable(
                "credential registry",
                "database down".into(),
            ));
        }
        let refusal = |reason: &str| {
            IssueError::InvalidClient(ClientRefusal {
                reason: reason.to_owned(),
                credential_id: CREDENTIAL_ID.to_owned(),
                project_id: "acme".to_owned(),
            })
        };
        if client_id != CLIENT_ID {
            return Err(IssueError::InvalidClient(ClientRefusal::because(
                "unknown_client",
            )));
        }
        match &*self.answer.lock().unwrap() {
            Answer::Refused(reason) => Err(refusal(reason)),
            Answer::Client(secret, _) if secret != client_secret => Err(refusal("wrong_secret")),
            Answer::Client(_, client) if !client.policy.allowed_ips.allows(client_ip) => {
                Err(refusal("ip_not_allowed"))
            }
            Answer::Client(_, client) => Ok((**client).clone()),
        }
    }

    async fn reconcile(&self, credential_id: &str, held_version: i64) -> Result<(), IssueError> {
        self.reconciles
            .lock()
            .unwrap()
            .push((credential_id.to_owned(), held_version));
        if self.settles.load(Ordering::SeqCst) {
            let policy = {
                let mut answer = self.answer.lock().unwrap();
                let Answer::Client(_, client) = &mut *answer else {
                    return Ok(());
                };
                client.policy.version = held_version + 1;
                client.policy.clone()
            };
            self.store
                .apply_policy(credential(), &policy, false)
                .await
                .unwrap();
        }
        Ok(())
    }
}

/// A token store with the conformance suite's rules, in a map.
#[derive(Debug, Default)]
pub(crate) struct FakeStore {
    policies: Mutex<HashMap<CredentialKey, Arc<CredentialPolicy>>>,
    tokens: Mutex<HashMap<TokenHash, Arc<TokenRecord>>>,
    /// Tombstones of revoked tokens.
    revoked: Mutex<std::collections::HashSet<TokenHash>>,
    failures: Mutex<HashMap<String, u32>>,
    pub(crate) policy_reads: AtomicUsize,
}

impl FakeStore {
    /// Forgets everything, as a Redis restarted empty.
    pub(crate) fn wipe(&self) {
        self.policies.lock().unwrap().clear();
        self.tokens.lock().unwrap().clear();
        self.failures.lock().unwrap().clear();
    }

    /// Puts `policy` in place whatever is stored (a lost commit's leftover).
    pub(crate) fn force(&self, policy: &CredentialPolicy) {
        self.policies
            .lock()
            .unwrap()
            .insert(credential(), Arc::new(policy.clone()));
    }

    pub(crate) fn held_version(&self) -> Option<i64> {
        self.policies
            .lock()
            .unwrap()
            .get(&credential())
            .map(|policy| policy.version)
    }

    pub(crate) fn failures_under(&self, key: &str) -> u32 {
        self.failures.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

#[async_trait]
impl TokenStore for FakeStore {
    async fn issue(&self, token: &NewToken<'_>) -> Result<u32, StoreIssueError> {
        let mut policies = self.policies.lock().unwrap();
        let stored = policies.get(&token.credential);
        let presented = token.policy;
        let refused = match (stored, token.origin) {
            (None, PolicyOrigin::Registry) => false,
            (None, PolicyOrigin::Remembered) => true,
            (Some(stored), PolicyOrigin::Registry) => {
                stored.version > presented.version
                    || (stored.version == presented.version && stored.state == PolicyState::Deleted)
            }
            (Some(stored), PolicyOrigin::Remembered) => {
                stored.version != presented.version || stored.state != PolicyState::Active
            }
        };
        if refused {
            return Err(StoreIssueError::StalePolicy {
                held: stored.map(|stored| stored.version),
            });
        }
        policies.insert(token.credential, Arc::new(presented.clone()));
        self.tokens
            .lock()
            .unwrap()
            .insert(token.hash, Arc::new(token.record.clone()));
        Ok(0)
    }

    async fn lookup(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<Lookup, StoreError> {
        Ok(Lookup {
            token: self.tokens.lock().unwrap().get(hash).cloned(),
            policy: self.policies.lock().unwrap().get(&credential).cloned(),
            revoked: self.revoked.lock().unwrap().contains(hash),
        })
    }

    async fn policy(
        &self,
        credential: CredentialKey,
    ) -> Result<Option<Arc<CredentialPolicy>>, StoreError> {
        self.policy_reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.policies.lock().unwrap().get(&credential).cloned())
    }

    async fn revoke(
        &self,
        _credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        let revoked = self.tokens.lock().unwrap().remove(hash).is_some();
        if revoked {
            self.revoked.lock().unwrap().insert(*hash);
        }
        Ok(revoked)
    }

    async fn apply_policy(
        &self,
        credential: CredentialKey,
        policy: &CredentialPolicy,
        _revoke_tokens: bool,
    ) -> Result<u32, StoreError> {
        let mut policies = self.policies.lock().unwrap();
        let keep = policies.get(&credential).is_some_and(|stored| {
            stored.version > policy.version
                || (stored.version == policy.version && stored.state == PolicyState::Deleted)
        });
        if !keep {
            policies.insert(credential, Arc::new(policy.clone()));
        }
        Ok(0)
    }

    async fn record_failure(
        &self,
        key: &str,
        _window_seconds: u32,
    ) -> Result<FailureCount, StoreError> {
        let mut failures = self.failures.lock().unwrap();
        let count = failures.entry(key.to_owned()).or_default();
        *count += 1;
        Ok(FailureCount {
            count: *count,
            resets_in: 60,
        })
    }

    async fn failures(&self, key: &str) -> Result<FailureCount, StoreError> {
        let count = self.failures_under(key);
        Ok(FailureCount {
            count,
            resets_in: if count > 0 { 60 } else { 0 },
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A token service over a fake store and registry (verifying [`SECRET`]
/// for a client of policy version 1, any address).
pub(crate) struct Fixture {
    pub(crate) store: Arc<FakeStore>,
    pub(crate) registry: Arc<FakeRegistry>,
    pub(crate) tokens: TokenService,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with_keys(HashKey::generate().into())
    }

    /// A fixture hashing tokens with `keys`.
    pub(crate) fn with_keys(keys: HashKeys) -> Self {
        let store = Arc::new(FakeStore::default());
        let registry = Arc::new(FakeRegistry::new(client(1, &[]), store.clone()));
        let tokens = TokenService::new(
            store.clone(),
            registry.clone(),
            keys,
            Arc::new(UsageTracker::default()),
        );
        Self {
            store,
            registry,
            tokens,
        }
    }

    /// Another service over the same store and registry (another replica,
    /// or this one restarted) hashing tokens with `keys`.
    pub(crate) fn replica(&self, keys: HashKeys) -> TokenService {
        TokenService::new(
            self.store.clone(),
            self.registry.clone(),
            keys,
            Arc::new(UsageTracker::default()),
        )
    }
}
