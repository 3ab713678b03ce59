use sea_orm::entity::prelude::*;

/// A member row, keyed by (project, user). `api_ceiling` is
/// space-separated like a credential's `allowed_apis`; `role` and `state`
/// hold the domain's stable names.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    pub display_name: String,
    pub role: String,
    pub api_ceiling: String,
    pub state: String,
    pub create_time: i64,
    pub update_time: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
