//! Values the registry keeps about itself, one row each: the hash key's
//! fingerprint, checked at every start.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum RegistrySettings {
    Table,
    Name,
    Value,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RegistrySettings::Table)
                    .col(
                        ColumnDef::new(RegistrySettings::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RegistrySettings::Value).binary().not_null())
                    .col(
                        ColumnDef::new(RegistrySettings::CreateTime)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RegistrySettings::Table).to_owned())
            .await
    }
}
