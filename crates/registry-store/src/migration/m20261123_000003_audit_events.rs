//! The audit trail. Indexed for its three listings: newest first overall,
//! per project and per credential, and for the retention purge by time.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    Time,
    Actor,
    Action,
    ProjectId,
    CredentialId,
    SourceIp,
    Outcome,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditEvents::Time).big_integer().not_null())
                    .col(
                        ColumnDef::new(AuditEvents::Actor)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::Action)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::ProjectId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::CredentialId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::SourceIp)
                            .string_len(45)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::Outcome)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::Detail).text().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "audit_events_time",
                &[AuditEvents::Time, AuditEvents::Id][..],
            ),
            (
                "audit_events_project_time",
                &[AuditEvents::ProjectId, AuditEvents::Time, AuditEvents::Id][..],
            ),
            (
                "audit_events_credential_time",
                &[
                    AuditEvents::CredentialId,
                    AuditEvents::Time,
                    AuditEvents::Id,
                ][..],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await
    }
}
