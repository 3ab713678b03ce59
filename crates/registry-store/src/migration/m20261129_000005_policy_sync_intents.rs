//! The registry's durable memory of policy changes sent to the token side
//! and not yet known to have committed (see `latchkey_registry::reconcile`):
//! one row per credential, written and committed before a change is sent,
//! removed once it commits.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum PolicySyncIntents {
    Table,
    CredentialId,
    NotedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PolicySyncIntents::Table)
                    .col(
                        ColumnDef::new(PolicySyncIntents::CredentialId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PolicySyncIntents::NotedAt)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The repair loop reads the oldest notes first.
        manager
            .create_index(
                Index::create()
                    .name("policy_sync_intents_noted_at")
                    .table(PolicySyncIntents::Table)
                    .col(PolicySyncIntents::NotedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PolicySyncIntents::Table).to_owned())
            .await
    }
}
