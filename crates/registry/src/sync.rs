//! Keeping the token side in step with credential changes.
//!
//! The registry tells the token issuer about every change of what tokens
//! obey *before* the change commits, inside the same transaction: if the
//! issuer cannot be reached the change is rolled back and the call answers
//! UNAVAILABLE, so no deleted, disabled or narrowed credential ever keeps a
//! live token that ignores it (DESIGN.md rule 3).

use std::fmt::Debug;

use async_trait::async_trait;

use chrono::{DateTime, Utc};

use crate::error::RegistryError;
use crate::model::Credential;

/// A durable note that a change of a credential was sent (or is about to
/// be sent) to the token side and is not yet known to have committed (see
/// [`crate::reconcile`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncNote {
    /// The credential.
    pub credential_id: String,
    /// When the note was made (microsecond precision in storage); a note
    /// is removed only by whoever made it, or settled by the repair.
    pub noted_at: DateTime<Utc>,
}

/// One change the token side must apply.
#[derive(Debug, Clone, Copy)]
pub struct PolicyChange<'a> {
    /// The credential as it will be after the change (new policy version).
    pub credential: &'a Credential,
    /// The credential is being deleted.
    pub deleted: bool,
    /// Every live token of the credential must be revoked.
    pub revoke_tokens: bool,
}

/// Where policy changes go.
#[async_trait]
pub trait TokenSync: Debug + Send + Sync + 'static {
    /// Applies `change` on the token side, or fails with `Unavailable`.
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError>;
}

/// For a registry that runs without a token issuer (nothing to keep in
/// step). Production configurations always name the issuer.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTokenSync;

#[async_trait]
impl TokenSync for NoTokenSync {
    async fn apply(&self, _change: PolicyChange<'_>) -> Result<(), RegistryError> {
        Ok(())
    }
}
