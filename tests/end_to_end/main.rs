//! The full life of a credential through both services, in-process on
//! ephemeral ports, each test on the embedded stack (SQLite + in-process
//! tokens) and the production stack (PostgreSQL + Redis): create, issue,
//! introspect, narrow, rotate, disable, delete, with every token following
//! its credential at once.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

/// Runs each listed `async fn(StackBackend)` on both stacks, as
/// `embedded::name` and `production::name`.
macro_rules! on_both_stacks {
    ($($name:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(latchkey_tests::StackBackend::Embedded).await;
                }
            )+
        }
        mod production {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(latchkey_tests::StackBackend::Production).await;
                }
            )+
        }
    };
}

mod admin;
mod audit;
mod auth_cache;
mod auth_proxy;
mod authorization;
mod brute_force;
mod cache;
mod cache_metrics;
mod cli_production;
mod cluster;
mod consistency;
mod envoy;
mod http;
mod internal_input;
mod json_api;
mod killed_registry;
mod lifecycle;
mod limits;
mod members;
mod metrics;
mod nginx;
mod postgres_outage;
mod reconcile;
mod revocation;
mod seams;
mod slow_clients;
mod sources;
mod store_loss;
mod store_outage;
mod support;
mod tls;
mod usage;
mod widening;
