//! The credential registry service: builds its parts from a
//! [`RegistryConfig`] and serves them until shutdown. `main.rs` only parses
//! the command line; tests and `latchkey dev` call [`serve`] directly with a
//! pre-bound listener.

mod audit;
mod bootstrap;
mod config;

use std::sync::Arc;
use std::time::Duration;

use latchkey_proto::registry::v1::audit_sink_server::AuditSinkServer;
use latchkey_proto::registry::v1::client_authentication_server::ClientAuthenticationServer;
use latchkey_proto::registry::v1::credential_registry_server::CredentialRegistryServer;
use latchkey_proto::registry::v1::usage_sink_server::UsageSinkServer;
use latchkey_registry::Registry;
use latchkey_registry_grpc::{
    AuditSinkService, Authenticated, ClientAuthenticationService, CredentialRegistryService,
    TokenAdminCallerVerifier, TokenAdminSync, UsageSinkService,
};
use latchkey_runtime::{
    GrpcTraceLayer, Metrics, RequireClientCertificate, ServerTls, Shutdown, TracedChannel,
    follow_readiness, health_service, reflection_service,
};
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};

pub use bootstrap::{BootstrapOutcome, bootstrap_admin};
pub use config::RegistryConfig;

// Used by the binary only; the lint cannot tell a package's targets apart.
use clap as _;
// Used by the black-box tests only.
#[cfg(test)]
use {tempfile as _, tonic_health as _};

/// Why the registry could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration (exit code 64).
    #[error(transparent)]
    Config(#[from] latchkey_runtime::ConfigError),
    /// The database could not be opened or migrated.
    #[error("cannot open the credential store: {0}")]
    Store(#[source] latchkey_registry::RegistryError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The listeners the registry serves on.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC (CredentialRegistry, internal services, health, reflection).
    pub grpc: TcpListener,
    /// HTTP `GET /metrics` for Prometheus.
    pub metrics: TcpListener,
}

/// Serves the registry on `listeners` until `shutdown` fires, then drains
/// in-flight calls for at most `shutdown_grace_seconds`.
pub async fn serve(
    config: RegistryConfig,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let listener = listeners.grpc;
    let hash_key = config.hash_key_source().resolve()?;
    let store = latchkey_registry_store::connect(&config.database, config.policy_defaults)
        .await
        .map_err(ServeError::Store)?;
    // Another hash key than the database's would refuse every secret.
    let fingerprint = latchkey_registry::HashKeyFingerprint::of(&hash_key);
    bootstrap::check_hash_key(&store, &fingerprint).await?;
    let store = Arc::new(store);
    let issuers = issuer_channel(&config)?;
    let registry = Registry::new(
        store.clone(),
        hash_key,
        Arc::new(TokenAdminSync::new(issuers.clone())),
    );
    let verifier = Arc::new(TokenAdminCallerVerifier::new(issuers));

    let (health_reporter, health) = health_service().await;
    let probed = store.clone();
    tokio::spawn(follow_readiness(
        health_reporter,
        SERVICE_NAMES,
        "credential store",
        move || {
            let store = probed.clone();
            async move { store.ping().await }
        },
        shutdown.clone(),
    ));
    if config.audit_retention_days > 0 {
        tokio::spawn(audit::enforce_retention(
            registry.clone(),
            config.audit_retention_days,
            shutdown.clone(),
        ));
    }
    let (reflection_v1, reflection_v1alpha) = reflection_service(SERVICE_NAMES);

    let address = listener.local_addr().ok();
    let metrics = Arc::new(Metrics::new("registry"));
    let metrics_server = {
        let stop = shutdown.clone();
        axum::serve(listeners.metrics, metrics.router())
            .with_graceful_shutdown(async move { stop.wait().await })
    };
    tokio::spawn(async move {
        if let Err(error) = metrics_server.await {
            tracing::warn!(%error, "metrics listener failed");
        }
    });
    let mut builder = Server::builder()
        .layer(GrpcTraceLayer)
        .layer(metrics.grpc_layer());
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(tls.load()?)?;
    }
    let mutual_tls = config.tls.as_ref().is_some_and(ServerTls::is_mutual);
    let router = builder
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(Authenticated::new(
            CredentialRegistryService::new(registry.clone(), config.token_endpoint.clone())
                .into_server(),
            verifier,
        ))
        // Internal services: with mutual TLS, only callers with a
        // certificate (the token issuers) reach them.
        .add_service(RequireClientCertificate::new(
            ClientAuthenticationService::new(registry.clone()).into_server(),
            mutual_tls,
        ))
        .add_service(RequireClientCertificate::new(
            UsageSinkService::new(registry.clone()).into_server(),
            mutual_tls,
        ))
        .add_service(RequireClientCertificate::new(
            AuditSinkService::new(registry).into_server(),
            mutual_tls,
        ));
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let stop = shutdown.clone();
    let mut server = tokio::spawn(router.serve_with_incoming_shutdown(incoming, async move {
        stop.wait().await;
    }));
    tracing::info!(
        address = ?address,
        database = config.database.backend_name(),
        "credential registry serving"
    );

    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let outcome = tokio::select! {
        result = &mut server => finish(result),
        () = async { shutdown.wait().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_seconds = config.shutdown_grace_seconds, "drain timed out, closing remaining calls");
            server.abort();
            Ok(())
        }
    };
    store.close().await;
    outcome
}

/// The channel to the token issuers: credential changes go there
/// (`TokenAdmin`), and so do management tokens to be checked.
fn issuer_channel(config: &RegistryConfig) -> Result<TracedChannel, ServeError> {
    let mut endpoint = Endpoint::from_shared(config.token_issuer_url.clone())
        .map_err(|_| latchkey_runtime::ConfigError::new("token_issuer_url: not a valid URL"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if let Some(tls) = &config.token_issuer_tls {
        endpoint = endpoint.tls_config(tls.load("token_issuer_tls")?)?;
    }
    Ok(TracedChannel::lazy(&endpoint))
}

fn finish(
    result: Result<Result<(), tonic::transport::Error>, tokio::task::JoinError>,
) -> Result<(), ServeError> {
    match result {
        Ok(outcome) => {
            tracing::info!("credential registry stopped");
            outcome.map_err(ServeError::from)
        }
        // The server task only ends by returning or by our abort.
        Err(_) => Ok(()),
    }
}

/// Names of the services health answers for, besides the whole server ("").
pub const SERVICE_NAMES: &[&str] = &[
    <CredentialRegistryServer<CredentialRegistryService> as tonic::server::NamedService>::NAME,
    <ClientAuthenticationServer<ClientAuthenticationService> as tonic::server::NamedService>::NAME,
    <UsageSinkServer<UsageSinkService> as tonic::server::NamedService>::NAME,
    <AuditSinkServer<AuditSinkService> as tonic::server::NamedService>::NAME,
];
