//! Prometheus metrics: every gRPC call counted by RPC and outcome with its
//! latency, whether the service is ready, plus what each service registers,
//! served as text at `/metrics` on the admin listener ([`crate::admin_router`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tonic::body::Body;
use tonic::codegen::http::{Request as HttpRequest, Response as HttpResponse};
use tonic::codegen::{BoxFuture, Service};
use tower_layer::Layer;

/// Labels of one gRPC call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RpcLabels {
    /// `package.Service/Method`, or `unknown` for methods not served.
    pub rpc: String,
    /// The gRPC status code name (`OK`, `UNAUTHENTICATED`, …).
    pub code: &'static str,
}

/// Labels of one RPC's latency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RpcName {
    /// `package.Service/Method`.
    pub rpc: String,
}

/// Latency buckets from 50 µs to about 3 s.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// A service's metrics registry, with the gRPC call metrics in it.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_seconds: Family<RpcName, Histogram>,
    ready: Gauge,
}

impl Metrics {
    /// A registry whose metric names start with `latchkey_<service>_`.
    pub fn new(service: &str) -> Self {
        let mut registry = Registry::with_prefix(format!("latchkey_{service}"));
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_seconds = Family::<RpcName, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "grpc_requests",
            "gRPC calls by method and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "grpc_request_seconds",
            "gRPC call latency by method",
            rpc_seconds.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 while the service is ready to serve (its store answers), 0 otherwise",
            ready.clone(),
        );
        Self {
            registry,
            rpc_requests,
            rpc_seconds,
            ready,
        }
    }

    /// Where a service registers its own metrics (before sharing).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if encode(&mut text, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        text
    }

    /// The tower layer that counts gRPC calls.
    pub fn grpc_layer(self: &Arc<Self>) -> GrpcMetricsLayer {
        GrpcMetricsLayer {
            metrics: self.clone(),
        }
    }

    /// Sets the `…_ready` gauge (the admin listener does, at each scrape).
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }
}

/// Counts gRPC calls; see [`Metrics::grpc_layer`].
#[derive(Debug, Clone)]
pub struct GrpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service counted by [`GrpcMetricsLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<HttpRequest<Body>> for GrpcMetrics<S>
where
    S: Service<HttpRequest<Body>, Response = HttpResponse<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: HttpRequest<Body>) -> Self::Future {
        let mut inner = crate::grpc::take_ready(&mut self.inner);
        let metrics = self.metrics.clone();
        let path = request.uri().path().trim_start_matches('/').to_owned();
        Box::pin(async move {
            let started = Instant::now();
            let response = inner.call(request).await?;
            // Errors of unary calls come as trailers-only responses, with
            // the status in the headers; a successful call has none there.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i32>().ok())
                .map_or("OK", code_name);
            // Methods not served are one label, so a client cannot grow the
            // label set at will.
            let rpc = if code == "UNIMPLEMENTED" {
                "unknown".to_owned()
            } else {
                path
            };
            metrics
                .rpc_requests
                .get_or_create(&RpcLabels {
                    rpc: rpc.clone(),
                    code,
                })
                .inc();
            metrics
                .rpc_seconds
                .get_or_create(&RpcName { rpc })
                .observe(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

fn code_name(code: i32) -> &'static str {
    match tonic::Code::from_i32(code) {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
