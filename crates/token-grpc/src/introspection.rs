//! `latchkey.token.v1.Introspection` for gateways.

use std::net::IpAddr;

use latchkey_net::TrustedProxies;
use latchkey_proto::token::v1 as pb;
use latchkey_proto::token::v1::introspection_server::{
    Introspection as IntrospectionRpc, IntrospectionServer,
};
use latchkey_token::{Introspection, IntrospectionRequest, Introspector};
use tonic::{Request, Response, Status};

use crate::convert::{inactive_reason, timestamp};
use crate::peer::{client_ip, presented_authorization};
use crate::status::{caller_status, store_status};

/// Answers whether a token is active for a caller and scopes. Callers
/// authenticate (RFC 7662 §2.1) with one `authorization` metadata value:
/// Basic client credentials or a bearer token, holding `tokens:introspect`.
#[derive(Debug, Clone)]
pub struct IntrospectionService {
    introspector: Introspector,
    proxies: TrustedProxies,
}

impl IntrospectionService {
    /// A service over `introspector`, believing forwarding metadata from
    /// `proxies`.
    pub fn new(introspector: Introspector, proxies: TrustedProxies) -> Self {
        Self {
            introspector,
            proxies,
        }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> IntrospectionServer<Self> {
        IntrospectionServer::new(self)
    }
}

/// Longest token accepted; anything longer cannot be ours.
const MAX_TOKEN_LEN: usize = 512;

#[tonic::async_trait]
impl IntrospectionRpc for IntrospectionService {
    async fn introspect(
        &self,
        request: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        let caller_ip = client_ip(&request, &self.proxies);
        let presented = presented_authorization(&request)?;
        self.introspector
            .authorize_introspection_caller(presented.as_caller(), caller_ip)
            .await
            .map_err(caller_status)?;
        let request = request.get_ref();
        if request.token.len() > MAX_TOKEN_LEN {
            return Err(Status::invalid_argument(format!(
                "token: longer than {MAX_TOKEN_LEN} bytes"
            )));
        }
        let client_ip = if request.client_ip.is_empty() {
            None
        } else {
            Some(
                request
                    .client_ip
                    .parse::<IpAddr>()
                    .map_err(|_| Status::invalid_argument("client_ip: not an IP address"))?,
            )
        };
        let answer = self
            .introspector
            .introspect(&IntrospectionRequest {
                token: &request.token,
                client_ip,
                required_scopes: &request.required_scopes,
            })
            .await
            .map_err(store_status)?;
        Ok(Response::new(match answer {
            Introspection::Active(info) => pb::IntrospectResponse {
                active: true,
                reason: pb::InactiveReason::Unspecified.into(),
                client_id: info.client_id,
                credential_id: info.credential_id,
                project_id: info.project_id,
                owner: info.owner,
                scopes: info.scopes,
                issue_time: Some(timestamp(info.issued_at)),
                expire_time: Some(timestamp(info.expires_at)),
            },
            Introspection::Inactive(reason) => pb::IntrospectResponse {
                active: false,
                reason: inactive_reason(reason).into(),
                ..Default::default()
            },
        }))
    }
}
