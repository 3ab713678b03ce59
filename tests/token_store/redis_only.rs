//! What only the Redis store has: a key layout, a memory footprint, and a
//! network that can fail.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_token::{StoreError, TokenStore};
use latchkey_token_store::{RedisConfig, RedisTokenStore};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::support::{
    Deployment, Issue, RedisFixture, Store, active, delete_keys, keys_under, new_credential,
    new_hash, redis_nodes, redis_url, reject,
};

/// Every key of a credential carries its hash tag (one Cluster slot), and
/// each expires: the tokens and their index with the newest token, the
/// policy a day after its last write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_share_the_credential_hash_tag_and_expire() {
    key_layout(RedisFixture::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_credential_lives_in_one_slot_of_one_node() {
    key_layout(RedisFixture::start_cluster().await).await;
}

/// Sends `command` to every node until one answers: in a cluster, the node
/// that serves the key's slot answers and the others redirect.
async fn ask<T: redis::FromRedisValue>(deployment: Deployment, command: &redis::Cmd) -> T {
    for mut node in redis_nodes(deployment).await {
        if let Ok(answer) = command.query_async(&mut node).await {
            return answer;
        }
    }
    panic!("no node answered {command:?}")
}

fn ttl(key: &[u8]) -> redis::Cmd {
    let mut command = redis::cmd("TTL");
    command.arg(key);
    command
}

async fn key_layout(redis: RedisFixture) {
    let store = redis.store();
    let deployment = redis.deployment();
    let credential = new_credential();
    let issue = Issue::new(credential);
    let hash = issue.ok(&store).await;
    let longer = Issue {
        expires_at: issue.now + 7200,
        ..issue.clone()
    };
    let longer_hash = longer.ok(&store).await;

    let keys = keys_under(deployment, redis.prefix()).await;
    assert_eq!(keys.len(), 3, "policy, index and tokens: {keys:?}");
    let tag = format!("{{{}}}", credential.encoded());
    for (_, key) in &keys {
        let text = String::from_utf8_lossy(key);
        assert!(
            text.starts_with(&format!("{}{tag}:", redis.prefix())),
            "{text}"
        );
    }
    if deployment == Deployment::Cluster {
        let holders: BTreeSet<usize> = keys.iter().map(|(node, _)| *node).collect();
        assert_eq!(
            holders.len(),
            1,
            "one node holds the credential: {holders:?}"
        );
        let mut slots = BTreeSet::new();
        for (_, key) in &keys {
            let slot: i64 = ask(deployment, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).await;
            slots.insert(slot);
        }
        assert_eq!(slots.len(), 1, "one slot holds the credential: {slots:?}");
    }

    let base = format!("{}{tag}:", redis.prefix()).into_bytes();
    let tokens_key = [base.as_slice(), b"h"].concat();
    let fields: BTreeSet<Vec<u8>> = ask(deployment, redis::cmd("HKEYS").arg(&tokens_key)).await;
    assert_eq!(
        fields,
        BTreeSet::from([hash.0.to_vec(), longer_hash.0.to_vec()]),
        "one field per token, named by its hash"
    );
    let near = |actual: i64, expected: i64| (expected - 3..=expected).contains(&actual);
    let tokens_ttl: i64 = ask(deployment, &ttl(&tokens_key)).await;
    assert!(near(tokens_ttl, 7200), "tokens TTL {tokens_ttl}");
    let index_ttl: i64 = ask(deployment, &ttl(&[base.as_slice(), b"z"].concat())).await;
    assert!(near(index_ttl, 7200), "index TTL {index_ttl}");
    let policy_key = [base.as_slice(), b"p"].concat();
    let policy_ttl: i64 = ask(deployment, &ttl(&policy_key)).await;
    assert!(near(policy_ttl, 86_400), "policy TTL {policy_ttl}");

    // A shorter token after them does not shorten the keys: they expire
    // with their newest token.
    let shorter = Issue {
        expires_at: issue.now + 600,
        ..issue.clone()
    };
    shorter.ok(&store).await;
    let tokens_ttl: i64 = ask(deployment, &ttl(&tokens_key)).await;
    assert!(near(tokens_ttl, 7200), "tokens TTL {tokens_ttl}");
    let index_ttl: i64 = ask(deployment, &ttl(&[base.as_slice(), b"z"].concat())).await;
    assert!(near(index_ttl, 7200), "index TTL {index_ttl}");

    // A token outliving the retention keeps its policy at least as long.
    let long_lived = Issue {
        expires_at: issue.now + 2 * 86_400,
        limit: reject(10),
        ..issue.clone()
    };
    long_lived.ok(&store).await;
    let policy_ttl: i64 = ask(deployment, &ttl(&policy_key)).await;
    assert!(near(policy_ttl, 2 * 86_400), "policy TTL {policy_ttl}");

    // A changed policy is rewritten, and still outlives the longest token,
    // though the token issued with it is short.
    let changed = Issue {
        policy: active(2),
        expires_at: issue.now + 600,
        ..issue
    };
    changed.ok(&store).await;
    let policy_ttl: i64 = ask(deployment, &ttl(&policy_key)).await;
    assert!(near(policy_ttl, 2 * 86_400), "policy TTL {policy_ttl}");
    let stored: Vec<u8> = ask(deployment, redis::cmd("GET").arg(&policy_key)).await;
    let stored = String::from_utf8_lossy(&stored);
    assert!(
        stored.contains(r#""v":2"#),
        "the new version is stored: {stored}"
    );
}

/// Hash fields have no expiry of their own: an expired token is absent to
/// readers at once, and its field and index entry are gone after the
/// credential's next issuance, so dead tokens do not pile up in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_leave_the_hash_at_the_next_issuance() {
    let redis = RedisFixture::start().await;
    let store = redis.store();
    let deployment = redis.deployment();
    let credential = new_credential();
    let tokens_key = format!("{}{{{}}}:h", redis.prefix(), credential.encoded()).into_bytes();
    let index_key = format!("{}{{{}}}:z", redis.prefix(), credential.encoded()).into_bytes();
    let fields = || async {
        let fields: BTreeSet<Vec<u8>> = ask(deployment, redis::cmd("HKEYS").arg(&tokens_key)).await;
        fields
    };

    // A live token keeps the hash; then one issued in the past that
    // expired a second ago.
    let lasting = Issue::new(credential).ok(&store).await;
    let now = latchkey_token::unix_now();
    let expired = Issue {
        now: now - 60,
        expires_at: now - 1,
        ..Issue::new(credential)
    };
    let stale = expired.ok(&store).await;
    assert_eq!(
        fields().await.len(),
        2,
        "the expired token's field is still there"
    );
    assert!(
        !crate::support::holds(&store, credential, &stale).await,
        "but it is not served"
    );
    assert!(crate::support::holds(&store, credential, &lasting).await);

    let next = Issue::new(credential).ok(&store).await;
    assert_eq!(
        fields().await,
        BTreeSet::from([lasting.0.to_vec(), next.0.to_vec()]),
        "the next issuance removed the expired field"
    );
    let indexed: i64 = ask(deployment, redis::cmd("ZCARD").arg(&index_key)).await;
    assert_eq!(indexed, 2);
    assert!(!store.revoke(credential, &stale).await.unwrap(), "not live");
}

/// A tombstone costs Redis less than the live token it replaces, and its
/// keys share the credential's hash tag and end with the tokens: measured
/// with `MEMORY USAGE` (exact, `SAMPLES 0`) over 100 tokens of one credential
/// (one scope each), then over their 100 tombstones. Printed for
/// `docs/decisions.md`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout)]
async fn a_tombstone_costs_less_than_the_token_it_replaces() {
    let redis = RedisFixture::start().await;
    let store = redis.store();
    let deployment = redis.deployment();
    let credential = new_credential();
    let base = format!("{}{{{}}}:", redis.prefix(), credential.encoded()).into_bytes();
    let key = |suffix: &[u8]| [base.as_slice(), suffix].concat();
    let usage = |suffix: &'static [u8]| {
        let key = key(suffix);
        async move {
            let bytes: Option<i64> = ask(
                deployment,
                redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(&key)
                    .arg("SAMPLES")
                    .arg(0),
            )
            .await;
            bytes.unwrap_or(0)
        }
    };
    const TOKENS: i64 = 100;
    let issue = Issue {
        limit: reject(200),
        ..Issue::new(credential)
    };
    let mut hashes = Vec::new();
    for _ in 0..TOKENS {
        hashes.push(issue.ok(&store).await);
    }
    let live = usage(b"h").await + usage(b"z").await;
    for hash in &hashes {
        assert!(store.revoke(credential, hash).await.unwrap());
    }
    let buried = usage(b"h").await + usage(b"r").await;
    assert_eq!(usage(b"z").await, 0, "no live token left in the index");
    println!(
        "per token: live {} B, tombstone {} B (h + z, then h + r, {TOKENS} of one credential)",
        live / TOKENS,
        buried / TOKENS
    );
    assert!(
        buried <= live,
        "tombstones {buried} B cost more than the tokens {live} B"
    );
    let tokens_ttl: i64 = ask(deployment, &ttl(&key(b"h"))).await;
    let revoked_ttl: i64 = ask(deployment, &ttl(&key(b"r"))).await;
    assert!(
        (3590..=3600).contains(&revoked_ttl) && revoked_ttl <= tokens_ttl,
        "the tombstones end with their tokens: r {revoked_ttl}, h {tokens_ttl}"
    );
}

fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    result: Result<T, StoreError>,
    started: Instant,
    within: Duration,
) {
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what}: {result:?}"
    );
    assert!(elapsed < within, "{what} took {elapsed:?}");
}

/// Every operation of a store whose Redis does not answer fails as
/// `Unavailable` within `within`.
async fn assert_every_operation_is_unavailable(store: &RedisTokenStore, within: Duration) {
    let credential = new_credential();
    let hash = new_hash(credential);
    let issue = Issue::new(credential);
    let record = issue.record();
    let new = latchkey_token::NewToken {
        credential,
        hash,
        record: &record,
        policy: &issue.policy,
        origin: issue.origin,
        limit: issue.limit,
        now: issue.now,
    };
    for round in 0..2 {
        let started = Instant::now();
        let lookup = store.lookup(credential, &hash).await;
        assert_unavailable(&format!("lookup #{round}"), lookup, started, within);
        let started = Instant::now();
        // Issuance fails as every operation does, wrapped in its own type.
        let issued = store.issue(&new).await.map_err(|error| match error {
            latchkey_token::StoreIssueError::Store(error) => error,
            refused => panic!("issue #{round}: refused, not failed: {refused:?}"),
        });
        assert_unavailable(&format!("issue #{round}"), issued, started, within);
        let started = Instant::now();
        let policy = store.policy(credential).await;
        assert_unavailable(&format!("policy #{round}"), policy, started, within);
        let started = Instant::now();
        let revoked = store.revoke(credential, &hash).await;
        assert_unavailable(&format!("revoke #{round}"), revoked, started, within);
        let started = Instant::now();
        let applied = store.apply_policy(credential, &issue.policy, true).await;
        assert_unavailable(&format!("apply_policy #{round}"), applied, started, within);
        let started = Instant::now();
        let ping = store.ping().await;
        assert_unavailable(&format!("ping #{round}"), ping, started, within);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_redis_is_unavailable_at_once() {
    for cluster in [false, true] {
        let url = "redis://127.0.0.1:1".to_owned();
        let config = RedisConfig {
            url: url.clone(),
            cluster_urls: if cluster { vec![url] } else { Vec::new() },
            key_prefix: "test:down:".to_owned(),
            ..RedisConfig::default()
        };
        let store = RedisTokenStore::connect(&config)
            .await
            .expect("an unreachable Redis does not fail connect");
        assert_every_operation_is_unavailable(&store, Duration::from_millis(2500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_times_out() {
    // Accepts connections and never answers, like a hung server.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let config = RedisConfig {
        url: format!("redis://{address}"),
        key_prefix: "test:silent:".to_owned(),
        response_timeout_ms: 200,
        ..RedisConfig::default()
    };
    let store = RedisTokenStore::connect(&config).await.unwrap();
    assert_every_operation_is_unavailable(&store, Duration::from_millis(1500)).await;
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_by_itself_when_redis_returns() {
    let url = redis_url();
    let info = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection_info()
        .clone();
    let target = info.addr().to_string();
    assert!(
        url.contains(&target),
        "{url} does not name {target} literally"
    );
    let mut relay = latchkey_tests::TcpRelay::start(target.clone()).await;
    let prefix = format!("test:{}:", Uuid::now_v7().simple());
    let config = RedisConfig {
        url: url.replacen(&target, &relay.address().to_string(), 1),
        key_prefix: prefix.clone(),
        ..RedisConfig::default()
    };
    let store: Store = Arc::new(RedisTokenStore::connect(&config).await.unwrap());
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&store).await;

    relay.cut().await;
    let started = Instant::now();
    let lookup = store.lookup(credential, &hash).await;
    assert_unavailable(
        "lookup during the outage",
        lookup,
        started,
        Duration::from_millis(2500),
    );

    relay.restore().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.lookup(credential, &hash).await {
            Ok(lookup) => {
                assert!(lookup.token.is_some(), "the token survived the outage");
                break;
            }
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("the store did not recover: {error:?}"),
        }
    }
    let issued_after = Issue::new(credential).ok(&store).await;
    assert!(
        store
            .lookup(credential, &issued_after)
            .await
            .unwrap()
            .token
            .is_some()
    );
    relay.cut().await;
    delete_keys(Deployment::Standalone, &prefix).await;
}
