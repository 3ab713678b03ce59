//! [`serve_http`]: an axum app behind hyper-util's server, within a
//! listener's [`ListenerLimits`], instead of `axum::serve` (which sets no
//! header read timeout and accepts without limit).
//!
//! Per connection: the [`LimitedListener`]'s connection limit and silence
//! deadlines, a TLS handshake deadline, hyper's HTTP/1 header read timeout
//! and read buffer bound, HTTP/2 stream and header-list limits. Per request,
//! tower middleware shared by the whole listener: load shedding over a
//! concurrency limit (503 at once, never a queue), a request timeout (503)
//! and a deadline on the whole body (408).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_layer::Layer;

use crate::BoxError;
use crate::body_deadline::read_body_within;
use crate::config::ConfigError;
use crate::https::HttpsListener;
use crate::limits::ListenerLimits;
use crate::listener::LimitedListener;
use crate::shutdown::Shutdown;
use crate::tls::ServerTls;

/// A server future, as [`serve_http`] returns it.
pub type HttpServer = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'static>>;

/// Serves `app` on `listener` (over TLS with `tls`'s certificate when set)
/// within `limits`, until `shutdown` fires; then stops accepting (the port
/// closes), lets in-flight requests finish (HTTP/2 clients get a GOAWAY)
/// and resolves once every connection has closed.
///
/// Handlers see the peer address as `ConnectInfo<SocketAddr>`, as with
/// `into_make_service_with_connect_info::<SocketAddr>()`. Fails only on a
/// TLS configuration that cannot be loaded.
pub fn serve_http(
    listener: TcpListener,
    tls: Option<&ServerTls>,
    app: Router,
    limits: &ListenerLimits,
    shutdown: Shutdown,
) -> Result<HttpServer, ConfigError> {
    let listener = LimitedListener::new(listener, limits);
    let builder = connection_builder(limits);
    let app = ServiceBuilder::new()
        .map_request(|request: Request<Incoming>| request.map(Body::new))
        .layer(HandleErrorLayer::new(refuse_request))
        .load_shed()
        .concurrency_limit(usize::try_from(limits.max_concurrent_requests).unwrap_or(usize::MAX))
        .timeout(limits.request_timeout())
        .layer(axum::middleware::from_fn_with_state(
            limits.body_read_timeout(),
            read_body_within,
        ))
        .service(app);
    Ok(match tls {
        None => Box::pin(serve_connections(listener, app, builder, shutdown)),
        Some(tls) => Box::pin(serve_connections(
            HttpsListener::limited(listener, tls)?,
            app,
            builder,
            shutdown,
        )),
    })
}

/// hyper's per-connection settings: HTTP/1.1 and HTTP/2 (prior knowledge
/// or ALPN) on one port.
fn connection_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let max_header_bytes = usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper enforces the header read timeout only with a timer.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .max_buf_size(max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .keep_alive_interval(limits.http2_keepalive_interval())
        .keep_alive_timeout(limits.http2_keepalive_timeout());
    builder
}

/// The accept loop: one task per connection, each closed gracefully on
/// shutdown.
async fn serve_connections<L, S>(
    mut listener: L,
    app: S,
    builder: auto::Builder<TokioExecutor>,
    shutdown: Shutdown,
) -> io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    S: tower::Service<Request<Incoming>, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    // Each connection holds a receiver: `closing` says "shut down
    // gracefully", and is closed once every connection has ended.
    let (closing, connections) = watch::channel(());
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let service =
            TowerToHyperService::new(axum::Extension(ConnectInfo(peer)).layer(app.clone()));
        let builder = builder.clone();
        let mut closing_signal = connections.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = closing_signal.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                // Resets, timeouts and protocol errors of one client.
                tracing::debug!(%error, %peer, "HTTP connection ended with an error");
            }
        });
    }
    // Closing the listener closes the port: new clients are refused at once
    // instead of waiting in a backlog nobody reads.
    drop(listener);
    drop(connections);
    closing.send_replace(());
    closing.closed().await;
    Ok(())
}

/// The answer to a request refused by the listener's middleware: load
/// shedding or the request timeout (the app itself never fails).
async fn refuse_request(error: BoxError) -> Response {
    if error.is::<tower::load_shed::error::Overloaded>() {
        tracing::debug!("request shed: too many requests in progress");
        let mut response = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many requests in progress; retry shortly",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    if error.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!("request timed out");
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the request took too long; retry shortly",
        );
    }
    tracing::error!(%error, "HTTP middleware failed");
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
}

#[derive(serde::Serialize)]
struct Refusal<'a> {
    error: &'a str,
    error_description: &'a str,
}

/// An error in the OAuth shape (`error`, `error_description`), which every
/// Latchkey HTTP client reads, and never cached.
pub(crate) fn refusal(status: StatusCode, error: &str, description: &str) -> Response {
    let body = axum::Json(Refusal {
        error,
        error_description: description,
    });
    (
        status,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        body,
    )
        .into_response()
}

/// How long a request body may take, as the 408 answer states it.
pub(crate) fn describe(duration: Duration) -> String {
    let milliseconds = duration.as_millis();
    if milliseconds.is_multiple_of(1000) {
        format!("{} s", milliseconds / 1000)
    } else {
        format!("{milliseconds} ms")
    }
}
