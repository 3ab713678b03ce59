//! The authentication layer of the management API.
//!
//! One tower layer in front of `CredentialRegistry`: it reads the bearer
//! token, has the token issuer check it (`TokenAdmin.CheckCaller`, so the
//! registry keeps no token store of its own), and hands the resulting
//! [`Caller`] to the handlers in the request's extensions. A call without a
//! valid token never reaches a handler. What each caller may do is the
//! domain's rule (`latchkey_registry::Caller`), applied by the registry's
//! operations.

use std::convert::Infallible;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_registry::Caller;
use latchkey_runtime::TracedChannel;
use tonic::body::Body;
use tonic::codegen::http::{Request as HttpRequest, Response as HttpResponse, header};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::{Code, Request, Status};

/// Establishes who calls from a bearer token.
#[async_trait]
pub trait CallerVerifier: Debug + Send + Sync + 'static {
    /// The caller behind `token`, presented from `client_ip`; statuses are
    /// `UNAUTHENTICATED` (no or bad token) or `UNAVAILABLE`.
    async fn verify(&self, token: &str, client_ip: Option<IpAddr>) -> Result<Caller, Status>;
}

/// Checks tokens with the token issuer's `TokenAdmin.CheckCaller`.
#[derive(Debug, Clone)]
pub struct TokenAdminCallerVerifier {
    client: TokenAdminClient<TracedChannel>,
}

impl TokenAdminCallerVerifier {
    /// A verifier over `channel` to the issuers.
    pub fn new(channel: TracedChannel) -> Self {
        Self {
            client: TokenAdminClient::new(channel),
        }
    }
}

#[async_trait]
impl CallerVerifier for TokenAdminCallerVerifier {
    async fn verify(&self, token: &str, client_ip: Option<IpAddr>) -> Result<Caller, Status> {
        let request = token_pb::CheckCallerRequest {
            token: token.to_owned(),
            client_ip: client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        };
        let answer = match self.client.clone().check_caller(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::warn!(error = %status.message(), "cannot check the caller's token");
                return Err(Status::unavailable(
                    "token issuer unavailable: cannot check the token",
                ));
            }
        };
        if !answer.active {
            return Err(Status::unauthenticated("invalid or expired token"));
        }
        Ok(Caller {
            credential_id: answer.credential_id,
            project_id: answer.project_id,
            owner: answer.owner,
            scopes: answer.scopes,
            address: client_ip,
        })
    }
}

/// `service` behind the authentication layer.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    verifier: Arc<dyn CallerVerifier>,
}

impl<S> Authenticated<S> {
    /// Puts `inner` behind `verifier`.
    pub fn new(inner: S, verifier: Arc<dyn CallerVerifier>) -> Self {
        Self { inner, verifier }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

/// Longest `authorization` value looked at; anything longer is no token.
const MAX_AUTHORIZATION_LEN: usize = 4096;

fn bearer_token(request: &HttpRequest<Body>) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return None;
    }
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl<S> Service<HttpRequest<Body>> for Authenticated<S>
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

    fn call(&mut self, mut request: HttpRequest<Body>) -> Self::Future {
        let mut inner = latchkey_runtime::take_ready(&mut self.inner);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let Some(token) = bearer_token(&request) else {
                let status =
                    Status::unauthenticated("missing bearer token (authorization: Bearer …)");
                return Ok(status.into_http());
            };
            let client_ip = latchkey_runtime::peer_address(&request).map(|address| address.ip());
            match verifier.verify(&token, client_ip).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(status) => {
                    if status.code() == Code::Unauthenticated {
                        tracing::info!(reason = %status.message(), "management call refused");
                    }
                    Ok(status.into_http())
                }
            }
        })
    }
}

/// The caller the layer established for this request.
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing bearer token (authorization: Bearer …)"))
}
