//! The calling side over gRPC (or any `http` client stack): a tower layer
//! that puts `authorization: Bearer <token>` from a [`TokenSource`] on every
//! request.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

use crate::error::TokenError;
use crate::source::TokenSource;

/// The gRPC status code `UNAUTHENTICATED`.
const GRPC_UNAUTHENTICATED: &str = "16";

/// Adds the source's bearer token to each request. For a tonic client:
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
/// credential, `UNAVAILABLE` otherwise) without reaching the callee. When
/// the callee answers `UNAUTHENTICATED` (in the response headers, as a
/// refusing interceptor or layer does), the token is invalidated so the
/// next call fetches a new one; the call itself is not replayed, since a
/// streamed request body cannot be sent twice.
#[derive(Debug, Clone)]
pub struct BearerLayer {
    source: TokenSource,
}

impl BearerLayer {
    /// A layer taking tokens from `source`.
    pub fn new(source: TokenSource) -> Self {
        Self { source }
    }
}

impl<S> Layer<S> for BearerLayer {
    type Service = Bearer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bearer {
            inner,
            source: self.source.clone(),
        }
    }
}

/// The service [`BearerLayer`] makes.
#[derive(Debug, Clone)]
pub struct Bearer<S> {
    inner: S,
    source: TokenSource,
}

/// The error type of [`Bearer`]: the inner service's, or a `tonic::Status`
/// when no token could be had.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Bearer<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The ready service handles this request; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let source = self.source.clone();
        Box::pin(async move {
            let token = source.token().await.map_err(token_status)?;
            request
                .headers_mut()
                .insert(AUTHORIZATION, header_value(&token.bearer_header())?);
            let response = inner.call(request).await.map_err(Into::into)?;
            if response
                .headers()
                .get("grpc-status")
                .is_some_and(|status| status == GRPC_UNAUTHENTICATED)
            {
                source.invalidate(&token);
            }
            Ok(response)
        })
    }
}

/// A token as a sensitive header value (hidden from `Debug` of headers).
fn header_value(bearer: &str) -> Result<HeaderValue, BoxError> {
    let Ok(mut value) = HeaderValue::from_str(bearer) else {
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
