//! The Redis token store, for standalone Redis and Redis Cluster.
//!
//! Each operation is one round trip on one Cluster slot (see [`codec`] for
//! the key layout): a script for the writes, which must be atomic, and a
//! pipelined `HGET` + `GET` for the introspection hot path. The store expects Redis 6.2
//! or later (`SET … EXAT`) and `maxmemory-policy noeviction`: an evicted
//! token would be a silent revocation, an evicted policy a forgotten
//! tombstone.

mod cache;
pub(crate) mod codec;
mod config;
mod connection;
mod scripts;
mod tracking;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_token::{
    CredentialKey, CredentialPolicy, FailureCount, Lookup, NewToken, PolicyOrigin, PolicyState,
    StoreError, StoreIssueError, TokenHash, TokenStore, unix_now,
};
use redis::RedisResult;

pub use self::cache::CacheStats;
use self::cache::{Cache, Cached};
use self::codec::{CredentialKeys, StoredToken};
pub use self::config::RedisConfig;
use self::connection::{Connection, from_redis, refusal_at_start};
use self::scripts::{Scripts, issue_status};
use self::tracking::Tracker;
use crate::{MAX_TOMBSTONES, POLICY_RETENTION_SECS, check_not_expired};

/// Tokens and policies in Redis, shared by every replica of the service.
///
/// Fails closed: when Redis cannot answer within the configured timeout,
/// every operation returns [`StoreError::Unavailable`] and changes
/// nothing it reports as changed. Reconnects by itself when Redis returns.
pub struct RedisTokenStore {
    connection: Connection,
    scripts: Scripts,
    key_prefix: String,
    /// Bound on one whole operation: a connection attempt, then the answer.
    deadline: Duration,
    /// The exact introspection cache and its invalidation channel; `None`
    /// when disabled (`cache_capacity = 0`, or a Redis Cluster).
    cache: Option<(Arc<Cache>, Arc<Tracker>)>,
    /// Replicas that must acknowledge a revocation or policy change before
    /// it is reported done (`WAIT`); 0 = none.
    revocation_replicas: u32,
    /// How long `WAIT` waits for them.
    replica_timeout: Duration,
}

impl fmt::Debug for RedisTokenStore {
    // The connection's Debug would show the URLs, which may carry passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTokenStore")
            .field("mode", &self.connection.mode_name())
            .field("key_prefix", &self.key_prefix)
            .field("deadline", &self.deadline)
            .field("cache", &self.cache.is_some())
            .field("revocation_replicas", &self.revocation_replicas)
            .finish_non_exhaustive()
    }
}

impl RedisTokenStore {
    /// Prepares the store. Connections are made on first use and remade
    /// after failures, so an unreachable Redis does not fail this (it is
    /// logged, and [`TokenStore::ping`] reports it); only an invalid
    /// configuration does.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        if let Some(problem) = config.problem() {
            return Err(StoreError::Internal(
                format!("invalid Redis configuration: {problem}").into(),
            ));
        }
        let connection =
            Connection::open(config).map_err(|error| StoreError::Internal(Box::new(error)))?;
        let cache = if config.cache_capacity > 0 && !config.is_cluster() {
            let cache = Arc::new(Cache::new(config.cache_capacity));
            let tracker = Tracker::start(config, cache.clone())
                .map_err(|error| StoreError::Internal(Box::new(error)))?;
            Some((cache, tracker))
        } else {
            None
        };
        let store = Self {
            connection,
            scripts: Scripts::new(),
            key_prefix: config.key_prefix.clone(),
            deadline: config.response_timeout().saturating_mul(2),
            cache,
            revocation_replicas: config.revocation_replicas,
            replica_timeout: config.response_timeout(),
        };
        match store.first_ping().await {
            Ok(()) => {
                store.check_version().await?;
                store.await_cache(config.response_timeout()).await;
                tracing::info!(
                    mode = config.mode_name(),
                    cache = store.cache_stats().is_some_and(|stats| stats.live),
                    "Redis token store connected"
                );
            }
            Err(error @ StoreError::Internal(_)) => return Err(error),
            Err(error) => tracing::warn!(
                mode = config.mode_name(),
                error = ?error,
                "Redis token store not reachable yet; token operations fail until it answers"
            ),
        }
        Ok(store)
    }

    /// Pings Redis once at start-up. What a retry cannot fix (the server
    /// refuses the user or password, the TLS handshake fails, a TLS port
    /// spoken to in plain text) fails the start with a precise message;
    /// anything else is reported as unavailable, to be retried later.
    async fn first_ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.deadline, ping.query_async::<()>(&mut connection)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => match refusal_at_start(&error) {
                Some(reason) => Err(StoreError::Internal(
                    format!("Redis refused the connection: {reason} ({error})").into(),
                )),
                None => Err(from_redis(error)),
            },
            Err(_) => Err(StoreError::Unavailable(
                format!("Redis did not answer within {:?}", self.deadline).into(),
            )),
        }
    }

    /// Refuses a Redis older than 7.0: the issue script raises expiries with
    /// `EXPIREAT … GT` and reads them with `EXPIRETIME`, which older servers
    /// lack, and would otherwise fail every issuance. Asked by probing for
    /// `EXPIRETIME` itself, which also works through a cluster.
    async fn check_version(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let probe = format!("{}version-probe", self.key_prefix);
        let answer: Result<i64, _> = self
            .run(
                redis::cmd("EXPIRETIME")
                    .arg(&probe)
                    .query_async(&mut connection),
            )
            .await;
        match answer {
            Err(StoreError::Internal(error))
                if error
                    .to_string()
                    .to_ascii_lowercase()
                    .contains("unknown command") =>
            {
                Err(StoreError::Internal(
                    "Redis is older than 7.0, which Latchkey needs (EXPIRETIME, EXPIREAT GT)"
                        .into(),
                ))
            }
            // Unavailable now: the first operation will say so.
            _ => Ok(()),
        }
    }

    /// Waits up to `limit` for the introspection cache to go live, so a
    /// service starts with it serving (it is bypassed, not wrong, before).
    async fn await_cache(&self, limit: Duration) {
        let Some((cache, _)) = &self.cache else {
            return;
        };
        let start = tokio::time::Instant::now();
        while !cache.is_live() && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The introspection cache's counters; `None` when it is disabled.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.cache.as_ref().map(|(cache, _)| cache.stats())
    }

    /// A token and its policy, read on `connection` in one round trip. A
    /// token past its expiry is absent: its field stays in the hash until
    /// the next issuance for the credential removes it.
    async fn read(
        &self,
        connection: &mut (impl redis::aio::ConnectionLike + Send),
        keys: &CredentialKeys,
        hash: &TokenHash,
    ) -> Result<Lookup, StoreError> {
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("HGET")
            .arg(keys.tokens())
            .arg(&hash.0[..])
            .cmd("GET")
            .arg(keys.policy());
        let (token, policy): (Option<Vec<u8>>, Option<Vec<u8>>) =
            self.run(pipeline.query_async(connection)).await?;
        let token = token
            .as_deref()
            .map(codec::decode_stored_token)
            .transpose()?;
        let now = unix_now();
        let (token, revoked) = match token {
            Some(StoredToken::Issued(record)) if record.expires_at > now => {
                (Some(Arc::new(record)), false)
            }
            Some(StoredToken::Revoked { until }) => (None, until > now),
            Some(StoredToken::Issued(_)) | None => (None, false),
        };
        Ok(Lookup {
            token,
            policy: policy
                .as_deref()
                .map(codec::decode_policy)
                .transpose()?
                .map(Arc::new),
            revoked,
        })
    }

    /// A lookup through the cache: served without Redis when both values
    /// are cached, else read on the tracking connection and stored unless
    /// invalidated meanwhile.
    async fn cached_lookup(
        &self,
        cache: &Cache,
        tracker: &Tracker,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Option<Result<Lookup, StoreError>> {
        if !cache.is_live() {
            return None;
        }
        let generation = cache.generation();
        let token = cache.token(credential, hash, unix_now(), generation);
        let policy = cache.policy(credential, generation);
        if let (Cached::Hit(token), Cached::Hit(policy)) = (&token, &policy) {
            // Only live tokens are cached: a tombstone is read again.
            return Some(Ok(Lookup {
                token: token.clone(),
                policy: policy.clone(),
                revoked: false,
            }));
        }
        let (mut connection, connection_generation) = tracker.connection()?;
        if connection_generation != generation {
            return None;
        }
        let keys = self.keys(credential);
        let lookup = match self.read(&mut connection, &keys, hash).await {
            Ok(lookup) => lookup,
            Err(error) => return Some(Err(error)),
        };
        if let Cached::Miss(ticket) = token {
            cache.fill_token(hash, ticket, &lookup.token);
        }
        if let Cached::Miss(ticket) = policy {
            cache.fill_policy(credential, ticket, &lookup.policy);
        }
        Some(Ok(lookup))
    }

    /// A policy through the cache, as [`RedisTokenStore::cached_lookup`]
    /// does for a token and its policy.
    async fn cached_policy(
        &self,
        cache: &Cache,
        tracker: &Tracker,
        credential: CredentialKey,
    ) -> Option<Result<Option<Arc<CredentialPolicy>>, StoreError>> {
        if !cache.is_live() {
            return None;
        }
        let generation = cache.generation();
        let ticket = match cache.policy(credential, generation) {
            Cached::Hit(policy) => return Some(Ok(policy)),
            Cached::Miss(ticket) => ticket,
        };
        let (mut connection, connection_generation) = tracker.connection()?;
        if connection_generation != generation {
            return None;
        }
        let policy = match self.read_policy(&mut connection, credential).await {
            Ok(policy) => policy,
            Err(error) => return Some(Err(error)),
        };
        cache.fill_policy(credential, ticket, &policy);
        Some(Ok(policy))
    }

    /// A credential's policy, read on `connection`.
    async fn read_policy(
        &self,
        connection: &mut (impl redis::aio::ConnectionLike + Send),
        credential: CredentialKey,
    ) -> Result<Option<Arc<CredentialPolicy>>, StoreError> {
        let stored: Option<Vec<u8>> = self
            .run(
                redis::cmd("GET")
                    .arg(self.keys(credential).policy())
                    .query_async(connection),
            )
            .await?;
        Ok(stored
            .as_deref()
            .map(codec::decode_policy)
            .transpose()?
            .map(Arc::new))
    }

    /// Waits until `revocation_replicas` replicas acknowledged every write
    /// this store made on `connection` so far (`WAIT`), so a failover to
    /// one of them keeps a revocation. On a Redis Cluster `WAIT` goes to
    /// every primary and the fewest acknowledgements count.
    async fn await_replicas(
        &self,
        connection: &mut (impl redis::aio::ConnectionLike + Send),
    ) -> Result<(), StoreError> {
        if self.revocation_replicas == 0 {
            return Ok(());
        }
        let timeout_ms = u64::try_from(self.replica_timeout.as_millis()).unwrap_or(u64::MAX);
        let acknowledged: i64 = self
            .run(
                redis::cmd("WAIT")
                    .arg(self.revocation_replicas)
                    .arg(timeout_ms)
                    .query_async(connection),
            )
            .await?;
        if acknowledged < i64::from(self.revocation_replicas) {
            return Err(StoreError::Unavailable(
                format!(
                    "{acknowledged} of the {} Redis replicas required acknowledged the change within {timeout_ms} ms",
                    self.revocation_replicas
                )
                .into(),
            ));
        }
        Ok(())
    }

    fn local_cache(&self) -> Option<&Cache> {
        self.cache.as_ref().map(|(cache, _)| &**cache)
    }

    /// The counter of failed authentications under `key`. Keys are client
    /// IDs or addresses, bounded in length by the caller; braces are
    /// replaced so a key never forms a hash tag of its own choosing.
    fn failure_key(&self, key: &str) -> String {
        format!("{}f:{}", self.key_prefix, key.replace(['{', '}'], "_"))
    }

    /// The counter stored under `key` (a full key, see `failure_key`). One
    /// key, so GET and TTL travel together in one pipeline.
    async fn read_failures(&self, key: &str) -> Result<FailureCount, StoreError> {
        let mut pipeline = redis::pipe();
        pipeline.cmd("GET").arg(key).cmd("TTL").arg(key);
        let mut connection = self.connection.clone();
        let (failures, ttl): (Option<i64>, i64) =
            self.run(pipeline.query_async(&mut connection)).await?;
        failure_count(failures, ttl)
    }

    fn keys(&self, credential: CredentialKey) -> CredentialKeys {
        CredentialKeys::new(&self.key_prefix, credential)
    }

    /// Runs one Redis operation within the deadline, classifying failures.
    async fn run<T>(
        &self,
        operation: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, operation).await {
            Ok(result) => result.map_err(from_redis),
            Err(_) => Err(StoreError::Unavailable(
                format!("Redis did not answer within {:?}", self.deadline).into(),
            )),
        }
    }
}

/// A failure counter as read: its value (absent: none) and its TTL.
fn failure_count(failures: Option<i64>, ttl: i64) -> Result<FailureCount, StoreError> {
    Ok(FailureCount {
        count: count(failures.unwrap_or(0))?,
        resets_in: count(ttl.max(0))?,
    })
}

/// A count from a script as `u32`.
fn count(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| {
        StoreError::Internal(format!("unexpected count {value} from a Redis script").into())
    })
}

#[async_trait]
impl TokenStore for RedisTokenStore {
    async fn issue(&self, token: &NewToken<'_>) -> Result<u32, StoreIssueError> {
        check_not_expired(token)?;
        let keys = self.keys(token.credential);
        let mut invocation = self.scripts.issue.prepare_invoke();
        invocation
            .key(keys.policy())
            .key(keys.index())
            .key(keys.tokens())
            .key(keys.revoked())
            .arg(token.now)
            .arg(&token.hash.0[..])
            .arg(token.record.expires_at)
            .arg(codec::encode_token(token.record))
            .arg(token.policy.version)
            .arg(codec::encode_policy(token.policy)?)
            .arg(token.limit.max_tokens)
            .arg(if token.limit.evict_oldest { "1" } else { "0" })
            .arg(POLICY_RETENTION_SECS)
            .arg(match token.origin {
                PolicyOrigin::Registry => "0",
                PolicyOrigin::Remembered => "1",
            })
            .arg(MAX_TOMBSTONES);
        let mut connection = self.connection.clone();
        let result: Result<(i64, i64), _> =
            self.run(invocation.invoke_async(&mut connection)).await;
        if let Some(cache) = self.local_cache() {
            // Whatever the outcome (a timeout may still have written), the
            // credential's tokens (evicted, expired, this one) and policy
            // may have changed.
            cache.invalidate_credential(token.credential);
        }
        let (status, detail) = result?;
        match status {
            issue_status::STORED => Ok(count(detail)?),
            issue_status::LIMIT_REACHED => {
                Err(StoreIssueError::LimitReached(token.limit.max_tokens))
            }
            issue_status::STALE_POLICY => Err(StoreIssueError::StalePolicy { held: Some(detail) }),
            issue_status::NO_POLICY => Err(StoreIssueError::StalePolicy { held: None }),
            other => Err(StoreError::Internal(
                format!("unexpected status {other} from the issue script").into(),
            )
            .into()),
        }
    }

    async fn lookup(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<Lookup, StoreError> {
        if let Some((cache, tracker)) = &self.cache
            && let Some(result) = self.cached_lookup(cache, tracker, credential, hash).await
        {
            return result;
        }
        let keys = self.keys(credential);
        let mut connection = self.connection.clone();
        self.read(&mut connection, &keys, hash).await
    }

    async fn policy(
        &self,
        credential: CredentialKey,
    ) -> Result<Option<Arc<CredentialPolicy>>, StoreError> {
        if let Some((cache, tracker)) = &self.cache
            && let Some(result) = self.cached_policy(cache, tracker, credential).await
        {
            return result;
        }
        let mut connection = self.connection.clone();
        self.read_policy(&mut connection, credential).await
    }

    async fn revoke(
        &self,
        credential: CredentialKey,
        hash: &TokenHash,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(credential);
        let mut invocation = self.scripts.revoke.prepare_invoke();
        invocation
            .key(keys.index())
            .key(keys.tokens())
            .key(keys.revoked())
            .arg(&hash.0[..])
            .arg(unix_now())
            .arg(MAX_TOMBSTONES);
        let mut connection = self.connection.clone();
        let deleted: Result<i64, _> = self.run(invocation.invoke_async(&mut connection)).await;
        if let Some(cache) = self.local_cache() {
            cache.invalidate_tokens(credential);
        }
        let deleted = deleted?;
        self.await_replicas(&mut connection).await?;
        Ok(deleted > 0)
    }

    async fn apply_policy(
        &self,
        credential: CredentialKey,
        policy: &CredentialPolicy,
        revoke_tokens: bool,
    ) -> Result<u32, StoreError> {
        let keys = self.keys(credential);
        let mut invocation = self.scripts.apply_policy.prepare_invoke();
        invocation
            .key(keys.policy())
            .key(keys.index())
            .key(keys.tokens())
            .key(keys.revoked())
            .arg(unix_now())
            .arg(policy.version)
            .arg(codec::encode_policy(policy)?)
            .arg(match (revoke_tokens, policy.state) {
                (false, _) => "0",
                // A deletion's own tombstone answers for every token.
                (true, PolicyState::Deleted) => "1",
                (true, PolicyState::Active | PolicyState::Disabled) => "2",
            })
            .arg(POLICY_RETENTION_SECS)
            .arg(MAX_TOMBSTONES);
        let mut connection = self.connection.clone();
        let revoked: Result<i64, _> = self.run(invocation.invoke_async(&mut connection)).await;
        if let Some(cache) = self.local_cache() {
            if revoke_tokens {
                cache.invalidate_credential(credential);
            } else {
                cache.invalidate_policy(credential);
            }
        }
        let revoked = count(revoked?)?;
        self.await_replicas(&mut connection).await?;
        Ok(revoked)
    }

    async fn record_failure(
        &self,
        key: &str,
        window_seconds: u32,
    ) -> Result<FailureCount, StoreError> {
        let mut invocation = self.scripts.record_failure.prepare_invoke();
        invocation.key(self.failure_key(key)).arg(window_seconds);
        let mut connection = self.connection.clone();
        let (failures, ttl): (i64, i64) =
            self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(FailureCount {
            count: count(failures)?,
            resets_in: count(ttl.max(0))?,
        })
    }

    async fn failures(&self, key: &str) -> Result<FailureCount, StoreError> {
        self.read_failures(&self.failure_key(key)).await
    }

    async fn failures_of(&self, keys: &[&str]) -> Result<Vec<FailureCount>, StoreError> {
        let keys: Vec<String> = keys.iter().map(|key| self.failure_key(key)).collect();
        if matches!(self.connection, Connection::Cluster(_)) {
            // The counters live in different slots, which one cluster
            // pipeline cannot span: read them in parallel instead.
            return futures_util::future::try_join_all(
                keys.iter().map(|key| self.read_failures(key)),
            )
            .await;
        }
        // One round trip for all of them.
        let mut pipeline = redis::pipe();
        for key in &keys {
            pipeline.cmd("GET").arg(key).cmd("TTL").arg(key);
        }
        let mut connection = self.connection.clone();
        let values: Vec<(Option<i64>, i64)> =
            self.run(pipeline.query_async(&mut connection)).await?;
        values
            .into_iter()
            .map(|(failures, ttl)| failure_count(failures, ttl))
            .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        self.run(redis::cmd("PING").query_async::<()>(&mut connection))
            .await
    }
}
