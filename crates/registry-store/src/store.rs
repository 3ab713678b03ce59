//! [`CredentialStore`] on SeaORM.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use latchkey_registry::{
    AuditEvent, AuditFilter, AuthenticationRecord, Credential, CredentialField, CredentialFilter,
    CredentialKind, CredentialState, CredentialStore, CredentialUpdate, CredentialUse, ListOrder,
    NewCredential, Page, PageRequest, PolicyChange, PolicyOverrides, Position, Project,
    ProjectPolicy, ProjectUpdate, QuotaLimit, RegistryError, SecretRotation, StoredSecret,
    SyncNote, TokenSync,
};
use sea_orm::sea_query::{Condition, Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};

use crate::convert::{
    audit_from_row, audit_row, credential_from_row, join_list, micros, on_token_limit_text,
    project_from_row, secret_from_row, state_text,
};
use crate::entity::{audit_event, credential, credential_secret, project};
use crate::error::{from_db, is_unique_violation};
use crate::members::{effective, owner_member};

/// The registry's store on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlCredentialStore {
    connection: DatabaseConnection,
    policy_defaults: ProjectPolicy,
}

impl SqlCredentialStore {
    pub(crate) fn new(connection: DatabaseConnection, policy_defaults: ProjectPolicy) -> Self {
        Self {
            connection,
            policy_defaults,
        }
    }

    /// Checks that the database answers, for readiness probes.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        self.connection.ping().await.map_err(from_db)
    }

    /// Closes the connection pool, so shutdown does not wait on idle
    /// connections.
    pub async fn close(&self) {
        if let Err(error) = self.connection.clone().close().await {
            tracing::warn!(%error, "closing the database connections failed");
        }
    }

    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.connection
    }

    async fn begin(&self) -> Result<DatabaseTransaction, RegistryError> {
        self.connection.begin().await.map_err(from_db)
    }
}

/// Keyset condition "strictly after `position`" in (create_time, id)
/// `order`.
fn after<C: ColumnTrait>(
    time_column: C,
    id_column: C,
    position: &Position,
    order: ListOrder,
) -> Condition {
    let at = micros(position.create_time);
    let id = position.id.clone();
    match order {
        ListOrder::OldestFirst => Condition::any().add(time_column.gt(at)).add(
            Condition::all()
                .add(time_column.eq(at))
                .add(id_column.gt(id)),
        ),
        ListOrder::NewestFirst => Condition::any().add(time_column.lt(at)).add(
            Condition::all()
                .add(time_column.eq(at))
                .add(id_column.lt(id)),
        ),
    }
}

/// A query ordered by (create_time, id) in `order`.
fn ordered<E: EntityTrait, C: ColumnTrait>(
    query: sea_orm::Select<E>,
    time_column: C,
    id_column: C,
    order: ListOrder,
) -> sea_orm::Select<E> {
    match order {
        ListOrder::OldestFirst => query.order_by_asc(time_column).order_by_asc(id_column),
        ListOrder::NewestFirst => query.order_by_desc(time_column).order_by_desc(id_column),
    }
}

/// Splits `size + 1` fetched items into a page and its continuation.
pub(crate) fn into_page<T>(
    mut items: Vec<T>,
    size: u32,
    position_of: impl Fn(&T) -> Position,
) -> Page<T> {
    let size = size as usize;
    let next = if items.len() > size {
        items.truncate(size);
        items.last().map(position_of)
    } else {
        None
    };
    Page { items, next }
}

/// Reads a credential row for change; on PostgreSQL the row stays locked
/// until the transaction ends.
async fn credential_for_update(
    transaction: &DatabaseTransaction,
    credential_id: &str,
) -> Result<credential::Model, RegistryError> {
    credential::Entity::find_by_id(credential_id)
        .lock_exclusive()
        .one(transaction)
        .await
        .map_err(from_db)?
        .ok_or_else(|| RegistryError::credential_not_found(credential_id))
}

/// Writes the audit record of a change inside the change's transaction.
pub(crate) async fn record(
    transaction: &DatabaseTransaction,
    event: &AuditEvent,
) -> Result<(), RegistryError> {
    audit_event::Entity::insert(audit_row(event))
        .exec_without_returning(transaction)
        .await
        .map_err(from_db)?;
    Ok(())
}

/// Rows per INSERT when appending batches (SQLite caps bound variables).
const AUDIT_INSERT_CHUNK: usize = 500;

fn name_taken(name: &str) -> RegistryError {
    RegistryError::AlreadyExists(format!(
        "a credential named {name:?} already exists in the project"
    ))
}

/// Counts the project's API credentials (optionally one owner's):
/// management credentials take no place in the quotas.
async fn count_api_credentials<C: ConnectionTrait>(
    connection: &C,
    project_id: &str,
    owner: Option<&str>,
) -> Result<u64, RegistryError> {
    let mut query = credential::Entity::find()
        .filter(credential::Column::ProjectId.eq(project_id))
        .filter(credential::Column::Management.eq(false));
    if let Some(owner) = owner {
        query = query.filter(credential::Column::Owner.eq(owner));
    }
    query.count(connection).await.map_err(from_db)
}

/// Refuses one more API credential of `owner` in `project_id` past the
/// project's quotas. Locking the project row serialises this check within
/// one project on PostgreSQL, so concurrent creates and updates cannot race
/// past the quota; SQLite runs on a single connection and is serial anyway.
async fn check_room_for_api_credential(
    transaction: &DatabaseTransaction,
    defaults: &ProjectPolicy,
    project_id: &str,
    owner: &str,
) -> Result<(), RegistryError> {
    let project_row = project::Entity::find_by_id(project_id)
        .lock_exclusive()
        .one(transaction)
        .await
        .map_err(from_db)?
        .ok_or_else(|| RegistryError::project_not_found(project_id))?;
    let policy = project_from_row(project_row)?.overrides.resolve(defaults);
    if policy.max_credentials > 0 {
        let count = count_api_credentials(transaction, project_id, None).await?;
        if count >= u64::from(policy.max_credentials) {
            return Err(RegistryError::QuotaExceeded(QuotaLimit::Credentials(
                policy.max_credentials,
            )));
        }
    }
    if policy.max_credentials_per_owner > 0 {
        let count = count_api_credentials(transaction, project_id, Some(owner)).await?;
        if count >= u64::from(policy.max_credentials_per_owner) {
            return Err(RegistryError::QuotaExceeded(
                QuotaLimit::CredentialsPerOwner(policy.max_credentials_per_owner),
            ));
        }
    }
    Ok(())
}

/// The whole row of a new credential: every column is listed here, so a
/// new column cannot be forgotten (the struct literal must name it).
fn credential_row(value: &Credential) -> credential::ActiveModel {
    credential::ActiveModel {
        id: Set(value.id.clone()),
        project_id: Set(value.project_id.clone()),
        owner: Set(value.owner.clone()),
        name: Set(value.name.clone()),
        description: Set(value.description.clone()),
        client_id: Set(value.client_id.clone()),
        allowed_apis: Set(join_list(&value.allowed_apis)),
        allowed_ips: Set(join_list(&value.allowed_ips.to_strings())),
        state: Set(state_text(value.state).to_owned()),
        expire_time: Set(value.expire_time.map(micros)),
        create_time: Set(micros(value.create_time)),
        update_time: Set(micros(value.update_time)),
        last_used_time: Set(value.last_use.map(|last| micros(last.time))),
        last_used_ip: Set(value.last_use.map(|last| last.ip.to_string())),
        policy_version: Set(value.policy_version),
        management: Set(value.kind() == CredentialKind::Management),
    }
}

/// Writes `field` of `current` (the credential after the update) to its
/// column: the storage side of the table in `latchkey_registry::fields`.
/// Exhaustive, so a new updatable field does not compile until stored.
fn set_field(active: &mut credential::ActiveModel, field: CredentialField, current: &Credential) {
    match field {
        CredentialField::Name => active.name = Set(current.name.clone()),
        CredentialField::Description => active.description = Set(current.description.clone()),
        CredentialField::AllowedApis => {
            active.allowed_apis = Set(join_list(&current.allowed_apis));
            active.management = Set(current.kind() == CredentialKind::Management);
        }
        CredentialField::AllowedIps => {
            active.allowed_ips = Set(join_list(&current.allowed_ips.to_strings()));
        }
        CredentialField::ExpireTime => active.expire_time = Set(current.expire_time.map(micros)),
    }
}

#[async_trait]
impl CredentialStore for SqlCredentialStore {
    fn policy_defaults(&self) -> &ProjectPolicy {
        &self.policy_defaults
    }

    async fn create_project(
        &self,
        value: &Project,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError> {
        let overrides = &value.overrides;
        let row = project::ActiveModel {
            id: Set(value.id.clone()),
            display_name: Set(value.display_name.clone()),
            max_credentials: Set(overrides.max_credentials.map(i64::from)),
            max_credentials_per_owner: Set(overrides.max_credentials_per_owner.map(i64::from)),
            max_tokens_per_credential: Set(overrides.max_tokens_per_credential.map(i64::from)),
            token_ttl_seconds: Set(overrides.token_ttl_seconds.map(i64::from)),
            on_token_limit: Set(overrides
                .on_token_limit
                .map(|v| on_token_limit_text(v).to_owned())),
            api_endpoint: Set(value.api_endpoint.clone()),
            create_time: Set(micros(value.create_time)),
            update_time: Set(micros(value.update_time)),
        };
        let transaction = self.begin().await?;
        match project::Entity::insert(row).exec(&transaction).await {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(RegistryError::AlreadyExists(format!(
                    "project {:?} already exists",
                    value.id
                )));
            }
            Err(error) => return Err(from_db(error)),
        }
        record(&transaction, audit).await?;
        transaction.commit().await.map_err(from_db)
    }

    async fn get_project(&self, project_id: &str) -> Result<Project, RegistryError> {
        let row = project::Entity::find_by_id(project_id)
            .one(&self.connection)
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::project_not_found(project_id))?;
        project_from_row(row)
    }

    async fn list_projects(&self, page: &PageRequest) -> Result<Page<Project>, RegistryError> {
        let mut query = ordered(
            project::Entity::find(),
            project::Column::CreateTime,
            project::Column::Id,
            page.order,
        )
        .limit(u64::from(page.size) + 1);
        if let Some(position) = &page.after {
            query = query.filter(after(
                project::Column::CreateTime,
                project::Column::Id,
                position,
                page.order,
            ));
        }
        let rows = query.all(&self.connection).await.map_err(from_db)?;
        let projects = rows
            .into_iter()
            .map(project_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(projects, page.size, |p| Position {
            create_time: p.create_time,
            id: p.id.clone(),
        }))
    }

    async fn update_project(
        &self,
        project_id: &str,
        update: &ProjectUpdate,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError> {
        let transaction = self.begin().await?;
        let row = project::Entity::find_by_id(project_id)
            .lock_exclusive()
            .one(&transaction)
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::project_not_found(project_id))?;
        let mut current = project_from_row(row.clone())?;
        let ProjectUpdate {
            display_name,
            api_endpoint,
        } = update;
        let mut active = row.into_active_model();
        if let Some(name) = display_name {
            current.display_name.clone_from(name);
            active.display_name = Set(name.clone());
        }
        if let Some(url) = api_endpoint {
            current.api_endpoint.clone_from(url);
            active.api_endpoint = Set(url.clone());
        }
        current.update_time = now;
        active.update_time = Set(micros(now));
        active.update(&transaction).await.map_err(from_db)?;
        record(&transaction, audit).await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(current)
    }

    async fn update_project_policy(
        &self,
        project_id: &str,
        overrides: &PolicyOverrides,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError> {
        let transaction = self.begin().await?;
        let row = project::Entity::find_by_id(project_id)
            .lock_exclusive()
            .one(&transaction)
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::project_not_found(project_id))?;
        let mut current = project_from_row(row.clone())?;
        current.overrides = current.overrides.merged_with(overrides);
        current.update_time = now;
        let merged = &current.overrides;
        let mut active = row.into_active_model();
        active.max_credentials = Set(merged.max_credentials.map(i64::from));
        active.max_credentials_per_owner = Set(merged.max_credentials_per_owner.map(i64::from));
        active.max_tokens_per_credential = Set(merged.max_tokens_per_credential.map(i64::from));
        active.token_ttl_seconds = Set(merged.token_ttl_seconds.map(i64::from));
        active.on_token_limit = Set(merged
            .on_token_limit
            .map(|v| on_token_limit_text(v).to_owned()));
        active.update_time = Set(micros(now));
        active.update(&transaction).await.map_err(from_db)?;
        record(&transaction, audit).await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(current)
    }

    async fn create_credential(
        &self,
        new: &NewCredential,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let value = &new.credential;
        let transaction = self.begin().await?;
        match value.kind() {
            CredentialKind::Api => {
                check_room_for_api_credential(
                    &transaction,
                    &self.policy_defaults,
                    &value.project_id,
                    &value.owner,
                )
                .await?;
            }
            // Not counted; the foreign key still refuses an unknown project,
            // but with a NOT_FOUND rather than a constraint error.
            CredentialKind::Management => {
                project::Entity::find_by_id(value.project_id.as_str())
                    .one(&transaction)
                    .await
                    .map_err(from_db)?
                    .ok_or_else(|| RegistryError::project_not_found(&value.project_id))?;
            }
        }
        let row = credential_row(value);
        if let Err(error) = credential::Entity::insert(row).exec(&transaction).await {
            return Err(if is_unique_violation(&error) {
                name_taken(&value.name)
            } else {
                from_db(error)
            });
        }
        insert_secret(&transaction, &value.id, &new.secret).await?;
        record(&transaction, audit).await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(value.clone())
    }

    async fn get_credential(&self, credential_id: &str) -> Result<Credential, RegistryError> {
        let row = credential::Entity::find_by_id(credential_id)
            .one(&self.connection)
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::credential_not_found(credential_id))?;
        credential_from_row(row)
    }

    async fn list_credentials(
        &self,
        project_id: &str,
        filter: &CredentialFilter,
        page: &PageRequest,
    ) -> Result<Page<Credential>, RegistryError> {
        // Listing an unknown project is NOT_FOUND, not an empty page.
        self.get_project(project_id).await?;
        let mut query = ordered(
            credential::Entity::find().filter(credential::Column::ProjectId.eq(project_id)),
            credential::Column::CreateTime,
            credential::Column::Id,
            page.order,
        )
        .limit(u64::from(page.size) + 1);
        if let Some(owner) = &filter.owner {
            query = query.filter(credential::Column::Owner.eq(owner.as_str()));
        }
        if let Some(kind) = filter.kind {
            query =
                query.filter(credential::Column::Management.eq(kind == CredentialKind::Management));
        }
        if let Some(position) = &page.after {
            query = query.filter(after(
                credential::Column::CreateTime,
                credential::Column::Id,
                position,
                page.order,
            ));
        }
        let rows = query.all(&self.connection).await.map_err(from_db)?;
        let credentials = rows
            .into_iter()
            .map(credential_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(credentials, page.size, |c| Position {
            create_time: c.create_time,
            id: c.id.clone(),
        }))
    }

    async fn update_credential(
        &self,
        credential_id: &str,
        update: &CredentialUpdate,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let transaction = self.begin().await?;
        let row = credential_for_update(&transaction, credential_id).await?;
        let mut current = credential_from_row(row.clone())?;
        if update
            .expected_version
            .is_some_and(|expected| expected != current.policy_version)
        {
            return Err(RegistryError::stale_etag());
        }
        let kind_before = current.kind();
        update.apply_to(&mut current);
        // A management credential becoming an API key needs a place in the
        // quotas, as a create would; the other way round frees one.
        if kind_before == CredentialKind::Management && current.kind() == CredentialKind::Api {
            check_room_for_api_credential(
                &transaction,
                &self.policy_defaults,
                &current.project_id,
                &current.owner,
            )
            .await?;
        }
        current.update_time = now;
        current.policy_version += 1;
        let mut active = row.into_active_model();
        active.policy_version = Set(current.policy_version);
        for field in update.fields() {
            set_field(&mut active, field, &current);
        }
        active.update_time = Set(micros(now));
        match active.update(&transaction).await {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => return Err(name_taken(&current.name)),
            Err(error) => return Err(from_db(error)),
        }
        record(&transaction, audit).await?;
        let effective = effective(&transaction, &current).await?;
        sync.apply(PolicyChange {
            credential: &effective,
            deleted: false,
            revoke_tokens: false,
        })
        .await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(current)
    }

    async fn set_credential_state(
        &self,
        credential_id: &str,
        state: CredentialState,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let transaction = self.begin().await?;
        let row = credential_for_update(&transaction, credential_id).await?;
        let mut current = credential_from_row(row.clone())?;
        current.state = state;
        current.update_time = now;
        current.policy_version += 1;
        let mut active = row.into_active_model();
        active.state = Set(state_text(state).to_owned());
        active.update_time = Set(micros(now));
        active.policy_version = Set(current.policy_version);
        active.update(&transaction).await.map_err(from_db)?;
        record(&transaction, audit).await?;
        let effective = effective(&transaction, &current).await?;
        sync.apply(PolicyChange {
            credential: &effective,
            deleted: false,
            revoke_tokens: false,
        })
        .await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(current)
    }

    async fn delete_credential(
        &self,
        credential_id: &str,
        confirm_name: &str,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError> {
        let transaction = self.begin().await?;
        let row = credential_for_update(&transaction, credential_id).await?;
        if row.name != confirm_name {
            return Err(RegistryError::FailedPrecondition(
                "confirm_name does not match the credential's name; nothing was deleted".to_owned(),
            ));
        }
        let mut deleted = credential_from_row(row)?;
        deleted.policy_version += 1;
        credential_secret::Entity::delete_many()
            .filter(credential_secret::Column::CredentialId.eq(credential_id))
            .exec(&transaction)
            .await
            .map_err(from_db)?;
        credential::Entity::delete_by_id(credential_id)
            .exec(&transaction)
            .await
            .map_err(from_db)?;
        record(&transaction, audit).await?;
        sync.apply(PolicyChange {
            credential: &deleted,
            deleted: true,
            revoke_tokens: true,
        })
        .await?;
        transaction.commit().await.map_err(from_db)
    }

    async fn rotate_secret(
        &self,
        credential_id: &str,
        rotation: SecretRotation<'_>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let SecretRotation {
            secret,
            previous_expire_time,
            now,
            revoke_tokens,
        } = rotation;
        let transaction = self.begin().await?;
        let row = credential_for_update(&transaction, credential_id).await?;
        let of_credential = credential_secret::Column::CredentialId.eq(credential_id);
        match previous_expire_time {
            None => {
                credential_secret::Entity::delete_many()
                    .filter(of_credential)
                    .exec(&transaction)
                    .await
                    .map_err(from_db)?;
            }
            Some(expiry) => {
                // Expired secrets go; live ones end at the grace period's
                // end unless they already end sooner.
                credential_secret::Entity::delete_many()
                    .filter(of_credential.clone())
                    .filter(credential_secret::Column::ExpireTime.lte(micros(now)))
                    .exec(&transaction)
                    .await
                    .map_err(from_db)?;
                credential_secret::Entity::update_many()
                    .col_expr(
                        credential_secret::Column::ExpireTime,
                        Expr::value(micros(expiry)),
                    )
                    .filter(of_credential)
                    .filter(
                        Condition::any()
                            .add(credential_secret::Column::ExpireTime.is_null())
                            .add(credential_secret::Column::ExpireTime.gt(micros(expiry))),
                    )
                    .exec(&transaction)
                    .await
                    .map_err(from_db)?;
            }
        }
        insert_secret(&transaction, credential_id, secret).await?;
        let mut current = credential_from_row(row.clone())?;
        current.update_time = now;
        // Always a new version, told to the token side: it refuses issuances
        // still in flight with the old secret's authentication, and ends
        // every issuer's cached authentication of the old secret.
        current.policy_version += 1;
        let mut active = row.into_active_model();
        active.update_time = Set(micros(now));
        active.policy_version = Set(current.policy_version);
        active.update(&transaction).await.map_err(from_db)?;
        record(&transaction, audit).await?;
        let effective = effective(&transaction, &current).await?;
        sync.apply(PolicyChange {
            credential: &effective,
            deleted: false,
            revoke_tokens,
        })
        .await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(current)
    }

    async fn record_usage(&self, uses: &[CredentialUse]) -> Result<(), RegistryError> {
        let transaction = self.begin().await?;
        for credential_use in uses {
            let at = micros(credential_use.last_use.time);
            credential::Entity::update_many()
                .col_expr(credential::Column::LastUsedTime, Expr::value(at))
                .col_expr(
                    credential::Column::LastUsedIp,
                    Expr::value(credential_use.last_use.ip.to_string()),
                )
                .filter(credential::Column::Id.eq(credential_use.credential_id.as_str()))
                .filter(
                    Condition::any()
                        .add(credential::Column::LastUsedTime.is_null())
                        .add(credential::Column::LastUsedTime.lt(at)),
                )
                .exec(&transaction)
                .await
                .map_err(from_db)?;
        }
        transaction.commit().await.map_err(from_db)
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), RegistryError> {
        if events.is_empty() {
            return Ok(());
        }
        let transaction = self.begin().await?;
        for chunk in events.chunks(AUDIT_INSERT_CHUNK) {
            audit_event::Entity::insert_many(chunk.iter().map(audit_row))
                .on_conflict(
                    OnConflict::column(audit_event::Column::Id)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&transaction)
                .await
                .map_err(from_db)?;
        }
        transaction.commit().await.map_err(from_db)
    }

    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, RegistryError> {
        let mut query = audit_event::Entity::find()
            .order_by_desc(audit_event::Column::Time)
            .order_by_desc(audit_event::Column::Id)
            .limit(u64::from(page.size) + 1);
        if let Some(project_id) = &filter.project_id {
            query = query.filter(audit_event::Column::ProjectId.eq(project_id.as_str()));
        }
        if let Some(credential_id) = &filter.credential_id {
            query = query.filter(audit_event::Column::CredentialId.eq(credential_id.as_str()));
        }
        if let Some(start) = filter.start_time {
            query = query.filter(audit_event::Column::Time.gte(micros(start)));
        }
        if let Some(end) = filter.end_time {
            query = query.filter(audit_event::Column::Time.lt(micros(end)));
        }
        if let Some(position) = &page.after {
            // Newest first: strictly before the last event returned.
            let at = micros(position.create_time);
            query = query.filter(
                Condition::any().add(audit_event::Column::Time.lt(at)).add(
                    Condition::all()
                        .add(audit_event::Column::Time.eq(at))
                        .add(audit_event::Column::Id.lt(position.id.clone())),
                ),
            );
        }
        let rows = query.all(&self.connection).await.map_err(from_db)?;
        let events = rows
            .into_iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(events, page.size, |event| Position {
            create_time: event.time,
            id: event.id.clone(),
        }))
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, RegistryError> {
        let result = audit_event::Entity::delete_many()
            .filter(audit_event::Column::Time.lt(micros(before)))
            .exec(&self.connection)
            .await
            .map_err(from_db)?;
        Ok(result.rows_affected)
    }

    async fn credentials_with_api(
        &self,
        api: &str,
        limit: u32,
    ) -> Result<Vec<Credential>, RegistryError> {
        // The list is space-separated; LIKE narrows, the exact check decides.
        let rows = credential::Entity::find()
            .filter(credential::Column::AllowedApis.contains(api))
            .order_by_asc(credential::Column::CreateTime)
            .all(&self.connection)
            .await
            .map_err(from_db)?;
        let mut found = Vec::new();
        for row in rows {
            let credential = credential_from_row(row)?;
            if credential.allowed_apis.iter().any(|held| held == api) {
                found.push(credential);
            }
            if found.len() >= limit as usize {
                break;
            }
        }
        Ok(found)
    }

    async fn reassert_policy(
        &self,
        credential_id: &str,
        held_version: Option<i64>,
        sync: &dyn TokenSync,
    ) -> Result<Option<Credential>, RegistryError> {
        let transaction = self.begin().await?;
        let row = match credential_for_update(&transaction, credential_id).await {
            Ok(row) => row,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let mut current = credential_from_row(row.clone())?;
        let held_version = held_version.unwrap_or(current.policy_version + 1);
        if current.policy_version >= held_version {
            // The change in flight committed, or the token side is behind
            // (it catches up at the next issuance): nothing to settle.
            return Ok(Some(current));
        }
        current.policy_version = held_version + 1;
        let mut active = row.into_active_model();
        active.policy_version = Set(current.policy_version);
        active.update(&transaction).await.map_err(from_db)?;
        let effective = effective(&transaction, &current).await?;
        sync.apply(PolicyChange {
            credential: &effective,
            deleted: false,
            revoke_tokens: false,
        })
        .await?;
        transaction.commit().await.map_err(from_db)?;
        Ok(Some(current))
    }

    async fn note_sync_intent(
        &self,
        credential_id: &str,
        noted_at: DateTime<Utc>,
    ) -> Result<bool, RegistryError> {
        self.note_intent(credential_id, noted_at).await
    }

    async fn clear_sync_intent(&self, note: &SyncNote) -> Result<(), RegistryError> {
        self.clear_intent(note).await
    }

    async fn sync_intents_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SyncNote>, RegistryError> {
        self.intents_before(before, limit).await
    }

    async fn authentication_record(
        &self,
        client_id: &str,
    ) -> Result<Option<AuthenticationRecord>, RegistryError> {
        let Some((row, project_row)) = credential::Entity::find()
            .filter(credential::Column::ClientId.eq(client_id))
            .find_also_related(project::Entity)
            .one(&self.connection)
            .await
            .map_err(from_db)?
        else {
            return Ok(None);
        };
        let project_row = project_row
            .ok_or_else(|| RegistryError::Internal("credential without project".into()))?;
        let secrets = credential_secret::Entity::find()
            .filter(credential_secret::Column::CredentialId.eq(row.id.as_str()))
            .all(&self.connection)
            .await
            .map_err(from_db)?
            .into_iter()
            .map(secret_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let credential = credential_from_row(row)?;
        Ok(Some(AuthenticationRecord {
            member: owner_member(&self.connection, &credential).await?,
            credential,
            secrets,
            policy: project_from_row(project_row)?
                .overrides
                .resolve(&self.policy_defaults),
        }))
    }
}

async fn insert_secret(
    transaction: &DatabaseTransaction,
    credential_id: &str,
    secret: &StoredSecret,
) -> Result<(), RegistryError> {
    let row = credential_secret::ActiveModel {
        credential_id: Set(credential_id.to_owned()),
        secret_hash: Set(secret.hash.as_bytes().to_vec()),
        hash_key_id: Set(i64::from(secret.hash_key_id)),
        create_time: Set(micros(secret.create_time)),
        expire_time: Set(secret.expire_time.map(micros)),
        ..Default::default()
    };
    credential_secret::Entity::insert(row)
        .exec(transaction)
        .await
        .map_err(from_db)?;
    Ok(())
}
