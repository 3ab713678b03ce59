//! The registry's configuration: one typed struct, loaded in layers
//! (defaults → TOML file → `LATCHKEY_*` → `DATABASE_URL`) and validated
//! before any port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use latchkey_registry::{ProjectPolicy, validate};
use latchkey_registry_store::DatabaseConfig;
use latchkey_runtime::{ConfigError, LogFormat, load_config};
use latchkey_secrets::HashKey;
use serde::Deserialize;

/// Everything the credential registry can be configured with. See
/// `docs/configuration.md` for each key.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// gRPC listen address.
    pub listen_addr: SocketAddr,
    /// Directory of the embedded defaults (SQLite file, generated hash key).
    pub data_dir: PathBuf,
    /// The database.
    pub database: DatabaseConfig,
    /// Key of the secret hashes, 64 hex digits. Required with PostgreSQL
    /// (every replica must share it); generated into `data_dir` otherwise.
    pub hash_key: Option<String>,
    /// File holding the hash key, as an alternative to `hash_key`.
    pub hash_key_file: Option<PathBuf>,
    /// Policy of projects that do not override it.
    pub policy_defaults: ProjectPolicy,
    /// Log line format.
    pub log_format: LogFormat,
    /// How long in-flight calls may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("latchkey-data"),
            database: DatabaseConfig::default(),
            hash_key: None,
            hash_key_file: None,
            policy_defaults: ProjectPolicy::default(),
            log_format: LogFormat::default(),
            shutdown_grace_seconds: 10,
        }
    }
}

impl std::fmt::Debug for RegistryConfig {
    // Never print the hash key or the database URL (it may hold a password).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("listen_addr", &self.listen_addr)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("hash_key", &self.hash_key.as_ref().map(|_| "<redacted>"))
            .field("hash_key_file", &self.hash_key_file)
            .field("policy_defaults", &self.policy_defaults)
            .field("log_format", &self.log_format)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .finish()
    }
}

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
        validate::default_policy("policy_defaults", &self.policy_defaults)
            .map_err(|error| ConfigError::new(error.to_string()))?;
        if self.database.backend_name() == "unknown" {
            return Err(ConfigError::new(
                "database.url: must start with sqlite: or postgres:",
            ));
        }
        if self.hash_key.is_some() && self.hash_key_file.is_some() {
            return Err(ConfigError::new("set hash_key or hash_key_file, not both"));
        }
        if let Some(key) = &self.hash_key {
            HashKey::from_hex(key)
                .map_err(|error| ConfigError::new(format!("hash_key: {error}")))?;
        }
        if self.hash_key.is_none()
            && self.hash_key_file.is_none()
            && self.database.backend_name() == "postgres"
        {
            return Err(ConfigError::new(
                "hash_key (or hash_key_file) is required with PostgreSQL: every replica must hash secrets with the same key",
            ));
        }
        Ok(())
    }

    /// The hash key: configured, read from its file, or (embedded default)
    /// read from `data_dir/hash.key`, created on first start.
    pub fn resolve_hash_key(&self) -> Result<HashKey, ConfigError> {
        if let Some(key) = &self.hash_key {
            return HashKey::from_hex(key)
                .map_err(|error| ConfigError::new(format!("hash_key: {error}")));
        }
        if let Some(path) = &self.hash_key_file {
            return read_key_file(path);
        }
        let path = self.data_dir.join("hash.key");
        if path.exists() {
            return read_key_file(&path);
        }
        let key = HashKey::generate();
        write_key_file(&path, &key)?;
        tracing::info!(path = %path.display(), "generated a new secret hash key");
        Ok(key)
    }
}

fn read_key_file(path: &Path) -> Result<HashKey, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(format!("hash key file {}: {error}", path.display())))?;
    HashKey::from_hex(&text)
        .map_err(|error| ConfigError::new(format!("hash key file {}: {error}", path.display())))
}

fn write_key_file(path: &Path, key: &HashKey) -> Result<(), ConfigError> {
    let fail = |error: std::io::Error| {
        ConfigError::new(format!(
            "cannot write hash key file {}: {error}",
            path.display()
        ))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(fail)?;
    std::io::Write::write_all(&mut file, format!("{}\n", key.to_hex()).as_bytes()).map_err(fail)
}
