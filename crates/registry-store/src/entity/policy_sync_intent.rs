use sea_orm::entity::prelude::*;

/// A policy change of a credential sent (or about to be sent) to the token
/// side and not yet known to have committed. No foreign key: a deleted
/// credential's note must outlive its row until the repair settles it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "policy_sync_intents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub credential_id: String,
    /// When the latest change was noted (µs); a note is removed only by the
    /// change that made it.
    pub noted_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
