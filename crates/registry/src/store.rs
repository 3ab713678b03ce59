//! The storage interface of the registry.
//!
//! Implementations translate their driver's errors into [`RegistryError`]s:
//! a unique violation becomes `AlreadyExists`, a lost connection
//! `Unavailable`. Every method is atomic: on error nothing was written.
//! Every change takes the [`AuditEvent`] that records it and writes it in
//! the same transaction, so no change is made without its audit record.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{AuditEvent, AuditFilter};
use crate::error::RegistryError;
use crate::member::Member;
use crate::member_store::MemberStore;
use crate::model::{
    Credential, CredentialKind, CredentialState, CredentialUpdate, CredentialUse, NewCredential,
    PolicyOverrides, Project, ProjectPolicy, ProjectUpdate, StoredSecret,
};
use crate::page::{Page, PageRequest};
use crate::sync::{SyncNote, TokenSync};
use crate::usage_store::UsageStore;

/// What client authentication needs, read in one call.
#[derive(Debug, Clone)]
pub struct AuthenticationRecord {
    /// The credential.
    pub credential: Credential,
    /// Its secrets that have not been purged (some may be expired).
    pub secrets: Vec<StoredSecret>,
    /// The effective policy of its project.
    pub policy: ProjectPolicy,
    /// The member owning the credential, if its owner is one (their
    /// ceiling and state bound what the credential may do).
    pub member: Option<Member>,
}

/// A secret rotation, as [`CredentialStore::rotate_secret`] applies it:
/// the policy version always increases and the token side is told (with
/// `revoke_tokens` when its tokens go too) before the rotation commits.
#[derive(Debug, Clone, Copy)]
pub struct SecretRotation<'a> {
    /// The new current secret.
    pub secret: &'a StoredSecret,
    /// When older secrets stop working; `None`: at once.
    pub previous_expire_time: Option<DateTime<Utc>>,
    /// The time of the change.
    pub now: DateTime<Utc>,
    /// Whether the credential's live tokens are revoked too.
    pub revoke_tokens: bool,
}

/// Which of a project's credentials a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFilter {
    /// Only this owner's, when set.
    pub owner: Option<String>,
    /// Only this kind, when set.
    pub kind: Option<CredentialKind>,
}

/// Persistent storage of projects, their members and credentials, and
/// their token usage.
#[async_trait]
pub trait CredentialStore: MemberStore + UsageStore + Debug + Send + Sync + 'static {
    /// The policy defaults the store resolves project overrides against.
    fn policy_defaults(&self) -> &ProjectPolicy;

    /// Inserts a project; `AlreadyExists` if the ID is taken.
    async fn create_project(
        &self,
        project: &Project,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError>;

    /// Reads a project; `NotFound` if unknown.
    async fn get_project(&self, project_id: &str) -> Result<Project, RegistryError>;

    /// Changes a project's display name and API endpoint; `NotFound` if
    /// the project is unknown.
    async fn update_project(
        &self,
        project_id: &str,
        update: &ProjectUpdate,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError>;

    /// Lists projects in creation order (`page.order`).
    async fn list_projects(&self, page: &PageRequest) -> Result<Page<Project>, RegistryError>;

    /// Merges `overrides` into the project's policy.
    async fn update_project_policy(
        &self,
        project_id: &str,
        overrides: &PolicyOverrides,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError>;

    /// Inserts a credential with its first secret, enforcing the project's
    /// `max_credentials` and `max_credentials_per_owner` atomically against
    /// concurrent creates; only API credentials ([`CredentialKind::Api`])
    /// count and are counted. `NotFound` if the project is unknown,
    /// `AlreadyExists` if the name is taken, `QuotaExceeded` past a limit.
    async fn create_credential(
        &self,
        new: &NewCredential,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError>;

    /// Reads a credential; `NotFound` if unknown.
    async fn get_credential(&self, credential_id: &str) -> Result<Credential, RegistryError>;

    /// Lists a project's credentials matching `filter` in creation order
    /// (`page.order`). `NotFound` if the project is unknown.
    async fn list_credentials(
        &self,
        project_id: &str,
        filter: &CredentialFilter,
        page: &PageRequest,
    ) -> Result<Page<Credential>, RegistryError>;

    /// Applies a partial update; `AlreadyExists` if a new name is taken,
    /// `Aborted` if `update.expected_version` is set and the credential is
    /// at another version, `QuotaExceeded` if the update turns a management
    /// credential into an API credential past the project's quotas (checked
    /// atomically, as at create). The credential's policy version increases
    /// and `sync` is told before the change commits; if it fails, nothing
    /// changes. What `sync` is told, here and in every change below, is the
    /// credential's [`crate::effective_credential`] under its member (read
    /// in the same transaction), never more than the member's ceiling
    /// allows.
    async fn update_credential(
        &self,
        credential_id: &str,
        update: &CredentialUpdate,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError>;

    /// Sets the credential's state, telling `sync` before committing.
    async fn set_credential_state(
        &self,
        credential_id: &str,
        state: CredentialState,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError>;

    /// Deletes the credential and its secrets if its name equals
    /// `confirm_name` (otherwise `FailedPrecondition` and nothing changes),
    /// having `sync` purge its tokens before committing.
    async fn delete_credential(
        &self,
        credential_id: &str,
        confirm_name: &str,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError>;

    /// Adds `secret` as the credential's current secret. Older secrets stop
    /// working at `previous_expire_time` (or at once when it is `None`); an
    /// older secret already ending earlier keeps its earlier end. With
    /// `revoke_tokens`, the policy version increases and `sync` purges the
    /// credential's tokens before the rotation commits.
    async fn rotate_secret(
        &self,
        credential_id: &str,
        rotation: SecretRotation<'_>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError>;

    /// Records the latest uses reported by token issuers; a use older than
    /// the one stored, or of an unknown credential, is ignored.
    async fn record_usage(&self, uses: &[CredentialUse]) -> Result<(), RegistryError>;

    /// Credentials whose allowed APIs include `api` (e.g. every platform
    /// admin), oldest first, at most `limit`.
    async fn credentials_with_api(
        &self,
        api: &str,
        limit: u32,
    ) -> Result<Vec<Credential>, RegistryError>;

    /// Appends events (issuers' batches, failed attempts); an event whose
    /// ID is already stored is skipped, so a resent batch counts once.
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), RegistryError>;

    /// Lists audit events matching `filter`, newest first.
    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, RegistryError>;

    /// Deletes audit events older than `before`; returns how many.
    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, RegistryError>;

    /// Settles a credential whose policy on the token side may be newer
    /// than the committed one: locks the credential (waiting for a change in
    /// flight to commit or roll back), and when its committed version is
    /// still below the held one (that change was applied on the token side,
    /// then lost), raises it to the held version + 1 and has `sync` apply
    /// the committed state before committing. `held_version` is what an
    /// issuer found in its store; `None` when only a note says a change was
    /// sent, which can be at most one version above the committed one (the
    /// row lock serialises changes), so the committed version + 1 is
    /// assumed. Returns the credential as committed; `None` if it does not
    /// exist.
    async fn reassert_policy(
        &self,
        credential_id: &str,
        held_version: Option<i64>,
        sync: &dyn TokenSync,
    ) -> Result<Option<Credential>, RegistryError>;

    /// Notes durably, in a statement of its own committed at once (never
    /// inside a change's transaction), that a change of `credential_id` is
    /// about to be sent to the token side. Returns whether an earlier note
    /// for it was still there.
    async fn note_sync_intent(
        &self,
        credential_id: &str,
        noted_at: DateTime<Utc>,
    ) -> Result<bool, RegistryError>;

    /// Removes `note` if it is still the latest for its credential.
    async fn clear_sync_intent(&self, note: &SyncNote) -> Result<(), RegistryError>;

    /// Notes made before `before`, oldest first, at most `limit`.
    async fn sync_intents_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SyncNote>, RegistryError>;

    /// Reads what authenticating `client_id` needs; `None` if unknown.
    async fn authentication_record(
        &self,
        client_id: &str,
    ) -> Result<Option<AuthenticationRecord>, RegistryError>;
}
