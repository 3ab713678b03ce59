//! [`ListenerLimits`] on a tonic gRPC server.
//!
//! Three parts, because tonic takes them at three places:
//!
//! ```text
//! let listener = LimitedListener::new(tcp_listener, &limits);
//! let mut builder = limits
//!     .grpc_server()
//!     .layer(GrpcTraceLayer)
//!     .layer(metrics.grpc_layer())
//!     // After tracing and metrics, so shed calls are traced and counted.
//!     .layer(limits.grpc_concurrency_layer());
//! if let Some(tls) = &config.tls {
//!     builder = builder.tls_config(limits.grpc_tls(tls.load()?))?;
//! }
//! builder
//!     .add_service(/* … */)
//!     .serve_with_incoming_shutdown(listener.into_incoming(), shutdown.wait())
//!     .await?;
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::Map;
use tokio::sync::Semaphore;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request as HttpRequest, Response as HttpResponse};
use tonic::transport::{Server, ServerTlsConfig};
use tonic_types::{ErrorDetails, StatusExt};
use tower::limit::ConcurrencyLimit;
use tower::limit::concurrency::future::ResponseFuture as ConcurrencyFuture;
use tower::load_shed::LoadShed;
use tower::load_shed::future::ResponseFuture;
use tower_layer::Layer;

use crate::BoxError;
use crate::limits::ListenerLimits;

impl ListenerLimits {
    /// A tonic server builder with the per-connection limits: the request
    /// timeout (shortened by a client's `grpc-timeout`), HTTP/2 streams per
    /// connection (refused past it, and shed should a client ignore the
    /// setting), the header-list size and keep-alive PINGs. The frame size
    /// stays at HTTP/2's 16 KiB default. Serve it over
    /// [`LimitedListener::into_incoming`](crate::LimitedListener::into_incoming)
    /// for the connection limit and the silence deadlines.
    pub fn grpc_server(&self) -> Server {
        let streams = usize::try_from(self.max_concurrent_streams).unwrap_or(usize::MAX);
        Server::builder()
            .timeout(self.request_timeout())
            .max_concurrent_streams(self.max_concurrent_streams)
            .concurrency_limit_per_connection(streams)
            .load_shed(true)
            .http2_max_header_list_size(self.max_header_bytes)
            .http2_keepalive_interval(self.http2_keepalive_interval())
            .http2_keepalive_timeout(Some(self.http2_keepalive_timeout()))
    }

    /// The listener-wide limit on calls in progress: past it a call is
    /// refused at once with `UNAVAILABLE` (and a `RetryInfo` of one second)
    /// instead of waiting. One layer per listener: every connection shares
    /// its count.
    pub fn grpc_concurrency_layer(&self) -> GrpcConcurrencyLayer {
        GrpcConcurrencyLayer {
            slots: Arc::new(Semaphore::new(
                usize::try_from(self.max_concurrent_requests).unwrap_or(usize::MAX),
            )),
        }
    }

    /// `tls` with the TLS handshake bounded by the header read timeout.
    pub fn grpc_tls(&self, tls: ServerTlsConfig) -> ServerTlsConfig {
        tls.timeout(self.header_read_timeout())
    }
}

/// See [`ListenerLimits::grpc_concurrency_layer`].
#[derive(Debug, Clone)]
pub struct GrpcConcurrencyLayer {
    slots: Arc<Semaphore>,
}

impl<S> Layer<S> for GrpcConcurrencyLayer {
    type Service = GrpcConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcConcurrencyLimit {
            inner: LoadShed::new(ConcurrencyLimit::with_semaphore(inner, self.slots.clone())),
        }
    }
}

/// tower's load shedding over its concurrency limit, answering a shed call
/// with a gRPC status instead of an error, so the tracing and metrics
/// layers around it (which take no errors) see and count it like any call.
#[derive(Debug, Clone)]
pub struct GrpcConcurrencyLimit<S> {
    inner: LoadShed<ConcurrencyLimit<S>>,
}

type Answer = fn(Result<HttpResponse<Body>, BoxError>) -> Result<HttpResponse<Body>, Infallible>;

impl<S> Service<HttpRequest<Body>> for GrpcConcurrencyLimit<S>
where
    S: Service<HttpRequest<Body>, Response = HttpResponse<Body>, Error = Infallible>,
{
    type Response = HttpResponse<Body>;
    type Error = Infallible;
    type Future = Map<ResponseFuture<ConcurrencyFuture<S::Future>>, Answer>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Load shedding is always ready (it sheds in `call`), and the
        // services below never fail.
        self.inner.poll_ready(context).map(|_| Ok(()))
    }

    fn call(&mut self, request: HttpRequest<Body>) -> Self::Future {
        self.inner.call(request).map(answer as Answer)
    }
}

/// tonic would answer a shed call `RESOURCE_EXHAUSTED`, the code of a
/// caller's own quota; a busy server is `UNAVAILABLE`, which clients retry
/// with backoff.
fn answer(result: Result<HttpResponse<Body>, BoxError>) -> Result<HttpResponse<Body>, Infallible> {
    let error = match result {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let status = if error.is::<tower::load_shed::error::Overloaded>() {
        tracing::debug!("gRPC call shed: too many calls in progress");
        tonic::Status::with_error_details(
            Code::Unavailable,
            "too many calls in progress; retry with backoff",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
        )
    } else {
        tonic::Status::from_error(error)
    };
    Ok(status.into_http())
}
