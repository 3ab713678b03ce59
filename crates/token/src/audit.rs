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
    /// Whether it succeeded: never, today (successful issues and
    /// revocations are usage rollups, not audit events); kept because the
    /// wire message carries an outcome.
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
    /// `wrong_secret`; otherwise an OAuth error code).
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
    /// Queues an audit event about `client_id`'s refused attempt from
    /// `client_ip`. A refused client authentication names the credential
    /// and project the registry found behind the client ID (so the project
    /// sees attacks on its keys) and the registry's reason.
    pub(crate) fn refused(
        &self,
        action: TokenAction,
        error: &IssueError,
        client_id: &str,
        client: Option<&AuthenticatedClient>,
        client_ip: IpAddr,
    ) {
        let Some(queue) = &self.audit else {
            return;
        };
        let refusal = match error {
            IssueError::InvalidClient(refusal) => Some(refusal),
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
        let action = match error {
            IssueError::InvalidClient(_) | IssueError::TooManyFailures { .. } => {
                TokenAction::Authenticate
            }
            _ => action,
        };
        let detail = match refusal {
            Some(refusal) if !refusal.reason.is_empty() => refusal.reason.clone(),
            _ => refusal_label(error).to_owned(),
        };
        queue.push(TokenAuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            time: SystemTime::now(),
            action,
            succeeded: false,
            actor,
            credential_id,
            project_id,
            client_ip,
            detail,
        });
    }

    /// Counts a token issued to `client` (granting `scopes`) in the usage
    /// rollups, and logs it when asked to. Not an audit event: a row per
    /// token cost the registry's database 670 B per token.
    pub(crate) fn issued(
        &self,
        client: &AuthenticatedClient,
        scopes: &[String],
        client_ip: IpAddr,
    ) {
        self.count(UsageKind::Issued, client, client_ip);
        if self.token_event_log {
            tracing::info!(
                target: TOKEN_EVENT_TARGET,
                event = "issued",
                credential_id = client.credential_id.as_str(),
                project_id = client.policy.project_id.as_str(),
                client_ip = %client_ip.to_canonical(),
                scopes = scopes.join(" "),
                "token issued"
            );
        }
    }

    /// Counts a live token of `client` it revoked itself, like
    /// [`Self::issued`]. A revocation that found no live token changed
    /// nothing and is not counted.
    pub(crate) fn revoked(&self, client: &AuthenticatedClient, client_ip: IpAddr) {
        self.count(UsageKind::Revoked, client, client_ip);
        if self.token_event_log {
            tracing::info!(
                target: TOKEN_EVENT_TARGET,
                event = "revoked",
                credential_id = client.credential_id.as_str(),
                project_id = client.policy.project_id.as_str(),
                client_ip = %client_ip.to_canonical(),
                "token revoked"
            );
        }
    }

    fn count(&self, kind: UsageKind, client: &AuthenticatedClient, client_ip: IpAddr) {
        if let Some(rollups) = &self.rollups {
            rollups.record(
                &client.credential_id,
                &client.policy.project_id,
                kind,
                SystemTime::now(),
                client_ip,
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
