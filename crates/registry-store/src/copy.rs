//! Copying a registry database into another, table by table: how a
//! platform moves from the embedded SQLite file to PostgreSQL (or back).
//!
//! Both databases are brought to this version's schema first (the same
//! migrations), then every row is read through its SeaORM entity and
//! written through the same entity, so a column added to an entity is
//! copied without a list to keep and values convert between the backends
//! exactly as the registry itself reads and writes them. The source is read
//! in one snapshot; the target is written in one transaction that commits
//! only when every table is copied, counted and no source table was left
//! out: a failed copy leaves the target as it was.

use latchkey_registry::RegistryError;
use sea_orm::{
    AccessMode, ActiveModelTrait, ConnectionTrait, DatabaseBackend, DatabaseTransaction, DbErr,
    EntityTrait, IdenStatic, IntoActiveModel, IsolationLevel, Iterable, PaginatorTrait,
    PrimaryKeyToColumn, PrimaryKeyTrait, Statement, TransactionTrait,
};

use crate::connect::{DatabaseConfig, open};
use crate::entity::{
    audit_event, credential, credential_secret, member, policy_sync_intent, project,
    registry_setting, usage_address, usage_batch, usage_rollup,
};

/// Rows per INSERT: 10 columns at most, far below SQLite's and
/// PostgreSQL's limits on bound values.
const BATCH_ROWS: usize = 256;

/// SeaORM's record of applied migrations: each side keeps its own.
const MIGRATIONS_TABLE: &str = "seaql_migrations";

/// What [`copy_database`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// `sqlite` or `postgres`.
    pub source_backend: &'static str,
    /// `sqlite` or `postgres`.
    pub target_backend: &'static str,
    /// Every table, in the order copied, with its rows.
    pub tables: Vec<CopiedTable>,
}

impl CopyReport {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|table| table.rows).sum()
    }
}

/// One table's share of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    /// The table's name.
    pub table: String,
    /// Rows copied.
    pub rows: u64,
}

/// Why a copy did not happen. In every case the target is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source and the target are one database.
    #[error("the source and the target are the same database")]
    SameDatabase,
    /// The source cannot be opened or migrated.
    #[error("source database: {0}")]
    Source(#[source] RegistryError),
    /// The target cannot be opened or migrated.
    #[error("target database: {0}")]
    Target(#[source] RegistryError),
    /// The target holds data already: a copy never merges.
    #[error(
        "the target database is not empty ({table} holds {rows} rows): copy into a new \
         database or schema"
    )]
    TargetNotEmpty {
        /// The first non-empty table found.
        table: String,
        /// Its rows.
        rows: u64,
    },
    /// The source holds tables this version does not know (written by a
    /// newer version): copying would lose them.
    #[error(
        "the source holds tables this version does not copy ({}): copy with the version \
         that wrote them",
        .0.join(", ")
    )]
    UnknownTables(Vec<String>),
    /// Opening, listing or committing failed.
    #[error("{step}: {error}")]
    Transaction {
        /// What was being done.
        step: &'static str,
        /// What the database said.
        #[source]
        error: DbErr,
    },
    /// Reading or writing a table failed.
    #[error("copying {table}: {error}")]
    Copy {
        /// The table.
        table: String,
        /// What the database said.
        #[source]
        error: DbErr,
    },
}

/// Copies every row of the registry database `source` into `target`,
/// which must be empty (a new database, or a new PostgreSQL schema); both
/// are migrated to this version's schema first. Stop the registry before
/// copying: what it writes after the source's snapshot is not copied.
pub async fn copy_database(
    source: &DatabaseConfig,
    target: &DatabaseConfig,
) -> Result<CopyReport, CopyError> {
    if source.url == target.url && source.schema == target.schema {
        return Err(CopyError::SameDatabase);
    }
    let source_connection = open(source).await.map_err(CopyError::Source)?;
    let target_connection = open(target).await.map_err(CopyError::Target)?;
    let read = snapshot(&source_connection)
        .await
        .map_err(failed_to("begin reading the source"))?;
    let write = target_connection
        .begin()
        .await
        .map_err(failed_to("begin writing the target"))?;
    let mut copy = TableCopier {
        read: &read,
        write: &write,
        tables: Vec::new(),
    };
    // Parents before children (no foreign keys today; kept in case).
    copy.table::<project::Entity>().await?;
    copy.table::<member::Entity>().await?;
    copy.table::<credential::Entity>().await?;
    copy.table::<credential_secret::Entity>().await?;
    copy.table::<audit_event::Entity>().await?;
    copy.table::<registry_setting::Entity>().await?;
    copy.table::<policy_sync_intent::Entity>().await?;
    copy.table::<usage_rollup::Entity>().await?;
    copy.table::<usage_address::Entity>().await?;
    copy.table::<usage_batch::Entity>().await?;
    let tables = copy.tables;
    // Checked once the copy is written (and not yet committed): the tables
    // copied above are the one list of what this version knows.
    let unknown: Vec<String> = table_names(&read)
        .await
        .map_err(failed_to("list the source's tables"))?
        .into_iter()
        .filter(|name| name != MIGRATIONS_TABLE && !tables.iter().any(|t| &t.table == name))
        .collect();
    if !unknown.is_empty() {
        return Err(CopyError::UnknownTables(unknown));
    }
    write
        .commit()
        .await
        .map_err(failed_to("commit the target"))?;
    // The snapshot only read: ending it changes nothing.
    let _ = read.rollback().await;
    source_connection.close().await.ok();
    target_connection.close().await.ok();
    Ok(CopyReport {
        source_backend: source.backend_name(),
        target_backend: target.backend_name(),
        tables,
    })
}

/// The error of a transaction `step` that failed.
fn failed_to(step: &'static str) -> impl FnOnce(DbErr) -> CopyError {
    move |error| CopyError::Transaction { step, error }
}

/// A consistent read of the whole source: PostgreSQL's repeatable read, or
/// SQLite's read transaction (which sees one state of the file).
async fn snapshot(connection: &sea_orm::DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match connection.get_database_backend() {
        DatabaseBackend::Postgres => {
            connection
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await
        }
        _ => connection.begin().await,
    }
}

/// The tables of the connection's database (its schema, on PostgreSQL).
async fn table_names(connection: &DatabaseTransaction) -> Result<Vec<String>, DbErr> {
    let backend = connection.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    connection
        .query_all(Statement::from_string(backend, sql))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// The copy under way: the source's snapshot, the target's transaction and
/// what has been copied.
struct TableCopier<'a> {
    read: &'a DatabaseTransaction,
    write: &'a DatabaseTransaction,
    tables: Vec<CopiedTable>,
}

impl TableCopier<'_> {
    /// Copies every row of `E`'s table, in batches, after checking the
    /// target's table is empty.
    async fn table<E>(&mut self) -> Result<(), CopyError>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel> + Sync,
        E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    {
        use futures_util::TryStreamExt;

        let table = IdenStatic::as_str(&E::default()).to_owned();
        let failed = |error| CopyError::Copy {
            table: table.clone(),
            error,
        };
        let present = E::find().count(self.write).await.map_err(failed)?;
        if present > 0 {
            return Err(CopyError::TargetNotEmpty {
                table: table.clone(),
                rows: present,
            });
        }
        let mut rows = E::find().stream(self.read).await.map_err(failed)?;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut copied = 0u64;
        while let Some(row) = rows.try_next().await.map_err(failed)? {
            batch.push(row.into_active_model());
            if batch.len() == BATCH_ROWS {
                copied += insert::<E>(self.write, std::mem::take(&mut batch))
                    .await
                    .map_err(failed)?;
            }
        }
        drop(rows);
        copied += insert::<E>(self.write, batch).await.map_err(failed)?;
        restart_sequence::<E>(self.write, &table)
            .await
            .map_err(failed)?;
        self.tables.push(CopiedTable {
            table,
            rows: copied,
        });
        Ok(())
    }
}

async fn insert<E>(write: &DatabaseTransaction, batch: Vec<E::ActiveModel>) -> Result<u64, DbErr>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    if batch.is_empty() {
        return Ok(0);
    }
    E::insert_many(batch).exec_without_returning(write).await
}

/// PostgreSQL's sequence behind an auto-increment key does not move when
/// rows are inserted with their keys: without this, the next secret
/// written on the target would collide with a copied one. SQLite takes the
/// next rowid from the table itself.
async fn restart_sequence<E: EntityTrait>(
    write: &DatabaseTransaction,
    table: &str,
) -> Result<(), DbErr> {
    if write.get_database_backend() != DatabaseBackend::Postgres
        || !<E::PrimaryKey as PrimaryKeyTrait>::auto_increment()
    {
        return Ok(());
    }
    let Some(key) = E::PrimaryKey::iter().next() else {
        return Ok(());
    };
    let column = key.into_column();
    let column = column.as_str();
    write
        .execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
             COALESCE((SELECT MAX(\"{column}\") FROM \"{table}\"), 0) + 1, false)"
        ))
        .await
        .map(|_| ())
}
