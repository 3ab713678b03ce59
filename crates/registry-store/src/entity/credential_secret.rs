use sea_orm::entity::prelude::*;

/// One secret of a credential, stored only as its keyed hash. A credential
/// has more than one only during a rotation's grace period.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credential_secrets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub credential_id: String,
    pub secret_hash: Vec<u8>,
    /// The ID of the hash key `secret_hash` was made with.
    pub hash_key_id: i64,
    pub create_time: i64,
    pub expire_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
