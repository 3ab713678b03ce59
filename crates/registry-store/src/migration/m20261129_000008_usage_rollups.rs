//! Token usage rollups (issue 14): one row per credential, minute and kind
//! instead of an audit row per token, their distinct addresses, and the
//! batch IDs already counted. Times are microseconds since the epoch, like
//! every other table's, so a period start is plain integer arithmetic on
//! both SQLite and PostgreSQL. Indexed for listing by project or
//! credential and time, and for the retention purge by time.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum UsageRollups {
    Table,
    CredentialId,
    Minute,
    Kind,
    ProjectId,
    Count,
    FirstTime,
    LastTime,
    MoreAddresses,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageAddresses {
    Table,
    CredentialId,
    Minute,
    Ip,
}

#[derive(DeriveIden, Clone, Copy)]
enum UsageBatches {
    Table,
    Id,
    RecordTime,
}

fn index<T: Iden + Copy + 'static>(name: &str, table: T, columns: &[T]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UsageRollups::Table)
                    .col(
                        ColumnDef::new(UsageRollups::CredentialId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UsageRollups::Minute)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UsageRollups::Kind)
                            .small_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UsageRollups::ProjectId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(ColumnDef::new(UsageRollups::Count).big_integer().not_null())
                    .col(
                        ColumnDef::new(UsageRollups::FirstTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UsageRollups::LastTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UsageRollups::MoreAddresses)
                            .boolean()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(UsageRollups::CredentialId)
                            .col(UsageRollups::Minute)
                            .col(UsageRollups::Kind),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageAddresses::Table)
                    .col(
                        ColumnDef::new(UsageAddresses::CredentialId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(UsageAddresses::Minute)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(UsageAddresses::Ip).string_len(45).not_null())
                    .primary_key(
                        Index::create()
                            .col(UsageAddresses::CredentialId)
                            .col(UsageAddresses::Minute)
                            .col(UsageAddresses::Ip),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageBatches::Table)
                    .col(
                        ColumnDef::new(UsageBatches::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(UsageBatches::RecordTime)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Listing by credential uses the primary key's prefix.
        manager
            .create_index(index(
                "usage_rollups_project_minute",
                UsageRollups::Table,
                &[UsageRollups::ProjectId, UsageRollups::Minute],
            ))
            .await?;
        manager
            .create_index(index(
                "usage_rollups_minute",
                UsageRollups::Table,
                &[UsageRollups::Minute],
            ))
            .await?;
        manager
            .create_index(index(
                "usage_addresses_minute",
                UsageAddresses::Table,
                &[UsageAddresses::Minute],
            ))
            .await?;
        manager
            .create_index(index(
                "usage_batches_record_time",
                UsageBatches::Table,
                &[UsageBatches::RecordTime],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UsageRollups::Table.into_iden(),
            UsageAddresses::Table.into_iden(),
            UsageBatches::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
