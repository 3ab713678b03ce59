//! How to reach Redis.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Where the Redis token store lives and how long it may take to answer.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// The server, as `redis://[user:password@]host:port[/db]` (or
    /// `rediss://` for TLS). Ignored in cluster mode.
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
        None
    }
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
}
