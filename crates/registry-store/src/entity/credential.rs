use sea_orm::entity::prelude::*;

/// A credential row. `allowed_apis` and `allowed_ips` are space-separated
/// (OAuth's own scope syntax; neither list admits spaces in an entry).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub project_id: String,
    pub owner: String,
    pub name: String,
    pub description: String,
    #[sea_orm(unique)]
    pub client_id: String,
    pub allowed_apis: String,
    pub allowed_ips: String,
    pub state: String,
    pub expire_time: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
    pub last_used_time: Option<i64>,
    pub last_used_ip: Option<String>,
    pub policy_version: i64,
    /// Whether the credential holds Latchkey scopes only (derived from
    /// `allowed_apis` on every write; quotas count the others).
    pub management: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::project::Entity",
        from = "Column::ProjectId",
        to = "super::project::Column::Id"
    )]
    Project,
}

impl Related<super::project::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
