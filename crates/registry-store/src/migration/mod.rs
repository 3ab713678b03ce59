//! Schema migrations, applied at start-up.

use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261123_000002_policy_version;
mod m20261123_000003_audit_events;
mod m20261129_000004_registry_settings;
mod m20261129_000005_policy_sync_intents;
mod m20261129_000006_members;
mod m20261129_000007_credential_kind_and_api_endpoint;
mod m20261129_000008_usage_rollups;
mod m20261129_000009_secret_hash_key_ids;

/// All migrations in order.
#[derive(Debug)]
pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_policy_version::Migration),
            Box::new(m20261123_000003_audit_events::Migration),
            Box::new(m20261129_000004_registry_settings::Migration),
            Box::new(m20261129_000005_policy_sync_intents::Migration),
            Box::new(m20261129_000006_members::Migration),
            Box::new(m20261129_000007_credential_kind_and_api_endpoint::Migration),
            Box::new(m20261129_000008_usage_rollups::Migration),
            Box::new(m20261129_000009_secret_hash_key_ids::Migration),
        ]
    }
}
