//! Envoy's external authorization (`envoy.service.auth.v3.Authorization`)
//! over the token service.
//!
//! Envoy's `ext_authz` filter asks before forwarding each request. The
//! answer comes from [`TokenService::check_gateway_request`], the same
//! decision NGINX's `auth_request` gets, so both gateways agree:
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
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use latchkey_token::{GatewayDecision, TokenService, TokenStoreError};
use tonic::{Request, Response, Status};

use crate::request::{AuthorizationHeader, CheckInput};

// A header too long to hold a token gets the shared answer for any
// unparsable token; no usable caller address the one for a refused address,
// since an allowlist cannot be checked without one.
use latchkey_token::challenges::{FORBIDDEN as NO_CALLER, INVALID_TOKEN};

/// Answers Envoy's ext_authz checks.
#[derive(Debug, Clone)]
pub struct EnvoyAuthorizationService {
    tokens: TokenService,
}

impl EnvoyAuthorizationService {
    /// A service over `tokens`.
    pub fn new(tokens: TokenService) -> Self {
        Self { tokens }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> AuthorizationServer<Self> {
        AuthorizationServer::new(self)
    }

    async fn decide(&self, input: &CheckInput<'_>) -> CheckResponse {
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
            .tokens
            .check_gateway_request(authorization, client_ip, &input.required_scopes)
            .await;
        match decision {
            Ok(GatewayDecision::Allow(identity)) => {
                response::allow(identity, &input.spoofed_headers)
            }
            Ok(GatewayDecision::Deny {
                status,
                www_authenticate,
                reason,
            }) => refuse(status, www_authenticate, reason),
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
        let input = CheckInput::from_request(request.get_ref());
        Ok(Response::new(self.decide(&input).await))
    }
}

fn refuse(status: u16, www_authenticate: &'static str, reason: &'static str) -> CheckResponse {
    tracing::debug!(status, reason, "ext_authz: request denied");
    response::deny(status, www_authenticate, reason)
}

fn log_store_error(error: &TokenStoreError) {
    match error {
        TokenStoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "ext_authz: token store unavailable; denying");
        }
        TokenStoreError::Internal(source) => {
            tracing::error!(error = %source, "ext_authz: token store error; denying");
        }
        TokenStoreError::LimitReached(_)
        | TokenStoreError::StalePolicy { .. }
        | TokenStoreError::TooManyFailures { .. } => {
            // Only issuance produces these.
            tracing::error!(%error, "ext_authz: unexpected token store answer; denying");
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
    use latchkey_secrets::HashKey;
    use latchkey_token::{
        AuthenticatedClient, ClientAuthenticator, CredentialKey, IssueError, UsageTracker,
        new_token,
    };

    use super::*;

    #[derive(Debug)]
    struct NoClients;

    #[async_trait::async_trait]
    impl ClientAuthenticator for NoClients {
        async fn authenticate(
            &self,
            _: &str,
            _: &str,
            _: IpAddr,
        ) -> Result<AuthenticatedClient, IssueError> {
            Err(IssueError::InvalidClient(
                latchkey_token::ClientRefusal::default(),
            ))
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

    async fn service(key: &HashKey) -> EnvoyAuthorizationService {
        EnvoyAuthorizationService::new(TokenService::new(
            unreachable_store().await,
            Arc::new(NoClients),
            key.clone(),
            Arc::new(UsageTracker::default()),
        ))
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

    async fn check(service: &EnvoyAuthorizationService, request: CheckRequest) -> CheckResponse {
        service
            .check(Request::new(request))
            .await
            .unwrap()
            .into_inner()
    }

    fn http_status(response: &CheckResponse) -> i32 {
        match &response.http_response {
            Some(HttpResponse::DeniedResponse(denied)) => denied.status.as_ref().unwrap().code,
            other => panic!("not a denial: {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_closed_with_503() {
        let key = HashKey::generate();
        let credential =
            CredentialKey::from_credential_id("0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b").unwrap();
        let (token, _) = new_token(credential, &key);
        let response = check(
            &service(&key).await,
            check_request(&format!("Bearer {token}")),
        )
        .await;
        assert_eq!(response.status.as_ref().unwrap().code, 14, "{response:?}");
        assert_eq!(http_status(&response), 503);
    }

    #[tokio::test]
    async fn local_challenges_match_the_shared_gateway() {
        let key = HashKey::generate();
        let service = service(&key).await;
        // An unparsable token never reaches the (down) store.
        let shared = service
            .tokens
            .check_gateway_request(Some("Bearer nope"), [10, 0, 0, 1].into(), &[])
            .await
            .unwrap();
        assert!(
            matches!(
                shared,
                GatewayDecision::Deny { status: 401, www_authenticate, .. }
                    if www_authenticate == INVALID_TOKEN
            ),
            "{shared:?}"
        );
        let oversized = format!("Bearer {}", "x".repeat(request::MAX_AUTHORIZATION_LEN));
        let response = check(&service, check_request(&oversized)).await;
        assert_eq!(response.status.as_ref().unwrap().code, 16);
        assert_eq!(http_status(&response), 401);
    }

    #[tokio::test]
    async fn two_authorization_headers_are_a_bad_request_before_any_lookup() {
        let key = HashKey::generate();
        let credential =
            CredentialKey::from_credential_id("0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b").unwrap();
        let (token, _) = new_token(credential, &key);
        // The store is down: a 400 proves no token was looked up.
        let response = check(
            &service(&key).await,
            check_request(&format!("Bearer {token},Bearer {token}")),
        )
        .await;
        assert_eq!(response.status.as_ref().unwrap().code, 3, "{response:?}");
        assert_eq!(http_status(&response), 400);
    }

    #[tokio::test]
    async fn no_caller_address_is_never_allowed() {
        let key = HashKey::generate();
        let mut request = check_request("Bearer whatever");
        if let Some(attributes) = request.attributes.as_mut() {
            attributes.source = None;
        }
        let response = check(&service(&key).await, request).await;
        assert_eq!(response.status.as_ref().unwrap().code, 7);
        assert_eq!(http_status(&response), 403);
    }
}
