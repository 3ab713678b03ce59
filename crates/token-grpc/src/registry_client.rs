//! The issuer's clients of the registry: client authentication and usage
//! reports, over gRPC only.

use std::net::IpAddr;

use async_trait::async_trait;
use latchkey_net::IpAllowlist;
use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::client_authentication_client::ClientAuthenticationClient;
use latchkey_proto::registry::v1::usage_sink_client::UsageSinkClient;
use latchkey_runtime::TracedChannel;
use latchkey_token::{
    AuthenticatedClient, ClientAuthenticator, ClientRefusal, CredentialPolicy, IssueError,
    LimitPolicy, PolicyState, Usage,
};
use tonic::{Code, Status};

/// Authenticates clients by asking the registry's `ClientAuthentication`.
#[derive(Debug, Clone)]
pub struct RegistryAuthenticator {
    client: ClientAuthenticationClient<TracedChannel>,
}

impl RegistryAuthenticator {
    /// An authenticator over `channel` to the registry.
    pub fn new(channel: TracedChannel) -> Self {
        Self {
            client: ClientAuthenticationClient::new(channel),
        }
    }
}

fn malformed(what: &str) -> IssueError {
    IssueError::Internal(format!("registry answered a malformed {what}").into())
}

fn snapshot(
    value: registry_pb::CredentialSnapshot,
    secret_expire_time: Option<prost_types::Timestamp>,
) -> Result<AuthenticatedClient, IssueError> {
    let policy = value
        .policy
        .ok_or_else(|| malformed("snapshot without policy"))?;
    let allowed_ips = IpAllowlist::parse(&value.allowed_ips).map_err(|_| malformed("allowlist"))?;
    let evict_oldest = policy.on_token_limit == Some(registry_pb::OnTokenLimit::EvictOldest as i32);
    Ok(AuthenticatedClient {
        limit: LimitPolicy {
            max_tokens: policy.max_tokens_per_credential.unwrap_or(1).max(1),
            evict_oldest,
        },
        token_ttl_seconds: policy.token_ttl_seconds.unwrap_or(3600),
        policy: CredentialPolicy {
            version: value.policy_version,
            state: PolicyState::Active,
            client_id: value.client_id,
            project_id: value.project_id,
            owner: value.owner,
            allowed_apis: value.allowed_apis,
            allowed_ips,
            expire_time: value.expire_time.map(|time| time.seconds),
        },
        credential_id: value.credential_id,
        secret_expires_at: secret_expire_time.map(|time| time.seconds),
    })
}

fn unavailable(status: Status) -> IssueError {
    IssueError::Unavailable("credential registry", status.message().to_owned().into())
}

#[async_trait]
impl ClientAuthenticator for RegistryAuthenticator {
    async fn authenticate(
        &self,
        client_id: &str,
        client_secret: &str,
        client_ip: IpAddr,
    ) -> Result<AuthenticatedClient, IssueError> {
        let request = registry_pb::AuthenticateRequest {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            client_ip: client_ip.to_string(),
        };
        match self.client.clone().authenticate(request).await {
            Ok(response) => {
                let answer = response.into_inner();
                let credential = answer
                    .credential
                    .ok_or_else(|| malformed("answer without credential"))?;
                snapshot(credential, answer.secret_expire_time)
            }
            Err(status) => match status.code() {
                Code::Unauthenticated => Err(IssueError::InvalidClient(ClientRefusal::default())),
                Code::InvalidArgument => Err(IssueError::InvalidRequest {
                    field: "client",
                    reason: status.message().to_owned(),
                }),
                _ => Err(unavailable(status)),
            },
        }
    }

    async fn reconcile(&self, credential_id: &str, held_version: i64) -> Result<(), IssueError> {
        let request = registry_pb::ReconcileCredentialRequest {
            credential_id: credential_id.to_owned(),
            held_version,
        };
        match self.client.clone().reconcile_credential(request).await {
            Ok(response) => {
                let answer = response.into_inner();
                tracing::debug!(%credential_id, held_version, version = answer.policy_version, exists = answer.exists, "credential reconciled");
                Ok(())
            }
            Err(status) => Err(unavailable(status)),
        }
    }
}

/// Sends batches of last uses to the registry's `UsageSink`.
#[derive(Debug, Clone)]
pub struct UsageReporter {
    client: UsageSinkClient<TracedChannel>,
}

impl UsageReporter {
    /// A reporter over `channel` to the registry.
    pub fn new(channel: TracedChannel) -> Self {
        Self {
            client: UsageSinkClient::new(channel),
        }
    }

    /// Sends one batch.
    pub async fn report(&self, uses: &[Usage]) -> Result<(), Status> {
        let request = registry_pb::RecordRequest {
            uses: uses
                .iter()
                .map(|usage| registry_pb::CredentialUse {
                    credential_id: usage.credential_id.clone(),
                    time: Some(prost_types::Timestamp::from(usage.time)),
                    ip: usage.ip.to_string(),
                })
                .collect(),
        };
        self.client.clone().record(request).await.map(|_| ())
    }
}
