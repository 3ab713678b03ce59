//! Sends the issuer's queued token events to the registry's `AuditSink`.

use std::time::{Duration, SystemTime};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::audit_sink_client::AuditSinkClient;
use latchkey_runtime::TracedChannel;
use latchkey_token::{TokenAction, TokenAuditEvent};
use tonic::{Code, Status};

/// Most events in one `RecordAuditEvents` call (the registry's limit: a
/// full batch stays under 2 MiB on the wire).
pub const MAX_AUDIT_BATCH: usize = 2_000;

/// Longest detail the registry takes; longer ones are cut here.
const MAX_DETAIL_LEN: usize = 512;

/// Oldest event the registry takes (its `MAX_AUDIT_EVENT_AGE`): older ones,
/// kept through a long registry outage, are dropped here rather than sent
/// to be refused.
const MAX_EVENT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

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

    /// Sends one batch (at most [`MAX_AUDIT_BATCH`] events). `Ok` once the
    /// registry took it, or refused it as invalid: such a batch would be
    /// refused again on every retry and hold up every later event, so it is
    /// dropped and logged at error. Any other failure is returned, for the
    /// batch to be sent again.
    pub async fn report(&self, events: &[TokenAuditEvent]) -> Result<(), Status> {
        let oldest = SystemTime::now().checked_sub(MAX_EVENT_AGE);
        let fresh: Vec<registry_pb::AuditEvent> = events
            .iter()
            .filter(|event| oldest.is_none_or(|oldest| event.time >= oldest))
            .map(message)
            .collect();
        if fresh.len() < events.len() {
            tracing::warn!(
                dropped = events.len() - fresh.len(),
                "audit events older than the registry takes dropped"
            );
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let count = fresh.len();
        let request = registry_pb::RecordAuditEventsRequest { events: fresh };
        match self.client.clone().record_audit_events(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::InvalidArgument => {
                tracing::error!(
                    error = %status.message(),
                    events = count,
                    "the registry refused a batch of audit events as invalid: dropped"
                );
                Ok(())
            }
            Err(status) => Err(status),
        }
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
        detail: bounded_detail(&event.detail),
        // Token events are never made on behalf of a member.
        on_behalf_of: String::new(),
    }
}

/// The detail as the registry takes it: control characters as spaces, cut
/// to [`MAX_DETAIL_LEN`] bytes on a character boundary.
fn bounded_detail(detail: &str) -> String {
    let mut bounded: String = detail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if bounded.len() > MAX_DETAIL_LEN {
        let mut end = MAX_DETAIL_LEN;
        while !bounded.is_char_boundary(end) {
            end -= 1;
        }
        bounded.truncate(end);
    }
    bounded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_cut_to_what_the_registry_takes() {
        assert_eq!(bounded_detail("scopes \"a.read\""), "scopes \"a.read\"");
        assert_eq!(bounded_detail("two\nlines"), "two lines");
        let long = bounded_detail(&"é".repeat(MAX_DETAIL_LEN));
        assert!(long.len() <= MAX_DETAIL_LEN);
        assert!(long.chars().all(|c| c == 'é'));
    }
}
