//! One Redis key prefix per test, so tests run in parallel on one Redis.

/// The test Redis: `LATCHKEY_TEST_REDIS_URL`, or the local default that
/// `scripts/test` provides.
pub fn redis_url() -> String {
    std::env::var("LATCHKEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A unique key prefix whose keys are deleted when this value drops.
#[derive(Debug)]
pub struct TestRedis {
    prefix: String,
}

impl Default for TestRedis {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRedis {
    /// A fresh prefix.
    pub fn new() -> Self {
        Self {
            prefix: format!("test:{}:", uuid::Uuid::now_v7().simple()),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
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
