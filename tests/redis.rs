//! One Redis key prefix per test, so tests run in parallel on one Redis
//! (standalone or the test Redis Cluster).

/// The test Redis: `LATCHKEY_TEST_REDIS_URL`, or the local default that
/// `scripts/test` provides.
pub fn redis_url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Seed nodes of the test Redis Cluster, from the comma-separated
/// `LATCHKEY_TEST_REDIS_CLUSTER_URLS` that `scripts/test` sets after
/// starting a three-master cluster. Panics when it is not set: a cluster
/// test never passes by skipping.
pub fn redis_cluster_urls() -> Vec<String> {
    let urls: Vec<String> = std::env::var("LATCHKEY_TEST_REDIS_CLUSTER_URLS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    assert!(
        !urls.is_empty(),
        "LATCHKEY_TEST_REDIS_CLUSTER_URLS is not set; run scripts/test, which starts a \
         three-master Redis Cluster on 127.0.0.1:7101-7103 and sets it"
    );
    urls
}

/// A unique key prefix whose keys are deleted when this value drops.
#[derive(Debug)]
pub struct TestRedis {
    prefix: String,
    /// Seeds of the cluster the keys live in; empty for standalone Redis.
    cluster_urls: Vec<String>,
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRedis {
    /// A fresh prefix on standalone Redis.
    pub fn new() -> Self {
        Self {
            prefix: format!("test:{}:", uuid::Uuid::now_v7().simple()),
            cluster_urls: Vec::new(),
        }
    }

    /// A fresh prefix on the cluster seeded by `cluster_urls`.
    pub fn on_cluster(cluster_urls: Vec<String>) -> Self {
        let mut redis = Self::new();
        redis.cluster_urls = cluster_urls;
        redis
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The cluster's seed nodes; empty for standalone Redis.
    pub fn cluster_urls(&self) -> &[String] {
        &self.cluster_urls
    }
}

/// Deletes the keys matching `pattern` from every master of a cluster:
/// KEYS goes to each master, and each key is deleted on its own (keys of
/// different slots cannot share a command).
fn delete_in_cluster(urls: &[String], pattern: &str) {
    let Ok(client) = redis::cluster::ClusterClient::new(urls.to_vec()) else {
        return;
    };
    let Ok(mut connection) = client.get_connection() else {
        return;
    };
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut connection)
        .unwrap_or_default();
    for key in keys {
        let _: Result<(), _> = redis::cmd("DEL").arg(key).query(&mut connection);
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        let cluster_urls = std::mem::take(&mut self.cluster_urls);
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            if !cluster_urls.is_empty() {
                delete_in_cluster(&cluster_urls, &pattern);
                return;
            }
            let Ok(client) = redis::Client::open(redis_url()) else {
                return;
            };
            let Ok(mut connection) = client.get_connection() else {
                return;
            };
            let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut connection)
                .unwrap_or_default();
            for chunk in keys.chunks(500) {
                let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut connection);
            }
        })
        .join();
    }
}
