//! Fixtures for Latchkey's integration tests: real services on ephemeral
//! ports, called through the generated clients, on SQLite or a real
//! PostgreSQL. A test that needs PostgreSQL fails loudly when it is not
//! reachable; it never passes by skipping.

// The package's dependencies serve its test binaries too.
#![allow(unused_crate_dependencies)]

pub mod binaries;
mod free_ports;
mod issuer;
mod nginx;
mod postgres;
mod redis;
pub mod redis_cluster;
mod registry;
mod relay;
mod stack;

pub use issuer::{IssuerFixture, IssuerListeners, TokenBackend};
#[allow(unused_imports, unreachable_pub)] // Filled in by the NGINX fixture.
pub use nginx::*;
pub use postgres::{TestSchema, postgres_url};
pub use redis::{TestRedis, redis_cluster_urls, redis_url};
pub use registry::{Backend, BearerToken, ManagementClient, RegistryFixture};
pub use relay::TcpRelay;
pub use stack::{AdminCredential, GatewayIntrospectionClient, Stack, StackBackend};

/// A lazy channel to an internal listener at `address` signing every call
/// with `key` (over TLS with `tls` when given), as the other service does.
fn connect_internal(
    address: std::net::SocketAddr,
    tls: Option<&latchkey_runtime::ClientTls>,
    key: latchkey_runtime::InternalKey,
) -> latchkey_runtime::TracedChannel {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}")).expect("endpoint");
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.load("client_tls").expect("test TLS files"))
            .expect("TLS configuration");
    }
    latchkey_runtime::TracedChannel::lazy(&endpoint).signed(key)
}

/// A lazy channel to `address`, over TLS with `tls` when given.
fn connect_lazy(
    address: std::net::SocketAddr,
    tls: Option<&latchkey_runtime::ClientTls>,
) -> tonic::transport::Channel {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint =
        tonic::transport::Endpoint::from_shared(format!("{scheme}://{address}")).expect("endpoint");
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.load("client_tls").expect("test TLS files"))
            .expect("TLS configuration");
    }
    endpoint.connect_lazy()
}
