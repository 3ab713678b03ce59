//! Both services in-process, talking over gRPC as in production.

use crate::issuer::{IssuerFixture, IssuerListeners, TokenBackend};
use crate::registry::{Backend, RegistryFixture};

/// The two deployments every end-to-end test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackBackend {
    /// The embedded default: SQLite and the in-process token store.
    Embedded,
    /// Production: PostgreSQL and Redis.
    Production,
}

/// A registry and an issuer wired to each other.
#[derive(Debug)]
pub struct Stack {
    /// The credential registry.
    pub registry: RegistryFixture,
    /// The token issuer.
    pub issuer: IssuerFixture,
}

impl Stack {
    /// Starts both services on `backend`.
    pub async fn start(backend: StackBackend) -> Self {
        let (database, tokens) = match backend {
            StackBackend::Embedded => (Backend::Sqlite, TokenBackend::Memory),
            StackBackend::Production => (Backend::Postgres, TokenBackend::Redis),
        };
        let listeners = IssuerListeners::bind().await;
        let issuer_grpc = listeners.grpc_address();
        let issuer_http = listeners.http_address();
        let registry = RegistryFixture::start_with(database, |config| {
            config.token_issuer_url = format!("http://{issuer_grpc}");
            config.token_endpoint = format!("http://{issuer_http}/oauth2/token");
        })
        .await;
        let issuer = IssuerFixture::start(tokens, listeners, registry.address()).await;
        Self { registry, issuer }
    }
}
