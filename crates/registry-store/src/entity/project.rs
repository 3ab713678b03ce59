use sea_orm::entity::prelude::*;

/// A project row. Policy columns are NULL when the project follows the
/// configured default.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub display_name: String,
    pub max_credentials: Option<i64>,
    pub max_credentials_per_owner: Option<i64>,
    pub max_tokens_per_credential: Option<i64>,
    pub token_ttl_seconds: Option<i64>,
    pub on_token_limit: Option<String>,
    /// Empty when not set.
    pub api_endpoint: String,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
