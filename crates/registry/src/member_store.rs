//! The storage of members, a part of every [`crate::CredentialStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::error::RegistryError;
use crate::member::{Member, MemberUpdate};
use crate::model::Credential;
use crate::page::{Page, PageRequest};
use crate::sync::TokenSync;

/// Persistent storage of project members. Like every store method, each
/// one is atomic and writes its audit event in its own transaction.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Inserts `member`. `NotFound` if the project is unknown,
    /// `AlreadyExists` if the user is (or was) a member, and
    /// `FailedPrecondition` naming the APIs when credentials the user
    /// already owns hold APIs beyond the ceiling (checked under the
    /// credentials' row locks, so a concurrent widening cannot slip by).
    async fn create_member(&self, member: &Member, audit: &AuditEvent)
    -> Result<(), RegistryError>;

    /// Reads a member, removed ones included; `None` if the user never was
    /// a member of the project.
    async fn get_member(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<Member>, RegistryError>;

    /// Lists a project's members in creation order (newest first when
    /// `newest_first`), removed ones only with `include_removed`.
    /// `NotFound` if the project is unknown.
    async fn list_members(
        &self,
        project_id: &str,
        include_removed: bool,
        newest_first: bool,
        page: &PageRequest,
    ) -> Result<Page<Member>, RegistryError>;

    /// Applies `update` to an existing member (`NotFound` otherwise). When
    /// it changes what tokens obey (ceiling, state), every credential the
    /// member owns gets a new policy version and `sync` is told its
    /// effective policy before the change commits — purging its tokens
    /// when the member is removed; if any of that fails, nothing changes.
    /// Returns the member and the credentials whose version was raised.
    async fn update_member(
        &self,
        project_id: &str,
        user_id: &str,
        update: &MemberUpdate,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<(Member, Vec<Credential>), RegistryError>;
}
