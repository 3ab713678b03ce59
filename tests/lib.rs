//! Fixtures for Latchkey's integration tests: real services on ephemeral
//! ports, called through the generated clients, on SQLite or a real
//! PostgreSQL. A test that needs PostgreSQL fails loudly when it is not
//! reachable; it never passes by skipping.

// The package's dependencies serve its test binaries too.
#![allow(unused_crate_dependencies)]

mod issuer;
mod nginx;
mod postgres;
mod redis;
mod registry;
mod stack;

pub use issuer::{IssuerFixture, IssuerListeners, TokenBackend};
#[allow(unused_imports, unreachable_pub)] // Filled in by the NGINX fixture.
pub use nginx::*;
pub use postgres::{TestSchema, postgres_url};
pub use redis::{TestRedis, redis_url};
pub use registry::{Backend, BearerToken, ManagementClient, RegistryFixture};
pub use stack::{AdminCredential, GatewayIntrospectionClient, Stack, StackBackend};
