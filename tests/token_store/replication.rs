//! `redis.revocation_replicas`: a policy change or revocation is reported
//! done only once that many replicas acknowledged it (`WAIT`), so a
//! failover to one of them cannot revive what was revoked; fewer
//! acknowledgements fail it as unavailable (the registry then does not
//! commit the change).

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_token::{StoreError, TokenStore};
use latchkey_token_store::{RedisConfig, RedisTokenStore};

use crate::private_redis::PrivateRedis;
use crate::support::{Issue, RedisFixture, Store, deleted, new_credential, redis_url};

fn waiting_for(url: String, prefix: &str, replicas: u32) -> RedisConfig {
    RedisConfig {
        url,
        key_prefix: prefix.to_owned(),
        response_timeout_ms: 300,
        revocation_replicas: replicas,
        ..RedisConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_waits_for_its_replica_and_fails_without_it() {
    let primary = PrivateRedis::start().await;
    let mut replica = PrivateRedis::replica_of(&primary).await;
    replica.await_sync().await;
    let config = waiting_for(primary.url(), "lk:", 1);
    let store: Store = Arc::new(RedisTokenStore::connect(&config).await.unwrap());
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&store).await;

    // Acknowledged: the replica holds the tombstone and no token the
    // moment the call returns, so promoting it loses nothing.
    assert_eq!(
        store
            .apply_policy(credential, &deleted(2), true)
            .await
            .unwrap(),
        1
    );
    let mut on_replica = replica.connection().await;
    let policy_key = format!("{}{{{}}}:p", config.key_prefix, credential.encoded());
    let tokens_key = format!("{}{{{}}}:h", config.key_prefix, credential.encoded());
    let policy: Option<String> = redis::cmd("GET")
        .arg(&policy_key)
        .query_async(&mut on_replica)
        .await
        .unwrap();
    assert!(
        policy.is_some_and(|policy| policy.contains(r#""s":"deleted""#)),
        "the replica holds the tombstone"
    );
    let token: Option<Vec<u8>> = redis::cmd("HGET")
        .arg(&tokens_key)
        .arg(&hash.0[..])
        .query_async(&mut on_replica)
        .await
        .unwrap();
    assert_eq!(token, None, "and not the revoked token");

    // Without the replica the change is not confirmed: unavailable, in
    // about the response timeout.
    replica.stop();
    let started = Instant::now();
    let unconfirmed = store.apply_policy(credential, &deleted(3), true).await;
    assert!(
        matches!(unconfirmed, Err(StoreError::Unavailable(_))),
        "{unconfirmed:?}"
    );
    let revoke = store.revoke(credential, &hash).await;
    assert!(
        matches!(revoke, Err(StoreError::Unavailable(_))),
        "{revoke:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replicas_waiting_for_one_is_unavailable_and_zero_waits_for_none() {
    // On the shared test Redis, under a fixture's prefix (cleaned up).
    let fixture = RedisFixture::start().await;
    let credential = new_credential();
    let waiting = RedisTokenStore::connect(&waiting_for(redis_url(), fixture.prefix(), 1))
        .await
        .unwrap();
    let refused = waiting.apply_policy(credential, &deleted(1), true).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "the shared test Redis has no replica: {refused:?}"
    );
    let plain = RedisTokenStore::connect(&waiting_for(redis_url(), fixture.prefix(), 0))
        .await
        .unwrap();
    plain
        .apply_policy(credential, &deleted(1), true)
        .await
        .unwrap();
}
