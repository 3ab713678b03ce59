//! The audit trail: who changed what, from where, and how it ended.
//!
//! Management changes are recorded by the registry itself, in the same
//! transaction as the change when it succeeds (so no change goes unrecorded)
//! and on their own when it fails. Token events (issue, revoke, failed
//! client authentication) happen on the token issuers, which send them in
//! batches through `AuditSink`. No event holds a secret, a hash or a token.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::access::Caller;
use crate::error::RegistryError;
use crate::model::now;

/// Longest `detail` kept; longer ones are cut (on a character boundary).
pub const MAX_AUDIT_DETAIL_LEN: usize = 512;

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `CreateProject`.
    CreateProject,
    /// `UpdateProjectPolicy`.
    UpdateProjectPolicy,
    /// `UpdateProject`.
    UpdateProject,
    /// `CreateCredential`.
    CreateCredential,
    /// `UpdateCredential`.
    UpdateCredential,
    /// `DeleteCredential`.
    DeleteCredential,
    /// `DisableCredential`.
    DisableCredential,
    /// `EnableCredential`.
    EnableCredential,
    /// `RotateCredentialSecret`.
    RotateCredentialSecret,
    /// A token request (token issuer).
    IssueToken,
    /// A token revocation by its client (token issuer).
    RevokeToken,
    /// A refused client authentication (token issuer).
    AuthenticateClient,
    /// `CreateMember`.
    CreateMember,
    /// `UpdateMember`.
    UpdateMember,
    /// `RemoveMember`.
    RemoveMember,
}

impl AuditAction {
    const ALL: [Self; 15] = [
        Self::CreateProject,
        Self::UpdateProjectPolicy,
        Self::UpdateProject,
        Self::CreateCredential,
        Self::UpdateCredential,
        Self::DeleteCredential,
        Self::DisableCredential,
        Self::EnableCredential,
        Self::RotateCredentialSecret,
        Self::IssueToken,
        Self::RevokeToken,
        Self::AuthenticateClient,
        Self::CreateMember,
        Self::UpdateMember,
        Self::RemoveMember,
    ];

    /// The stored name (stable: it is persisted).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateProject => "create_project",
            Self::UpdateProjectPolicy => "update_project_policy",
            Self::UpdateProject => "update_project",
            Self::CreateCredential => "create_credential",
            Self::UpdateCredential => "update_credential",
            Self::DeleteCredential => "delete_credential",
            Self::DisableCredential => "disable_credential",
            Self::EnableCredential => "enable_credential",
            Self::RotateCredentialSecret => "rotate_credential_secret",
            Self::IssueToken => "issue_token",
            Self::RevokeToken => "revoke_token",
            Self::AuthenticateClient => "authenticate_client",
            Self::CreateMember => "create_member",
            Self::UpdateMember => "update_member",
            Self::RemoveMember => "remove_member",
        }
    }

    /// Whether token issuers report this action (through `AuditSink`).
    pub fn is_token_event(self) -> bool {
        matches!(
            self,
            Self::IssueToken | Self::RevokeToken | Self::AuthenticateClient
        )
    }
}

impl FromStr for AuditAction {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
            .ok_or(())
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an audited attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditOutcome {
    /// Done.
    Succeeded,
    /// Refused or failed; the event's detail says why.
    Failed,
}

impl AuditOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for AuditOutcome {
    type Err = ();

    fn from_str(name: &str) -> Result<Self, ()> {
        match name {
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            _ => Err(()),
        }
    }
}

/// One audited change or token event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// UUIDv7; also makes a resent batch idempotent.
    pub id: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Who acted (a credential ID, a presented client ID, or `bootstrap`).
    pub actor: String,
    /// The member the actor acted on behalf of; empty when none.
    pub on_behalf_of: String,
    /// What was attempted.
    pub action: AuditAction,
    /// The project acted on; empty when unknown.
    pub project_id: String,
    /// The credential acted on; empty when none or unknown.
    pub credential_id: String,
    /// Where the attempt came from, when known.
    pub source_ip: Option<IpAddr>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// What changed, or why it failed; never secret material.
    pub detail: String,
}

impl AuditEvent {
    /// A successful `action` by `caller`, now; targets are set afterwards.
    pub fn by(caller: &Caller, action: AuditAction) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            time: now(),
            actor: if caller.credential_id.is_empty() {
                caller.owner.clone()
            } else {
                caller.credential_id.clone()
            },
            on_behalf_of: caller
                .on_behalf_of
                .as_ref()
                .map(|member| member.user_id.clone())
                .unwrap_or_default(),
            action,
            project_id: String::new(),
            credential_id: String::new(),
            source_ip: caller.address,
            outcome: AuditOutcome::Succeeded,
            detail: String::new(),
        }
    }

    /// Sets `detail`, cut to [`MAX_AUDIT_DETAIL_LEN`].
    pub fn set_detail(&mut self, detail: impl Into<String>) {
        let mut detail = detail.into();
        if detail.len() > MAX_AUDIT_DETAIL_LEN {
            let mut end = MAX_AUDIT_DETAIL_LEN;
            while !detail.is_char_boundary(end) {
                end -= 1;
            }
            detail.truncate(end);
        }
        self.detail = detail;
    }

    /// Marks the event failed with `error`'s code and message. Error
    /// messages never carry secrets (the domain's rule for every error).
    pub fn fail(&mut self, error: &RegistryError) {
        self.outcome = AuditOutcome::Failed;
        self.set_detail(format!("{}: {error}", error.code_name()));
    }
}

/// Which events a listing returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this project's events.
    pub project_id: Option<String>,
    /// Only this credential's events.
    pub credential_id: Option<String>,
    /// Only events at or after this time.
    pub start_time: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub end_time: Option<DateTime<Utc>>,
}

impl AuditFilter {
    /// The filter as bound into page tokens.
    pub(crate) fn page_binding(&self) -> String {
        let time = |value: Option<DateTime<Utc>>| {
            value
                .map(|time| time.timestamp_micros().to_string())
                .unwrap_or_default()
        };
        format!(
            "audit\n{}\n{}\n{}\n{}",
            self.project_id.as_deref().unwrap_or(""),
            self.credential_id.as_deref().unwrap_or(""),
            time(self.start_time),
            time(self.end_time)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_stored_names() {
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(action));
        }
        assert!("drop_tables".parse::<AuditAction>().is_err());
        assert_eq!(
            AuditAction::ALL
                .iter()
                .filter(|action| action.is_token_event())
                .count(),
            3
        );
    }

    #[test]
    fn detail_is_cut_on_a_character_boundary() {
        let mut event = AuditEvent::by(&Caller::bootstrap(), AuditAction::CreateProject);
        assert_eq!(event.actor, "bootstrap");
        event.set_detail("é".repeat(MAX_AUDIT_DETAIL_LEN));
        assert!(event.detail.len() <= MAX_AUDIT_DETAIL_LEN);
        assert!(event.detail.chars().all(|c| c == 'é'));
    }
}
