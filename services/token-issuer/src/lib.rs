//! The token issuer service: builds its parts from an [`IssuerConfig`] and
//! serves gRPC and HTTP until shutdown. `main.rs` only parses the command
//! line; tests and `latchkey dev` call [`serve`] with pre-bound listeners.

mod background;
mod cache_metrics;
mod config;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use latchkey_net::TrustedProxies;
use latchkey_proto::token::v1::introspection_server::IntrospectionServer;
use latchkey_proto::token::v1::token_admin_server::TokenAdminServer;
use latchkey_proto::token::v1::token_service_server::TokenServiceServer;
use latchkey_runtime::{
    GrpcTraceLayer, HttpTraceLayer, LimitedListener, Metrics, Readiness, RequireClientCertificate,
    ServerTls, Shutdown, TracedChannel, VerifyInternalCallsLayer, admin_router, health_service,
    reflection_service, serve_http,
};
use latchkey_token::{AuditQueue, TokenService, TokenStore, UsageRollups, UsageTracker, unix_now};
use latchkey_token_envoy::EnvoyAuthorizationService;
use latchkey_token_grpc::{
    AuditReporter, IntrospectionService, RegistryAuthenticator, TokenAdminService,
    TokenGrpcService, UsageReporter,
};
use latchkey_token_http::HttpState;
use latchkey_token_store::{MemoryTokenStore, RedisTokenStore, Restored, SnapshotError};
use tokio::net::TcpListener;
use tonic::transport::Endpoint;

pub use config::{FailureLimitsConfig, IssuerConfig};
use metrics::IssuerMetrics;

// Used by the binary only; the lint cannot tell a package's targets apart.
use clap as _;
use mimalloc as _;
// Used by the black-box tests only.
#[cfg(test)]
use tempfile as _;

/// Why the issuer could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration (exit code 64).
    #[error(transparent)]
    Config(#[from] latchkey_runtime::ConfigError),
    /// The token store could not be opened at start-up (its cause said:
    /// a wrong Redis password or TLS set-up is the operator's to fix).
    #[error("cannot open the token store: {0}: {cause}", cause = store_cause(.0))]
    Store(#[source] latchkey_token::StoreError),
    /// The in-process store's snapshot could not be taken back.
    #[error("cannot take back the saved tokens: {0}")]
    Snapshot(#[source] SnapshotError),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The HTTP server failed.
    #[error("HTTP server failed: {0}")]
    Http(#[source] std::io::Error),
}

/// What is behind a store error, which itself only says which kind.
fn store_cause(error: &latchkey_token::StoreError) -> String {
    std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
}

/// The listeners the issuer serves on.
#[derive(Debug)]
pub struct Listeners {
    /// Public gRPC (TokenService, Introspection, Envoy `Authorization`,
    /// health, reflection).
    pub grpc: TcpListener,
    /// Internal gRPC for the registry (TokenAdmin, health, reflection),
    /// every call signed.
    pub internal: TcpListener,
    /// HTTP (OAuth endpoints).
    pub http: TcpListener,
    /// HTTP admin listener: `GET /metrics` for Prometheus, `/livez` and
    /// `/readyz` for probes.
    pub admin: TcpListener,
}

/// Serves the issuer until `shutdown` fires, then drains in-flight calls for
/// at most `shutdown_grace_seconds` and flushes the last usage reports.
pub async fn serve(
    config: IssuerConfig,
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let hash_keys = config.hash_key_source().resolve()?;
    let internal_key = config.internal_key_source().resolve()?;
    // Besides the shared handle, the concrete store: the in-process one for
    // its sweep, Redis for its introspection cache's metrics.
    let mut redis_store = None;
    let (store, memory_store): (Arc<dyn TokenStore>, Option<Arc<MemoryTokenStore>>) =
        match &config.redis {
            Some(redis) => {
                let redis = Arc::new(
                    RedisTokenStore::connect(redis)
                        .await
                        .map_err(ServeError::Store)?,
                );
                redis_store = Some(redis.clone());
                (redis, None)
            }
            None => {
                let memory = Arc::new(restore_tokens(&config)?);
                (memory.clone(), Some(memory))
            }
        };
    let mut registry = Endpoint::from_shared(config.registry_url.clone())
        .map_err(|_| latchkey_runtime::ConfigError::new("registry_url: not a valid URL"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Pings keep an idle channel open past the peer's idle timeout
        // (`limits.idle_timeout_ms`), so no call meets a closing socket.
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(tls) = &config.registry_tls {
        registry = registry.tls_config(tls.load("registry_tls")?)?;
    }
    let registry = TracedChannel::lazy(&registry).signed(internal_key.clone());
    let usage = Arc::new(UsageTracker::default());
    let audit = Arc::new(AuditQueue::default());
    let rollups = Arc::new(UsageRollups::default());
    let mut metrics = Metrics::new("issuer");
    let issuer_metrics = Arc::new(IssuerMetrics::register(&mut metrics));
    if let Some(redis) = redis_store {
        cache_metrics::register(&mut metrics, redis);
    }
    let metrics = Arc::new(metrics);
    let tokens = TokenService::new(
        store.clone(),
        Arc::new(RegistryAuthenticator::new(registry.clone())),
        hash_keys,
        usage.clone(),
    )
    .with_failure_limits(config.failed_authentication.into())
    .with_events(issuer_metrics.clone())
    .with_audit(audit.clone())
    .with_usage_rollups(rollups.clone())
    .with_token_event_log(config.telemetry.token_events);
    let proxies = TrustedProxies::new(config.trusted_proxies.clone());

    let (health_reporter, health) = health_service().await;
    let readiness = Readiness::new(health_reporter.clone());
    // The background tasks stop only once the servers have: their last
    // flush then carries the last uses of the calls drained meanwhile.
    let background_stop = Shutdown::new();
    let mut background = background::spawn(background::Tasks {
        store,
        memory: memory_store.clone(),
        health: health_reporter,
        usage,
        reporter: UsageReporter::new(registry.clone()),
        rollups,
        audit,
        audit_reporter: AuditReporter::new(registry.clone()),
        metrics: issuer_metrics,
        flush_interval: Duration::from_millis(config.usage_flush_interval_ms),
        final_flush: Duration::from_secs(config.shutdown_flush_seconds),
        shutdown: background_stop.clone(),
    });

    let grpc_address = listeners.grpc.local_addr().ok();
    let internal_address = listeners.internal.local_addr().ok();
    let http_address = listeners.http.local_addr().ok();
    let limits = &config.limits;
    let tls = match &config.tls {
        Some(tls) => Some(limits.grpc_tls(tls.load()?)),
        None => None,
    };
    let mutual_tls = config.tls.as_ref().is_some_and(ServerTls::is_mutual);

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
        .add_service(TokenGrpcService::new(tokens.issuer().clone(), proxies.clone()).into_server())
        .add_service(
            IntrospectionService::new(tokens.introspector().clone(), proxies.clone()).into_server(),
        )
        .add_service(EnvoyAuthorizationService::new(tokens.introspector().clone()).into_server());

    // Internal: only the registry, each call signed with the internal key;
    // with mutual TLS also only callers with a certificate.
    let (reflection_v1, reflection_v1alpha) = reflection_service(INTERNAL_SERVICE_NAMES);
    let mut internal = limits
        .grpc_server()
        .layer(GrpcTraceLayer)
        .layer(metrics.grpc_layer())
        .layer(limits.grpc_concurrency_layer())
        .layer(VerifyInternalCallsLayer::new(
            internal_key,
            Duration::from_secs(config.internal_clock_skew_seconds),
            MAX_TOKEN_ADMIN_BYTES,
        ));
    if let Some(tls) = tls {
        internal = internal.tls_config(tls)?;
    }
    let internal = internal
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(RequireClientCertificate::new(
            TokenAdminService::new(tokens.clone())
                .into_server()
                .max_decoding_message_size(MAX_TOKEN_ADMIN_BYTES),
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
    let grpc = async move {
        let (public, internal) = tokio::join!(public, internal);
        public.and(internal)
    };

    let http_app = latchkey_token_http::router(
        HttpState {
            tokens,
            proxies,
            public_url: config.public_url.clone(),
        },
        config.token_cors()?,
    )
    .layer(HttpTraceLayer);
    let http = serve_http(
        listeners.http,
        config.tls.as_ref(),
        http_app,
        limits,
        shutdown.clone(),
    )?;

    // Metrics and probes on their own listener, never the public port.
    let admin_address = listeners.admin.local_addr().ok();
    let admin = serve_http(
        listeners.admin,
        None,
        admin_router(metrics, readiness),
        limits,
        shutdown.clone(),
    )?;
    tokio::spawn(async move {
        if let Err(error) = admin.await {
            tracing::warn!(%error, "admin listener failed");
        }
    });

    tracing::info!(
        grpc = ?grpc_address,
        internal = ?internal_address,
        http = ?http_address,
        admin = ?admin_address,
        store = if config.redis.is_some() { "redis" } else { "memory" },
        "token issuer serving"
    );
    let servers = async {
        let (grpc, http) = tokio::join!(grpc, http);
        grpc?;
        http.map_err(ServeError::Http)
    };
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let outcome = tokio::select! {
        outcome = servers => outcome,
        () = async { shutdown.wait().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_seconds = config.shutdown_grace_seconds, "drain timed out, closing remaining calls");
            Ok(())
        }
    };
    // The servers may have ended on an error: stop whatever still runs.
    shutdown.trigger();
    if let Some(memory) = &memory_store {
        save_tokens(memory, &config);
    }
    // The flush tasks send the last reports (retried for at most
    // `shutdown_flush_seconds`) before they end.
    background_stop.trigger();
    let _ = (&mut background).await;
    tracing::info!("token issuer stopped");
    outcome
}

/// Where the in-process store is saved at a clean shutdown.
const TOKEN_SNAPSHOT: &str = "tokens.snapshot";

/// The in-process store, with the tokens the last clean shutdown saved.
fn restore_tokens(config: &IssuerConfig) -> Result<MemoryTokenStore, ServeError> {
    let path = config.data_dir.join(TOKEN_SNAPSHOT);
    let (store, restored) =
        MemoryTokenStore::restore(&path, unix_now()).map_err(ServeError::Snapshot)?;
    match restored {
        Restored::Nothing => {}
        Restored::Loaded {
            credentials,
            tokens,
        } => tracing::info!(
            credentials,
            tokens,
            "live tokens taken back from the last clean shutdown"
        ),
        Restored::Discarded { reason } => tracing::warn!(
            %reason,
            path = %path.display(),
            "saved tokens unreadable; starting without them (clients fetch new tokens)"
        ),
    }
    Ok(store)
}

/// Saves the in-process store for the next start; a failure loses the live
/// tokens (clients fetch new ones), never a revocation.
fn save_tokens(memory: &MemoryTokenStore, config: &IssuerConfig) {
    let path = config.data_dir.join(TOKEN_SNAPSHOT);
    if let Err(error) = std::fs::create_dir_all(&config.data_dir) {
        tracing::error!(%error, "cannot create the data directory; the next start begins without the live tokens");
        return;
    }
    match memory.close_and_save(&path, unix_now()) {
        Ok(saved) => tracing::info!(
            credentials = saved.credentials,
            tokens = saved.tokens,
            "live tokens saved for the next start"
        ),
        Err(error) => tracing::error!(
            %error,
            "cannot save the live tokens; the next start begins without them"
        ),
    }
}

/// Largest `TokenAdmin` request: a policy at its bounds (64 APIs, 64
/// addresses) is under 12 KiB.
const MAX_TOKEN_ADMIN_BYTES: usize = 64 * 1024;

/// Names of the services health answers for, besides the whole server ("").
pub const SERVICE_NAMES: &[&str] = &[
    PUBLIC_SERVICE_NAMES[0],
    PUBLIC_SERVICE_NAMES[1],
    INTERNAL_SERVICE_NAMES[0],
];

/// The services of the public gRPC listener.
pub const PUBLIC_SERVICE_NAMES: &[&str] = &[
    <TokenServiceServer<TokenGrpcService> as tonic::server::NamedService>::NAME,
    <IntrospectionServer<IntrospectionService> as tonic::server::NamedService>::NAME,
    ENVOY_AUTHORIZATION,
];

/// Envoy's external authorization service (`ext_authz`).
const ENVOY_AUTHORIZATION: &str = "envoy.service.auth.v3.Authorization";

/// The services of the internal gRPC listener.
pub const INTERNAL_SERVICE_NAMES: &[&str] =
    &[<TokenAdminServer<TokenAdminService> as tonic::server::NamedService>::NAME];
