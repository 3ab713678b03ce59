//! Sends the issuer's queued token events to the registry's `AuditSink`.

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::audit_sink_client::AuditSinkClient;
use latchkey_runtime::TracedChannel;
use latchkey_token::{TokenAction, TokenAuditEvent};
use tonic::Status;

/// Most events in one `RecordAuditEvents` call (the registry's limit).
pub const MAX_AUDIT_BATCH: usize = 10_000;

/// Delivers batches of token events.
#[derive(Debug, Clone)]
pub struct AuditReporter {
    client: AuditSinkClient<TracedChannel>,
}

impl AuditReporter {
    /// A reporter over `channel` to the registry.
    pub fn new(channel: TracedChannel) -> Self {
        Self {
            client: AuditSinkClient::new(channel),
        }
    }

    /// Sends one batch (at most [`MAX_AUDIT_BATCH`] events).
    pub async fn report(&self, events: &[TokenAuditEvent]) -> Result<(), Status> {
        let request = registry_pb::RecordAuditEventsRequest {
            events: events.iter().map(message).collect(),
        };
        self.client
            .clone()
            .record_audit_events(request)
            .await
            .map(|_| ())
    }
}

fn message(event: &TokenAuditEvent) -> registry_pb::AuditEvent {
    let action = match event.action {
        TokenAction::Issue => registry_pb::AuditAction::IssueToken,
        TokenAction::Revoke => registry_pb::AuditAction::RevokeToken,
        TokenAction::Authenticate => registry_pb::AuditAction::AuthenticateClient,
    };
    let outcome = if event.succeeded {
        registry_pb::AuditOutcome::Succeeded
    } else {
        registry_pb::AuditOutcome::Failed
    };
    registry_pb::AuditEvent {
        id: event.id.clone(),
        time: Some(prost_types::Timestamp::from(event.time)),
        actor: event.actor.clone(),
        action: action.into(),
        project_id: event.project_id.clone(),
        credential_id: event.credential_id.clone(),
        source_ip: event.client_ip.to_canonical().to_string(),
        outcome: outcome.into(),
        detail: event.detail.clone(),
    }
}
