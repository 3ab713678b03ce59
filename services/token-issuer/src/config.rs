//! The token issuer's configuration: one typed struct, loaded in layers
//! (defaults → TOML file → `LATCHKEY_*` → `REDIS_URL`) and validated before
//! any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use latchkey_runtime::{
    ClientTls, ConfigError, FIRST_HASH_KEY_ID, HashKeyId, HashKeySource, InternalKeySource,
    ListenerLimits, LogFormat, PreviousHashKey, ServerTls, load_config, validate_clock_skew,
};
use latchkey_token::FailureLimits;
use latchkey_token_store::RedisConfig;
use serde::Deserialize;
use tonic::codegen::http::Method;

/// Everything the token issuer can be configured with. See
/// `docs/configuration.md` for each key.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// Public gRPC listen address (TokenService, Introspection, Envoy
    /// `Authorization`).
    pub listen_addr: SocketAddr,
    /// Internal gRPC listen address (`TokenAdmin`): for the registry only,
    /// every call signed with the internal key. Never expose it to clients.
    pub internal_listen_addr: SocketAddr,
    /// HTTP listen address (OAuth endpoints).
    pub http_listen_addr: SocketAddr,
    /// HTTP listen address of the admin listener: `GET /metrics`, `/livez`
    /// and `/readyz` (never on the public HTTP port).
    pub admin_listen_addr: SocketAddr,
    /// The URL clients reach the HTTP endpoints at (named in the metadata
    /// document).
    pub public_url: String,
    /// gRPC URL of the credential registry's internal listener.
    pub registry_url: String,
    /// Directory of the embedded defaults (generated hash key).
    pub data_dir: PathBuf,
    /// Key of the token hashes, 64 hex digits. Required with Redis (every
    /// replica must share it); generated into `data_dir` otherwise.
    pub hash_key: Option<String>,
    /// File holding the hash key, as an alternative to `hash_key`.
    pub hash_key_file: Option<PathBuf>,
    /// The ID of `hash_key` (1, the default, for a key that never rotated):
    /// stored beside every hash made with it.
    pub hash_key_id: HashKeyId,
    /// Older hash keys by ID: what was hashed with them still verifies.
    pub previous_hash_keys: Vec<PreviousHashKey>,
    /// Key of the internal calls' signatures, 64 hex digits, shared with
    /// the registry. Required with Redis; generated into `data_dir`
    /// otherwise.
    pub internal_key: Option<String>,
    /// File holding the internal key, as an alternative to `internal_key`.
    pub internal_key_file: Option<PathBuf>,
    /// The internal key being rotated out: still accepted, never used.
    pub internal_previous_key: Option<String>,
    /// Largest clock difference allowed between a signed internal call and
    /// this server (a signed call is accepted this long, once).
    pub internal_clock_skew_seconds: u64,
    /// The Redis token store; absent = the in-process store (one replica).
    pub redis: Option<RedisConfig>,
    /// TLS on the gRPC listener (mutual with `client_ca_file`).
    pub tls: Option<ServerTls>,
    /// TLS towards the registry (`https://` in `registry_url`).
    pub registry_tls: Option<ClientTls>,
    /// Networks of proxies whose `Forwarded`/`X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Browser origins (`scheme://host[:port]`) allowed to call
    /// `POST /oauth2/token` (the console signs in there); empty (the
    /// default) turns CORS off.
    pub cors_allowed_origins: Vec<String>,
    /// How often last uses are sent to the registry.
    pub usage_flush_interval_ms: u64,
    /// Limits on failed client authentications (brute-force protection).
    pub failed_authentication: FailureLimitsConfig,
    /// Timeouts and limits of every listener (connections, requests,
    /// header and body read times).
    pub limits: ListenerLimits,
    /// Log line format.
    pub log_format: LogFormat,
    /// What is exported beside spans and metrics.
    pub telemetry: TelemetryConfig,
    /// How long in-flight calls may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// After the servers stopped, how long the last usage, rollup and audit
    /// reports are retried while the registry cannot take them; past it,
    /// what is left is logged as lost.
    pub shutdown_flush_seconds: u64,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50052)),
            internal_listen_addr: SocketAddr::from(([127, 0, 0, 1], 50062)),
            http_listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen_addr: SocketAddr::from(([127, 0, 0, 1], 9091)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            registry_url: "http://127.0.0.1:50061".to_owned(),
            data_dir: PathBuf::from("latchkey-data"),
            hash_key: None,
            hash_key_file: None,
            hash_key_id: FIRST_HASH_KEY_ID,
            previous_hash_keys: Vec::new(),
            internal_key: None,
            internal_key_file: None,
            internal_previous_key: None,
            internal_clock_skew_seconds: 30,
            redis: None,
            tls: None,
            registry_tls: None,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            usage_flush_interval_ms: 1000,
            failed_authentication: FailureLimitsConfig::default(),
            limits: ListenerLimits::default(),
            log_format: LogFormat::default(),
            telemetry: TelemetryConfig::default(),
            shutdown_grace_seconds: 10,
            shutdown_flush_seconds: 10,
        }
    }
}

impl std::fmt::Debug for IssuerConfig {
    // Never print the hash key; RedisConfig's Debug hides its URLs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("listen_addr", &self.listen_addr)
            .field("internal_listen_addr", &self.internal_listen_addr)
            .field("http_listen_addr", &self.http_listen_addr)
            .field("admin_listen_addr", &self.admin_listen_addr)
            .field("public_url", &self.public_url)
            .field("registry_url", &self.registry_url)
            .field("data_dir", &self.data_dir)
            .field("hash_key", &self.hash_key.as_ref().map(|_| "<redacted>"))
            .field("hash_key_file", &self.hash_key_file)
            .field("hash_key_id", &self.hash_key_id)
            .field("previous_hash_keys", &self.previous_hash_keys)
            .field(
                "internal_key",
                &self.internal_key.as_ref().map(|_| "<redacted>"),
            )
            .field("internal_key_file", &self.internal_key_file)
            .field(
                "internal_previous_key",
                &self.internal_previous_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "internal_clock_skew_seconds",
                &self.internal_clock_skew_seconds,
            )
            .field("redis", &self.redis)
            .field("tls", &self.tls)
            .field("registry_tls", &self.registry_tls)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("usage_flush_interval_ms", &self.usage_flush_interval_ms)
            .field("failed_authentication", &self.failed_authentication)
            .field("limits", &self.limits)
            .field("log_format", &self.log_format)
            .field("telemetry", &self.telemetry)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field("shutdown_flush_seconds", &self.shutdown_flush_seconds)
            .finish()
    }
}

/// Telemetry beyond spans and metrics (`[telemetry]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Log every issued and revoked token as an INFO event under the
    /// target `latchkey::token_event` (credential, project, client address,
    /// scopes; never the token), for a log shipper or OTLP pipeline that
    /// must see each issuance. Off: tokens are counted in usage rollups
    /// only.
    pub token_events: bool,
}

/// Failed client authentications allowed in a window before the failing
/// source is refused (HTTP 429 / `RESOURCE_EXHAUSTED` with `Retry-After`):
/// per (client ID, source address) and per source address. A secret the
/// issuer has verified before is never refused by them, and a client is
/// never refused because of failures from another address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FailureLimitsConfig {
    /// Failures for one client ID from one source address.
    pub max_per_client_address: u32,
    /// Failures from one source address, whatever the client IDs.
    pub max_per_address: u32,
    /// Window length, from the first failure.
    pub window_seconds: u32,
}

impl Default for FailureLimitsConfig {
    fn default() -> Self {
        let limits = FailureLimits::default();
        Self {
            max_per_client_address: limits.per_client_address,
            max_per_address: limits.per_address,
            window_seconds: limits.window_seconds,
        }
    }
}

impl From<FailureLimitsConfig> for FailureLimits {
    fn from(config: FailureLimitsConfig) -> Self {
        Self {
            per_client_address: config.max_per_client_address,
            per_address: config.max_per_address,
            window_seconds: config.window_seconds,
        }
    }
}

impl IssuerConfig {
    /// Loads the configuration from `file` and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let config: Self = load_config(file, &[("REDIS_URL", "redis.url")])?;
        config.validate()?;
        Ok(config)
    }

    /// The token endpoint's CORS layer; `None` when no origin is allowed.
    pub fn token_cors(&self) -> Result<Option<tower_http::cors::CorsLayer>, ConfigError> {
        latchkey_runtime::cors_layer(
            "cors_allowed_origins",
            &self.cors_allowed_origins,
            &[Method::POST],
        )
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate("limits")?;
        self.token_cors()?;
        for (key, url) in [
            ("registry_url", &self.registry_url),
            ("public_url", &self.public_url),
        ] {
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return Err(ConfigError::new(format!(
                    "{key}: must be an http:// or https:// URL"
                )));
            }
        }
        if let Some(redis) = &self.redis
            && redis.url.is_empty()
            && redis.cluster_urls.is_empty()
        {
            return Err(ConfigError::new("redis.url: required when [redis] is set"));
        }
        let limits = &self.failed_authentication;
        if limits.max_per_client_address == 0
            || limits.max_per_address == 0
            || limits.window_seconds == 0
        {
            return Err(ConfigError::new(
                "failed_authentication: limits and window must be positive",
            ));
        }
        if self.usage_flush_interval_ms == 0 {
            return Err(ConfigError::new(
                "usage_flush_interval_ms: must be positive",
            ));
        }
        self.hash_key_source().validate(self.redis.is_some())?;
        self.internal_key_source().validate(self.redis.is_some())?;
        validate_clock_skew(self.internal_clock_skew_seconds)
    }

    /// Where the internal key comes from.
    pub fn internal_key_source(&self) -> InternalKeySource<'_> {
        InternalKeySource {
            value: self.internal_key.as_deref(),
            file: self.internal_key_file.as_deref(),
            previous: self.internal_previous_key.as_deref(),
            data_dir: &self.data_dir,
        }
    }

    /// Where the hash key comes from.
    pub fn hash_key_source(&self) -> HashKeySource<'_> {
        HashKeySource {
            value: self.hash_key.as_deref(),
            file: self.hash_key_file.as_deref(),
            id: self.hash_key_id,
            previous: &self.previous_hash_keys,
            data_dir: &self.data_dir,
        }
    }
}
