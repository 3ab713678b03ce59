//! One span per gRPC call, on both ends, with W3C trace context carried
//! between the services.
//!
//! The server layer ([`GrpcTraceLayer`]) opens a `server` span per call,
//! parented on the caller's `traceparent`; [`TracedChannel`] opens a `client`
//! span per outgoing call and writes `traceparent` / `tracestate`. Attributes
//! follow the OpenTelemetry RPC semantic conventions and are limited to the
//! method, the status code and addresses: never a header, a message body, a
//! token or a secret. When spans are not exported (no
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), both pass calls through untouched.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry::propagation::{Extractor, Injector};
use tonic::body::Body;
use tonic::codegen::http::{
    HeaderMap, HeaderName, HeaderValue, Request as HttpRequest, Response as HttpResponse,
};
use tonic::codegen::{BoxFuture, Service};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::transport::{Channel, Endpoint};
use tower_layer::Layer;
use tracing::Instrument as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::grpc::take_ready;
use crate::internal_auth::{InternalKey, sign_request};
use crate::telemetry::exporting;

/// Reads the trace context headers of a request.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes the trace context headers of a request.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// `("package.Service", "Method")` of a gRPC path `/package.Service/Method`.
fn rpc_name(path: &str) -> (&str, &str) {
    let path = path.trim_start_matches('/');
    path.rsplit_once('/').unwrap_or((path, ""))
}

/// The status code of a unary call's answer. Errors come as trailers-only
/// responses, with the status in the headers; a successful call has none
/// there.
fn status_code<B>(response: &HttpResponse<B>) -> i32 {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .unwrap_or(0)
}

/// Whether a status code marks a server span as failed: per the semantic
/// conventions, only the codes that say the server itself failed (a client
/// sending a bad request or bad credentials is not a server error).
fn server_error(code: i32) -> bool {
    matches!(
        tonic::Code::from_i32(code),
        tonic::Code::Unknown
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Unimplemented
            | tonic::Code::Internal
            | tonic::Code::Unavailable
            | tonic::Code::DataLoss
    )
}

fn local_address<B>(request: &HttpRequest<B>) -> Option<SocketAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::local_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().local_addr())
        })
}

/// The span of one served call, parented on the caller's trace context.
fn server_span<B>(request: &HttpRequest<B>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = rpc_name(path);
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = path.trim_start_matches('/'),
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
        server.address = Empty,
        server.port = Empty,
        network.peer.address = Empty,
        network.peer.port = Empty,
    );
    // Ports and codes go in as i64: `tracing-opentelemetry` would export a
    // u16 or u64 as text.
    if let Some(local) = local_address(request) {
        span.record("server.address", tracing::field::display(local.ip()));
        span.record("server.port", i64::from(local.port()));
    }
    if let Some(peer) = crate::tls::peer_address(request) {
        span.record("network.peer.address", tracing::field::display(peer.ip()));
        span.record("network.peer.port", i64::from(peer.port()));
    }
    // Only `traceparent` and `tracestate` are read; a malformed one is
    // ignored and the call starts a new trace.
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    span
}

/// Opens a `server` span per gRPC call; add it to every gRPC server
/// (`Server::builder().layer(GrpcTraceLayer)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner }
    }
}

/// A service traced by [`GrpcTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

impl<S> Service<HttpRequest<Body>> for GrpcTrace<S>
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
        let mut inner = take_ready(&mut self.inner);
        if !exporting() {
            return Box::pin(inner.call(request));
        }
        let span = server_span(&request);
        let recorder = span.clone();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                let code = status_code(&response);
                recorder.record("rpc.grpc.status_code", code);
                if server_error(code) {
                    recorder.record("otel.status_code", "ERROR");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// A gRPC channel to another Latchkey service that opens a `client` span per
/// call and sends the trace context along (`traceparent`, `tracestate`).
#[derive(Debug, Clone)]
pub struct TracedChannel {
    inner: Channel,
    /// Signs every call when set (calls to another service's internal
    /// listener; see `internal_auth`).
    signer: Option<Arc<InternalKey>>,
    /// The host and port the channel connects to, for `server.address`.
    server: Arc<(String, Option<u16>)>,
}

impl TracedChannel {
    /// A lazily connecting channel to `endpoint`.
    pub fn lazy(endpoint: &Endpoint) -> Self {
        let uri = endpoint.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        Self {
            inner: endpoint.connect_lazy(),
            signer: None,
            server: Arc::new((host, port)),
        }
    }

    /// The same channel signing every call with `key`: for clients of an
    /// internal service, which refuses unsigned calls.
    pub fn signed(mut self, key: InternalKey) -> Self {
        self.signer = Some(Arc::new(key));
        self
    }

    /// The channel underneath, for a client not (yet) traced.
    pub fn channel(&self) -> Channel {
        self.inner.clone()
    }

    fn client_span(&self, path: &str) -> tracing::Span {
        let (service, method) = rpc_name(path);
        let (host, port) = &*self.server;
        tracing::info_span!(
            "grpc.client",
            otel.name = path.trim_start_matches('/'),
            otel.kind = "client",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            server.address = host.as_str(),
            server.port = port.map(i64::from),
            "error.type" = Empty,
        )
    }
}

impl Service<HttpRequest<Body>> for TracedChannel {
    type Response = HttpResponse<Body>;
    type Error = crate::BoxError;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, mut request: HttpRequest<Body>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let signer = self.signer.clone();
        if !exporting() {
            return Box::pin(async move {
                if let Some(key) = signer {
                    request = sign_request(&key, request).await?;
                }
                inner.call(request).await.map_err(Into::into)
            });
        }
        let span = self.client_span(request.uri().path());
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(request.headers_mut()));
        });
        let recorder = span.clone();
        Box::pin(
            async move {
                if let Some(key) = signer {
                    request = sign_request(&key, request).await?;
                }
                match inner.call(request).await {
                    Ok(response) => {
                        let code = status_code(&response);
                        recorder.record("rpc.grpc.status_code", code);
                        if code != 0 {
                            recorder.record("otel.status_code", "ERROR");
                        }
                        Ok(response)
                    }
                    Err(error) => {
                        recorder.record("otel.status_code", "ERROR");
                        recorder.record("error.type", "transport");
                        Err(error.into())
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// Opens a `server` span per HTTP request, parented on its `traceparent`,
/// named after the method and the matched route (`POST /oauth2/token`).
/// Attributes: `http.request.method`, `http.route`,
/// `http.response.status_code`; never the query, a header or the body.
/// Apply it with `Router::layer`, so the route is known.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpTraceLayer;

impl<S> Layer<S> for HttpTraceLayer {
    type Service = HttpTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpTrace { inner }
    }
}

/// A service traced by [`HttpTraceLayer`].
#[derive(Debug, Clone)]
pub struct HttpTrace<S> {
    inner: S,
}

impl<S, B, R> Service<HttpRequest<B>> for HttpTrace<S>
where
    S: Service<HttpRequest<B>, Response = HttpResponse<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = HttpResponse<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        if !exporting() {
            return Box::pin(inner.call(request));
        }
        let method = request.method().as_str();
        let route = request
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(axum::extract::MatchedPath::as_str);
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_owned(),
        };
        let span = tracing::info_span!(
            "http.server",
            otel.name = name,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            http.route = route,
            http.response.status_code = Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        let _ = span.set_parent(parent);
        let recorder = span.clone();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                let status = response.status();
                recorder.record("http.response.status_code", i64::from(status.as_u16()));
                if status.is_server_error() {
                    recorder.record("otel.status_code", "ERROR");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_grpc_paths() {
        assert_eq!(
            rpc_name("/latchkey.token.v1.TokenService/IssueToken"),
            ("latchkey.token.v1.TokenService", "IssueToken")
        );
        assert_eq!(rpc_name("/odd"), ("odd", ""));
    }

    #[test]
    fn only_server_failures_mark_server_spans() {
        assert!(server_error(tonic::Code::Internal as i32));
        assert!(server_error(tonic::Code::Unavailable as i32));
        assert!(!server_error(tonic::Code::Unauthenticated as i32));
        assert!(!server_error(tonic::Code::Ok as i32));
    }
}
