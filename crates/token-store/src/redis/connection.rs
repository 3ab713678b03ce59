//! One connection type over standalone Redis and Redis Cluster, and the
//! classification of Redis errors.

use std::sync::Arc;
use std::time::Duration;

use latchkey_token::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use super::config::RedisConfig;

/// Reconnection attempts per failed connection: few and close together, so
/// a request waiting on a reconnection fails fast while Redis is down (the
/// next request starts another round, so recovery does not depend on them).
const RECONNECT_RETRIES: u32 = 2;
const RECONNECT_MIN_DELAY_MS: u64 = 50;
const RECONNECT_MAX_DELAY_MS: u64 = 500;

/// A multiplexed connection that reconnects by itself. Cloning is cheap and
/// shares the underlying connections.
#[derive(Clone)]
pub(super) enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Prepares the connection without waiting for Redis: the first command
    /// connects, so a service can start while Redis is still coming up.
    pub(super) fn open(config: &RedisConfig) -> Result<Self, RedisError> {
        let timeout = config.response_timeout();
        if config.is_cluster() {
            let mut builder =
                ClusterClient::builder(config.cluster_urls.iter().map(String::as_str));
            if let Some(certificates) = config.tls_certificates()? {
                builder = builder.certs(certificates);
            }
            let client = builder
                .retries(RECONNECT_RETRIES)
                .min_retry_wait(RECONNECT_MIN_DELAY_MS)
                .max_retry_wait(RECONNECT_MAX_DELAY_MS)
                .build()?;
            let cluster_config = ClusterConfig::new()
                .set_connection_timeout(timeout)
                .set_response_timeout(timeout);
            Ok(Self::Cluster(
                client.get_pending_async_connection_with_config(cluster_config),
            ))
        } else {
            let client = config.client(config.url.as_str())?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(RECONNECT_RETRIES as usize)
                .set_min_delay(Duration::from_millis(RECONNECT_MIN_DELAY_MS))
                .set_max_delay(Duration::from_millis(RECONNECT_MAX_DELAY_MS));
            Ok(Self::Standalone(ConnectionManager::new_lazy_with_config(
                client,
                manager_config,
            )?))
        }
    }

    /// `standalone` or `cluster`.
    pub(super) fn mode_name(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "standalone",
            Self::Cluster(_) => "cluster",
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Classifies a Redis error: `Unavailable` when Redis cannot serve now
/// (unreachable, timed out, failing over, loading, out of memory, refusing
/// our credentials), `Internal` when the command or the data is wrong.
/// Either way the caller fails closed.
pub(super) fn from_redis(error: RedisError) -> StoreError {
    if is_unavailable(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Internal(Box::new(error))
    }
}

/// Why a failed first contact cannot be cured by retrying, if it cannot:
/// the configuration is wrong and the service should not start.
pub(super) fn refusal_at_start(error: &RedisError) -> Option<&'static str> {
    if error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"))
    {
        return Some("wrong user or password in the Redis URL");
    }
    if error.code() == Some("NOPERM") {
        return Some("the Redis user may not run the commands Latchkey needs");
    }
    match io_error_kind(error) {
        // tokio-rustls reports a failed handshake (an untrusted certificate,
        // one for another host, a plain-text answer) as invalid data.
        Some(std::io::ErrorKind::InvalidData) => Some(
            "the TLS handshake failed (is the server's CA in redis.tls_ca_file, \
             and its certificate for this host?)",
        ),
        // Redis accepted the connection and dropped it at once: what a TLS
        // port does to a client speaking plain text.
        Some(
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe,
        ) => Some("the server closed the connection at once (a TLS port needs a rediss:// URL)"),
        _ => None,
    }
}

/// The kind of the I/O error behind `error`, if that is what it is. The
/// crate keeps its cause as an `Arc<dyn Error>`, which is what its
/// `source()` hands out.
fn io_error_kind(error: &RedisError) -> Option<std::io::ErrorKind> {
    let source = std::error::Error::source(error)?;
    let io = source.downcast_ref::<std::io::Error>().or_else(|| {
        source
            .downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
    })?;
    Some(io.kind())
}

fn is_unavailable(error: &RedisError) -> bool {
    if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
        return true;
    }
    if matches!(
        error.kind(),
        ErrorKind::AuthenticationFailed | ErrorKind::ClusterConnectionNotFound
    ) {
        return true;
    }
    matches!(
        error.code(),
        Some(
            "LOADING"
                | "BUSY"
                | "MASTERDOWN"
                | "READONLY"
                | "CLUSTERDOWN"
                | "TRYAGAIN"
                | "MOVED"
                | "ASK"
                | "OOM"
                | "MISCONF"
                | "NOREPLICAS"
                | "NOAUTH"
                | "WRONGPASS"
                | "NOPERM"
        )
    )
}
