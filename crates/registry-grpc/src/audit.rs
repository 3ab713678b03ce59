//! The audit trail on the wire: `AuditSink` (token issuers' batches) and
//! the conversions `ListAuditEvents` answers with.

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::audit_sink_server::{AuditSink, AuditSinkServer};
use latchkey_registry::{AuditAction, AuditEvent, AuditOutcome, Registry, RegistryError};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::status::to_status;

/// Receives batches of token events from the issuers.
#[derive(Debug, Clone)]
pub struct AuditSinkService {
    registry: Registry,
}

impl AuditSinkService {
    /// A service over `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> AuditSinkServer<Self> {
        AuditSinkServer::new(self)
    }
}

#[tonic::async_trait]
impl AuditSink for AuditSinkService {
    async fn record_audit_events(
        &self,
        request: Request<pb::RecordAuditEventsRequest>,
    ) -> Result<Response<pb::RecordAuditEventsResponse>, Status> {
        let events = request
            .into_inner()
            .events
            .into_iter()
            .enumerate()
            .map(|(index, event)| from_message(index, event))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        self.registry
            .record_audit_events(events)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RecordAuditEventsResponse {}))
    }
}

fn action_message(action: AuditAction) -> pb::AuditAction {
    match action {
        AuditAction::CreateProject => pb::AuditAction::CreateProject,
        AuditAction::UpdateProjectPolicy => pb::AuditAction::UpdateProjectPolicy,
        AuditAction::UpdateProject => pb::AuditAction::UpdateProject,
        AuditAction::CreateCredential => pb::AuditAction::CreateCredential,
        AuditAction::UpdateCredential => pb::AuditAction::UpdateCredential,
        AuditAction::DeleteCredential => pb::AuditAction::DeleteCredential,
        AuditAction::DisableCredential => pb::AuditAction::DisableCredential,
        AuditAction::EnableCredential => pb::AuditAction::EnableCredential,
        AuditAction::RotateCredentialSecret => pb::AuditAction::RotateCredentialSecret,
        AuditAction::IssueToken => pb::AuditAction::IssueToken,
        AuditAction::RevokeToken => pb::AuditAction::RevokeToken,
        AuditAction::AuthenticateClient => pb::AuditAction::AuthenticateClient,
        AuditAction::CreateMember => pb::AuditAction::CreateMember,
        AuditAction::UpdateMember => pb::AuditAction::UpdateMember,
        AuditAction::RemoveMember => pb::AuditAction::RemoveMember,
    }
}

/// An event as `ListAuditEvents` returns it.
pub(crate) fn to_message(event: AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: event.id,
        time: Some(convert::timestamp(event.time)),
        actor: event.actor,
        on_behalf_of: event.on_behalf_of,
        action: action_message(event.action).into(),
        project_id: event.project_id,
        credential_id: event.credential_id,
        source_ip: event.source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        outcome: match event.outcome {
            AuditOutcome::Succeeded => pb::AuditOutcome::Succeeded,
            AuditOutcome::Failed => pb::AuditOutcome::Failed,
        }
        .into(),
        detail: event.detail,
    }
}

/// An issuer's event, checked field by field.
fn from_message(index: usize, message: pb::AuditEvent) -> Result<AuditEvent, RegistryError> {
    let field = |name: &str| format!("events[{index}].{name}");
    let action = match pb::AuditAction::try_from(message.action) {
        Ok(pb::AuditAction::IssueToken) => AuditAction::IssueToken,
        Ok(pb::AuditAction::RevokeToken) => AuditAction::RevokeToken,
        Ok(pb::AuditAction::AuthenticateClient) => AuditAction::AuthenticateClient,
        _ => {
            return Err(RegistryError::invalid(
                field("action"),
                "must be ISSUE_TOKEN, REVOKE_TOKEN or AUTHENTICATE_CLIENT",
            ));
        }
    };
    let outcome = match pb::AuditOutcome::try_from(message.outcome) {
        Ok(pb::AuditOutcome::Succeeded) => AuditOutcome::Succeeded,
        Ok(pb::AuditOutcome::Failed) => AuditOutcome::Failed,
        _ => return Err(RegistryError::invalid(field("outcome"), "required")),
    };
    let time = message
        .time
        .as_ref()
        .ok_or_else(|| RegistryError::invalid(field("time"), "required"))?;
    let source_ip = if message.source_ip.is_empty() {
        None
    } else {
        Some(convert::ip_address(
            &field("source_ip"),
            &message.source_ip,
        )?)
    };
    // Every other field is checked by the registry (`record_audit_events`),
    // the detail included: an over-long one is refused, not cut.
    let event = AuditEvent {
        id: message.id,
        time: convert::time(&field("time"), time)?,
        actor: message.actor,
        on_behalf_of: message.on_behalf_of,
        action,
        project_id: message.project_id,
        credential_id: message.credential_id,
        source_ip,
        outcome,
        detail: message.detail,
    };
    Ok(event)
}
