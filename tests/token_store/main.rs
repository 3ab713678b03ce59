//! The token store conformance suite: one set of tests run against the
//! in-process store, standalone Redis and a Redis Cluster (the one named by
//! `LATCHKEY_TEST_REDIS_CLUSTER_URLS`, which `scripts/test` starts), plus
//! what only Redis has. A test that needs Redis fails loudly when it is not
//! reachable.

// Test binaries share the package's dependency list.
#![allow(unused_crate_dependencies)]
// Integration tests panic on the unexpected, like unit tests.
#![allow(clippy::unwrap_used)]

/// Runs each listed `async fn(Store)` on the in-process store, on
/// standalone Redis and on a Redis Cluster (keys under a prefix of their
/// own), as `memory::name`, `redis::name` and `redis_cluster::name`.
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::support::memory_store()).await;
                }
            )+
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let redis = crate::support::RedisFixture::start().await;
                    super::$name(redis.store()).await;
                }
            )+
        }
        mod redis_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let redis = crate::support::RedisFixture::start_cluster().await;
                    super::$name(redis.store()).await;
                }
            )+
        }
    };
}

mod cache;
mod failures;
mod limits;
mod policies;
mod private_redis;
mod redis_only;
mod replication;
mod store_loss;
mod support;
mod tls_redis;
mod tokens;
mod tombstones;
