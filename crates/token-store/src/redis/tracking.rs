//! The invalidation channel of the introspection cache: one RESP3
//! connection with `CLIENT TRACKING ON BCAST PREFIX <prefix>{` that also
//! does every cached read. Redis pushes an `invalidate` message on it for
//! every key under the credentials' prefix that any client changes (or
//! that expires or is evicted), in order with the replies: an invalidation
//! of a change made after a read is delivered after that read's reply.
//! Broadcasting mode costs Redis no memory per key read (the default mode
//! would remember every key looked up, unknown tokens included, until it
//! changes), at the price of messages for keys this replica never read,
//! which it ignores.
//!
//! Pushes are handled synchronously by the connection's reader, in socket
//! order with the replies (see [`PushHandler`]): an invalidation is applied
//! before any reply that follows it is delivered. A lost connection (the
//! reader sees it closed, or a heartbeat `PING` fails) drops the whole
//! cache and the cache stays bypassed until a fresh connection has
//! tracking on; a task keeps re-establishing it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{
    AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, RedisResult, Value,
};
use tokio::sync::Notify;

use super::cache::Cache;
use super::config::RedisConfig;

/// How often the tracking connection is checked with a `PING` when Redis
/// sends nothing: bounds how long a silently lost connection (no FIN, no
/// RST) can go unnoticed, together with the response timeout.
const HEARTBEAT: Duration = Duration::from_millis(500);
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The current tracking connection and the cache generation it fills.
#[derive(Debug)]
pub(super) struct Tracker {
    cache: Arc<Cache>,
    current: RwLock<Option<(MultiplexedConnection, u64)>>,
    wake: Arc<Notify>,
}

impl Tracker {
    /// Prepares the tracker and starts the task that establishes tracking
    /// (and re-establishes it after every loss). Needs a Tokio runtime.
    pub(super) fn start(config: &RedisConfig, cache: Arc<Cache>) -> RedisResult<Arc<Self>> {
        let client = Client::open(config.url.as_str())?;
        let info = client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = config.client(info.set_redis_settings(settings))?;
        let tracker = Arc::new(Self {
            cache,
            current: RwLock::new(None),
            wake: Arc::new(Notify::new()),
        });
        let maintainer = Maintainer {
            tracker: Arc::downgrade(&tracker),
            wake: tracker.wake.clone(),
            client,
            prefix: config.key_prefix.as_bytes().to_vec(),
            timeout: config.response_timeout(),
        };
        tokio::spawn(maintainer.run());
        Ok(tracker)
    }

    /// The tracking connection and its generation, while the cache is live.
    pub(super) fn connection(&self) -> Option<(MultiplexedConnection, u64)> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current
            .as_ref()
            .filter(|(_, generation)| *generation == self.cache.generation())
            .cloned()
    }

    fn set(&self, current: Option<(MultiplexedConnection, u64)>) {
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = current;
    }
}

/// The task behind a [`Tracker`]; ends when the store is dropped.
struct Maintainer {
    tracker: Weak<Tracker>,
    wake: Arc<Notify>,
    client: Client,
    prefix: Vec<u8>,
    timeout: Duration,
}

impl Maintainer {
    async fn run(self) {
        let mut delay = RETRY_MIN;
        let mut failures = 0u32;
        loop {
            let Some(tracker) = self.tracker.upgrade() else {
                return;
            };
            match self.establish(&tracker).await {
                Ok(generation) => {
                    if failures > 0 {
                        tracing::info!("introspection cache tracking re-established");
                    }
                    failures = 0;
                    delay = RETRY_MIN;
                    drop(tracker);
                    self.watch(generation).await;
                }
                Err(error) => {
                    drop(tracker);
                    if failures == 0 {
                        tracing::warn!(
                            error = %error,
                            "introspection cache tracking not established; the cache is bypassed \
                             until it is"
                        );
                    }
                    failures = failures.saturating_add(1);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Connects, turns tracking on and makes the cache live.
    async fn establish(&self, tracker: &Tracker) -> RedisResult<u64> {
        let connection_generation = Arc::new(AtomicU64::new(0));
        let handler = PushHandler {
            cache: tracker.cache.clone(),
            prefix: self.prefix.clone(),
            generation: connection_generation.clone(),
            wake: self.wake.clone(),
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_push_sender(handler);
        let mut connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let client_id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut connection)
            .await?;
        // Broadcasting mode: Redis keeps no per-key table (a lookup of an
        // unknown token must not grow Redis's memory) and tells this
        // connection of every change under the credentials' keys; the
        // failure counters (`<prefix>f:…`) are left out.
        let mut tracked_prefix = self.prefix.clone();
        tracked_prefix.push(b'{');
        let () = redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(tracked_prefix)
            .query_async(&mut connection)
            .await?;
        let generation = tracker.cache.go_live(client_id);
        connection_generation.store(generation, Ordering::Release);
        tracker.set(Some((connection, generation)));
        Ok(generation)
    }

    /// Pings the tracking connection until it fails or its generation
    /// ends (the push handler saw it close); then drops the cache.
    async fn watch(&self, generation: u64) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT) => {}
                () = self.wake.notified() => {}
            }
            let Some(tracker) = self.tracker.upgrade() else {
                return;
            };
            let Some((mut connection, _)) = tracker.connection() else {
                // The push handler saw the connection close and dropped
                // the cache already.
                tracker.set(None);
                return;
            };
            let ping = tokio::time::timeout(
                self.timeout,
                redis::cmd("PING").query_async::<()>(&mut connection),
            )
            .await;
            if !matches!(ping, Ok(Ok(()))) && tracker.cache.generation() == generation {
                tracker
                    .cache
                    .drop_all("tracking connection did not answer PING");
                tracker.set(None);
                return;
            }
        }
    }
}

/// Applies the tracking connection's pushes to the cache as the
/// connection's reader parses them, before any later reply is delivered.
struct PushHandler {
    cache: Arc<Cache>,
    prefix: Vec<u8>,
    /// The cache generation this connection fills; 0 until tracking is on.
    generation: Arc<AtomicU64>,
    wake: Arc<Notify>,
}

impl AsyncPushSender for PushHandler {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        match info.kind {
            PushKind::Invalidate => match info.data.first() {
                Some(Value::Array(keys)) => {
                    for key in keys {
                        if let Value::BulkString(key) = key {
                            self.cache.invalidate_key(&self.prefix, key);
                        } else {
                            // Not a key we can read: forget everything.
                            self.cache.flush();
                        }
                    }
                }
                // A null key list: the server flushed (FLUSHALL/FLUSHDB).
                _ => self.cache.flush(),
            },
            PushKind::Disconnection => {
                let generation = self.generation.load(Ordering::Acquire);
                if generation != 0 && generation == self.cache.generation() {
                    self.cache.drop_all("tracking connection closed");
                }
                self.wake.notify_one();
            }
            _ => {}
        }
        Ok(())
    }
}
