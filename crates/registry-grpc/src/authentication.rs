//! The authentication layer of the management API.
//!
//! One tower layer in front of `CredentialRegistry`: it reads the bearer
//! token, has the token issuer check it (`TokenAdmin.CheckCaller`, so the
//! registry keeps no token store of its own), and hands the resulting
//! [`Caller`] to the handlers in the request's extensions. A call without a
//! valid token never reaches a handler. What each caller may do is the
//! domain's rule (`latchkey_registry::Caller`), applied by the registry's
//! operations.
//!
//! A caller acting on behalf of a member names it in the request metadata
//! [`ON_BEHALF_OF_METADATA`]; the layer has the registry confine the caller
//! to that member (`Registry::act_on_behalf`) before any handler runs.

use std::convert::Infallible;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_registry::{Caller, Registry};
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
        // No access token is this long, and the issuer refuses to look.
        if token.len() > MAX_CALLER_TOKEN_LEN {
            return Err(invalid_token());
        }
        // Tokens are bound to addresses: without one, none can be checked
        // (a TCP peer always has one).
        let Some(address) = client_ip else {
            return Err(Status::unauthenticated("the caller's address is unknown"));
        };
        let request = token_pb::CheckCallerRequest {
            token: token.to_owned(),
            client_ip: address.to_string(),
        };
        let answer = match self.client.clone().check_caller(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return Err(check_failed(&status)),
        };
        if !answer.active {
            return Err(invalid_token());
        }
        Ok(Caller {
            credential_id: answer.credential_id,
            project_id: answer.project_id,
            owner: answer.owner,
            scopes: answer.scopes,
            address: client_ip,
            on_behalf_of: None,
            own_ceiling: None,
        })
    }
}

/// Longest bearer token sent to the issuer (its `CheckCaller` bound).
const MAX_CALLER_TOKEN_LEN: usize = 512;

fn invalid_token() -> Status {
    Status::unauthenticated("invalid or expired token")
}

/// What the management caller gets when `CheckCaller` fails: a malformed
/// token is an invalid one; anything else is the issuer being unreachable
/// or refusing the registry's own call (a misconfiguration between the
/// services, logged at error), never the caller's fault.
fn check_failed(status: &Status) -> Status {
    let unavailable = || Status::unavailable("token issuer unavailable: cannot check the token");
    match status.code() {
        Code::InvalidArgument => {
            tracing::info!(error = %status.message(), "malformed management token refused");
            invalid_token()
        }
        Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented => {
            let reason = latchkey_runtime::status_reason(status).map(|(reason, _)| reason);
            tracing::error!(
                code = ?status.code(),
                reason = reason.as_deref().unwrap_or("none"),
                error = %status.message(),
                "the token issuer refused the registry's own call: check the internal key and certificates"
            );
            unavailable()
        }
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Aborted
        | Code::ResourceExhausted
        | Code::Unknown
        | Code::Internal
        | Code::DataLoss
        | Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Ok => {
            tracing::warn!(code = ?status.code(), error = %status.message(), "cannot check the caller's token");
            unavailable()
        }
    }
}

/// The request metadata naming the member a call acts on behalf of:
/// `<user_id>` in the caller's project, or `<project_id>/<user_id>`.
pub const ON_BEHALF_OF_METADATA: &str = "x-latchkey-on-behalf-of";

/// The member a trusted authentication proxy signed in, put into the
/// request's extensions by the HTTP/JSON bridge
/// (`latchkey_registry_http`) after its trust check
/// (`latchkey_net::AuthProxy`). Extensions live in process only: a call
/// over the gRPC listener can never carry one, whatever headers it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedUser {
    /// The member's user ID, as the proxy named it.
    pub user_id: String,
    /// The project whose members the proxy signs in.
    pub project_id: String,
    /// The header the proxy named the user in (for error messages).
    pub header: String,
}

/// The credential ID (and owner) of the synthetic caller that stands for
/// the authentication proxy in the audit trail.
pub const AUTH_PROXY_CALLER: &str = "auth-proxy";

/// The proxy as a caller: a `credentials:manage` caller of its project,
/// confined at once to the member it signed in (exactly as a manager
/// acting on behalf of one, so a suspended, removed or unknown member is
/// refused alike and the audit event names both).
async fn proxied_caller(
    proxied: ProxiedUser,
    client_ip: Option<IpAddr>,
    members: Option<&Registry>,
) -> Result<Caller, Status> {
    let Some(registry) = members else {
        return Err(Status::permission_denied(format!(
            "{}: sign-in by proxy not served here",
            proxied.header
        )));
    };
    let proxy = Caller {
        credential_id: AUTH_PROXY_CALLER.to_owned(),
        project_id: proxied.project_id,
        owner: AUTH_PROXY_CALLER.to_owned(),
        scopes: vec!["credentials:manage".to_owned()],
        address: client_ip,
        on_behalf_of: None,
        own_ceiling: None,
    };
    registry
        .act_on_behalf(proxy, &proxied.header, &proxied.user_id)
        .await
        .map_err(crate::status::to_status)
}

/// `service` behind the authentication layer.
#[derive(Debug, Clone)]
pub struct Authenticated<S> {
    inner: S,
    verifier: Arc<dyn CallerVerifier>,
    members: Option<Registry>,
}

impl<S> Authenticated<S> {
    /// Puts `inner` behind `verifier`. Calls on behalf of a member are
    /// refused until [`Authenticated::acting_for_members`] names the
    /// registry that knows them.
    pub fn new(inner: S, verifier: Arc<dyn CallerVerifier>) -> Self {
        Self {
            inner,
            verifier,
            members: None,
        }
    }

    /// Lets callers act on behalf of `registry`'s members.
    #[must_use]
    pub fn acting_for_members(mut self, registry: Registry) -> Self {
        self.members = Some(registry);
        self
    }
}

/// The member named in the request's metadata, if any; a repeated or
/// unreadable value is `INVALID_ARGUMENT`.
fn on_behalf_of(request: &HttpRequest<Body>) -> Result<Option<String>, Status> {
    let mut values = request.headers().get_all(ON_BEHALF_OF_METADATA).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Status::invalid_argument(format!(
            "{ON_BEHALF_OF_METADATA}: sent more than once"
        )));
    }
    let value = value.to_str().map_err(|_| {
        Status::invalid_argument(format!("{ON_BEHALF_OF_METADATA}: not printable ASCII"))
    })?;
    Ok(Some(value.trim().to_owned()))
}

/// Confines `caller` to the member the request names, if it names one.
async fn confine(
    caller: Caller,
    requested: Option<String>,
    members: Option<&Registry>,
) -> Result<Caller, Status> {
    let Some(requested) = requested else {
        // A credentials:own caller who is a member grants within the
        // member's ceiling.
        return match members {
            Some(registry) => registry
                .with_own_membership(caller)
                .await
                .map_err(crate::status::to_status),
            None => Ok(caller),
        };
    };
    let Some(registry) = members else {
        return Err(Status::permission_denied(format!(
            "{ON_BEHALF_OF_METADATA}: not served here"
        )));
    };
    registry
        .act_on_behalf(caller, ON_BEHALF_OF_METADATA, &requested)
        .await
        .map_err(crate::status::to_status)
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
        let members = self.members.clone();
        Box::pin(async move {
            let client_ip = latchkey_runtime::peer_address(&request).map(|address| address.ip());
            // Only the in-process HTTP/JSON bridge can set this (see
            // `ProxiedUser`); it never sets it beside a bearer token.
            if let Some(proxied) = request.extensions_mut().remove::<ProxiedUser>() {
                return match proxied_caller(proxied, client_ip, members.as_ref()).await {
                    Ok(caller) => {
                        request.extensions_mut().insert(caller);
                        inner.call(request).await
                    }
                    Err(status) => Ok(status.into_http()),
                };
            }
            let Some(token) = bearer_token(&request) else {
                let status =
                    Status::unauthenticated("missing bearer token (authorization: Bearer …)");
                return Ok(status.into_http());
            };
            let requested = match on_behalf_of(&request) {
                Ok(requested) => requested,
                Err(status) => return Ok(status.into_http()),
            };
            let verified = match verifier.verify(&token, client_ip).await {
                Ok(caller) => confine(caller, requested, members.as_ref()).await,
                Err(status) => Err(status),
            };
            match verified {
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
