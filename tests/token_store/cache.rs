//! The exact introspection cache of the Redis store (standalone Redis):
//! hot lookups are served without Redis, and every change — by another
//! replica, by any other Redis client — reaches a replica that cached the
//! old value within the invalidation delay (measured and printed; asserted
//! under a second to stay robust on a busy machine). A broken invalidation
//! channel drops the whole cache.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_token::{CredentialKey, Lookup, TokenHash, TokenStore};
use latchkey_token_store::RedisTokenStore;

use crate::support::{
    Deployment, Issue, RedisFixture, active, deleted, new_credential, redis_nodes,
};

/// The bound the tests assert; the design's target is 50 ms.
const DEADLINE: Duration = Duration::from_secs(1);

/// Another replica: a second store on the fixture's keys.
async fn replica(redis: &RedisFixture) -> Arc<RedisTokenStore> {
    let config = Deployment::Standalone.config(redis.prefix());
    let store = RedisTokenStore::connect(&config).await.unwrap();
    wait_live(&store).await;
    Arc::new(store)
}

async fn wait_live(store: &RedisTokenStore) {
    let start = Instant::now();
    while !store.cache_stats().unwrap().live {
        assert!(start.elapsed() < DEADLINE, "tracking never established");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Looks `hash` up until a lookup is served wholly from the cache (token
/// and policy). The first fill may be voided by a late invalidation of the
/// write that made the token — the cache's exactness at work — so a few
/// rounds are allowed, within the deadline.
async fn cache(store: &RedisTokenStore, credential: CredentialKey, hash: &TokenHash) -> Lookup {
    let first = store.lookup(credential, hash).await.unwrap();
    let start = Instant::now();
    loop {
        let before = store.cache_stats().unwrap();
        let again = store.lookup(credential, hash).await.unwrap();
        let after = store.cache_stats().unwrap();
        assert_eq!(first, again);
        if after.hits == before.hits + 2 && after.misses == before.misses {
            return again;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "token and policy never served from the cache"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Polls `store` until `done` holds for its lookup; the time it took.
async fn until(
    store: &RedisTokenStore,
    credential: CredentialKey,
    hash: &TokenHash,
    what: &str,
    done: impl Fn(&Lookup) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let lookup = store.lookup(credential, hash).await.unwrap();
        if done(&lookup) {
            let delay = start.elapsed();
            println!("invalidation delay ({what}): {delay:?}");
            return delay;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: the replica still serves the old value after {DEADLINE:?}"
        );
        tokio::task::yield_now().await;
    }
}

/// The key of the credential's tokens, as a third client would name it.
fn tokens_key(redis: &RedisFixture, credential: CredentialKey) -> Vec<u8> {
    format!("{}{{{}}}:h", redis.prefix(), credential.encoded()).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_lookup_is_served_from_the_cache() {
    let redis = RedisFixture::start().await;
    let store = replica(&redis).await;
    let credential = new_credential();
    let issue = Issue::new(credential);
    let store_dyn: crate::support::Store = store.clone();
    let hash = issue.ok(&store_dyn).await;
    let lookup = cache(&store, credential, &hash).await;
    assert_eq!(lookup.token.as_deref(), Some(&issue.record()));
    assert_eq!(lookup.policy.as_deref(), Some(&active(1)));
    // A capacity of 0 disables it.
    let config = latchkey_token_store::RedisConfig {
        cache_capacity: 0,
        ..Deployment::Standalone.config(redis.prefix())
    };
    let uncached = RedisTokenStore::connect(&config).await.unwrap();
    assert_eq!(uncached.cache_stats(), None);
    assert_eq!(uncached.lookup(credential, &hash).await.unwrap(), lookup);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_replica_reaches_the_other() {
    let redis = RedisFixture::start().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let credential = new_credential();
    let a_dyn: crate::support::Store = a.clone();
    let hash = Issue::new(credential).ok(&a_dyn).await;
    cache(&b, credential, &hash).await;
    cache(&a, credential, &hash).await;

    assert!(a.revoke(credential, &hash).await.unwrap());
    // At once on the replica that revoked.
    assert_eq!(a.lookup(credential, &hash).await.unwrap().token, None);
    until(&b, credential, &hash, "revoke", |lookup| {
        lookup.token.is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_and_a_narrower_policy_reach_the_other_replica() {
    let redis = RedisFixture::start().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let a_dyn: crate::support::Store = a.clone();

    // A narrower policy, tokens kept.
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&a_dyn).await;
    cache(&b, credential, &hash).await;
    cache(&a, credential, &hash).await;
    let mut narrower = active(2);
    narrower.allowed_apis = vec!["orders.read".to_owned()];
    a.apply_policy(credential, &narrower, false).await.unwrap();
    assert_eq!(
        a.lookup(credential, &hash).await.unwrap().policy.as_deref(),
        Some(&narrower)
    );
    until(&b, credential, &hash, "narrower policy", |lookup| {
        lookup.policy.as_deref() == Some(&narrower)
    })
    .await;

    // A purge: the credential deleted, its tokens revoked.
    cache(&b, credential, &hash).await;
    cache(&a, credential, &hash).await;
    assert_eq!(
        a.apply_policy(credential, &deleted(3), true).await.unwrap(),
        1
    );
    let at_once = a.lookup(credential, &hash).await.unwrap();
    assert_eq!(at_once.token, None);
    assert_eq!(at_once.policy.as_deref(), Some(&deleted(3)));
    until(&b, credential, &hash, "purge", |lookup| {
        lookup.token.is_none() && lookup.policy.as_deref() == Some(&deleted(3))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_by_any_other_client_invalidates() {
    let redis = RedisFixture::start().await;
    let b = replica(&redis).await;
    let b_dyn: crate::support::Store = b.clone();
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&b_dyn).await;
    cache(&b, credential, &hash).await;

    let mut node = redis_nodes(Deployment::Standalone).await.remove(0);
    let deleted: i64 = redis::cmd("HDEL")
        .arg(tokens_key(&redis, credential))
        .arg(&hash.0[..])
        .query_async(&mut node)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    until(&b, credential, &hash, "HDEL by a third client", |lookup| {
        lookup.token.is_none()
    })
    .await;
}

/// Lookups racing invalidations: whatever interleaving, once a writer's
/// change has returned and its invalidation had time to arrive, no reader
/// sees the old value (stress for the ticket that closes the race between
/// a read's reply and an invalidation of the same key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_never_keep_a_value_that_was_invalidated() {
    let redis = RedisFixture::start().await;
    let (a, b) = (replica(&redis).await, replica(&redis).await);
    let a_dyn: crate::support::Store = a.clone();
    let credential = new_credential();
    let mut worst = Duration::ZERO;
    for round in 0..20 {
        let hash = Issue::new(credential).ok(&a_dyn).await;
        // Readers hammer B while A revokes.
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        b.lookup(credential, &hash).await.unwrap();
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(round % 3)).await;
        assert!(a.revoke(credential, &hash).await.unwrap());
        for reader in readers {
            reader.await.unwrap();
        }
        worst = worst.max(
            until(&b, credential, &hash, "racing revoke", |l| {
                l.token.is_none()
            })
            .await,
        );
        // And it stays revoked.
        for _ in 0..20 {
            assert_eq!(b.lookup(credential, &hash).await.unwrap().token, None);
        }
    }
    println!("worst invalidation delay under racing reads: {worst:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_invalidation_channel_drops_the_whole_cache() {
    let redis = RedisFixture::start().await;
    let b = replica(&redis).await;
    let b_dyn: crate::support::Store = b.clone();
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&b_dyn).await;
    let other = Issue::new(credential).ok(&b_dyn).await;
    cache(&b, credential, &hash).await;
    cache(&b, credential, &other).await;
    let before = b.cache_stats().unwrap();
    let tracking = before.tracking_client_id.unwrap();

    // Kill B's tracking connection, then change a cached token at once,
    // while B has no channel to hear about it.
    let mut node = redis_nodes(Deployment::Standalone).await.remove(0);
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(tracking)
        .query_async(&mut node)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    let () = redis::cmd("HDEL")
        .arg(tokens_key(&redis, credential))
        .arg(&hash.0[..])
        .query_async::<i64>(&mut node)
        .await
        .map(|_| ())
        .unwrap();
    until(
        &b,
        credential,
        &hash,
        "change while the channel was down",
        |lookup| lookup.token.is_none(),
    )
    .await;

    let after = b.cache_stats().unwrap();
    assert!(after.drops > before.drops, "the cache was dropped whole");
    // Tracking comes back on a fresh connection and the cache serves again,
    // with nothing of the old generation in it.
    wait_live(&b).await;
    let start = Instant::now();
    while b.cache_stats().unwrap().tracking_client_id == Some(tracking)
        || b.cache_stats().unwrap().tracking_client_id.is_none()
    {
        assert!(start.elapsed() < DEADLINE);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cache(&b, credential, &other).await;
    assert!(b.revoke(credential, &other).await.unwrap());
    assert_eq!(b.lookup(credential, &other).await.unwrap().token, None);
}
