//! Token events for the audit trail: refused issuances, revocations and
//! client authentications. They are kept in a bounded in-memory queue and
//! sent to the registry in batches (like last uses), so no issuance waits on
//! a database write. When the registry cannot take them for long enough that
//! the queue fills, the oldest events are dropped and counted, rather than
//! letting memory grow without bound.
//!
//! Successful issues and revocations are not audit events: they are counted
//! in [`UsageRollups`] (a row per token cost the registry's database 670 B
//! per token), and optionally logged one by one as `tracing` events under
//! the target [`TOKEN_EVENT_TARGET`] for an export pipeline.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use latchkey_secrets::CLIENT_ID;

use crate::authenticator::AuthenticatedClient;
use crate::error::IssueError;
use crate::events::refusal_label;
use crate::rollup::{UsageKind, UsageRollups};

/// The `tracing` target of the per-token events (see
/// [`crate::TokenService::with_token_event_log`]).
pub const TOKEN_EVENT_TARGET: &str = "latchkey::token_event";

/// The detail of a revocation that revoked a token (`issue.rs`); any other
/// successful revocation found no live token of the client.
const REVOKED: &str = "revoked";

/// What happened to a token or a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// A token was requested.
    Issue,
    /// A client revoked one of its tokens.
    Revoke,
    /// A client's ID and secret were refused (or refused for too many
    /// recent failures).
    Authenticate,
}

/// One token event. Holds no secret and no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAuditEvent {
    /// UUIDv7: lets the registry drop a batch sent twice.
    pub id: String,
    /// When.
    pub time: SystemTime,
    /// What.
    pub action: TokenAction,
    /// Whether it succeeded.
    pub succeeded: bool,
    /// The client's credential when known; otherwise the presented client
    /// ID if it is well-formed (a malformed one might be a pasted secret,
    /// so it is never recorded).
    pub actor: String,
    /// The credential, when known.
    pub credential_id: String,
    /// Its project, when known.
    pub project_id: String,
    /// The caller's address.
    pub client_ip: IpAddr,
    /// Why it failed (the registry's reason for a refused client, such as
    /// `wrong_secret`; otherwise an OAuth error code), or what was granted.
    pub detail: String,
}

/// The queue of events waiting to be sent.
#[derive(Debug)]
pub struct AuditQueue {
    events: Mutex<VecDeque<TokenAuditEvent>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl Default for AuditQueue {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

/// Events kept while the registry is unreachable (a few MB at most).
pub(crate) const DEFAULT_CAPACITY: usize = 100_000;

impl AuditQueue {
    /// A queue holding at most `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            events: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<TokenAuditEvent>> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an event, dropping the oldest one when full.
    pub fn push(&self, event: TokenAuditEvent) {
        let mut events = self.lock();
        if events.len() >= self.capacity {
            events.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        events.push_back(event);
    }

    /// Takes up to `max` of the oldest events.
    pub fn take(&self, max: usize) -> Vec<TokenAuditEvent> {
        let mut events = self.lock();
        let count = events.len().min(max);
        events.drain(..count).collect()
    }

    /// Puts back a batch whose delivery failed, ahead of newer events (as
    /// far as the capacity allows; the rest is dropped and counted).
    pub fn restore(&self, batch: Vec<TokenAuditEvent>) {
        let mut events = self.lock();
        let room = self.capacity.saturating_sub(events.len());
        let skipped = batch.len().saturating_sub(room);
        if skipped > 0 {
            self.dropped.fetch_add(skipped as u64, Ordering::Relaxed);
        }
        for event in batch.into_iter().skip(skipped).rev() {
            events.push_front(event);
        }
    }

    /// How many events wait.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many events were dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes the audit trail of refused issuances, revocations and client
/// authentications (the issuer's and the introspector's alike), and counts
/// successful issues and revocations in the usage rollups, when the service
/// keeps them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Auditor {
    /// Where events go; `None`: nowhere.
    pub(crate) audit: Option<Arc<AuditQueue>>,
    /// Where successes are counted; `None`: nowhere.
    pub(crate) rollups: Option<Arc<UsageRollups>>,
    /// Whether every issued or revoked token is also logged (opt-in).
    pub(crate) token_event_log: bool,
}

impl Auditor {
    /// Records `client_id`'s attempt from `client_ip`: a success in the
    /// usage rollups, a refusal as an audit event. A refused client
    /// authentication names the credential and project the registry found
    /// behind the client ID (so the project sees attacks on its keys) and
    /// the registry's reason.
    pub(crate) fn audit(
        &self,
        action: TokenAction,
        outcome: Result<&str, &IssueError>,
        client_id: &str,
        client: Option<&AuthenticatedClient>,
        client_ip: IpAddr,
    ) {
        if let Ok(detail) = outcome {
            if let Some(client) = client {
                self.count_usage(action, detail, client, client_ip);
            }
            return;
        }
        let Some(queue) = &self.audit else {
            return;
        };
        let refusal = match outcome {
            Err(IssueError::InvalidClient(refusal)) => Some(refusal),
            _ => None,
        };
        let (credential_id, project_id) = match (refusal, client) {
            (Some(refusal), _) if !refusal.credential_id.is_empty() => {
                (refusal.credential_id.clone(), refusal.project_id.clone())
            }
            (_, Some(client)) => (
                client.credential_id.clone(),
                client.policy.project_id.clone(),
            ),
            _ => (String::new(), String::new()),
        };
        let actor = if !credential_id.is_empty() {
            credential_id.clone()
        } else if CLIENT_ID.check(client_id).is_ok() {
            client_id.to_owned()
        } else {
            // Never record what is not a client ID: it may be a pasted secret.
            String::new()
        };
        let action = match outcome {
            Err(IssueError::InvalidClient(_) | IssueError::TooManyFailures { .. }) => {
                TokenAction::Authenticate
            }
            _ => action,
        };
        let detail = match (outcome, refusal) {
            (Ok(detail), _) => detail.to_owned(),
            (Err(_), Some(refusal)) if !refusal.reason.is_empty() => refusal.reason.clone(),
            (Err(error), _) => refusal_label(error).to_owned(),
        };
        queue.push(TokenAuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            time: SystemTime::now(),
            action,
            succeeded: outcome.is_ok(),
            actor,
            credential_id,
            project_id,
            client_ip,
            detail,
        });
    }

    /// Counts a successful issue or revocation (`detail` as `issue.rs`
    /// words it) in the rollups, and logs it when asked to.
    fn count_usage(
        &self,
        action: TokenAction,
        detail: &str,
        client: &AuthenticatedClient,
        client_ip: IpAddr,
    ) {
        let kind = match action {
            TokenAction::Issue => UsageKind::Issued,
            TokenAction::Revoke if detail == REVOKED => UsageKind::Revoked,
            // No live token of this client: nothing changed, nothing to count.
            TokenAction::Revoke => return,
            // Only a refused authentication is ever reported.
            TokenAction::Authenticate => return,
        };
        let time = SystemTime::now();
        if let Some(rollups) = &self.rollups {
            rollups.record(
                &client.credential_id,
                &client.policy.project_id,
                kind,
                time,
                client_ip,
            );
        }
        if self.token_event_log {
            log_token_event(kind, detail, client, client_ip);
        }
    }
}

/// One INFO event per token, for an export pipeline (opt-in).
fn log_token_event(kind: UsageKind, detail: &str, client: &AuthenticatedClient, client_ip: IpAddr) {
    let credential_id = client.credential_id.as_str();
    let project_id = client.policy.project_id.as_str();
    match kind {
        UsageKind::Issued => {
            // `issue.rs` words the grant as `scopes "a.read b.write"`; scope
            // syntax allows no quote, so trimming recovers the list.
            let scopes = detail
                .strip_prefix("scopes ")
                .unwrap_or(detail)
                .trim_matches('"');
            tracing::info!(
                target: TOKEN_EVENT_TARGET,
                event = "issued",
                credential_id,
                project_id,
                client_ip = %client_ip.to_canonical(),
                scopes,
                "token issued"
            );
        }
        UsageKind::Revoked => {
            tracing::info!(
                target: TOKEN_EVENT_TARGET,
                event = "revoked",
                credential_id,
                project_id,
                client_ip = %client_ip.to_canonical(),
                "token revoked"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: u32) -> TokenAuditEvent {
        TokenAuditEvent {
            id: n.to_string(),
            time: SystemTime::UNIX_EPOCH,
            action: TokenAction::Issue,
            succeeded: true,
            actor: "c".into(),
            credential_id: "c".into(),
            project_id: "p".into(),
            client_ip: IpAddr::from([127, 0, 0, 1]),
            detail: String::new(),
        }
    }

    fn ids(events: &[TokenAuditEvent]) -> Vec<&str> {
        events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn keeps_order_across_a_failed_delivery_and_bounds_memory() {
        let queue = AuditQueue::with_capacity(3);
        for n in 1..=4 {
            queue.push(event(n));
        }
        // Full at 3: the oldest went.
        assert_eq!(queue.dropped(), 1);
        let batch = queue.take(2);
        assert_eq!(ids(&batch), ["2", "3"]);
        queue.push(event(5));
        queue.restore(batch);
        // Room for one of the two put back: the older one is dropped.
        assert_eq!(ids(&queue.take(10)), ["3", "4", "5"]);
        assert_eq!(queue.dropped(), 1 + 1);
        assert!(queue.is_empty());
    }
}
