//! The tower layer: bearer token → introspection → identity or refusal.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Extensions, HeaderMap, Request, Response};
use tower::{Layer, Service};

use crate::server::identity::Identity;
use crate::server::introspector::{Introspector, Verdict};
use crate::server::reject::Rejection;
use crate::server::rules::AccessRules;

/// Checks every request's bearer token with Latchkey before the inner
/// service sees it (see the [module docs](crate::server)). Works on tonic
/// servers (`Server::builder().layer(..)`) and axum routers
/// (`Router::layer(..)`); the caller's address comes from tonic's
/// `TcpConnectInfo` or axum's `ConnectInfo<SocketAddr>` (serve with
/// `into_make_service_with_connect_info`). Without one, the address is
/// not sent and a credential restricted to addresses is refused.
#[derive(Debug, Clone)]
pub struct LatchkeyAuthLayer {
    introspector: Arc<Introspector>,
    rules: Arc<AccessRules>,
}

impl LatchkeyAuthLayer {
    /// A layer asking `introspector`, requiring the scopes of `rules`.
    pub fn new(introspector: Introspector, rules: AccessRules) -> Self {
        Self {
            introspector: Arc::new(introspector),
            rules: Arc::new(rules),
        }
    }
}

impl<S> Layer<S> for LatchkeyAuthLayer {
    type Service = LatchkeyAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LatchkeyAuth {
            inner,
            introspector: Arc::clone(&self.introspector),
            rules: Arc::clone(&self.rules),
        }
    }
}

/// The service [`LatchkeyAuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct LatchkeyAuth<S> {
    inner: S,
    introspector: Arc<Introspector>,
    rules: Arc<AccessRules>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LatchkeyAuth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The ready service handles this request; its clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let introspector = Arc::clone(&self.introspector);
        let rules = Arc::clone(&self.rules);
        Box::pin(async move {
            let grpc = is_grpc(request.headers());
            // Read before the first await: the body need not be `Sync`.
            let token = bearer_token(request.headers()).map(str::to_owned);
            let client_ip = peer_ip(request.extensions());
            let path = request.uri().path().to_owned();
            match authorize(&introspector, &rules, token, client_ip, &path).await {
                Ok(identity) => {
                    request.extensions_mut().insert(identity);
                    inner.call(request).await
                }
                Err(rejection) => {
                    tracing::debug!(?rejection, path, "request refused");
                    Ok(rejection.into_response(grpc))
                }
            }
        })
    }
}

async fn authorize(
    introspector: &Introspector,
    rules: &AccessRules,
    token: Option<String>,
    client_ip: Option<IpAddr>,
    path: &str,
) -> Result<Identity, Rejection> {
    let token = token.ok_or(Rejection::NoToken)?;
    let required = rules.required(path).ok_or(Rejection::NoRule)?;
    match introspector.check(&token, client_ip, required).await {
        Ok(Verdict::Active(identity)) => Ok(identity),
        Ok(Verdict::Inactive(reason)) => Err(Rejection::Inactive(reason)),
        Err(_unavailable) => Err(Rejection::Unavailable),
    }
}

/// The one `authorization: Bearer <token>` of the request. Two
/// `authorization` values are refused like none: which one a proxy in
/// front read cannot be told.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// The connection's peer address, as the server recorded it.
fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(info) = extensions.get::<tonic::transport::server::TcpConnectInfo>() {
        return info.remote_addr().map(|address| address.ip());
    }
    if let Some(info) = extensions
        .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
    {
        return info.get_ref().remote_addr().map(|address| address.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(address)) =
        extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(address.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bearer_token_is_read_and_anything_else_is_none() {
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for value in values {
                map.append(AUTHORIZATION, value.parse().unwrap());
            }
            map
        };
        assert_eq!(bearer_token(&headers(&["Bearer lkt_x"])), Some("lkt_x"));
        assert_eq!(bearer_token(&headers(&["bearer lkt_x"])), Some("lkt_x"));
        assert_eq!(bearer_token(&headers(&["Basic abc"])), None);
        assert_eq!(bearer_token(&headers(&["Bearer "])), None);
        assert_eq!(bearer_token(&headers(&["Bearer a", "Bearer b"])), None);
        assert_eq!(bearer_token(&headers(&[])), None);
    }
}
