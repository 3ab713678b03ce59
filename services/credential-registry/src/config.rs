//! The registry's configuration: one typed struct, loaded in layers
//! (defaults → TOML file → `LATCHKEY_*` → `DATABASE_URL`) and validated
//! before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use latchkey_net::{AuthProxy, TrustedProxies};
use latchkey_registry::{ProjectPolicy, validate};
use latchkey_registry_store::DatabaseConfig;
use latchkey_runtime::{
    ClientTls, ConfigError, FIRST_HASH_KEY_ID, HashKeyId, HashKeySource, InternalKeySource,
    ListenerLimits, LogFormat, PreviousHashKey, ServerTls, load_config, validate_clock_skew,
};
use serde::Deserialize;
use tonic::codegen::http::{HeaderName, Method};

/// Everything the credential registry can be configured with. See
/// `docs/configuration.md` for each key.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Public gRPC listen address (`CredentialRegistry`).
    pub listen_addr: SocketAddr,
    /// Internal gRPC listen address (`ClientAuthentication`, `UsageSink`,
    /// `AuditSink`): for the token issuers only, every call signed with the
    /// internal key. Never expose it to clients.
    pub internal_listen_addr: SocketAddr,
    /// HTTP listen address of the admin listener: `GET /metrics`, `/livez`
    /// and `/readyz`. `metrics_listen_addr`, its name before the probes
    /// joined it, is still accepted (both at once are refused).
    #[serde(alias = "metrics_listen_addr")]
    pub admin_listen_addr: SocketAddr,
    /// HTTP listen address of the management API over HTTP/JSON (every
    /// `CredentialRegistry` RPC, `GET /openapi.json`).
    pub http_listen_addr: SocketAddr,
    /// Browser origins (`scheme://host[:port]`) allowed to call the
    /// HTTP/JSON API; empty (the default) turns CORS off.
    pub cors_allowed_origins: Vec<String>,
    /// Sign-in through a trusted authentication proxy on the HTTP listener
    /// (off unless `trusted_proxies` is set).
    pub auth_proxy: AuthProxyConfig,
    /// Directory of the embedded defaults (SQLite file, generated hash key).
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseConfig,
    /// Key of the secret hashes, 64 hex digits. Required with PostgreSQL
    /// (every replica must share it); generated into `data_dir` otherwise.
    pub hash_key: Option<String>,
    /// File holding the hash key, as an alternative to `hash_key`.
    pub hash_key_file: Option<PathBuf>,
    /// The ID of `hash_key` (1, the default, for a key that never rotated):
    /// stored beside every hash made with it.
    pub hash_key_id: HashKeyId,
    /// Older hash keys by ID: what was hashed with them still verifies.
    pub previous_hash_keys: Vec<PreviousHashKey>,
    /// Key of the internal calls' signatures, 64 hex digits, shared with
    /// every token issuer. Required with PostgreSQL; generated into
    /// `data_dir` otherwise.
    pub internal_key: Option<String>,
    /// File holding the internal key, as an alternative to `internal_key`.
    pub internal_key_file: Option<PathBuf>,
    /// The internal key being rotated out: still accepted, never used.
    pub internal_previous_key: Option<String>,
    /// Largest clock difference allowed between a signed internal call and
    /// this server (a signed call is accepted this long, once).
    pub internal_clock_skew_seconds: u64,
    /// Policy of projects that do not override it.
    pub policy_defaults: ProjectPolicy,
    /// gRPC URL of the token issuers' internal listener (their load
    /// balancer): every credential change is applied there (`TokenAdmin`)
    /// before it commits, and management tokens are checked there.
    pub token_issuer_url: String,
    /// The OAuth token endpoint shown beside every credential.
    pub token_endpoint: String,
    /// TLS on the gRPC listener (mutual with `client_ca_file`).
    pub tls: Option<ServerTls>,
    /// TLS towards the token issuers (`https://` in `token_issuer_url`).
    pub token_issuer_tls: Option<ClientTls>,
    /// Timeouts and limits of every listener (connections, requests,
    /// header and body read times).
    pub limits: ListenerLimits,
    /// Log line format.
    pub log_format: LogFormat,
    /// How long in-flight calls may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// Days audit events are kept; older ones are deleted hourly. 0 keeps
    /// them forever.
    pub audit_retention_days: u32,
    /// Days token usage rollups are kept (by the minute they count);
    /// older ones are deleted hourly. 0 keeps them forever.
    pub usage_retention_days: u32,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            internal_listen_addr: SocketAddr::from(([127, 0, 0, 1], 50061)),
            admin_listen_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            http_listen_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            cors_allowed_origins: Vec::new(),
            auth_proxy: AuthProxyConfig::default(),
            data_dir: PathBuf::from("latchkey-data"),
            database: DatabaseConfig::default(),
            hash_key: None,
            hash_key_file: None,
            hash_key_id: FIRST_HASH_KEY_ID,
            previous_hash_keys: Vec::new(),
            internal_key: None,
            internal_key_file: None,
            internal_previous_key: None,
            internal_clock_skew_seconds: 30,
            policy_defaults: ProjectPolicy::default(),
            token_issuer_url: "http://127.0.0.1:50062".to_owned(),
            token_endpoint: "http://127.0.0.1:8080/oauth2/token".to_owned(),
            tls: None,
            token_issuer_tls: None,
            limits: ListenerLimits::default(),
            log_format: LogFormat::default(),
            shutdown_grace_seconds: 10,
            audit_retention_days: 90,
            usage_retention_days: 90,
        }
    }
}

impl std::fmt::Debug for RegistryConfig {
    // Never print the hash key or the database URL (it may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("listen_addr", &self.listen_addr)
            .field("internal_listen_addr", &self.internal_listen_addr)
            .field("admin_listen_addr", &self.admin_listen_addr)
            .field("http_listen_addr", &self.http_listen_addr)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("auth_proxy", &self.auth_proxy)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
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
            .field("policy_defaults", &self.policy_defaults)
            .field("token_issuer_url", &self.token_issuer_url)
            .field("token_endpoint", &self.token_endpoint)
            .field("tls", &self.tls)
            .field("token_issuer_tls", &self.token_issuer_tls)
            .field("limits", &self.limits)
            .field("log_format", &self.log_format)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("usage_retention_days", &self.usage_retention_days)
            .finish()
    }
}

/// `[auth_proxy]`: a proxy in front of the HTTP listener that signs users
/// in (SSO) and names them in a header. See `docs/configuration.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthProxyConfig {
    /// Addresses or networks (CIDR) the proxy calls from; empty turns the
    /// feature off.
    pub trusted_proxies: Vec<IpNet>,
    /// The header naming the signed-in user.
    pub user_header: String,
    /// The project whose members the proxy signs in.
    pub project: String,
}

impl Default for AuthProxyConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            user_header: "x-forwarded-user".to_owned(),
            project: String::new(),
        }
    }
}

/// Headers that cannot name the proxy's user.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "x-latchkey-on-behalf-of",
    "cookie",
    "host",
    "content-type",
    "content-length",
];

/// Longest audit (and usage) retention accepted (100 years): beyond it, 0
/// says "forever".
const MAX_AUDIT_RETENTION_DAYS: u32 = 36_500;

impl RegistryConfig {
    /// Loads the configuration from `file` and the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config: Self = load_config(file, &[("DATABASE_URL", "database.url")])?;
        if config.database.url.is_empty() {
            config.database.url = config.embedded_database_url();
        }
        config.validate()?;
        Ok(config)
    }

    /// The SQLite file of the embedded default, inside `data_dir`.
    pub fn embedded_database_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("registry.db").display()
        )
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate("limits")?;
        self.cors()?;
        self.auth_proxy()?;
        validate::default_policy("policy_defaults", &self.policy_defaults)
            .map_err(|error| ConfigError::new(error.to_string()))?;
        if self.database.backend_name() == "unknown" {
            return Err(ConfigError::new(
                "database.url: must start with sqlite: or postgres:",
            ));
        }
        let production = self.database.backend_name() == "postgres";
        self.hash_key_source().validate(production)?;
        self.internal_key_source().validate(production)?;
        validate_clock_skew(self.internal_clock_skew_seconds)?;
        if !self.token_issuer_url.starts_with("http://")
            && !self.token_issuer_url.starts_with("https://")
        {
            return Err(ConfigError::new(
                "token_issuer_url: must be an http:// or https:// URL",
            ));
        }
        if self.audit_retention_days > MAX_AUDIT_RETENTION_DAYS {
            return Err(ConfigError::new(format!(
                "audit_retention_days: at most {MAX_AUDIT_RETENTION_DAYS} (0 keeps events forever)"
            )));
        }
        if self.usage_retention_days > MAX_AUDIT_RETENTION_DAYS {
            return Err(ConfigError::new(format!(
                "usage_retention_days: at most {MAX_AUDIT_RETENTION_DAYS} (0 keeps usage forever)"
            )));
        }
        Ok(())
    }

    /// The HTTP/JSON API's CORS layer; `None` when no origin is allowed.
    pub fn cors(&self) -> Result<Option<tower_http::cors::CorsLayer>, ConfigError> {
        latchkey_runtime::cors_layer(
            "cors_allowed_origins",
            &self.cors_allowed_origins,
            &[Method::GET, Method::POST],
        )
    }

    /// The trusted authentication proxy; `None` when `trusted_proxies` is
    /// empty (the default).
    pub fn auth_proxy(&self) -> Result<Option<AuthProxy>, ConfigError> {
        let proxy = &self.auth_proxy;
        // The header is checked even while the feature is off: a typo must
        // not wait for the day the proxy is turned on.
        let header = HeaderName::from_bytes(proxy.user_header.as_bytes()).map_err(|_| {
            ConfigError::new(format!(
                "auth_proxy.user_header: {:?} is not an HTTP header name",
                proxy.user_header
            ))
        })?;
        // These carry credentials or the on-behalf-of choice of their own.
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(ConfigError::new(format!(
                "auth_proxy.user_header: {header} is reserved"
            )));
        }
        if proxy.trusted_proxies.is_empty() {
            return Ok(None);
        }
        validate::project_id("auth_proxy.project", &proxy.project)
            .map_err(|error| ConfigError::new(error.to_string()))?;
        Ok(Some(AuthProxy::new(
            TrustedProxies::new(proxy.trusted_proxies.clone()),
            header.as_str(),
            &proxy.project,
        )))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_proxy(header: &str, project: &str) -> RegistryConfig {
        RegistryConfig {
            auth_proxy: AuthProxyConfig {
                trusted_proxies: vec!["10.0.0.0/8".parse().expect("network")],
                user_header: header.to_owned(),
                project: project.to_owned(),
            },
            ..RegistryConfig::default()
        }
    }

    /// A configuration file with `contents`, loaded as the binary loads it.
    fn load(contents: &str) -> Result<RegistryConfig, ConfigError> {
        let directory = tempfile::tempdir().expect("temporary directory");
        let file = directory.path().join("registry.toml");
        std::fs::write(&file, contents).expect("write the file");
        RegistryConfig::load(Some(&file))
    }

    #[test]
    fn the_admin_listener_keeps_its_earlier_name() {
        let address: SocketAddr = "127.0.0.1:9999".parse().expect("address");
        let renamed = load("admin_listen_addr = \"127.0.0.1:9999\"\n").expect("valid");
        assert_eq!(renamed.admin_listen_addr, address);
        let earlier = load("metrics_listen_addr = \"127.0.0.1:9999\"\n").expect("valid");
        assert_eq!(earlier.admin_listen_addr, address);
        // Both at once would leave one silently ignored.
        let error = load(
            "metrics_listen_addr = \"127.0.0.1:9999\"\nadmin_listen_addr = \"127.0.0.1:9998\"\n",
        )
        .expect_err("both names refused")
        .to_string();
        assert!(error.contains("admin_listen_addr"), "{error}");
    }

    #[test]
    fn the_auth_proxy_is_off_by_default() {
        assert_eq!(RegistryConfig::default().auth_proxy().expect("valid"), None);
    }

    #[test]
    fn the_auth_proxy_is_validated() {
        let proxy = with_proxy("X-Remote-User", "acme")
            .auth_proxy()
            .expect("valid")
            .expect("on");
        assert_eq!(proxy.user_header(), "x-remote-user");
        assert_eq!(proxy.project(), "acme");
        for (header, project, key) in [
            ("x user", "acme", "auth_proxy.user_header"),
            ("", "acme", "auth_proxy.user_header"),
            ("Authorization", "acme", "auth_proxy.user_header"),
            ("x-latchkey-on-behalf-of", "acme", "auth_proxy.user_header"),
            ("x-forwarded-user", "", "auth_proxy.project"),
            ("x-forwarded-user", "Not A Project", "auth_proxy.project"),
        ] {
            let error = with_proxy(header, project)
                .validate()
                .expect_err("refused")
                .to_string();
            assert!(error.contains(key), "{header:?} {project:?}: {error}");
        }
    }
}
