//! What the registry keeps about its hash keys: each key's fingerprint (by
//! key ID), and how many secrets each key still verifies.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use latchkey_registry::{HashKeyCheck, HashKeyFingerprint, RegistryError, now};
use latchkey_secrets::HashKeyId;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};

use crate::convert::{corrupt, micros};
use crate::entity::{credential_secret, registry_setting};
use crate::error::from_db;
use crate::store::SqlCredentialStore;

/// The row holding the fingerprint of hash key `id`.
fn fingerprint_row(id: HashKeyId) -> String {
    format!("hash_key_fingerprint:{id}")
}

impl SqlCredentialStore {
    /// Compares `fingerprint` (the configured key `id`'s) with the one the
    /// database holds for that ID, recording it when the database holds
    /// none. Of replicas starting together with different keys under one
    /// ID, the first to record wins and the others see
    /// [`HashKeyCheck::Differs`].
    pub async fn check_hash_key(
        &self,
        id: HashKeyId,
        fingerprint: &HashKeyFingerprint,
    ) -> Result<HashKeyCheck, RegistryError> {
        let name = fingerprint_row(id);
        let row = registry_setting::ActiveModel {
            name: Set(name.clone()),
            value: Set(fingerprint.as_bytes().to_vec()),
            create_time: Set(micros(now())),
        };
        let inserted = registry_setting::Entity::insert(row)
            .on_conflict(
                OnConflict::column(registry_setting::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.connection())
            .await
            .map_err(from_db)?;
        if inserted == 1 {
            return Ok(HashKeyCheck::Recorded);
        }
        let stored = registry_setting::Entity::find_by_id(name)
            .one(self.connection())
            .await
            .map_err(from_db)?
            .ok_or_else(|| {
                RegistryError::Internal("hash key fingerprint neither inserted nor found".into())
            })?;
        Ok(HashKeyCheck::compare(fingerprint, &stored.value))
    }

    /// How many secrets still work at `at`, by the ID of the key they were
    /// hashed with (IDs without a live secret are absent). A secret ended
    /// by a rotation's grace period counts no more.
    pub async fn live_secrets_by_hash_key(
        &self,
        at: DateTime<Utc>,
    ) -> Result<BTreeMap<HashKeyId, u64>, RegistryError> {
        let rows: Vec<(i64, i64)> = credential_secret::Entity::find()
            .select_only()
            .column(credential_secret::Column::HashKeyId)
            .column_as(Expr::col(credential_secret::Column::Id).count(), "secrets")
            .filter(
                Condition::any()
                    .add(credential_secret::Column::ExpireTime.is_null())
                    .add(credential_secret::Column::ExpireTime.gt(micros(at))),
            )
            .group_by(credential_secret::Column::HashKeyId)
            .into_tuple()
            .all(self.connection())
            .await
            .map_err(from_db)?;
        rows.into_iter()
            .map(|(id, secrets)| {
                Ok((
                    HashKeyId::try_from(id).map_err(|_| corrupt("hash key ID"))?,
                    u64::try_from(secrets).map_err(|_| corrupt("secret count"))?,
                ))
            })
            .collect()
    }
}
