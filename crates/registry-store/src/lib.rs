//! SeaORM storage of the credential registry, on SQLite (the embedded
//! default) or PostgreSQL (production), with migrations applied on connect.

mod connect;
mod convert;
mod copy;
#[allow(unreachable_pub)] // SeaORM derives require `pub` items
mod entity;
mod error;
mod members;
mod migration;
mod settings;
mod store;
mod sync_intent;
mod usage;

pub use connect::{DatabaseConfig, connect};
pub use copy::{CopiedTable, CopyError, CopyReport, copy_database};
pub use store::SqlCredentialStore;
