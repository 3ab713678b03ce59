//! What the registry keeps about itself: the hash key's fingerprint.

use latchkey_registry::{HashKeyCheck, HashKeyFingerprint, RegistryError, now};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::convert::micros;
use crate::entity::registry_setting;
use crate::error::from_db;
use crate::store::SqlCredentialStore;

/// The row holding the hash key's fingerprint.
const HASH_KEY_FINGERPRINT: &str = "hash_key_fingerprint";

impl SqlCredentialStore {
    /// Compares `fingerprint` (the configured hash key's) with the one the
    /// database holds, recording it when the database holds none. Of
    /// replicas starting together on a new database with different keys,
    /// the first to record wins and the others see [`HashKeyCheck::Differs`].
    pub async fn check_hash_key(
        &self,
        fingerprint: &HashKeyFingerprint,
    ) -> Result<HashKeyCheck, RegistryError> {
        let row = registry_setting::ActiveModel {
            name: Set(HASH_KEY_FINGERPRINT.to_owned()),
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
        let stored = registry_setting::Entity::find_by_id(HASH_KEY_FINGERPRINT)
            .one(self.connection())
            .await
            .map_err(from_db)?
            .ok_or_else(|| {
                RegistryError::Internal("hash key fingerprint neither inserted nor found".into())
            })?;
        Ok(HashKeyCheck::compare(fingerprint, &stored.value))
    }
}
