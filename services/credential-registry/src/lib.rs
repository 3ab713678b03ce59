//! The credential registry service: builds its parts from a
//! [`RegistryConfig`] and serves them until shutdown. `main.rs` only parses
//! the command line; tests and `latchkey dev` call [`serve`] directly with a
//! pre-bound listener.

mod audit;
mod bootstrap;
mod config;
mod hash_keys;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use latchkey_console::{ConsoleSettings, SignedInByProxy};
use latchkey_proto::registry::v1::audit_sink_server::AuditSinkServer;
use latchkey_proto::registry::v1::client_authentication_server::ClientAuthenticationServer;
use latchkey_proto::registry::v1::credential_registry_server::CredentialRegistryServer;
use latchkey_proto::registry::v1::usage_sink_server::UsageSinkServer;
use latchkey_registry::Registry;
use latchkey_registry_grpc::{
    AuditSinkService, Authenticated, ClientAuthenticationService, CredentialRegistryService,
    TokenAdminCallerVerifier, TokenAdminSync, UsageSinkService,
};
use latchkey_registry_http::{GrpcService, HttpApi};
use latchkey_runtime::{
    GrpcTraceLayer, HttpTraceLayer, LimitedListener, MAX_INTERNAL_BODY_BYTES, Metrics, Readiness,
    RequireClientCertificate, ServerTls, Shutdown, TracedChannel, VerifyInternalCallsLayer,
    admin_router, follow_readiness, health_service, reflection_service, serve_http,
};
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

pub use bootstrap::{BootstrapOutcome, bootstrap_admin};
pub use config::{AuthProxyConfig, RegistryConfig};
pub use hash_keys::{HashKeyStatus, HashKeyUse, hash_key_status};

// Used by the binary only; the lint cannot tell a package's targets apart.
use clap as _;
use mimalloc as _;
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
    /// Public gRPC (CredentialRegistry, health, reflection).
    pub grpc: TcpListener,
    /// Internal gRPC for the token issuers (ClientAuthentication, UsageSink,
    /// AuditSink, health, reflection), every call signed.
    pub internal: TcpListener,
    /// HTTP admin listener: `GET /metrics` for Prometheus, `/livez` and
    /// `/readyz` for probes.
    pub admin: TcpListener,
    /// The management API over HTTP/JSON (`latchkey_registry_http`).
    pub http: TcpListener,
}

/// Serves the registry on `listeners` until `shutdown` fires, then drains
/// in-flight calls for at most `shutdown_grace_seconds`.
pub async fn serve(
    config: RegistryConfig,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let hash_keys = config.hash_key_source().resolve()?;
    let internal_key = config.internal_key_source().resolve()?;
    let store = latchkey_registry_store::connect(&config.database, config.policy_defaults)
        .await
        .map_err(ServeError::Store)?;
    // Another hash key than the database's would refuse every secret.
    hash_keys::check_hash_keys(&store, &hash_keys).await?;
    let store = Arc::new(store);
    let issuers = issuer_channel(&config)?.signed(internal_key.clone());
    let registry = Registry::new(
        store.clone(),
        hash_keys,
        Arc::new(TokenAdminSync::new(issuers.clone())),
    );
    let verifier = Arc::new(TokenAdminCallerVerifier::new(issuers));

    let (health_reporter, health) = health_service().await;
    let readiness = Readiness::new(health_reporter.clone());
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
    tokio::spawn(repair_lost_changes(registry.clone(), shutdown.clone()));
    if config.audit_retention_days > 0 {
        tokio::spawn(audit::enforce_retention(
            registry.clone(),
            config.audit_retention_days,
            shutdown.clone(),
        ));
    }
    if config.usage_retention_days > 0 {
        tokio::spawn(usage::enforce_retention(
            registry.clone(),
            config.usage_retention_days,
            shutdown.clone(),
        ));
    }
    let address = listeners.grpc.local_addr().ok();
    let internal_address = listeners.internal.local_addr().ok();
    let metrics = Arc::new(Metrics::new("registry"));
    let limits = &config.limits;
    let admin_address = listeners.admin.local_addr().ok();
    let admin_server = serve_http(
        listeners.admin,
        None,
        admin_router(metrics.clone(), readiness),
        limits,
        shutdown.clone(),
    )?;
    tokio::spawn(async move {
        if let Err(error) = admin_server.await {
            tracing::warn!(%error, "admin listener failed");
        }
    });
    let tls = match &config.tls {
        Some(tls) => Some(limits.grpc_tls(tls.load()?)),
        None => None,
    };
    let mutual_tls = config.tls.as_ref().is_some_and(ServerTls::is_mutual);

    // One service for both transports: HTTP/JSON calls go through the same
    // authentication, on-behalf-of confinement and handlers as gRPC ones.
    let management = Authenticated::new(
        CredentialRegistryService::new(registry.clone(), config.token_endpoint.clone())
            .into_server(),
        verifier,
    )
    .acting_for_members(registry.clone());
    let http_address = listeners.http.local_addr().ok();
    // The console on the same listener and origin as the API it calls.
    let mut console = ConsoleSettings::new(&config.token_endpoint)
        .map_err(|error| latchkey_runtime::ConfigError::new(error.to_string()))?;
    let auth_proxy = config.auth_proxy()?;
    if let Some(proxy) = auth_proxy.clone() {
        // The page asks the API's own question, so both agree on who is in.
        console = console.with_proxy_sign_in(Arc::new(move |peer, headers| {
            latchkey_registry_http::proxied_user(&proxy, peer, headers).map(|proxied| {
                SignedInByProxy {
                    user: proxied.user_id,
                    project: proxied.project_id,
                }
            })
        }));
    }
    let http_api = latchkey_registry_http::router(
        HttpApi {
            service: GrpcService::new(management.clone()),
            token_endpoint: config.token_endpoint.clone(),
            cors: config.cors()?,
            auth_proxy,
        },
        Some(latchkey_console::router(console)),
    )
    .layer(HttpTraceLayer);
    let http_server = serve_http(
        listeners.http,
        config.tls.as_ref(),
        http_api,
        limits,
        shutdown.clone(),
    )?;

    let (reflection_v1, reflection_v1alpha) = reflection_service(PUBLIC_SERVICE_NAMES);
    let mut public = limits
        .grpc_server()
        .layer(GrpcTraceLayer)
        .layer(metrics.grpc_layer())
        .layer(limits.grpc_concurrency_layer());
    if let Some(tls) = &tls {
        public = public.tls_config(tls.clone())?;
    }
    let public = public
        .add_service(health.clone())
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(management);

    // Internal services: only token issuers, each call signed with the
    // internal key; with mutual TLS also only callers with a certificate.
    let (reflection_v1, reflection_v1alpha) = reflection_service(INTERNAL_SERVICE_NAMES);
    let mut internal = limits
        .grpc_server()
        .layer(GrpcTraceLayer)
        .layer(metrics.grpc_layer())
        .layer(limits.grpc_concurrency_layer())
        .layer(VerifyInternalCallsLayer::new(
            internal_key,
            Duration::from_secs(config.internal_clock_skew_seconds),
            MAX_INTERNAL_BODY_BYTES,
        ));
    if let Some(tls) = tls {
        internal = internal.tls_config(tls)?;
    }
    let internal = internal
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(RequireClientCertificate::new(
            ClientAuthenticationService::new(registry.clone())
                .into_server()
                .max_decoding_message_size(MAX_INTERNAL_BODY_BYTES),
            mutual_tls,
        ))
        .add_service(RequireClientCertificate::new(
            UsageSinkService::new(registry.clone())
                .into_server()
                .max_decoding_message_size(MAX_INTERNAL_BODY_BYTES),
            mutual_tls,
        ))
        .add_service(RequireClientCertificate::new(
            AuditSinkService::new(registry)
                .into_server()
                .max_decoding_message_size(MAX_INTERNAL_BODY_BYTES),
            mutual_tls,
        ));

    let stop = shutdown.clone();
    let public = public.serve_with_incoming_shutdown(
        LimitedListener::new(listeners.grpc, limits).into_incoming(),
        async move { stop.wait().await },
    );
    let stop = shutdown.clone();
    let internal = internal.serve_with_incoming_shutdown(
        LimitedListener::new(listeners.internal, limits).into_incoming(),
        async move { stop.wait().await },
    );
    let mut server = tokio::spawn(async move {
        let (public, internal, http) = tokio::join!(public, internal, http_server);
        if let Err(error) = http {
            tracing::warn!(%error, "HTTP/JSON listener failed");
        }
        public.and(internal)
    });
    tracing::info!(
        address = ?address,
        internal_address = ?internal_address,
        http_address = ?http_address,
        admin_address = ?admin_address,
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

/// Settles, every second, the credential changes that were applied on the
/// token side but did not commit (see `latchkey_registry::Registry::repair_pending`).
async fn repair_lost_changes(registry: Registry, shutdown: Shutdown) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                registry.repair_pending().await;
            }
            () = shutdown.wait() => return,
        }
    }
}

/// The channel to the token issuers: credential changes go there
/// (`TokenAdmin`), and so do management tokens to be checked.
fn issuer_channel(config: &RegistryConfig) -> Result<TracedChannel, ServeError> {
    let mut endpoint = Endpoint::from_shared(config.token_issuer_url.clone())
        .map_err(|_| latchkey_runtime::ConfigError::new("token_issuer_url: not a valid URL"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Pings keep an idle channel open past the peer's idle timeout
        // (`limits.idle_timeout_ms`), so no call meets a closing socket.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
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
    PUBLIC_SERVICE_NAMES[0],
    INTERNAL_SERVICE_NAMES[0],
    INTERNAL_SERVICE_NAMES[1],
    INTERNAL_SERVICE_NAMES[2],
];

/// The services of the public listener.
pub const PUBLIC_SERVICE_NAMES: &[&str] =
    &[<CredentialRegistryServer<CredentialRegistryService> as tonic::server::NamedService>::NAME];

/// The services of the internal listener.
pub const INTERNAL_SERVICE_NAMES: &[&str] = &[
    <ClientAuthenticationServer<ClientAuthenticationService> as tonic::server::NamedService>::NAME,
    <UsageSinkServer<UsageSinkService> as tonic::server::NamedService>::NAME,
    <AuditSinkServer<AuditSinkService> as tonic::server::NamedService>::NAME,
];
