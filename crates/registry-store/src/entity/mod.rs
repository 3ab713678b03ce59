//! SeaORM entities. Times are stored as microseconds since the Unix epoch
//! (BIGINT), identical on SQLite and PostgreSQL, so keyset pagination orders
//! the same way on both and values round-trip exactly.

pub mod audit_event;
pub mod credential;
pub mod credential_secret;
pub mod member;
pub mod policy_sync_intent;
pub mod project;
pub mod registry_setting;
pub mod usage_address;
pub mod usage_batch;
pub mod usage_rollup;
