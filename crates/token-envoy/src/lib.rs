//! Envoy's `envoy.service.auth.v3.Authorization/Check` over the token
//! service (being written).

use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use latchkey_token::TokenService;
use tonic::{Request, Response, Status};

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
}

#[tonic::async_trait]
impl Authorization for EnvoyAuthorizationService {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        tracing::debug!(tokens = ?self.tokens.store(), "ext_authz not implemented yet");
        Err(Status::unimplemented("ext_authz is being written"))
    }
}
