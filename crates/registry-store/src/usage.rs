//! [`UsageStore`] on SeaORM: rollups added with `INSERT … ON CONFLICT DO
//! UPDATE` (the database adds counts atomically, so concurrent batches
//! from several issuers sum exactly on SQLite and PostgreSQL alike), a
//! batch ID table making a resent batch count once, and buckets summed by
//! the database with `GROUP BY` over integer period starts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use latchkey_registry::{
    Page, PageRequest, Position, RegistryError, UsageBucket, UsageFilter, UsageKind, UsageRollup,
    UsageStore,
};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement, TransactionTrait, Value,
};

use crate::convert::{corrupt, micros, time};
use crate::error::from_db;
use crate::store::SqlCredentialStore;

/// Rows per statement: 8 values a rollup, 3 an address, 1 an ID, well
/// under SQLite's bound-variable limit.
const ROWS_PER_STATEMENT: usize = 500;

/// A statement under construction with its bound values, numbering
/// placeholders the way each backend wants them.
struct Sql {
    backend: DatabaseBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            DatabaseBackend::MySql | DatabaseBackend::Sqlite => "?".to_owned(),
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

fn kind_code(kind: UsageKind) -> i16 {
    match kind {
        UsageKind::TokenIssued => 1,
        UsageKind::TokenRevoked => 2,
    }
}

/// Which of `rollups` name a credential that exists in the project named.
async fn known_rollups<'a>(
    transaction: &DatabaseTransaction,
    rollups: &'a [UsageRollup],
) -> Result<Vec<&'a UsageRollup>, RegistryError> {
    let backend = transaction.get_database_backend();
    let ids: BTreeSet<&str> = rollups
        .iter()
        .map(|rollup| rollup.credential_id.as_str())
        .collect();
    let ids: Vec<&str> = ids.into_iter().collect();
    let mut projects: HashMap<String, String> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(backend);
        sql.push("SELECT id, project_id FROM credentials WHERE id IN (");
        for (position, id) in chunk.iter().enumerate() {
            if position > 0 {
                sql.push(", ");
            }
            let placeholder = sql.bind(*id);
            sql.push(&placeholder);
        }
        sql.push(")");
        for row in transaction
            .query_all(sql.statement())
            .await
            .map_err(from_db)?
        {
            let id: String = row.try_get("", "id").map_err(from_db)?;
            let project_id: String = row.try_get("", "project_id").map_err(from_db)?;
            projects.insert(id, project_id);
        }
    }
    Ok(rollups
        .iter()
        .filter(|rollup| projects.get(&rollup.credential_id) == Some(&rollup.project_id))
        .collect())
}

async fn add_rollups(
    transaction: &DatabaseTransaction,
    rollups: &[&UsageRollup],
) -> Result<(), RegistryError> {
    let backend = transaction.get_database_backend();
    for chunk in rollups.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(backend);
        sql.push(
            "INSERT INTO usage_rollups (credential_id, minute, kind, project_id, count, \
             first_time, last_time, more_addresses) VALUES ",
        );
        for (position, rollup) in chunk.iter().enumerate() {
            let row = [
                sql.bind(rollup.credential_id.as_str()),
                sql.bind(micros(rollup.minute)),
                sql.bind(kind_code(rollup.kind)),
                sql.bind(rollup.project_id.as_str()),
                sql.bind(rollup.count),
                sql.bind(micros(rollup.first_time)),
                sql.bind(micros(rollup.last_time)),
                sql.bind(rollup.more_addresses),
            ];
            if position > 0 {
                sql.push(", ");
            }
            sql.push(&format!("({})", row.join(", ")));
        }
        // The stored row is read and written under the row's lock (or
        // SQLite's one writer), so concurrent additions never lose one.
        sql.push(
            " ON CONFLICT (credential_id, minute, kind) DO UPDATE SET \
             count = usage_rollups.count + excluded.count, \
             first_time = CASE WHEN excluded.first_time < usage_rollups.first_time \
                 THEN excluded.first_time ELSE usage_rollups.first_time END, \
             last_time = CASE WHEN excluded.last_time > usage_rollups.last_time \
                 THEN excluded.last_time ELSE usage_rollups.last_time END, \
             more_addresses = usage_rollups.more_addresses OR excluded.more_addresses",
        );
        transaction
            .execute(sql.statement())
            .await
            .map_err(from_db)?;
    }
    Ok(())
}

async fn add_addresses(
    transaction: &DatabaseTransaction,
    rollups: &[&UsageRollup],
) -> Result<(), RegistryError> {
    let backend = transaction.get_database_backend();
    // Sorted and deduplicated (both kinds of a minute may list an address).
    let rows: BTreeSet<(&str, i64, String)> = rollups
        .iter()
        .flat_map(|rollup| {
            rollup.addresses.iter().map(|address| {
                (
                    rollup.credential_id.as_str(),
                    micros(rollup.minute),
                    address.to_string(),
                )
            })
        })
        .collect();
    let rows: Vec<_> = rows.into_iter().collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(backend);
        sql.push("INSERT INTO usage_addresses (credential_id, minute, ip) VALUES ");
        for (position, (credential_id, minute, ip)) in chunk.iter().enumerate() {
            let row = [
                sql.bind(*credential_id),
                sql.bind(*minute),
                sql.bind(ip.as_str()),
            ];
            if position > 0 {
                sql.push(", ");
            }
            sql.push(&format!("({})", row.join(", ")));
        }
        sql.push(" ON CONFLICT (credential_id, minute, ip) DO NOTHING");
        transaction
            .execute(sql.statement())
            .await
            .map_err(from_db)?;
    }
    Ok(())
}

/// The rollup-level conditions of `filter` (and the page's start) as a
/// `WHERE` clause on `usage_rollups r` joined to `credentials c`.
fn where_clause(sql: &mut Sql, filter: &UsageFilter, page: &PageRequest) {
    let period = filter.granularity.micros();
    let project = sql.bind(filter.project_id.as_str());
    let start = sql.bind(micros(filter.start_time));
    let end = sql.bind(micros(filter.end_time));
    sql.push(&format!(
        " WHERE r.project_id = {project} AND r.minute >= {start} AND r.minute < {end}"
    ));
    if let Some(credential_id) = &filter.credential_id {
        let placeholder = sql.bind(credential_id.as_str());
        sql.push(&format!(" AND r.credential_id = {placeholder}"));
    }
    if let Some(owner) = &filter.owner {
        let placeholder = sql.bind(owner.as_str());
        sql.push(&format!(" AND c.owner = {placeholder}"));
    }
    if let Some(after) = &page.after {
        // Strictly after (period P, credential C), newest period first:
        // an earlier period, or P itself with a later credential ID.
        let at = micros(after.create_time);
        let before_period = sql.bind(at);
        let period_start = sql.bind(at);
        let period_end = sql.bind(at.saturating_add(period));
        let credential = sql.bind(after.id.as_str());
        sql.push(&format!(
            " AND (r.minute < {before_period} OR (r.minute >= {period_start} \
             AND r.minute < {period_end} AND r.credential_id > {credential}))"
        ));
    }
}

fn bucket_from_row(
    row: &sea_orm::QueryResult,
    filter: &UsageFilter,
) -> Result<UsageBucket, RegistryError> {
    let get = |column: &str| row.try_get::<i64>("", column).map_err(from_db);
    Ok(UsageBucket {
        credential_id: row.try_get("", "credential_id").map_err(from_db)?,
        start_time: time(get("period")?)?,
        granularity: filter.granularity,
        tokens_issued: get("issued")?,
        tokens_revoked: get("revoked")?,
        addresses: Vec::new(),
        more_addresses: get("more_addresses")? != 0,
        first_time: time(get("first_time")?)?,
        last_time: time(get("last_time")?)?,
    })
}

impl SqlCredentialStore {
    /// The distinct addresses of `buckets`' minutes, united per bucket.
    async fn bucket_addresses(
        &self,
        filter: &UsageFilter,
        buckets: &mut [UsageBucket],
    ) -> Result<(), RegistryError> {
        let (Some(newest), Some(oldest)) = (buckets.first(), buckets.last()) else {
            return Ok(());
        };
        let period = filter.granularity.micros();
        let from = micros(oldest.start_time).max(micros(filter.start_time));
        let until = (micros(newest.start_time) + period).min(micros(filter.end_time));
        let ids: BTreeSet<&str> = buckets
            .iter()
            .map(|bucket| bucket.credential_id.as_str())
            .collect();
        let mut sql = Sql::new(self.connection().get_database_backend());
        let from_placeholder = sql.bind(from);
        let until_placeholder = sql.bind(until);
        sql.push(&format!(
            "SELECT DISTINCT a.credential_id AS credential_id, \
             a.minute - (a.minute % {period}) AS period, a.ip AS ip \
             FROM usage_addresses a WHERE a.minute >= {from_placeholder} \
             AND a.minute < {until_placeholder} \
             AND a.credential_id IN ("
        ));
        for (position, id) in ids.into_iter().enumerate() {
            if position > 0 {
                sql.push(", ");
            }
            let placeholder = sql.bind(id);
            sql.push(&placeholder);
        }
        sql.push(")");
        let rows = self
            .connection()
            .query_all(sql.statement())
            .await
            .map_err(from_db)?;
        let mut found: BTreeMap<(String, i64), Vec<IpAddr>> = BTreeMap::new();
        for row in rows {
            let credential_id: String = row.try_get("", "credential_id").map_err(from_db)?;
            let period: i64 = row.try_get("", "period").map_err(from_db)?;
            let ip: String = row.try_get("", "ip").map_err(from_db)?;
            let ip: IpAddr = ip.parse().map_err(|_| corrupt("usage address"))?;
            found.entry((credential_id, period)).or_default().push(ip);
        }
        for bucket in buckets {
            let key = (bucket.credential_id.clone(), micros(bucket.start_time));
            bucket.set_addresses(found.remove(&key).unwrap_or_default());
        }
        Ok(())
    }
}

#[async_trait]
impl UsageStore for SqlCredentialStore {
    async fn record_rollups(
        &self,
        batch_id: &str,
        rollups: &[UsageRollup],
        now: DateTime<Utc>,
    ) -> Result<bool, RegistryError> {
        let transaction = self.connection().begin().await.map_err(from_db)?;
        let backend = transaction.get_database_backend();
        // The batch ID first: a concurrent resend waits on its key and then
        // finds it, so exactly one of them adds the rollups.
        let mut sql = Sql::new(backend);
        let id = sql.bind(batch_id);
        let at = sql.bind(micros(now));
        sql.push(&format!(
            "INSERT INTO usage_batches (id, record_time) VALUES ({id}, {at}) \
             ON CONFLICT (id) DO NOTHING"
        ));
        let inserted = transaction
            .execute(sql.statement())
            .await
            .map_err(from_db)?
            .rows_affected();
        if inserted == 0 {
            transaction.rollback().await.map_err(from_db)?;
            return Ok(false);
        }
        let mut known = known_rollups(&transaction, rollups).await?;
        // One order for every writer, so concurrent batches touching the
        // same rows lock them in the same order and never deadlock.
        known.sort_by(|a, b| {
            (&a.credential_id, a.minute, a.kind).cmp(&(&b.credential_id, b.minute, b.kind))
        });
        add_rollups(&transaction, &known).await?;
        add_addresses(&transaction, &known).await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(true)
    }

    async fn list_usage(
        &self,
        filter: &UsageFilter,
        page: &PageRequest,
    ) -> Result<Page<UsageBucket>, RegistryError> {
        let period = filter.granularity.micros();
        let mut sql = Sql::new(self.connection().get_database_backend());
        sql.push(&format!(
            "SELECT r.credential_id AS credential_id, \
             r.minute - (r.minute % {period}) AS period, \
             CAST(SUM(CASE WHEN r.kind = 1 THEN r.count ELSE 0 END) AS BIGINT) AS issued, \
             CAST(SUM(CASE WHEN r.kind = 2 THEN r.count ELSE 0 END) AS BIGINT) AS revoked, \
             CAST(MIN(r.first_time) AS BIGINT) AS first_time, \
             CAST(MAX(r.last_time) AS BIGINT) AS last_time, \
             CAST(MAX(CASE WHEN r.more_addresses THEN 1 ELSE 0 END) AS BIGINT) AS more_addresses \
             FROM usage_rollups r"
        ));
        if filter.owner.is_some() {
            sql.push(" JOIN credentials c ON c.id = r.credential_id");
        }
        where_clause(&mut sql, filter, page);
        let limit = sql.bind(i64::from(page.size) + 1);
        sql.push(&format!(
            " GROUP BY r.credential_id, r.minute - (r.minute % {period}) \
             ORDER BY period DESC, credential_id ASC LIMIT {limit}"
        ));
        let rows = self
            .connection()
            .query_all(sql.statement())
            .await
            .map_err(from_db)?;
        let mut buckets = rows
            .iter()
            .map(|row| bucket_from_row(row, filter))
            .collect::<Result<Vec<_>, _>>()?;
        let size = page.size as usize;
        let next = if buckets.len() > size {
            buckets.truncate(size);
            buckets.last().map(|bucket| Position {
                create_time: bucket.start_time,
                id: bucket.credential_id.clone(),
            })
        } else {
            None
        };
        self.bucket_addresses(filter, &mut buckets).await?;
        Ok(Page {
            items: buckets,
            next,
        })
    }

    async fn purge_usage(&self, before: DateTime<Utc>) -> Result<u64, RegistryError> {
        let backend = self.connection().get_database_backend();
        let transaction = self.connection().begin().await.map_err(from_db)?;
        let mut deleted = 0;
        for table in ["usage_rollups", "usage_addresses", "usage_batches"] {
            let column = if table == "usage_batches" {
                "record_time"
            } else {
                "minute"
            };
            let mut sql = Sql::new(backend);
            let cutoff = sql.bind(micros(before));
            sql.push(&format!("DELETE FROM {table} WHERE {column} < {cutoff}"));
            let affected = transaction
                .execute(sql.statement())
                .await
                .map_err(from_db)?
                .rows_affected();
            if table == "usage_rollups" {
                deleted = affected;
            }
        }
        transaction.commit().await.map_err(from_db)?;
        Ok(deleted)
    }
}
