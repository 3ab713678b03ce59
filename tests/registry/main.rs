//! The credential registry served in-process and called through its
//! generated gRPC clients: every RPC, its refusals, and DESIGN.md rules 1, 2,
//! 6 and 9, each on SQLite and on PostgreSQL.

// Test binaries share the package's dependency list.
#![allow(unused_crate_dependencies)]
// Integration tests panic on the unexpected, like unit tests.
#![allow(clippy::unwrap_used)]

/// Runs each listed `async fn(Backend)` once on SQLite and once on
/// PostgreSQL, as `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(latchkey_tests::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(latchkey_tests::Backend::Postgres).await;
                }
            )+
        }
    };
}

mod audit;
mod authentication;
mod copy_database;
mod credentials;
mod delete;
mod endpoints;
mod hash_key;
mod hash_key_rotation;
mod internal_input;
mod kinds;
mod members;
mod ordering;
mod outage;
mod projects;
mod quotas;
mod secrets;
mod service;
mod support;
mod token_sync;
mod updates;
mod usage;
mod validation;
