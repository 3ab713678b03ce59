//! The Redis store's exact introspection cache on the issuer's `/metrics`:
//! its counters read at scrape time on standalone Redis, and no cache
//! series at all where there is no cache (the in-process store, or Redis
//! with `cache_capacity = 0`, which is what a Redis Cluster gets too).

use std::time::Duration;

use latchkey_tests::{Backend, Stack, StackBackend, TokenBackend};

use crate::support::{
    credential, eventually, introspect, issue, project_with_client, sample, scrape,
};

const HITS: &str = "latchkey_issuer_introspection_cache_hits_total";
const MISSES: &str = "latchkey_issuer_introspection_cache_misses_total";
const DROPS: &str = "latchkey_issuer_introspection_cache_drops_total";
const ENTRIES: &str = "latchkey_issuer_introspection_cache_entries";
const LIVE: &str = "latchkey_issuer_introspection_cache_live";

async fn issuer_metrics(stack: &Stack) -> String {
    scrape(&stack.issuer.metrics_url()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cache_counts_reads_on_metrics() {
    let stack = Stack::start(StackBackend::Production).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &["127.0.0.1"])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    // The management calls above already went through the cache (the
    // admin's token): count from here.
    let before = issuer_metrics(&stack).await;

    // A gateway checks the token twice: the first read misses and fills the
    // cache, the second is served from it. The first fill can be voided by
    // the late invalidation of the write that issued the token (the cache
    // stays exact), so a few more reads are allowed before giving up.
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    let served_from_cache = eventually(Duration::from_secs(2), || async {
        assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
        sample(&issuer_metrics(&stack).await, HITS) > sample(&before, HITS)
    })
    .await;
    assert!(served_from_cache, "no introspection served from the cache");

    let after = issuer_metrics(&stack).await;
    assert!(sample(&after, MISSES) >= sample(&before, MISSES) + 1.0);
    assert!(sample(&after, HITS) >= sample(&before, HITS) + 1.0);
    assert!(sample(&after, ENTRIES) >= 1.0);
    assert_eq!(sample(&after, LIVE), 1.0);
    // Nothing broke the invalidation channel.
    assert_eq!(sample(&after, DROPS), sample(&before, DROPS));
}

/// Introspects once, then asserts `/metrics` has no cache series.
async fn assert_no_cache_metrics(stack: &Stack) {
    let client = project_with_client(stack, "acme", None, credential(&[], &["127.0.0.1"])).await;
    let token = issue(stack, &client, &[]).await.unwrap().access_token;
    assert!(introspect(stack, &token, "127.0.0.1", &[]).await.active);
    let text = issuer_metrics(stack).await;
    // The issuer's own metrics are there...
    assert!(
        sample(
            &text,
            r#"latchkey_issuer_introspections_total{outcome="active"}"#
        ) >= 1.0
    );
    // ...and nothing of a cache it does not have.
    assert!(
        !text.contains("introspection_cache"),
        "cache metrics without a cache:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_store_has_no_cache_metrics() {
    assert_no_cache_metrics(&Stack::start(StackBackend::Embedded).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_without_cache_has_no_cache_metrics() {
    let stack = Stack::start_with(
        Backend::Sqlite,
        TokenBackend::Redis,
        |_| {},
        |config| config.redis.as_mut().unwrap().cache_capacity = 0,
    )
    .await;
    assert_no_cache_metrics(&stack).await;
}
