//! The durable notes of policy changes sent to the token side (see
//! `latchkey_registry::reconcile`). Each is its own statement, committed at
//! once and never inside a change's transaction: a note must survive the
//! change being rolled back or the process being killed, and on SQLite the
//! one connection is free only between transactions.

use chrono::{DateTime, Utc};
use latchkey_registry::{RegistryError, SyncNote};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::convert::{micros, time};
use crate::entity::policy_sync_intent;
use crate::error::from_db;
use crate::store::SqlCredentialStore;

impl SqlCredentialStore {
    pub(crate) async fn note_intent(
        &self,
        credential_id: &str,
        noted_at: DateTime<Utc>,
    ) -> Result<bool, RegistryError> {
        // Whether an earlier note is still there matters only when it was
        // left by a change that never finished (a killed process), which
        // no concurrent writer can be racing; a read before the upsert
        // tells it portably.
        let earlier = policy_sync_intent::Entity::find_by_id(credential_id)
            .one(self.connection())
            .await
            .map_err(from_db)?
            .is_some();
        let row = policy_sync_intent::ActiveModel {
            credential_id: Set(credential_id.to_owned()),
            noted_at: Set(micros(noted_at)),
        };
        policy_sync_intent::Entity::insert(row)
            .on_conflict(
                OnConflict::column(policy_sync_intent::Column::CredentialId)
                    .update_column(policy_sync_intent::Column::NotedAt)
                    .to_owned(),
            )
            .exec_without_returning(self.connection())
            .await
            .map_err(from_db)?;
        Ok(earlier)
    }

    pub(crate) async fn clear_intent(&self, note: &SyncNote) -> Result<(), RegistryError> {
        policy_sync_intent::Entity::delete_many()
            .filter(policy_sync_intent::Column::CredentialId.eq(note.credential_id.as_str()))
            .filter(policy_sync_intent::Column::NotedAt.eq(micros(note.noted_at)))
            .exec(self.connection())
            .await
            .map_err(from_db)?;
        Ok(())
    }

    pub(crate) async fn intents_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SyncNote>, RegistryError> {
        policy_sync_intent::Entity::find()
            .filter(policy_sync_intent::Column::NotedAt.lt(micros(before)))
            .order_by_asc(policy_sync_intent::Column::NotedAt)
            .limit(u64::from(limit))
            .all(self.connection())
            .await
            .map_err(from_db)?
            .into_iter()
            .map(|row| {
                Ok(SyncNote {
                    credential_id: row.credential_id,
                    noted_at: time(row.noted_at)?,
                })
            })
            .collect()
    }
}
