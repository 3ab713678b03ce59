//! Store loss means fail closed (rule 7, finding 6): a Redis that was
//! flushed or restarted empty confirms no remembered verification, and the
//! introspection cache drops what it held — on `FLUSHALL`/`FLUSHDB` (the
//! tracking channel's null invalidation) and on a lost connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_token::{CredentialKey, StoreIssueError, TokenHash, TokenStore};
use latchkey_token_store::{RedisConfig, RedisTokenStore};

use crate::private_redis::PrivateRedis;
use crate::support::{Issue, RedisFixture, Store, delete_keys, new_credential};

/// How long a cache may take to hear of a flush or a lost connection.
const DEADLINE: Duration = Duration::from_secs(2);

/// Asserts a remembered verification is refused for want of a policy.
async fn assert_remembered_refused(store: &Store, credential: CredentialKey) {
    let (_, result) = Issue::new(credential).remembered().run(store).await;
    assert!(
        matches!(result, Err(StoreIssueError::StalePolicy { held: None })),
        "{result:?}"
    );
}

async fn flushed_keys_confirm_no_remembered_verification(redis: RedisFixture) {
    let store = redis.store();
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&store).await;
    Issue::new(credential).remembered().ok(&store).await;

    delete_keys(redis.deployment(), redis.prefix()).await;
    assert_remembered_refused(&store, credential).await;
    let lookup = store.lookup(credential, &hash).await.unwrap();
    assert_eq!((lookup.token, lookup.policy), (None, None));
    // The registry's answer writes the policy again.
    Issue::new(credential).ok(&store).await;
    Issue::new(credential).remembered().ok(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_keys_confirm_no_remembered_verification_on_redis() {
    flushed_keys_confirm_no_remembered_verification(RedisFixture::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flushed_keys_confirm_no_remembered_verification_on_a_cluster() {
    flushed_keys_confirm_no_remembered_verification(RedisFixture::start_cluster().await).await;
}

/// A store with the introspection cache on a private server.
async fn cached_store(redis: &PrivateRedis) -> Arc<RedisTokenStore> {
    let config = RedisConfig {
        url: redis.url(),
        key_prefix: "lk:".to_owned(),
        response_timeout_ms: 300,
        ..RedisConfig::default()
    };
    let store = Arc::new(RedisTokenStore::connect(&config).await.unwrap());
    let start = Instant::now();
    while !store.cache_stats().unwrap().live {
        assert!(start.elapsed() < DEADLINE, "tracking never established");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store
}

/// Issues a token and looks it up until the cache serves it (token and
/// policy).
async fn cached_token(store: &Arc<RedisTokenStore>, credential: CredentialKey) -> TokenHash {
    let dynamic: Store = store.clone();
    let hash = Issue::new(credential).ok(&dynamic).await;
    let start = Instant::now();
    loop {
        let before = store.cache_stats().unwrap();
        let lookup = store.lookup(credential, &hash).await.unwrap();
        assert!(lookup.token.is_some());
        let after = store.cache_stats().unwrap();
        if after.hits == before.hits + 2 {
            return hash;
        }
        assert!(start.elapsed() < DEADLINE, "never served from the cache");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Looks up until the store no longer has the token or its policy.
async fn until_gone(store: &RedisTokenStore, credential: CredentialKey, hash: &TokenHash) {
    let start = Instant::now();
    loop {
        if let Ok(lookup) = store.lookup(credential, hash).await
            && lookup.token.is_none()
            && lookup.policy.is_none()
        {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the cache still serves what Redis lost"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_empties_the_introspection_cache() {
    let redis = PrivateRedis::start().await;
    let store = cached_store(&redis).await;
    let dynamic: Store = store.clone();
    let mut admin = redis.connection().await;
    for command in ["FLUSHALL", "FLUSHDB"] {
        let credential = new_credential();
        let hash = cached_token(&store, credential).await;
        let drops = store.cache_stats().unwrap().drops;
        let () = redis::cmd(command).query_async(&mut admin).await.unwrap();
        until_gone(&store, credential, &hash).await;
        let stats = store.cache_stats().unwrap();
        assert!(
            stats.drops > drops,
            "{command}: the cache was dropped whole"
        );
        assert!(stats.live, "{command}: the channel itself still works");
        assert_remembered_refused(&dynamic, credential).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_drops_the_cache_and_confirms_nothing() {
    let mut redis = PrivateRedis::start().await;
    let store = cached_store(&redis).await;
    let dynamic: Store = store.clone();
    let credential = new_credential();
    let hash = cached_token(&store, credential).await;

    redis.stop();
    redis.resume().await;
    until_gone(&store, credential, &hash).await;
    assert_remembered_refused(&dynamic, credential).await;
}
