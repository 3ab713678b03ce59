//! The registry's side of `latchkey.token.v1.TokenAdmin`: every policy
//! change goes to the token issuer before it commits.

use async_trait::async_trait;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_registry::{CredentialState, PolicyChange, RegistryError, TokenSync};
use latchkey_runtime::TracedChannel;

use crate::convert;

/// Sends policy changes to the token issuer's `TokenAdmin` service.
#[derive(Debug, Clone)]
pub struct TokenAdminSync {
    client: TokenAdminClient<TracedChannel>,
}

impl TokenAdminSync {
    /// Sync over `channel` (typically lazy, to the issuers' load balancer).
    pub fn new(channel: TracedChannel) -> Self {
        Self {
            client: TokenAdminClient::new(channel),
        }
    }
}

fn policy(change: PolicyChange<'_>) -> token_pb::CredentialPolicy {
    let credential = change.credential;
    let state = match (change.deleted, credential.state) {
        (true, _) => token_pb::PolicyState::Deleted,
        (false, CredentialState::Active) => token_pb::PolicyState::Active,
        (false, CredentialState::Disabled) => token_pb::PolicyState::Disabled,
    };
    token_pb::CredentialPolicy {
        credential_id: credential.id.clone(),
        version: credential.policy_version,
        state: state.into(),
        client_id: credential.client_id.clone(),
        project_id: credential.project_id.clone(),
        owner: credential.owner.clone(),
        allowed_apis: credential.allowed_apis.clone(),
        allowed_ips: credential.allowed_ips.to_strings(),
        expire_time: credential.expire_time.map(convert::timestamp),
    }
}

#[async_trait]
impl TokenSync for TokenAdminSync {
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError> {
        let mut client = self.client.clone();
        let policy = Some(policy(change));
        let outcome = if change.revoke_tokens {
            client
                .purge_credential(token_pb::PurgeCredentialRequest { policy })
                .await
                .map(|response| {
                    tracing::info!(
                        credential_id = %change.credential.id,
                        revoked_tokens = response.get_ref().revoked_tokens,
                        "credential's tokens purged"
                    );
                })
        } else {
            client
                .sync_policy(token_pb::SyncPolicyRequest { policy })
                .await
                .map(|_| ())
        };
        // Whatever went wrong, the change must not commit: the token side
        // would not follow it.
        outcome.map_err(|status| {
            RegistryError::TokenIssuerUnavailable(
                format!("{:?}: {}", status.code(), status.message()).into(),
            )
        })
    }
}
