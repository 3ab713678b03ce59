//! `latchkey.token.v1.TokenAdmin`: the registry keeps tokens in step.

use latchkey_proto::token::v1 as pb;
use latchkey_proto::token::v1::token_admin_server::{TokenAdmin, TokenAdminServer};
use latchkey_token::{CredentialKey, Introspection, IntrospectionRequest, TokenService};
use tonic::{Request, Response, Status};

use crate::convert::credential_policy;
use crate::status::store_status;

/// Longest token `CheckCaller` looks at (access tokens are far shorter).
const MAX_CALLER_TOKEN_LEN: usize = 512;

/// Longest `client_ip` looked at (an IPv6 address in text is at most 45).
const MAX_CLIENT_IP_LEN: usize = 64;

/// The registry caller's address: required, and an IP address.
fn caller_ip(value: &str) -> Result<std::net::IpAddr, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument("client_ip: required"));
    }
    if value.len() > MAX_CLIENT_IP_LEN {
        return Err(Status::invalid_argument(format!(
            "client_ip: longer than {MAX_CLIENT_IP_LEN} bytes"
        )));
    }
    value
        .parse()
        .map_err(|_| Status::invalid_argument("client_ip: not an IP address"))
}

/// Applies the registry's policy changes to the token store.
#[derive(Debug, Clone)]
pub struct TokenAdminService {
    tokens: TokenService,
}

impl TokenAdminService {
    /// A service over `tokens`.
    pub fn new(tokens: TokenService) -> Self {
        Self { tokens }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> TokenAdminServer<Self> {
        TokenAdminServer::new(self)
    }

    async fn apply(
        &self,
        policy: Option<pb::CredentialPolicy>,
        revoke: bool,
    ) -> Result<u32, Status> {
        let (credential_id, policy) = credential_policy(policy)?;
        let credential = CredentialKey::from_credential_id(&credential_id)
            .ok_or_else(|| Status::invalid_argument("policy.credential_id: not a credential ID"))?;
        // Also forgets the credential as an introspection caller: it may
        // no longer be allowed to introspect.
        let revoked = self
            .tokens
            .apply_policy(credential, &policy, revoke)
            .await
            .map_err(store_status)?;
        tracing::info!(%credential_id, version = policy.version, revoke, revoked, "credential policy applied");
        Ok(revoked)
    }
}

#[tonic::async_trait]
impl TokenAdmin for TokenAdminService {
    async fn purge_credential(
        &self,
        request: Request<pb::PurgeCredentialRequest>,
    ) -> Result<Response<pb::PurgeCredentialResponse>, Status> {
        let revoked_tokens = self.apply(request.into_inner().policy, true).await?;
        Ok(Response::new(pb::PurgeCredentialResponse {
            revoked_tokens,
        }))
    }

    async fn check_caller(
        &self,
        request: Request<pb::CheckCallerRequest>,
    ) -> Result<Response<pb::CheckCallerResponse>, Status> {
        let request = request.get_ref();
        // Bounded like `Introspect`'s token; the address is the registry
        // caller's, which the registry always knows.
        if request.token.len() > MAX_CALLER_TOKEN_LEN {
            return Err(Status::invalid_argument(format!(
                "token: longer than {MAX_CALLER_TOKEN_LEN} bytes"
            )));
        }
        let client_ip = caller_ip(&request.client_ip)?;
        let answer = self
            .tokens
            .introspector()
            .introspect(&IntrospectionRequest {
                token: &request.token,
                client_ip: Some(client_ip),
                required_scopes: &[],
            })
            .await
            .map_err(store_status)?;
        Ok(Response::new(match answer {
            Introspection::Active(info) => pb::CheckCallerResponse {
                active: true,
                credential_id: info.credential_id,
                project_id: info.project_id,
                owner: info.owner,
                scopes: info.scopes,
            },
            Introspection::Inactive(reason) => {
                // Per management call; anyone can send one.
                tracing::debug!(?reason, "management token refused");
                pb::CheckCallerResponse::default()
            }
        }))
    }

    async fn sync_policy(
        &self,
        request: Request<pb::SyncPolicyRequest>,
    ) -> Result<Response<pb::SyncPolicyResponse>, Status> {
        self.apply(request.into_inner().policy, false).await?;
        Ok(Response::new(pb::SyncPolicyResponse {}))
    }
}
