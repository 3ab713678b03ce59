//! Management credentials apart from API keys (a stored kind, so quotas
//! count API keys in one indexed query), and the project's API endpoint.

use latchkey_registry::CredentialKind;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

#[derive(Debug, DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Credentials {
    Table,
    Id,
    ProjectId,
    Owner,
    AllowedApis,
    Management,
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    ApiEndpoint,
}

const KIND_INDEX: &str = "idx_credentials_project_management_owner";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER: SQLite takes no more.
        manager
            .alter_table(
                Table::alter()
                    .table(Credentials::Table)
                    .add_column(
                        ColumnDef::new(Credentials::Management)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .add_column(
                        ColumnDef::new(Projects::ApiEndpoint)
                            .string()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        mark_management_credentials(manager).await?;
        manager
            .create_index(
                Index::create()
                    .name(KIND_INDEX)
                    .table(Credentials::Table)
                    .col(Credentials::ProjectId)
                    .col(Credentials::Management)
                    .col(Credentials::Owner)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(KIND_INDEX)
                    .table(Credentials::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Projects::Table)
                    .drop_column(Projects::ApiEndpoint)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Credentials::Table)
                    .drop_column(Credentials::Management)
                    .to_owned(),
            )
            .await
    }
}

/// Existing credentials get their kind by the domain's own rule (not a SQL
/// re-statement of it): read every row's allowed APIs, mark the
/// management ones.
async fn mark_management_credentials(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let connection = manager.get_connection();
    let backend = manager.get_database_backend();
    let select = Query::select()
        .columns([Credentials::Id, Credentials::AllowedApis])
        .from(Credentials::Table)
        .to_owned();
    let rows = connection.query_all(backend.build(&select)).await?;
    for row in rows {
        let id: String = row.try_get("", "id")?;
        let apis: String = row.try_get("", "allowed_apis")?;
        let apis: Vec<String> = apis.split_whitespace().map(str::to_owned).collect();
        if CredentialKind::of(&apis) == CredentialKind::Management {
            let update = Query::update()
                .table(Credentials::Table)
                .value(Credentials::Management, true)
                .and_where(Expr::col(Credentials::Id).eq(id))
                .to_owned();
            connection.execute(backend.build(&update)).await?;
        }
    }
    Ok(())
}
