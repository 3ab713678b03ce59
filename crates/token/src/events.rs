//! What the token service reports about its work, for metrics. The domain
//! says what happened; the service decides how it is counted.

use std::fmt::Debug;
use std::time::Duration;

use crate::error::IssueError;
use crate::introspection::{InactiveReason, Introspection};

/// Why an issuance was refused, as a short label.
pub fn refusal_label(error: &IssueError) -> &'static str {
    match error {
        IssueError::InvalidRequest { .. } => "invalid_request",
        IssueError::InvalidClient(_) => "invalid_client",
        IssueError::InvalidScope(_) => "invalid_scope",
        IssueError::TokenLimitReached(_) => "token_limit",
        IssueError::TooManyFailures { .. } => "too_many_failures",
        IssueError::Unavailable(..) => "unavailable",
        IssueError::Internal(_) => "internal",
    }
}

/// The outcome of an introspection, as a short label.
pub fn introspection_label(answer: &Introspection) -> &'static str {
    match answer {
        Introspection::Active(_) => "active",
        Introspection::Inactive(reason) => match reason {
            InactiveReason::Malformed => "malformed",
            InactiveReason::Unknown => "unknown",
            InactiveReason::Expired => "expired",
            InactiveReason::Revoked => "revoked",
            InactiveReason::CredentialDisabled => "credential_disabled",
            InactiveReason::CredentialExpired => "credential_expired",
            InactiveReason::IpNotAllowed => "ip_not_allowed",
            InactiveReason::ScopeNotAllowed => "scope_not_allowed",
        },
    }
}

/// Receives the token service's events. Every method must be cheap: some
/// run on the introspection hot path.
pub trait TokenEvents: Debug + Send + Sync + 'static {
    /// An issuance finished (`Ok`: a token was issued).
    fn issuance(&self, outcome: Result<(), &IssueError>, took: Duration);
    /// A token was revoked by its client.
    fn revoked(&self);
    /// `count` live tokens were revoked to make room for a new one
    /// (`EVICT_OLDEST`). Counted, not logged: it happens per issuance.
    fn evicted(&self, count: u32);
    /// An introspection finished (`None`: the store failed).
    fn introspection(&self, answer: Option<&Introspection>, took: Duration);
    /// A token store operation failed.
    fn store_error(&self);
}

/// Events that go nowhere (tests, tools).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl TokenEvents for NoEvents {
    fn issuance(&self, _outcome: Result<(), &IssueError>, _took: Duration) {}
    fn revoked(&self) {}
    fn evicted(&self, _count: u32) {}
    fn introspection(&self, _answer: Option<&Introspection>, _took: Duration) {}
    fn store_error(&self) {}
}
