//! `latchkey.token.v1.TokenService`: the client-credentials grant over gRPC.

use latchkey_net::TrustedProxies;
use latchkey_proto::token::v1 as pb;
use latchkey_proto::token::v1::token_service_server::{
    TokenService as TokenRpc, TokenServiceServer,
};
use latchkey_token::{IssueRequest, Issuer};
use tonic::{Request, Response, Status};

use crate::peer::{client_ip, refuse_authorization_metadata};
use crate::status::issue_status;

/// Issues and revokes tokens. The client authenticates with the
/// `client_id` and `client_secret` fields, and only with them.
#[derive(Debug, Clone)]
pub struct TokenGrpcService {
    issuer: Issuer,
    proxies: TrustedProxies,
}

impl TokenGrpcService {
    /// A service over `issuer`, believing forwarding metadata from `proxies`.
    pub fn new(issuer: Issuer, proxies: TrustedProxies) -> Self {
        Self { issuer, proxies }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> TokenServiceServer<Self> {
        TokenServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl TokenRpc for TokenGrpcService {
    async fn issue_token(
        &self,
        request: Request<pb::IssueTokenRequest>,
    ) -> Result<Response<pb::IssueTokenResponse>, Status> {
        let fields_present =
            !request.get_ref().client_id.is_empty() || !request.get_ref().client_secret.is_empty();
        refuse_authorization_metadata(&request, fields_present)?;
        let client_ip = client_ip(&request, &self.proxies);
        let request = request.into_inner();
        let issued = self
            .issuer
            .issue(IssueRequest {
                client_id: request.client_id,
                client_secret: request.client_secret,
                scopes: request.scopes,
                client_ip,
            })
            .await
            .map_err(issue_status)?;
        // DEBUG, not INFO: every issuance is in the audit trail already, and
        // a log line per token cost the issuer about 5% of its CPU.
        tracing::debug!(credential_id = %issued.credential_id, "token issued");
        Ok(Response::new(pb::IssueTokenResponse {
            access_token: issued.access_token,
            token_type: "Bearer".to_owned(),
            expires_in: issued.expires_in,
            scopes: issued.scopes,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let fields_present =
            !request.get_ref().client_id.is_empty() || !request.get_ref().client_secret.is_empty();
        refuse_authorization_metadata(&request, fields_present)?;
        let client_ip = client_ip(&request, &self.proxies);
        let request = request.get_ref();
        self.issuer
            .revoke(
                &request.token,
                &request.client_id,
                &request.client_secret,
                client_ip,
            )
            .await
            .map_err(issue_status)?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }
}
