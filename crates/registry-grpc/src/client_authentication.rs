//! `latchkey.registry.v1.ClientAuthentication` for the token issuer.

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::client_authentication_server::{
    ClientAuthentication, ClientAuthenticationServer,
};
use latchkey_registry::Registry;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::status::{authentication_status, to_status};

/// Checks client credentials on behalf of the token issuer.
#[derive(Debug, Clone)]
pub struct ClientAuthenticationService {
    registry: Registry,
}

impl ClientAuthenticationService {
    /// A service over `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> ClientAuthenticationServer<Self> {
        ClientAuthenticationServer::new(self)
    }
}

#[tonic::async_trait]
impl ClientAuthentication for ClientAuthenticationService {
    async fn authenticate(
        &self,
        request: Request<pb::AuthenticateRequest>,
    ) -> Result<Response<pb::AuthenticateResponse>, Status> {
        let request = request.get_ref();
        let authenticated = self
            .registry
            .authenticate(
                &request.client_id,
                &request.client_secret,
                &request.client_ip,
            )
            .await
            .map_err(authentication_status)?;
        let credential = authenticated.credential;
        Ok(Response::new(pb::AuthenticateResponse {
            credential: Some(pb::CredentialSnapshot {
                state: convert::credential_state(credential.state).into(),
                allowed_ips: credential.allowed_ips.to_strings(),
                expire_time: credential.expire_time.map(convert::timestamp),
                policy: Some(convert::policy(&authenticated.policy)),
                credential_id: credential.id,
                client_id: credential.client_id,
                project_id: credential.project_id,
                owner: credential.owner,
                allowed_apis: credential.allowed_apis,
                policy_version: credential.policy_version,
            }),
            secret_expire_time: authenticated.secret_expire_time.map(convert::timestamp),
        }))
    }

    async fn reconcile_credential(
        &self,
        request: Request<pb::ReconcileCredentialRequest>,
    ) -> Result<Response<pb::ReconcileCredentialResponse>, Status> {
        let request = request.get_ref();
        let reconciled = self
            .registry
            .reconcile_credential(&request.credential_id, request.held_version)
            .await
            .map_err(to_status)?;
        Ok(Response::new(match reconciled.credential {
            Some(credential) => pb::ReconcileCredentialResponse {
                policy_version: credential.policy_version,
                exists: true,
            },
            None => pb::ReconcileCredentialResponse {
                policy_version: 0,
                exists: false,
            },
        }))
    }
}
