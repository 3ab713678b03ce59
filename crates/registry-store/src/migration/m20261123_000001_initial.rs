//! Projects, credentials and their secrets.

use sea_orm_migration::prelude::*;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    DisplayName,
    MaxCredentials,
    MaxCredentialsPerOwner,
    MaxTokensPerCredential,
    TokenTtlSeconds,
    OnTokenLimit,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Credentials {
    Table,
    Id,
    ProjectId,
    Owner,
    Name,
    Description,
    ClientId,
    AllowedApis,
    AllowedIps,
    State,
    ExpireTime,
    CreateTime,
    UpdateTime,
    LastUsedTime,
    LastUsedIp,
}

#[derive(DeriveIden)]
enum CredentialSecrets {
    Table,
    Id,
    CredentialId,
    SecretHash,
    CreateTime,
    ExpireTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .col(
                        ColumnDef::new(Projects::Id)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Projects::DisplayName).string().not_null())
                    .col(ColumnDef::new(Projects::MaxCredentials).big_integer())
                    .col(ColumnDef::new(Projects::MaxCredentialsPerOwner).big_integer())
                    .col(ColumnDef::new(Projects::MaxTokensPerCredential).big_integer())
                    .col(ColumnDef::new(Projects::TokenTtlSeconds).big_integer())
                    .col(ColumnDef::new(Projects::OnTokenLimit).string_len(32))
                    .col(
                        ColumnDef::new(Projects::CreateTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Projects::UpdateTime)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("projects_by_create_time")
                    .table(Projects::Table)
                    .col(Projects::CreateTime)
                    .col(Projects::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Credentials::Table)
                    .col(
                        ColumnDef::new(Credentials::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Credentials::ProjectId)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Credentials::Owner)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Credentials::Name).string_len(64).not_null())
                    .col(ColumnDef::new(Credentials::Description).text().not_null())
                    .col(
                        ColumnDef::new(Credentials::ClientId)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Credentials::AllowedApis).text().not_null())
                    .col(ColumnDef::new(Credentials::AllowedIps).text().not_null())
                    .col(ColumnDef::new(Credentials::State).string_len(16).not_null())
                    .col(ColumnDef::new(Credentials::ExpireTime).big_integer())
                    .col(
                        ColumnDef::new(Credentials::CreateTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Credentials::UpdateTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Credentials::LastUsedTime).big_integer())
                    .col(ColumnDef::new(Credentials::LastUsedIp).string_len(45))
                    .foreign_key(
                        ForeignKey::create()
                            .name("credentials_project")
                            .from(Credentials::Table, Credentials::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        // Names are unique per project; this index also enforces it under
        // concurrent creates and renames.
        manager
            .create_index(
                Index::create()
                    .name("credentials_unique_name")
                    .table(Credentials::Table)
                    .col(Credentials::ProjectId)
                    .col(Credentials::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credentials_by_project_create_time")
                    .table(Credentials::Table)
                    .col(Credentials::ProjectId)
                    .col(Credentials::CreateTime)
                    .col(Credentials::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credentials_by_project_owner")
                    .table(Credentials::Table)
                    .col(Credentials::ProjectId)
                    .col(Credentials::Owner)
                    .col(Credentials::CreateTime)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CredentialSecrets::Table)
                    .col(
                        ColumnDef::new(CredentialSecrets::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CredentialSecrets::CredentialId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CredentialSecrets::SecretHash)
                            .binary()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CredentialSecrets::CreateTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CredentialSecrets::ExpireTime).big_integer())
                    .foreign_key(
                        ForeignKey::create()
                            .name("credential_secrets_credential")
                            .from(CredentialSecrets::Table, CredentialSecrets::CredentialId)
                            .to(Credentials::Table, Credentials::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("credential_secrets_by_credential")
                    .table(CredentialSecrets::Table)
                    .col(CredentialSecrets::CredentialId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CredentialSecrets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Credentials::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Projects::Table).to_owned())
            .await
    }
}
