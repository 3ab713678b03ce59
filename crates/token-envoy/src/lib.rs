//! Envoy's external authorization (`envoy.service.auth.v3.Authorization`)
//! over the token service.
//!
//! Envoy's `ext_authz` filter asks before forwarding each request. The
//! answer comes from [`Introspector::check_gateway_request`], the same
//! decision NGINX's `auth_request` gets, so both gateways agree.
//!
//! Envoy authenticates itself first, like every introspection caller: the
//! `Check` call's own `authorization` metadata (Envoy's
//! `grpc_service.initial_metadata`) holds `Basic` client credentials or a
//! bearer token of a credential with `tokens:introspect`, checked against
//! the gRPC connection's peer address. A caller that does not gets a
//! denial for the request it asks about (401; 403 without
//! `tokens:introspect`; 429 after repeated failures; 503 when it cannot be
//! verified) and learns nothing about the token. Then:
//!
//! - allowed: gRPC `OK`, and the upstream request carries the credential's
//!   identity in `x-latchkey-*` headers (any the client sent are replaced or
//!   removed);
//! - no or bad token: HTTP 401 (`UNAUTHENTICATED`) with a `WWW-Authenticate`
//!   challenge;
//! - two `Authorization` headers (two credentials in one request): HTTP 400
//!   (`INVALID_ARGUMENT`), neither checked;
//! - caller address or scope refused: HTTP 403 (`PERMISSION_DENIED`);
//! - token store down: HTTP 503 (`UNAVAILABLE`). Every failure is a denial,
//!   never an allow, whatever Envoy's `failure_mode_allow` says.

mod request;
mod response;

use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use std::net::{IpAddr, Ipv4Addr};

use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use latchkey_token::{CallerError, Gateway, GatewayDecision, Introspector, StoreError};
use latchkey_token_http::authorization::{PresentedAuthorization, bearer_token};
use latchkey_token_http::gateway::{Denial, denial, identity_headers};
use tonic::{Request, Response, Status};

use crate::request::{AuthorizationHeader, CheckInput};

// A header too long to hold a token gets the shared answer for any
// unparsable token; no usable caller address the one for a refused address,
// since an allowlist cannot be checked without one.
use latchkey_token_http::gateway::challenges::{FORBIDDEN as NO_CALLER, INVALID_TOKEN};

/// Answers Envoy's ext_authz checks.
#[derive(Debug, Clone)]
pub struct EnvoyAuthorizationService {
    introspector: Introspector,
}

impl EnvoyAuthorizationService {
    /// A service over `introspector`.
    pub fn new(introspector: Introspector) -> Self {
        Self { introspector }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> AuthorizationServer<Self> {
        AuthorizationServer::new(self)
    }

    async fn decide(&self, gateway: Gateway<'_>, input: &CheckInput<'_>) -> CheckResponse {
        let Some(client_ip) = input.client_ip else {
            return refuse(403, NO_CALLER, "no caller address");
        };
        let authorization = match &input.authorization {
            AuthorizationHeader::Absent => None,
            AuthorizationHeader::Present(value) => Some(value.as_ref()),
            AuthorizationHeader::Oversized => {
                return refuse(401, INVALID_TOKEN, "oversized authorization header");
            }
            AuthorizationHeader::Repeated => {
                tracing::debug!("ext_authz: request denied: repeated authorization header");
                return response::invalid_request("repeated authorization header");
            }
        };
        let decision = self
            .introspector
            .check_gateway_request(
                gateway,
                bearer_token(authorization),
                client_ip,
                &input.required_scopes,
            )
            .await;
        match decision {
            Ok(GatewayDecision::Allow(info)) => {
                response::allow(identity_headers(info), &input.spoofed_headers)
            }
            Ok(GatewayDecision::Deny(reason)) => {
                let Denial {
                    status,
                    www_authenticate,
                    reason,
                } = denial(reason);
                refuse(status, www_authenticate, reason)
            }
            Ok(GatewayDecision::GatewayRefused(refused)) => gateway_refused(refused),
            Err(error) => {
                log_store_error(&error);
                response::unavailable()
            }
        }
    }
}

#[tonic::async_trait]
impl Authorization for EnvoyAuthorizationService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        // Always an answer, never a gRPC error: Envoy treats an error per
        // `failure_mode_allow`, a denial as a denial.
        let values = request.metadata().get_all(GATEWAY_AUTHORIZATION);
        let Some(presented) =
            PresentedAuthorization::parse_single(values.iter().map(|value| value.to_str().ok()))
        else {
            return Ok(Response::new(gateway_refused(CallerError::Unauthenticated)));
        };
        // Without a peer address (an in-memory transport) nothing can be
        // vouched for; the unspecified address matches no allowlist entry
        // but 0.0.0.0/0.
        let address = request
            .remote_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip());
        let gateway = Gateway {
            credentials: presented.as_caller(),
            address,
        };
        let input = CheckInput::from_request(request.get_ref());
        Ok(Response::new(self.decide(gateway, &input).await))
    }
}

/// The `Check` call's metadata key the gateway authenticates with.
const GATEWAY_AUTHORIZATION: &str = "authorization";

/// The denial of a request whose gateway was refused. The message (Envoy's
/// logs only) tells the operator what to fix; the client sees a refusal.
fn gateway_refused(refused: CallerError) -> CheckResponse {
    tracing::debug!(%refused, "ext_authz: gateway refused");
    match refused {
        CallerError::Unauthenticated => response::gateway_refused(
            tonic::Code::Unauthenticated,
            401,
            "the gateway must authenticate: set authorization in the ext_authz grpc_service initial_metadata",
        ),
        CallerError::NotAllowed => response::gateway_refused(
            tonic::Code::PermissionDenied,
            403,
            "the gateway's credential lacks tokens:introspect",
        ),
        CallerError::TooManyFailures { .. } => response::gateway_refused(
            tonic::Code::ResourceExhausted,
            429,
            "too many failed gateway authentications from this address",
        ),
        CallerError::Unavailable(_) => response::gateway_refused(
            tonic::Code::Unavailable,
            503,
            "the gateway cannot be verified now",
        ),
        CallerError::Internal => {
            response::gateway_refused(tonic::Code::Internal, 500, "internal error")
        }
    }
}

fn refuse(status: u16, www_authenticate: &'static str, reason: &'static str) -> CheckResponse {
    tracing::debug!(status, reason, "ext_authz: request denied");
    response::deny(status, www_authenticate, reason)
}

fn log_store_error(error: &StoreError) {
    match error {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "ext_authz: token store unavailable; denying");
        }
        StoreError::Internal(source) => {
            tracing::error!(error = %source, "ext_authz: token store error; denying");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
    use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress};
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
        HttpRequest, Peer, Request as AttributeRequest,
    };
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    use latchkey_net::IpAllowlist;
    use latchkey_secrets::HashKey;
    use latchkey_token::{
        AuthenticatedClient, ClientAuthenticator, CredentialKey, CredentialPolicy, IssueError,
        LimitPolicy, PolicyState, TokenService, UsageTracker, new_token,
    };

    use super::*;

    /// The gateway's credential: the only client the registry knows.
    const GATEWAY_ID: &str = "lkc_gateway";
    const GATEWAY_SECRET: &str = "lks_gateway-secret";
    const GATEWAY_CREDENTIAL: &str = "0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0c";

    /// A registry that knows one client, the gateway, allowed `scopes`.
    #[derive(Debug)]
    struct OneGateway {
        scopes: Vec<String>,
    }

    #[async_trait::async_trait]
    impl ClientAuthenticator for OneGateway {
        async fn authenticate(
            &self,
            client_id: &str,
            client_secret: &str,
            _: IpAddr,
        ) -> Result<AuthenticatedClient, IssueError> {
            if client_id != GATEWAY_ID || client_secret != GATEWAY_SECRET {
                return Err(IssueError::InvalidClient(
                    latchkey_token::ClientRefusal::default(),
                ));
            }
            Ok(AuthenticatedClient {
                credential_id: GATEWAY_CREDENTIAL.to_owned(),
                policy: CredentialPolicy {
                    version: 1,
                    state: PolicyState::Active,
                    client_id: GATEWAY_ID.to_owned(),
                    project_id: "ops".to_owned(),
                    owner: "gateway".to_owned(),
                    allowed_apis: self.scopes.clone(),
                    allowed_ips: IpAllowlist::default(),
                    expire_time: None,
                },
                limit: LimitPolicy {
                    max_tokens: 10,
                    evict_oldest: false,
                },
                token_ttl_seconds: 3600,
                secret_expires_at: None,
            })
        }
    }

    /// A real Redis store pointed at a port nothing listens on: a store
    /// that cannot be reached.
    async fn unreachable_store() -> Arc<dyn latchkey_token::TokenStore> {
        let config = latchkey_token_store::RedisConfig {
            url: "redis://127.0.0.1:1".to_owned(),
            response_timeout_ms: 200,
            ..latchkey_token_store::RedisConfig::default()
        };
        Arc::new(
            latchkey_token_store::RedisTokenStore::connect(&config)
                .await
                .unwrap(),
        )
    }

    fn service_over(
        store: Arc<dyn latchkey_token::TokenStore>,
        key: &HashKey,
        gateway_scopes: &[&str],
    ) -> EnvoyAuthorizationService {
        let tokens = TokenService::new(
            store,
            Arc::new(OneGateway {
                scopes: gateway_scopes
                    .iter()
                    .map(|&scope| scope.to_owned())
                    .collect(),
            }),
            key.clone(),
            Arc::new(UsageTracker::default()),
        );
        EnvoyAuthorizationService::new(tokens.introspector().clone())
    }

    /// The in-process store, and a gateway holding `tokens:introspect`.
    fn service(key: &HashKey) -> EnvoyAuthorizationService {
        service_over(
            Arc::new(latchkey_token_store::MemoryTokenStore::new()),
            key,
            &["tokens:introspect"],
        )
    }

    fn gateway_basic(client_id: &str, client_secret: &str) -> String {
        use base64::Engine;
        let pair = format!("{client_id}:{client_secret}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    fn check_request(authorization: &str) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(Peer {
                    address: Some(Address {
                        address: Some(AddressKind::SocketAddress(SocketAddress {
                            address: "10.0.0.1".into(),
                            ..Default::default()
                        })),
                    }),
                    ..Default::default()
                }),
                request: Some(AttributeRequest {
                    http: Some(HttpRequest {
                        headers: [("authorization".to_owned(), authorization.to_owned())].into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    /// Asks as an authenticated gateway.
    async fn check(service: &EnvoyAuthorizationService, request: CheckRequest) -> CheckResponse {
        check_as(
            service,
            request,
            &[&gateway_basic(GATEWAY_ID, GATEWAY_SECRET)],
        )
        .await
    }

    /// Asks sending these `authorization` metadata values.
    async fn check_as(
        service: &EnvoyAuthorizationService,
        request: CheckRequest,
        authorization: &[&str],
    ) -> CheckResponse {
        let mut request = Request::new(request);
        for value in authorization {
            request
                .metadata_mut()
                .append("authorization", value.parse().unwrap());
        }
        service.check(request).await.unwrap().into_inner()
    }

    fn http_status(response: &CheckResponse) -> i32 {
        match &response.http_response {
            Some(HttpResponse::DeniedResponse(denied)) => denied.status.as_ref().unwrap().code,
            other => panic!("not a denial: {other:?}"),
        }
    }

    fn grpc_code(response: &CheckResponse) -> i32 {
        response.status.as_ref().unwrap().code
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_closed_with_503() {
        let key = HashKey::generate();
        let credential =
            CredentialKey::from_credential_id("0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b").unwrap();
        let (token, _) = new_token(credential, &key);
        let service = service_over(unreachable_store().await, &key, &["tokens:introspect"]);
        let response = check(&service, check_request(&format!("Bearer {token}"))).await;
        assert_eq!(grpc_code(&response), 14, "{response:?}");
        assert_eq!(http_status(&response), 503);
    }

    #[tokio::test]
    async fn a_caller_that_is_not_an_introspecting_gateway_learns_nothing() {
        let key = HashKey::generate();
        let service = service(&key);
        // Any token at all: the answer must not depend on it.
        let request = || check_request("Bearer whatever");
        let none = check_as(&service, request(), &[]).await;
        assert_eq!((grpc_code(&none), http_status(&none)), (16, 401));
        let wrong = check_as(
            &service,
            request(),
            &[&gateway_basic(GATEWAY_ID, "lks_wrong")],
        )
        .await;
        assert_eq!((grpc_code(&wrong), http_status(&wrong)), (16, 401));
        let good = gateway_basic(GATEWAY_ID, GATEWAY_SECRET);
        let twice = check_as(&service, request(), &[&good, &good]).await;
        assert_eq!((grpc_code(&twice), http_status(&twice)), (16, 401));
        for refused in [&none, &wrong, &twice] {
            let Some(HttpResponse::DeniedResponse(denied)) = &refused.http_response else {
                panic!("{refused:?}");
            };
            assert!(
                denied.headers.iter().all(|header| header
                    .header
                    .as_ref()
                    .is_none_or(|header| header.key != "www-authenticate")),
                "no bearer challenge for the client: {denied:?}"
            );
        }
        // A real credential without tokens:introspect is not a gateway.
        let not_allowed = check(
            &service_over(
                Arc::new(latchkey_token_store::MemoryTokenStore::new()),
                &key,
                &["orders.read"],
            ),
            request(),
        )
        .await;
        assert_eq!(
            (grpc_code(&not_allowed), http_status(&not_allowed)),
            (7, 403)
        );
    }

    #[tokio::test]
    async fn local_challenges_match_the_shared_gateway() {
        let key = HashKey::generate();
        let service = service(&key);
        let gateway = Gateway {
            credentials: latchkey_token::CallerCredentials::Client {
                client_id: GATEWAY_ID,
                client_secret: GATEWAY_SECRET,
            },
            address: [10, 0, 0, 9].into(),
        };
        let shared = service
            .introspector
            .check_gateway_request(gateway, Some("nope"), [10, 0, 0, 1].into(), &[])
            .await
            .unwrap();
        let GatewayDecision::Deny(reason) = shared else {
            panic!("{shared:?}");
        };
        let shared = denial(reason);
        assert_eq!(
            (shared.status, shared.www_authenticate),
            (401, INVALID_TOKEN)
        );
        let oversized = format!("Bearer {}", "x".repeat(request::MAX_AUTHORIZATION_LEN));
        let response = check(&service, check_request(&oversized)).await;
        assert_eq!(grpc_code(&response), 16);
        assert_eq!(http_status(&response), 401);
    }

    #[tokio::test]
    async fn two_authorization_headers_are_a_bad_request_before_any_lookup() {
        let key = HashKey::generate();
        let credential =
            CredentialKey::from_credential_id("0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b").unwrap();
        let (token, _) = new_token(credential, &key);
        // The store never saw the token: looked up, it would be a 401.
        let response = check(
            &service(&key),
            check_request(&format!("Bearer {token},Bearer {token}")),
        )
        .await;
        assert_eq!(grpc_code(&response), 3, "{response:?}");
        assert_eq!(http_status(&response), 400);
    }

    #[tokio::test]
    async fn no_caller_address_is_never_allowed() {
        let key = HashKey::generate();
        let mut request = check_request("Bearer whatever");
        if let Some(attributes) = request.attributes.as_mut() {
            attributes.source = None;
        }
        let response = check(&service(&key), request).await;
        assert_eq!(grpc_code(&response), 7);
        assert_eq!(http_status(&response), 403);
    }
}
