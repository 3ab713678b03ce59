//! The calling side over HTTP: a `reqwest-middleware` middleware that puts
//! `Authorization: Bearer <token>` from a [`TokenSource`] on every request
//! and, when the callee answers 401, fetches a new token and sends the
//! request once more.

use http::Extensions;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::secret::AccessToken;
use crate::source::TokenSource;

/// Authenticates requests with the source's token:
///
/// ```no_run
/// # use latchkey_client::{BearerMiddleware, TokenSource};
/// # async fn example(source: TokenSource) -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerMiddleware::new(source))
///     .build();
/// let stock = client.get("http://inventory:8080/stock/42").send().await?;
/// # Ok(()) }
/// ```
///
/// On a 401 from the callee (the token was revoked, or its credential
/// changed) the token is invalidated and the request is sent once more with
/// a new one; a second 401 is returned as is. A request whose body cannot
/// be cloned (a stream) is not resent (the next request gets the new
/// token). The tonic `BearerLayer` does the same for gRPC calls. Token
/// failures are
/// `reqwest_middleware::Error::Middleware` holding the
/// [`TokenError`](crate::TokenError).
#[derive(Debug, Clone)]
pub struct BearerMiddleware {
    source: TokenSource,
}

impl BearerMiddleware {
    /// A middleware taking tokens from `source`.
    pub fn new(source: TokenSource) -> Self {
        Self { source }
    }

    async fn authorize(&self, request: &mut Request) -> reqwest_middleware::Result<AccessToken> {
        let token = self
            .source
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let mut value = HeaderValue::from_str(&token.bearer_header()).map_err(|_| {
            reqwest_middleware::Error::middleware(crate::TokenError::Protocol(
                "the access token is not a valid header value".to_owned(),
            ))
        })?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(token)
    }
}

#[async_trait::async_trait]
impl Middleware for BearerMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = self.authorize(&mut request).await?;
        let replay = request.try_clone();
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        self.source.invalidate(&token);
        let Some(mut replay) = replay else {
            return Ok(response);
        };
        tracing::debug!(client_id = %self.source.client_id(), "the callee refused the token; retrying once with a new one");
        self.authorize(&mut replay).await?;
        next.run(replay, extensions).await
    }
}
