use sea_orm::entity::prelude::*;

/// One credential's token issues (kind 1) or revocations (kind 2) in one
/// minute. Written by raw upserts in `usage.rs`; the entity serves
/// `copy_database`, so a column added here is copied without a list to keep.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_rollups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub credential_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub minute: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: i16,
    pub project_id: String,
    pub count: i64,
    pub first_time: i64,
    pub last_time: i64,
    pub more_addresses: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
