//! Faults as tests (issue 17): the fault and attack runs that found issue
//! 12's holes, on the real binaries of a production deployment
//! (`credential-registry` on PostgreSQL, `token-issuer` replicas on a Redis
//! of each test's own), each bounded to seconds. What each case proves is
//! listed in the README's Tests section.
//!
//! `scripts/test -p latchkey-tests --test faults`

#![allow(
    unused_crate_dependencies,
    clippy::unwrap_used,
    clippy::bool_assert_comparison
)]

mod deployment;
mod issuer_killed;
mod links;
#[allow(dead_code)] // Shared with the token store suite; not every helper is used here.
#[path = "../token_store/private_redis.rs"]
mod private_redis;
mod stores;
