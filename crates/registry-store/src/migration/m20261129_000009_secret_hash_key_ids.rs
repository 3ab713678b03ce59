//! Hash key rotation: every stored secret names the hash key it was hashed
//! with, and the database keeps one fingerprint per key ID. Rows written
//! before are key 1's, the only key there was.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum CredentialSecrets {
    Table,
    HashKeyId,
}

#[derive(DeriveIden)]
enum RegistrySettings {
    Table,
    Name,
}

/// The fingerprint's row before key IDs, and key 1's after.
const SINGLE_FINGERPRINT: &str = "hash_key_fingerprint";
const FIRST_KEY_FINGERPRINT: &str = "hash_key_fingerprint:1";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CredentialSecrets::Table)
                    .add_column(
                        ColumnDef::new(CredentialSecrets::HashKeyId)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await?;
        rename_fingerprint(manager, SINGLE_FINGERPRINT, FIRST_KEY_FINGERPRINT).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rename_fingerprint(manager, FIRST_KEY_FINGERPRINT, SINGLE_FINGERPRINT).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CredentialSecrets::Table)
                    .drop_column(CredentialSecrets::HashKeyId)
                    .to_owned(),
            )
            .await
    }
}

async fn rename_fingerprint(
    manager: &SchemaManager<'_>,
    from: &str,
    to: &str,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(RegistrySettings::Table)
        .value(RegistrySettings::Name, to)
        .and_where(Expr::col(RegistrySettings::Name).eq(from))
        .to_owned();
    manager.exec_stmt(update).await
}
