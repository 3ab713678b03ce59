//! The calling side over gRPC: a tower layer for tonic channels that puts
//! `authorization: Bearer <token>` from a [`TokenSource`] on every request
//! and resends a refused call once with a new token when its body allows.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tonic::body::Body;
use tower::{Layer, Service, ServiceExt};

use crate::error::TokenError;
use crate::secret::AccessToken;
use crate::source::TokenSource;

mod resend;

/// The gRPC status code `UNAUTHENTICATED`.
const GRPC_UNAUTHENTICATED: &str = "16";

/// The largest request body [`BearerLayer`] keeps to resend a refused call,
/// unless told otherwise: 4 MiB, tonic's default largest message.
pub const DEFAULT_RESEND_LIMIT: usize = 4 * 1024 * 1024;

/// Adds the source's bearer token to each call of a tonic client:
///
/// ```no_run
/// # use latchkey_client::{BearerLayer, TokenSource};
/// # async fn example(source: TokenSource) {
/// let channel = tonic::transport::Endpoint::from_static("http://inventory:50051").connect_lazy();
/// let channel = tower::ServiceBuilder::new()
///     .layer(BearerLayer::new(source))
///     .service(channel);
/// // SomeServiceClient::new(channel)
/// # }
/// ```
///
/// When the source has no token to give, the call fails with a
/// [`tonic::Status`] (`UNAUTHENTICATED` for a permanent refusal of the
/// credential, `UNAVAILABLE` otherwise) without reaching the callee.
///
/// When the callee refuses the token (`grpc-status: 16`, `UNAUTHENTICATED`,
/// in the response headers, as a refusing interceptor or layer answers; or
/// HTTP 401 from a proxy in between), the token is invalidated, a new one
/// fetched and the call sent **once** more, like
/// [`BearerMiddleware`](crate::BearerMiddleware) does for a 401; a second
/// refusal is returned as is. Only a call whose whole request body is ready
/// when it starts and at most [`resend_limit`](Self::resend_limit) bytes
/// (every unary and server-streaming call, whose one message tonic encodes
/// at once) is kept and resent; a streamed body still being written
/// (client or bidirectional streaming) cannot be sent twice, so that call
/// is returned refused and only the next call gets a new token.
#[derive(Debug, Clone)]
pub struct BearerLayer {
    source: TokenSource,
    resend_limit: usize,
}

impl BearerLayer {
    /// A layer taking tokens from `source`, resending refused calls of at
    /// most [`DEFAULT_RESEND_LIMIT`] bytes.
    pub fn new(source: TokenSource) -> Self {
        Self {
            source,
            resend_limit: DEFAULT_RESEND_LIMIT,
        }
    }

    /// The largest request body kept to resend a refused call; a larger one
    /// is sent without a copy kept, and its call is not resent. 0 never
    /// resends.
    #[must_use]
    pub fn resend_limit(mut self, bytes: usize) -> Self {
        self.resend_limit = bytes;
        self
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer {
            inner,
            source: self.source.clone(),
            resend_limit: self.resend_limit,
        }
    }
}

/// The service [`BearerLayer`] makes.
#[derive(Debug, Clone)]
pub struct Bearer<S> {
    inner: S,
    source: TokenSource,
    resend_limit: usize,
}

/// The error type of [`Bearer`]: the inner service's, or a `tonic::Status`
/// when no token could be had.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ResBody> Service<Request<Body>> for Bearer<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready service handles this request; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let source = self.source.clone();
        let resend_limit = self.resend_limit;
        Box::pin(async move {
            let token = source.token().await.map_err(token_status)?;
            let (mut parts, body) = request.into_parts();
            let (body, kept) = resend::keep(body, resend_limit).await?;
            parts.headers.insert(AUTHORIZATION, header_value(&token)?);
            let first = Request::from_parts(parts.clone(), body);
            let response = inner.call(first).await.map_err(Into::into)?;
            if !refused(&response) {
                return Ok(response);
            }
            source.invalidate(&token);
            let Some(kept) = kept else {
                return Ok(response);
            };
            drop(response);
            tracing::debug!(client_id = %source.client_id(), "the callee refused the token; resending once with a new one");
            let token = source.token().await.map_err(token_status)?;
            parts.headers.insert(AUTHORIZATION, header_value(&token)?);
            let again = Request::from_parts(parts, kept.body());
            inner
                .ready()
                .await
                .map_err(Into::into)?
                .call(again)
                .await
                .map_err(Into::into)
        })
    }
}

/// Whether the callee refused the token: `UNAUTHENTICATED` in the headers
/// (a trailers-only answer), or HTTP 401 from something in between.
fn refused<B>(response: &Response<B>) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        || response
            .headers()
            .get("grpc-status")
            .is_some_and(|status| status == GRPC_UNAUTHENTICATED)
}

/// A token as a sensitive header value (hidden from `Debug` of headers).
fn header_value(token: &AccessToken) -> Result<HeaderValue, BoxError> {
    let Ok(mut value) = HeaderValue::from_str(&token.bearer_header()) else {
        return Err(Box::new(tonic::Status::internal(
            "the access token is not a valid header value",
        )));
    };
    value.set_sensitive(true);
    Ok(value)
}

fn token_status(error: TokenError) -> BoxError {
    let message = format!("no access token: {error}");
    let status = if error.is_permanent() {
        tonic::Status::unauthenticated(message)
    } else {
        tonic::Status::unavailable(message)
    };
    Box::new(status)
}
