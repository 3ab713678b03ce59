//! The issuer's clients of the registry: client authentication and usage
//! reports, over gRPC only.

use std::net::IpAddr;

use async_trait::async_trait;
use latchkey_net::IpAllowlist;
use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::client_authentication_client::ClientAuthenticationClient;
use latchkey_proto::registry::v1::usage_sink_client::UsageSinkClient;
use latchkey_runtime::{TracedChannel, reason, status_reason};
use latchkey_token::{
    AuthenticatedClient, ClientAuthenticator, ClientRefusal, CredentialPolicy, IssueError,
    LimitPolicy, PolicyState, RollupBatch, Usage, UsageKind, UsageRollup,
};
use tonic::{Code, Status};

/// Most uses in one `UsageSink.Record` call (the registry's limit).
pub const MAX_USES_PER_BATCH: usize = 10_000;

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

/// Metadata keys of the registry's `INVALID_CLIENT` refusals (its
/// `refusal_metadata`): why, and the credential and project the client ID
/// names.
const REFUSAL: &str = "refusal";
const CREDENTIAL_ID: &str = "credential_id";
const PROJECT_ID: &str = "project_id";

/// What the issuer makes of the registry's refusal. Only `UNAUTHENTICATED`
/// with the reason `INVALID_CLIENT` refuses the *client* (and counts against
/// brute force); any other refusal is of the issuer's own call (no client
/// certificate, no or a bad service signature, not allowed): a
/// misconfiguration between the services, answered as the registry being
/// unavailable and never counted against a client.
fn refusal(status: &Status) -> IssueError {
    let misconfigured = |reason: &str| {
        tracing::error!(
            code = ?status.code(),
            reason,
            message = status.message(),
            "the credential registry refused the issuer's own call: check the internal key and certificates"
        );
        unavailable(status.clone())
    };
    match status.code() {
        Code::Unauthenticated => match status_reason(status) {
            Some((reason, metadata)) if reason == reason::INVALID_CLIENT => {
                let field = |key: &str| metadata.get(key).cloned().unwrap_or_default();
                IssueError::InvalidClient(ClientRefusal {
                    reason: field(REFUSAL),
                    credential_id: field(CREDENTIAL_ID),
                    project_id: field(PROJECT_ID),
                })
            }
            Some((reason, _)) => misconfigured(&reason),
            None => misconfigured("none"),
        },
        Code::PermissionDenied | Code::Unimplemented => {
            let reason = status_reason(status).map(|(reason, _)| reason);
            misconfigured(reason.as_deref().unwrap_or("none"))
        }
        Code::InvalidArgument => IssueError::InvalidRequest {
            field: "client",
            reason: status.message().to_owned(),
        },
        // The registry is down, overloaded or failing: try again later.
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Aborted
        | Code::ResourceExhausted
        | Code::Unknown
        | Code::Internal
        | Code::DataLoss => unavailable(status.clone()),
        // Codes `Authenticate` never answers with: a registry of another
        // version, or a proxy in between. Nothing a client did.
        Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Ok => {
            tracing::error!(
                code = ?status.code(),
                message = status.message(),
                "unexpected answer from the credential registry"
            );
            unavailable(status.clone())
        }
    }
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
            Err(status) => Err(refusal(&status)),
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

/// Sends batches of last uses and usage rollups to the registry's `UsageSink`.
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

    /// Sends `uses`, in batches the registry takes ([`MAX_USES_PER_BATCH`]).
    /// `Ok` once the registry took them, or refused a batch as invalid: it
    /// would be refused again on every retry (and newer uses would merge
    /// into it), so it is dropped and logged at error. Any other failure is
    /// returned, for the uses to be sent again; batches sent before it are
    /// recorded, and recording a use twice changes nothing.
    pub async fn report(&self, uses: &[Usage]) -> Result<(), Status> {
        for batch in uses.chunks(MAX_USES_PER_BATCH) {
            let request = registry_pb::RecordRequest {
                uses: batch
                    .iter()
                    .map(|usage| registry_pb::CredentialUse {
                        credential_id: usage.credential_id.clone(),
                        time: Some(prost_types::Timestamp::from(usage.time)),
                        ip: usage.ip.to_string(),
                    })
                    .collect(),
                ..Default::default()
            };
            match self.client.clone().record(request).await {
                Ok(_) => {}
                Err(status) if status.code() == Code::InvalidArgument => {
                    tracing::error!(
                        error = %status.message(),
                        uses = batch.len(),
                        "the registry refused a batch of last uses as invalid (is this clock ahead of the registry's?): dropped"
                    );
                }
                Err(status) => return Err(status),
            }
        }
        Ok(())
    }
}

/// What became of a batch of rollups the registry answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupDelivery {
    /// Recorded (or recorded before: the same batch ID counts once).
    Recorded,
    /// Refused as invalid: it would be refused again on every retry, so it
    /// is to be given up (and its tokens counted as dropped).
    Refused,
}

impl UsageReporter {
    /// Sends one batch of usage rollups (at most
    /// [`latchkey_token::MAX_ROLLUPS_PER_BATCH`]) under its batch ID, in a
    /// call of its own: a batch sent again after a lost answer is skipped
    /// by the registry, and fresh last uses must not be skipped with it.
    /// `Err` for a failure worth retrying: the caller sends the same batch,
    /// with the same ID, again later. A refusal as invalid is logged at
    /// error here.
    pub async fn report_rollups(&self, batch: &RollupBatch) -> Result<RollupDelivery, Status> {
        let request = registry_pb::RecordRequest {
            uses: Vec::new(),
            rollups: batch.rollups.iter().map(rollup_message).collect(),
            batch_id: batch.batch_id.clone(),
        };
        match self.client.clone().record(request).await {
            Ok(_) => Ok(RollupDelivery::Recorded),
            Err(status) if status.code() == Code::InvalidArgument => {
                tracing::error!(
                    error = %status.message(),
                    batch_id = %batch.batch_id,
                    rollups = batch.rollups.len(),
                    tokens = batch.token_count(),
                    "the registry refused a batch of usage rollups as invalid (is this clock ahead of the registry's, or was the registry unreachable for a week?): dropped"
                );
                Ok(RollupDelivery::Refused)
            }
            Err(status) => Err(status),
        }
    }
}

fn rollup_message(rollup: &UsageRollup) -> registry_pb::UsageRollup {
    let kind = match rollup.kind {
        UsageKind::Issued => registry_pb::UsageKind::TokenIssued,
        UsageKind::Revoked => registry_pb::UsageKind::TokenRevoked,
    };
    registry_pb::UsageRollup {
        credential_id: rollup.credential_id.clone(),
        project_id: rollup.project_id.clone(),
        minute: Some(prost_types::Timestamp::from(rollup.minute)),
        kind: kind.into(),
        count: i64::try_from(rollup.count).unwrap_or(i64::MAX),
        first_time: Some(prost_types::Timestamp::from(rollup.first_time)),
        last_time: Some(prost_types::Timestamp::from(rollup.last_time)),
        addresses: rollup
            .addresses
            .iter()
            .map(|address| address.to_canonical().to_string())
            .collect(),
        more_addresses: rollup.more_addresses,
    }
}

#[cfg(test)]
mod tests {
    use latchkey_runtime::status_with_reason;

    use super::*;

    #[test]
    fn only_an_invalid_client_reason_refuses_the_client() {
        let wrong_secret = status_with_reason(
            Code::Unauthenticated,
            "invalid client",
            reason::INVALID_CLIENT,
            [
                (REFUSAL, "wrong_secret"),
                (CREDENTIAL_ID, "0193a0a0-0000-7000-8000-000000000001"),
                (PROJECT_ID, "acme"),
            ],
        );
        let IssueError::InvalidClient(refused) = refusal(&wrong_secret) else {
            panic!("a refused client");
        };
        assert_eq!(
            refused,
            ClientRefusal {
                reason: "wrong_secret".into(),
                credential_id: "0193a0a0-0000-7000-8000-000000000001".into(),
                project_id: "acme".into(),
            }
        );
        let unknown = status_with_reason(
            Code::Unauthenticated,
            "invalid client",
            reason::INVALID_CLIENT,
            [(REFUSAL, "unknown_client")],
        );
        let IssueError::InvalidClient(refused) = refusal(&unknown) else {
            panic!("a refused client");
        };
        assert_eq!(refused, ClientRefusal::because("unknown_client"));
    }

    #[test]
    fn a_rollup_goes_out_as_the_proto_says() {
        use std::time::{Duration, SystemTime};
        let at = |millis| SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
        let message = rollup_message(&UsageRollup {
            credential_id: "0193a0a0-0000-7000-8000-000000000001".into(),
            project_id: "acme".into(),
            minute: at(1_700_000_040_000),
            kind: UsageKind::Revoked,
            count: 3,
            first_time: at(1_700_000_041_250),
            last_time: at(1_700_000_099_999),
            addresses: vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            more_addresses: true,
        });
        assert_eq!(
            message.minute,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_040,
                nanos: 0
            })
        );
        assert_eq!(
            message.first_time,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_041,
                nanos: 250_000_000
            })
        );
        assert_eq!(message.kind(), registry_pb::UsageKind::TokenRevoked);
        assert_eq!(message.count, 3);
        assert_eq!(message.addresses, ["10.0.0.1", "2001:db8::1"]);
        assert!(message.more_addresses);
    }

    #[test]
    fn a_refusal_of_the_issuer_itself_is_never_the_clients() {
        let issuer_refused = [
            status_with_reason(
                Code::Unauthenticated,
                "this internal service requires a client certificate",
                reason::CLIENT_CERTIFICATE_REQUIRED,
                [],
            ),
            status_with_reason(
                Code::Unauthenticated,
                "bad signature",
                reason::SERVICE_UNAUTHENTICATED,
                [],
            ),
            // A bare UNAUTHENTICATED (a proxy, an older guard) is not a
            // client refusal either.
            Status::unauthenticated("invalid client"),
            Status::permission_denied("not allowed"),
            Status::unimplemented("no such service"),
            Status::unavailable("down"),
            Status::resource_exhausted("busy"),
            Status::not_found("?"),
        ];
        for status in issuer_refused {
            assert!(
                matches!(
                    refusal(&status),
                    IssueError::Unavailable("credential registry", _)
                ),
                "{status:?}"
            );
        }
        assert!(matches!(
            refusal(&Status::invalid_argument("client_ip: not an IP address")),
            IssueError::InvalidRequest {
                field: "client",
                ..
            }
        ));
    }
}
