//! Connecting to SQLite or PostgreSQL and bringing the schema up to date.

use std::time::Duration;

use latchkey_registry::{ProjectPolicy, RegistryError};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use serde::Deserialize;

use crate::error::from_db;
use crate::migration::Migrator;
use crate::store::SqlCredentialStore;

/// Key of the PostgreSQL advisory lock held while migrating, so replicas
/// starting together do not race to create the same tables.
const MIGRATION_LOCK_KEY: i64 = 0x6c61_7463_686b_6579; // "latchkey"

/// How to reach the database.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    /// Pool size for PostgreSQL. SQLite always uses one connection, which
    /// serialises writers (see docs/decisions.md).
    pub max_connections: u32,
    /// How long to wait for a connection before answering UNAVAILABLE.
    pub acquire_timeout_ms: u64,
    /// PostgreSQL schema to use instead of `public` (tests give each run its
    /// own).
    pub schema: Option<String>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            // Empty: the service puts its embedded SQLite file in its data
            // directory.
            url: String::new(),
            max_connections: 16,
            acquire_timeout_ms: 3000,
            schema: None,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("backend", &self.backend_name())
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("schema", &self.schema)
            .finish()
    }
}

impl DatabaseConfig {
    /// `sqlite`, `postgres` or `unknown`, safe to log.
    pub fn backend_name(&self) -> &'static str {
        if self.url.starts_with("sqlite:") {
            "sqlite"
        } else if self.url.starts_with("postgres:") || self.url.starts_with("postgresql:") {
            "postgres"
        } else {
            "unknown"
        }
    }
}

/// Connects, applies pending migrations and returns the store.
pub async fn connect(
    config: &DatabaseConfig,
    policy_defaults: ProjectPolicy,
) -> Result<SqlCredentialStore, RegistryError> {
    let connection = open(config).await?;
    Ok(SqlCredentialStore::new(connection, policy_defaults))
}

/// Connects and applies pending migrations.
pub(crate) async fn open(
    config: &DatabaseConfig,
) -> Result<sea_orm::DatabaseConnection, RegistryError> {
    let sqlite = match config.backend_name() {
        "sqlite" => true,
        "postgres" => false,
        _ => {
            return Err(RegistryError::invalid(
                "database.url",
                "must start with sqlite: or postgres:",
            ));
        }
    };
    let mut options = ConnectOptions::new(config.url.clone());
    options
        .max_connections(if sqlite {
            1
        } else {
            config.max_connections.max(1)
        })
        .min_connections(if sqlite { 1 } else { 0 })
        .acquire_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .connect_timeout(Duration::from_millis(config.acquire_timeout_ms))
        .sqlx_logging(false);
    if let Some(schema) = &config.schema {
        options.set_schema_search_path(schema.clone());
    }
    if sqlite {
        create_parent_directory(&config.url).await?;
    }
    let connection = Database::connect(options).await.map_err(from_db)?;
    migrate(&connection).await?;
    Ok(connection)
}

async fn migrate(connection: &sea_orm::DatabaseConnection) -> Result<(), RegistryError> {
    match connection.get_database_backend() {
        DatabaseBackend::Postgres => {
            // DDL is transactional in PostgreSQL: the transaction-scoped lock
            // makes concurrent replicas migrate one after another.
            let transaction = connection.begin().await.map_err(from_db)?;
            transaction
                .execute_unprepared(&format!(
                    "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                ))
                .await
                .map_err(from_db)?;
            Migrator::up(&transaction, None).await.map_err(from_db)?;
            transaction.commit().await.map_err(from_db)
        }
        _ => Migrator::up(connection, None).await.map_err(from_db),
    }
}

/// SQLite creates the file but not its directory.
async fn create_parent_directory(url: &str) -> Result<(), RegistryError> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|error| RegistryError::Unavailable(Box::new(error)))?;
    }
    Ok(())
}
