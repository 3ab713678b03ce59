//! What every Latchkey service does the same way at start-up and shutdown:
//! layered configuration, logging, the standard gRPC services (health,
//! reflection), the admin listener's probes and metrics, listeners within
//! their limits and signal handling.

mod admin;
mod body_deadline;
mod config;
mod cors;
mod grpc;
mod grpc_limits;
mod hash_key;
mod http_server;
mod https;
mod internal_auth;
mod limits;
mod listener;
mod metrics;
mod readiness;
mod rpc_trace;
mod shutdown;
mod status;
mod telemetry;
mod tls;

pub use admin::{Readiness, admin_router};
pub use config::{ConfigError, load_config};
pub use cors::cors_layer;
pub use grpc::{health_service, reflection_service, take_ready};
pub use grpc_limits::{GrpcConcurrencyLayer, GrpcConcurrencyLimit};
pub use hash_key::{HashKeySource, InternalKeySource, PreviousHashKey, validate_clock_skew};
pub use http_server::{HttpServer, serve_http};
pub use https::HttpsListener;
pub use internal_auth::{
    DEFAULT_CLOCK_SKEW, InternalKey, MAX_INTERNAL_BODY_BYTES, SIGNATURE_HEADER,
    VerifyInternalCalls, VerifyInternalCallsLayer,
};
/// The hash keys' IDs, re-exported for the services' configuration.
pub use latchkey_secrets::{FIRST_HASH_KEY_ID, HashKeyId, HashKeys};
pub use limits::ListenerLimits;
pub use listener::{LimitedListener, LimitedStream};
pub use metrics::{GrpcMetricsLayer, Metrics, RpcLabels, RpcName, latency_histogram};
pub use readiness::follow_readiness;
pub use rpc_trace::{GrpcTrace, GrpcTraceLayer, HttpTrace, HttpTraceLayer, TracedChannel};
pub use shutdown::{Shutdown, shutdown_on_signals};
pub use status::{ERROR_DOMAIN, reason, status_reason, status_with_reason};
pub use telemetry::{LogFormat, TelemetryGuard, init_telemetry};
pub use tls::{ClientTls, RequireClientCertificate, ServerTls, peer_address};

/// A boxed error, as tower and tonic pass them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
