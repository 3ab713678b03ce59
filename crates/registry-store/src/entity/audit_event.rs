use sea_orm::entity::prelude::*;

/// One audit event. `action` and `outcome` hold the domain's stable names;
/// `source_ip` is empty when unknown. No column ever holds secret material.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub time: i64,
    pub actor: String,
    pub on_behalf_of: String,
    pub action: String,
    pub project_id: String,
    pub credential_id: String,
    pub source_ip: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
