//! What any one client may hold of a listener: how long it may take to send
//! a request, how many connections and requests are served at once, and
//! how long a silent connection is kept (DESIGN rule 12).
//!
//! One [`ListenerLimits`] serves every listener kind: the HTTP server
//! ([`serve_http`](crate::serve_http)), the gRPC servers
//! ([`ListenerLimits::grpc_server`]) and the connection-limited accept
//! loop both use ([`LimitedListener`](crate::LimitedListener)).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;

/// Limits of one listener. Every value is positive; the defaults hold for
/// a replica on a small machine and are what an operator can count on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerLimits {
    /// A new connection must send its first bytes (a TLS ClientHello, an
    /// HTTP/2 preface, a request line) within this time, a TLS handshake
    /// must finish within it, and an HTTP/1.1 request head must arrive
    /// whole within it, counted from the first wait for it (so it also
    /// bounds how long a keep-alive connection sits idle between requests).
    pub header_read_timeout_ms: u64,
    /// An HTTP request body must arrive whole within this time after its
    /// head; a slower one is answered 408 and its connection closed.
    pub body_read_timeout_ms: u64,
    /// A request must be answered within this time (body read included):
    /// HTTP 503, gRPC `CANCELLED` ("Timeout expired") after it.
    pub request_timeout_ms: u64,
    /// A connection whose client has sent nothing for this long is closed
    /// (abandoned connections, dead peers, idle HTTP/2 and gRPC clients).
    /// Greater than `request_timeout_ms`, so a client waiting in silence for
    /// a slow answer gets the answer (or the timeout's) before its
    /// connection is cut.
    pub idle_timeout_ms: u64,
    /// Open connections per listener, TLS handshakes included. Past it, new
    /// connections wait in the kernel's accept backlog (and past that, the
    /// kernel refuses them) until an open one closes.
    pub max_connections: u32,
    /// Requests in progress per listener. Past it, a request is refused at
    /// once rather than queued: HTTP 503 with `Retry-After`, gRPC
    /// `UNAVAILABLE`.
    pub max_concurrent_requests: u32,
    /// Streams (requests) in progress per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// Largest request head: an HTTP/1.1 head, or an HTTP/2 header list.
    /// At least 8192 (the smallest read buffer hyper allows).
    pub max_header_bytes: u32,
    /// Interval of HTTP/2 keep-alive PINGs to clients; unset (the default),
    /// none are sent. A client's answers to them count as activity, so a
    /// set interval keeps idle clients' connections open past
    /// `idle_timeout_ms`; dead peers are found by the idle timeout either
    /// way.
    pub http2_keepalive_interval_ms: Option<u64>,
    /// How long an HTTP/2 keep-alive PING may go unanswered before the
    /// connection is closed (with `http2_keepalive_interval_ms` only).
    pub http2_keepalive_timeout_ms: u64,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            // Above the 60 s upstream keep-alive of common load balancers
            // and proxies, so they close first and never reuse a
            // connection this server is closing.
            idle_timeout_ms: 75_000,
            max_connections: 4_096,
            max_concurrent_requests: 1_024,
            max_concurrent_streams: 100,
            max_header_bytes: 16 * 1024,
            http2_keepalive_interval_ms: None,
            http2_keepalive_timeout_ms: 20_000,
        }
    }
}

/// hyper refuses an HTTP/1 read buffer smaller than this.
const MIN_HEADER_BYTES: u32 = 8 * 1024;
/// A request head larger than this is an attack, not a request.
const MAX_HEADER_BYTES: u32 = 1024 * 1024;

impl ListenerLimits {
    /// Checks what serde cannot; `key` names the limits in the
    /// configuration (e.g. `limits`) for the error message.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let positive = [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", u64::from(self.max_connections)),
            (
                "max_concurrent_requests",
                u64::from(self.max_concurrent_requests),
            ),
            (
                "max_concurrent_streams",
                u64::from(self.max_concurrent_streams),
            ),
            (
                "http2_keepalive_interval_ms",
                self.http2_keepalive_interval_ms.unwrap_or(1),
            ),
            (
                "http2_keepalive_timeout_ms",
                self.http2_keepalive_timeout_ms,
            ),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError::new(format!("{key}.{name}: must be positive")));
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return Err(ConfigError::new(format!(
                "{key}.max_header_bytes: must be between {MIN_HEADER_BYTES} and {MAX_HEADER_BYTES}"
            )));
        }
        if self.idle_timeout_ms <= self.request_timeout_ms {
            return Err(ConfigError::new(format!(
                "{key}.idle_timeout_ms: must be greater than request_timeout_ms"
            )));
        }
        Ok(())
    }

    /// [`header_read_timeout_ms`](Self::header_read_timeout_ms).
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// [`body_read_timeout_ms`](Self::body_read_timeout_ms).
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    /// [`request_timeout_ms`](Self::request_timeout_ms).
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`idle_timeout_ms`](Self::idle_timeout_ms).
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// [`http2_keepalive_interval_ms`](Self::http2_keepalive_interval_ms).
    pub fn http2_keepalive_interval(&self) -> Option<Duration> {
        self.http2_keepalive_interval_ms.map(Duration::from_millis)
    }

    /// [`http2_keepalive_timeout_ms`](Self::http2_keepalive_timeout_ms).
    pub fn http2_keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.http2_keepalive_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<ListenerLimits, String> {
        figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(toml))
            .extract()
            .map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_are_valid_and_an_empty_table_means_defaults() {
        let limits = parse("").unwrap();
        assert_eq!(limits, ListenerLimits::default());
        limits.validate("limits").unwrap();
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(5));
        assert_eq!(limits.body_read_timeout(), Duration::from_secs(10));
        assert_eq!(limits.request_timeout(), Duration::from_secs(30));
        assert_eq!(limits.max_connections, 4096);
        assert_eq!(limits.http2_keepalive_interval(), None);
    }

    #[test]
    fn keys_are_read_and_unknown_keys_refused() {
        let limits = parse("max_connections = 10\nhttp2_keepalive_interval_ms = 250").unwrap();
        assert_eq!(limits.max_connections, 10);
        assert_eq!(
            limits.http2_keepalive_interval(),
            Some(Duration::from_millis(250))
        );
        let unknown = parse("max_conections = 10").unwrap_err();
        assert!(unknown.contains("max_conections"), "{unknown}");
    }

    #[test]
    fn zero_and_out_of_range_values_are_refused_by_name() {
        for (limits, field) in [
            (
                ListenerLimits {
                    header_read_timeout_ms: 0,
                    ..ListenerLimits::default()
                },
                "limits.header_read_timeout_ms",
            ),
            (
                ListenerLimits {
                    max_connections: 0,
                    ..ListenerLimits::default()
                },
                "limits.max_connections",
            ),
            (
                ListenerLimits {
                    max_concurrent_requests: 0,
                    ..ListenerLimits::default()
                },
                "limits.max_concurrent_requests",
            ),
            (
                ListenerLimits {
                    http2_keepalive_interval_ms: Some(0),
                    ..ListenerLimits::default()
                },
                "limits.http2_keepalive_interval_ms",
            ),
            (
                ListenerLimits {
                    max_header_bytes: 1024,
                    ..ListenerLimits::default()
                },
                "limits.max_header_bytes",
            ),
            (
                ListenerLimits {
                    idle_timeout_ms: 30_000,
                    ..ListenerLimits::default()
                },
                "limits.idle_timeout_ms",
            ),
        ] {
            let error = limits.validate("limits").unwrap_err().to_string();
            assert!(error.contains(field), "{error} should name {field}");
        }
    }
}
