//! Stores under test and small helpers that keep the tests short.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use latchkey_net::IpAllowlist;
use latchkey_secrets::HashKey;
pub(crate) use latchkey_tests::{redis_cluster_urls, redis_url};
use latchkey_token::{
    CredentialKey, CredentialPolicy, LimitPolicy, NewToken, PolicyOrigin, PolicyState,
    StoreIssueError, TokenHash, TokenRecord, TokenStore, new_token,
};
use latchkey_token_store::{MemoryTokenStore, RedisConfig, RedisTokenStore};
use redis::aio::MultiplexedConnection;
use uuid::Uuid;

/// A store as the service holds it.
pub(crate) type Store = Arc<dyn TokenStore>;

/// A fresh in-process store.
pub(crate) fn memory_store() -> Store {
    Arc::new(MemoryTokenStore::new())
}

/// Which Redis a fixture runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deployment {
    /// The standalone server of `LATCHKEY_TEST_REDIS_URL`.
    Standalone,
    /// The cluster of `LATCHKEY_TEST_REDIS_CLUSTER_URLS`.
    Cluster,
}

impl Deployment {
    /// The store's configuration, keys under `prefix`.
    pub(crate) fn config(self, prefix: &str) -> RedisConfig {
        RedisConfig {
            url: redis_url(),
            cluster_urls: match self {
                Self::Standalone => Vec::new(),
                Self::Cluster => redis_cluster_urls(),
            },
            key_prefix: prefix.to_owned(),
            ..RedisConfig::default()
        }
    }

    /// Every node to inspect and clean: the cluster's seeds (its masters,
    /// each holding its own slots), or the standalone server.
    fn node_urls(self) -> Vec<String> {
        match self {
            Self::Standalone => vec![redis_url()],
            Self::Cluster => redis_cluster_urls(),
        }
    }
}

/// A Redis store whose keys all start with a prefix of its own, so tests run
/// in parallel on one server. Its keys are deleted when it drops.
pub(crate) struct RedisFixture {
    store: Arc<RedisTokenStore>,
    prefix: String,
    deployment: Deployment,
}

impl RedisFixture {
    /// A store on standalone Redis with a unique `test:<uuid>:` prefix.
    /// Panics when Redis does not answer: a Redis test never passes by
    /// skipping.
    pub(crate) async fn start() -> Self {
        Self::on(Deployment::Standalone).await
    }

    /// Like [`RedisFixture::start`], on the test Redis Cluster.
    pub(crate) async fn start_cluster() -> Self {
        Self::on(Deployment::Cluster).await
    }

    /// A store on `deployment` with a unique `test:<uuid>:` prefix.
    pub(crate) async fn on(deployment: Deployment) -> Self {
        let prefix = format!("test:{}:", Uuid::now_v7().simple());
        let config = deployment.config(&prefix);
        let store = RedisTokenStore::connect(&config)
            .await
            .unwrap_or_else(|error| panic!("Redis store refused {config:?}: {error:?}"));
        if let Err(error) = store.ping().await {
            panic!(
                "Redis is not reachable ({config:?}, LATCHKEY_TEST_REDIS_URL={}): {error:?}; \
                 run scripts/test, which starts it",
                redis_url()
            );
        }
        Self {
            store: Arc::new(store),
            prefix,
            deployment,
        }
    }

    /// The store, as the service holds it.
    pub(crate) fn store(&self) -> Store {
        self.store.clone()
    }

    /// The key prefix of this fixture.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where the store runs.
    pub(crate) fn deployment(&self) -> Deployment {
        self.deployment
    }
}

impl Drop for RedisFixture {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        let deployment = self.deployment;
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a short-lived thread with its own runtime does the clean-up.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(delete_keys(deployment, &prefix));
        })
        .join();
    }
}

/// Direct connections to every node of `deployment`, for inspection and
/// clean-up.
pub(crate) async fn redis_nodes(deployment: Deployment) -> Vec<MultiplexedConnection> {
    let urls = deployment.node_urls();
    let mut nodes = Vec::with_capacity(urls.len());
    for url in urls {
        let client = redis::Client::open(url.as_str()).expect("Redis URL");
        nodes.push(
            client
                .get_multiplexed_async_connection()
                .await
                .unwrap_or_else(|error| panic!("Redis node not reachable: {error}")),
        );
    }
    nodes
}

/// Every key under `prefix`, on every node: `(node index, key)`.
pub(crate) async fn keys_under(deployment: Deployment, prefix: &str) -> Vec<(usize, Vec<u8>)> {
    let mut keys = Vec::new();
    for (index, mut node) in redis_nodes(deployment).await.into_iter().enumerate() {
        let mut cursor = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .cursor_arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut node)
                .await
                .expect("SCAN");
            keys.extend(batch.into_iter().map(|key| (index, key)));
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    keys
}

/// Deletes every key under `prefix`.
pub(crate) async fn delete_keys(deployment: Deployment, prefix: &str) {
    for mut node in redis_nodes(deployment).await {
        let mut cursor = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .cursor_arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut node)
                .await
                .expect("SCAN");
            // One UNLINK per key: in a cluster, keys of different slots
            // cannot share a command.
            if !batch.is_empty() {
                let mut pipeline = redis::pipe();
                for key in &batch {
                    pipeline.cmd("UNLINK").arg(key).ignore();
                }
                let () = pipeline.query_async(&mut node).await.expect("UNLINK");
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

static HASH_KEY: LazyLock<HashKey> = LazyLock::new(HashKey::generate);

/// A new credential.
pub(crate) fn new_credential() -> CredentialKey {
    CredentialKey::from_credential_id(&Uuid::now_v7().to_string()).unwrap()
}

/// A new token's hash for `credential`.
pub(crate) fn new_hash(credential: CredentialKey) -> TokenHash {
    new_token(credential, &HASH_KEY).1.hash
}

/// An active policy of `version`.
pub(crate) fn active(version: i64) -> CredentialPolicy {
    CredentialPolicy {
        version,
        state: PolicyState::Active,
        client_id: "lkc_4vJq0cZbW3mKx9TnR2pLs8aQ1fYhD6".to_owned(),
        project_id: "acme".to_owned(),
        owner: "alice@example.com".to_owned(),
        allowed_apis: vec!["orders.read".to_owned(), "orders.write".to_owned()],
        allowed_ips: IpAllowlist::parse(&["10.0.0.0/8"]).unwrap(),
        expire_time: None,
    }
}

/// The tombstone a deletion of `version` leaves.
pub(crate) fn deleted(version: i64) -> CredentialPolicy {
    CredentialPolicy {
        state: PolicyState::Deleted,
        ..active(version)
    }
}

/// At most `max_tokens`, refusing past them.
pub(crate) fn reject(max_tokens: u32) -> LimitPolicy {
    LimitPolicy {
        max_tokens,
        evict_oldest: false,
    }
}

/// At most `max_tokens`, evicting the oldest past them.
pub(crate) fn evict(max_tokens: u32) -> LimitPolicy {
    LimitPolicy {
        max_tokens,
        evict_oldest: true,
    }
}

/// One issuance request, with defaults the tests override.
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub(crate) credential: CredentialKey,
    pub(crate) policy: CredentialPolicy,
    /// Whether the registry just answered with `policy` or the issuer
    /// remembers a verification under it.
    pub(crate) origin: PolicyOrigin,
    pub(crate) limit: LimitPolicy,
    /// What the store is told the time is.
    pub(crate) now: i64,
    pub(crate) expires_at: i64,
}

impl Issue {
    /// A one-hour token under policy version 1 as the registry answered
    /// it, limit 10 (reject).
    pub(crate) fn new(credential: CredentialKey) -> Self {
        let now = latchkey_token::unix_now();
        Self {
            credential,
            policy: active(1),
            origin: PolicyOrigin::Registry,
            limit: reject(10),
            now,
            expires_at: now + 3600,
        }
    }

    /// The same request from a remembered verification.
    pub(crate) fn remembered(self) -> Self {
        Self {
            origin: PolicyOrigin::Remembered,
            ..self
        }
    }

    /// The record this request stores.
    pub(crate) fn record(&self) -> TokenRecord {
        TokenRecord {
            issued_at: self.now,
            expires_at: self.expires_at,
            scopes: vec!["orders.read".to_owned()],
        }
    }

    /// Issues a new token: its hash and what the store answered.
    pub(crate) async fn run(&self, store: &Store) -> (TokenHash, Result<u32, StoreIssueError>) {
        let hash = new_hash(self.credential);
        let record = self.record();
        let result = store
            .issue(&NewToken {
                credential: self.credential,
                hash,
                record: &record,
                policy: &self.policy,
                origin: self.origin,
                limit: self.limit,
                now: self.now,
            })
            .await;
        (hash, result)
    }

    /// Issues a new token that must be accepted; returns its hash.
    pub(crate) async fn ok(&self, store: &Store) -> TokenHash {
        let (hash, result) = self.run(store).await;
        result.unwrap_or_else(|error| panic!("issue refused: {error:?}"));
        hash
    }
}

/// Whether the store holds `hash` as a live token of `credential`.
pub(crate) async fn holds(store: &Store, credential: CredentialKey, hash: &TokenHash) -> bool {
    store
        .lookup(credential, hash)
        .await
        .unwrap()
        .token
        .is_some()
}

/// How many of `hashes` the store holds.
pub(crate) async fn count_held(
    store: &Store,
    credential: CredentialKey,
    hashes: &[TokenHash],
) -> usize {
    let mut held = 0;
    for hash in hashes {
        if holds(store, credential, hash).await {
            held += 1;
        }
    }
    held
}

/// The stored policy's version, if any (read both ways a store offers).
pub(crate) async fn stored_version(store: &Store, credential: CredentialKey) -> Option<i64> {
    let any = new_hash(credential);
    let looked_up = store
        .lookup(credential, &any)
        .await
        .unwrap()
        .policy
        .map(|policy| policy.version);
    let read = store
        .policy(credential)
        .await
        .unwrap()
        .map(|policy| policy.version);
    assert_eq!(looked_up, read, "lookup and policy read agree");
    read
}

/// Waits until the wall clock is past `time` (Unix seconds).
pub(crate) async fn wait_past(time: i64) {
    while latchkey_token::unix_now() <= time {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
