//! [`MemberStore`] on SeaORM, and the member bound on what every credential
//! change tells the token side.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use latchkey_registry::{
    AuditEvent, Credential, Member, MemberRole, MemberState, MemberStore, MemberUpdate, Page,
    PageRequest, PolicyChange, Position, RegistryError, TokenSync, effective_credential,
};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::convert::{corrupt, credential_from_row, join_list, micros, split_list, time};
use crate::entity::{credential, member, project};
use crate::error::{from_db, is_unique_violation};
use crate::store::{SqlCredentialStore, into_page, record};

fn role_from_text(text: &str) -> Result<MemberRole, RegistryError> {
    match text {
        "owner" => Ok(MemberRole::Owner),
        "member" => Ok(MemberRole::Member),
        _ => Err(corrupt("member role")),
    }
}

fn state_from_text(text: &str) -> Result<MemberState, RegistryError> {
    match text {
        "active" => Ok(MemberState::Active),
        "suspended" => Ok(MemberState::Suspended),
        "removed" => Ok(MemberState::Removed),
        _ => Err(corrupt("member state")),
    }
}

fn member_from_row(row: member::Model) -> Result<Member, RegistryError> {
    Ok(Member {
        role: role_from_text(&row.role)?,
        state: state_from_text(&row.state)?,
        api_ceiling: split_list(&row.api_ceiling),
        create_time: time(row.create_time)?,
        update_time: time(row.update_time)?,
        project_id: row.project_id,
        user_id: row.user_id,
        display_name: row.display_name,
    })
}

/// The one place a member's columns are written.
fn member_row(value: &Member) -> member::ActiveModel {
    member::ActiveModel {
        project_id: Set(value.project_id.clone()),
        user_id: Set(value.user_id.clone()),
        display_name: Set(value.display_name.clone()),
        role: Set(value.role.as_str().to_owned()),
        api_ceiling: Set(join_list(&value.api_ceiling)),
        state: Set(value.state.as_str().to_owned()),
        create_time: Set(micros(value.create_time)),
        update_time: Set(micros(value.update_time)),
    }
}

async fn member_of<C: ConnectionTrait>(
    connection: &C,
    project_id: &str,
    user_id: &str,
) -> Result<Option<Member>, RegistryError> {
    member::Entity::find_by_id((project_id.to_owned(), user_id.to_owned()))
        .one(connection)
        .await
        .map_err(from_db)?
        .map(member_from_row)
        .transpose()
}

/// What the token side is told for `credential`: its effective policy
/// under its owner's membership, read on `connection` (the change's own
/// transaction, so it sees the member as that transaction does).
pub(crate) async fn effective<C: ConnectionTrait>(
    connection: &C,
    credential: &Credential,
) -> Result<Credential, RegistryError> {
    let member = member_of(connection, &credential.project_id, &credential.owner).await?;
    Ok(effective_credential(credential, member.as_ref()))
}

/// The member owning `credential`, if any, for client authentication.
pub(crate) async fn owner_member<C: ConnectionTrait>(
    connection: &C,
    credential: &Credential,
) -> Result<Option<Member>, RegistryError> {
    member_of(connection, &credential.project_id, &credential.owner).await
}

/// The credentials `user_id` owns in `project_id`, locked for change (on
/// PostgreSQL) in ID order, so two member changes cannot deadlock.
async fn owned_credentials<C: ConnectionTrait>(
    connection: &C,
    project_id: &str,
    user_id: &str,
) -> Result<Vec<credential::Model>, RegistryError> {
    credential::Entity::find()
        .filter(credential::Column::ProjectId.eq(project_id))
        .filter(credential::Column::Owner.eq(user_id))
        .order_by_asc(credential::Column::Id)
        .lock_exclusive()
        .all(connection)
        .await
        .map_err(from_db)
}

#[async_trait]
impl MemberStore for SqlCredentialStore {
    async fn create_member(&self, value: &Member, audit: &AuditEvent) -> Result<(), RegistryError> {
        let transaction = self.connection().begin().await.map_err(from_db)?;
        project::Entity::find_by_id(value.project_id.as_str())
            .one(&transaction)
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::project_not_found(&value.project_id))?;
        match member::Entity::insert(member_row(value))
            .exec_without_returning(&transaction)
            .await
        {
            Ok(_) => {}
            Err(error) if is_unique_violation(&error) => {
                return Err(RegistryError::AlreadyExists(format!(
                    "member {:?} already exists in the project",
                    value.user_id
                )));
            }
            Err(error) => return Err(from_db(error)),
        }
        // The user's existing credentials must already fit: a member's
        // ceiling is refused rather than silently narrowing their keys.
        let mut beyond: Vec<String> = Vec::new();
        for row in owned_credentials(&transaction, &value.project_id, &value.user_id).await? {
            let credential = credential_from_row(row)?;
            for api in value.beyond_ceiling(&credential.allowed_apis) {
                if !beyond.iter().any(|seen| seen == api) {
                    beyond.push(api.to_owned());
                }
            }
        }
        if !beyond.is_empty() {
            return Err(RegistryError::FailedPrecondition(format!(
                "credentials of {:?} already hold {} beyond api_ceiling: narrow them or include them",
                value.user_id,
                beyond
                    .iter()
                    .map(|api| format!("{api:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        record(&transaction, audit).await?;
        transaction.commit().await.map_err(from_db)
    }

    async fn get_member(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<Member>, RegistryError> {
        member_of(self.connection(), project_id, user_id).await
    }

    async fn list_members(
        &self,
        project_id: &str,
        include_removed: bool,
        newest_first: bool,
        page: &PageRequest,
    ) -> Result<Page<Member>, RegistryError> {
        // Listing an unknown project is NOT_FOUND, not an empty page.
        project::Entity::find_by_id(project_id)
            .one(self.connection())
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::project_not_found(project_id))?;
        let mut query = member::Entity::find()
            .filter(member::Column::ProjectId.eq(project_id))
            .limit(u64::from(page.size) + 1);
        query = if newest_first {
            query
                .order_by_desc(member::Column::CreateTime)
                .order_by_desc(member::Column::UserId)
        } else {
            query
                .order_by_asc(member::Column::CreateTime)
                .order_by_asc(member::Column::UserId)
        };
        if !include_removed {
            query = query.filter(member::Column::State.ne(MemberState::Removed.as_str()));
        }
        if let Some(position) = &page.after {
            let at = micros(position.create_time);
            let (time_past, user_past) = if newest_first {
                (
                    member::Column::CreateTime.lt(at),
                    member::Column::UserId.lt(position.id.clone()),
                )
            } else {
                (
                    member::Column::CreateTime.gt(at),
                    member::Column::UserId.gt(position.id.clone()),
                )
            };
            query = query.filter(
                Condition::any().add(time_past).add(
                    Condition::all()
                        .add(member::Column::CreateTime.eq(at))
                        .add(user_past),
                ),
            );
        }
        let rows = query.all(self.connection()).await.map_err(from_db)?;
        let members = rows
            .into_iter()
            .map(member_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(members, page.size, |member| Position {
            create_time: member.create_time,
            id: member.user_id.clone(),
        }))
    }

    async fn update_member(
        &self,
        project_id: &str,
        user_id: &str,
        update: &MemberUpdate,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<(Member, Vec<Credential>), RegistryError> {
        let transaction = self.connection().begin().await.map_err(from_db)?;
        let row = member::Entity::find_by_id((project_id.to_owned(), user_id.to_owned()))
            .lock_exclusive()
            .one(&transaction)
            .await
            .map_err(from_db)?
            .ok_or_else(|| RegistryError::NotFound {
                kind: "member",
                id: user_id.to_owned(),
            })?;
        let mut current = member_from_row(row)?;
        current.ensure_not_removed()?;
        update.apply_to(&mut current);
        current.update_time = now;
        member::Entity::update(member_row(&current))
            .exec(&transaction)
            .await
            .map_err(from_db)?;
        record(&transaction, audit).await?;
        let mut changed = Vec::new();
        if update.reaches_tokens() {
            // Each credential of the member moves to a new version with its
            // new effective policy; removal also purges its tokens.
            let revoke_tokens = current.state == MemberState::Removed;
            for row in owned_credentials(&transaction, project_id, user_id).await? {
                let mut credential = credential_from_row(row.clone())?;
                credential.policy_version += 1;
                let mut active = row.into_active_model();
                active.policy_version = Set(credential.policy_version);
                active.update(&transaction).await.map_err(from_db)?;
                let effective = effective_credential(&credential, Some(&current));
                sync.apply(PolicyChange {
                    credential: &effective,
                    deleted: false,
                    revoke_tokens,
                })
                .await?;
                changed.push(credential);
            }
        }
        transaction.commit().await.map_err(from_db)?;
        Ok((current, changed))
    }
}
