//! How to reach Redis.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use redis::{Client, IntoConnectionInfo, RedisResult, TlsCertificates};
use serde::Deserialize;

/// Where the Redis token store lives and how long it may take to answer.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// The server, as `redis://[user:password@]host:port[/db]` (or
    /// `rediss://` for TLS; the user and password name a Redis ACL user,
    /// the password alone is `requirepass`). Ignored in cluster mode.
    pub url: String,
    /// Seed nodes of a Redis Cluster, in the same URL form; non-empty
    /// selects cluster mode. The rest of the topology is discovered.
    pub cluster_urls: Vec<String>,
    /// Prepended to every key, so several deployments can share a server.
    /// Must not contain `{` or `}`: the first braces of a key name its
    /// Cluster hash tag, which must be the credential.
    pub key_prefix: String,
    /// How long one command may take, and one connection attempt, before
    /// the store answers `Unavailable` (fail closed).
    pub response_timeout_ms: u64,
    /// Tokens (and as many credential policies) the exact in-process
    /// introspection cache holds; 0 disables it. Standalone Redis only: the
    /// cache is off on a Redis Cluster.
    pub cache_capacity: usize,
    /// Replicas that must acknowledge every policy change and revocation
    /// (`WAIT`, within `response_timeout_ms`) before it is reported done,
    /// so a failover to one of them cannot revive what was revoked; fewer
    /// acknowledgements fail the change as unavailable (the registry then
    /// does not commit it). 0 (the default) waits for none. On a Redis
    /// Cluster every primary must have this many replicas.
    pub revocation_replicas: u32,
    /// PEM file of the CA(s) that sign the Redis server's certificate, for
    /// `rediss://` URLs; unset trusts the platform's root certificates.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            cluster_urls: Vec::new(),
            key_prefix: "lk:".to_owned(),
            response_timeout_ms: 1000,
            cache_capacity: 100_000,
            revocation_replicas: 0,
            tls_ca_file: None,
        }
    }
}

impl fmt::Debug for RedisConfig {
    // URLs may carry a password: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("mode", &self.mode_name())
            .field("cluster_nodes", &self.cluster_urls.len())
            .field("key_prefix", &self.key_prefix)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("cache_capacity", &self.cache_capacity)
            .field("revocation_replicas", &self.revocation_replicas)
            .field("tls_ca_file", &self.tls_ca_file)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// `standalone` or `cluster`, safe to log.
    pub fn mode_name(&self) -> &'static str {
        if self.is_cluster() {
            "cluster"
        } else {
            "standalone"
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        !self.cluster_urls.is_empty()
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }

    /// What makes the configuration unusable, if anything.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if self.response_timeout_ms == 0 {
            return Some("response_timeout_ms must be positive");
        }
        if self.key_prefix.contains(['{', '}']) {
            return Some("key_prefix must not contain braces (they would change the hash tag)");
        }
        if !self.is_cluster() && self.url.is_empty() {
            return Some("url or cluster_urls must be set");
        }
        if self.tls_ca_file.is_some() && !self.urls().all(is_tls_url) {
            return Some("tls_ca_file needs rediss:// URLs (plain redis:// would ignore it)");
        }
        None
    }

    /// The URLs in use: the cluster's seeds, or the one server.
    fn urls(&self) -> impl Iterator<Item = &str> {
        let standalone = (!self.is_cluster()).then_some(self.url.as_str());
        self.cluster_urls
            .iter()
            .map(String::as_str)
            .chain(standalone)
    }

    /// The trust roots for `rediss://`: the configured CA file, or `None`
    /// for the platform's roots (what the `redis` crate loads by default).
    pub(crate) fn tls_certificates(&self) -> RedisResult<Option<TlsCertificates>> {
        let Some(path) = &self.tls_ca_file else {
            return Ok(None);
        };
        let root_cert = std::fs::read(path).map_err(|error| {
            redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "cannot read redis.tls_ca_file",
                format!("{}: {error}", path.display()),
            ))
        })?;
        Ok(Some(TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        }))
    }

    /// A client of the standalone server at `target` (the URL, or
    /// connection settings derived from it), trusting the configured CA.
    pub(crate) fn client(&self, target: impl IntoConnectionInfo) -> RedisResult<Client> {
        match self.tls_certificates()? {
            Some(certificates) => Client::build_with_tls(target, certificates),
            None => Client::open(target),
        }
    }
}

fn is_tls_url(url: &str) -> bool {
    url.starts_with("rediss://") || url.starts_with("valkeys://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_not_given() {
        let config: RedisConfig = serde_json::from_str(r#"{"key_prefix": "x:"}"#).unwrap();
        assert_eq!(config.url, "redis://127.0.0.1:6379");
        assert!(config.cluster_urls.is_empty());
        assert_eq!(config.key_prefix, "x:");
        assert_eq!(config.response_timeout_ms, 1000);
        assert_eq!(config.tls_ca_file, None);
        assert_eq!(config.problem(), None);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<RedisConfig>(r#"{"urls": []}"#).is_err());
    }

    #[test]
    fn debug_never_shows_urls() {
        let config = RedisConfig {
            url: "redis://user:hunter2@db:6379".to_owned(),
            cluster_urls: vec!["redis://user:hunter2@node:7000".to_owned()],
            ..RedisConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cluster"), "{shown}");
    }

    #[test]
    fn braces_in_the_prefix_are_refused() {
        let config = RedisConfig {
            key_prefix: "{lk}:".to_owned(),
            ..RedisConfig::default()
        };
        assert!(config.problem().is_some());
        let config = RedisConfig {
            response_timeout_ms: 0,
            ..RedisConfig::default()
        };
        assert!(config.problem().is_some());
    }

    #[test]
    fn a_ca_file_needs_tls_urls() {
        let config = RedisConfig {
            tls_ca_file: Some("/etc/redis/ca.pem".into()),
            ..RedisConfig::default()
        };
        assert!(
            config
                .problem()
                .is_some_and(|problem| problem.contains("rediss://"))
        );
        let config = RedisConfig {
            url: "rediss://redis:6380".to_owned(),
            ..config
        };
        assert_eq!(config.problem(), None);
        let config = RedisConfig {
            cluster_urls: vec!["rediss://a:7000".to_owned(), "redis://b:7000".to_owned()],
            ..config
        };
        assert!(config.problem().is_some());
    }

    #[test]
    fn an_unreadable_ca_file_is_a_clear_error() {
        let config = RedisConfig {
            url: "rediss://redis:6380".to_owned(),
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..RedisConfig::default()
        };
        let error = config.client(config.url.as_str()).unwrap_err().to_string();
        assert!(error.contains("tls_ca_file"), "{error}");
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }
}
