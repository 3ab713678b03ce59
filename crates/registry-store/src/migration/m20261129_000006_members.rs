//! Project members (issue 13), and the member an audited call acted on
//! behalf of.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    ProjectId,
    UserId,
    DisplayName,
    Role,
    ApiCeiling,
    State,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    OnBehalfOf,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Members::Table)
                    .col(ColumnDef::new(Members::ProjectId).string_len(63).not_null())
                    .col(ColumnDef::new(Members::UserId).string_len(128).not_null())
                    .col(ColumnDef::new(Members::DisplayName).text().not_null())
                    .col(ColumnDef::new(Members::Role).string_len(16).not_null())
                    .col(ColumnDef::new(Members::ApiCeiling).text().not_null())
                    .col(ColumnDef::new(Members::State).string_len(16).not_null())
                    .col(ColumnDef::new(Members::CreateTime).big_integer().not_null())
                    .col(ColumnDef::new(Members::UpdateTime).big_integer().not_null())
                    .primary_key(Index::create().col(Members::ProjectId).col(Members::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("members_project")
                            .from(Members::Table, Members::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Keyset listing in (create_time, user_id) order per project.
        manager
            .create_index(
                Index::create()
                    .name("members_by_project_time")
                    .table(Members::Table)
                    .col(Members::ProjectId)
                    .col(Members::CreateTime)
                    .col(Members::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(
                        ColumnDef::new(AuditEvents::OnBehalfOf)
                            .string_len(128)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .drop_column(AuditEvents::OnBehalfOf)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Members::Table).to_owned())
            .await
    }
}
