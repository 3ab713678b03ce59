//! The credential registry's domain: projects and their policies, client
//! credentials, the rules their fields obey, client authentication, and the
//! [`CredentialStore`] trait the storage crate implements (and
//! [`MemoryCredentialStore`], an in-memory one for tests).
//!
//! Nothing here knows about protobuf or SQL: the transport crate converts wire
//! messages into the input types below, and the storage crate turns database
//! errors into [`RegistryError`]s.

mod access;
mod audit;
mod authenticate;
mod error;
mod etag;
mod fields;
mod fingerprint;
mod member;
mod member_service;
mod member_store;
mod memory_store;
mod model;
mod page;
mod reconcile;
mod report;
mod service;
mod store;
mod sync;
mod usage;
mod usage_service;
mod usage_store;
pub mod validate;

#[cfg(test)]
mod tests;

pub use access::{
    ADMIN_SCOPE, Caller, INTROSPECT_SCOPE, MANAGE_SCOPE, OWN_SCOPE, OnBehalfOf, Role,
    is_latchkey_scope,
};
pub use audit::{AuditAction, AuditEvent, AuditFilter, AuditOutcome, MAX_AUDIT_DETAIL_LEN};
pub use authenticate::{
    AuthenticateError, AuthenticatedCredential, ClientRefused, MAX_CLIENT_ID_LEN,
    MAX_CLIENT_IP_LEN, MAX_CLIENT_SECRET_LEN, Refusal, RefusedCredential,
};
pub use error::{BoxError, QuotaLimit, RegistryError};
pub use fields::{CredentialField, UpdateCredential};
pub use fingerprint::{HashKeyCheck, HashKeyFingerprint};
pub use latchkey_net::IpAllowlist;
pub use member::{Member, MemberRole, MemberState, MemberUpdate, effective_credential};
pub use member_service::{CreateMember, ListMembers, UpdateMember};
pub use member_store::MemberStore;
pub use memory_store::MemoryCredentialStore;
pub use model::{
    Credential, CredentialKind, CredentialState, CredentialUpdate, CredentialUse, LastUse,
    NewCredential, OnTokenLimit, PolicyOverrides, Project, ProjectPolicy, ProjectUpdate,
    StoredSecret, now,
};
pub use page::{
    DEFAULT_PAGE_SIZE, ListOrder, MAX_PAGE_SIZE, Page, PageRequest, PageToken, Position,
};
pub use reconcile::{MAX_POLICY_VERSION, Reconciled};
pub use report::{
    MAX_AUDIT_EVENT_AGE, MAX_AUDIT_EVENTS_PER_BATCH, MAX_REPORTED_CLOCK_SKEW, MAX_USES_PER_BATCH,
};
pub use service::{
    CreateCredential, CreateProject, CreatedCredential, ListAuditEvents, ListCredentials, Registry,
    RotateSecret, RotatedSecret, UpdateProject,
};
pub use store::{AuthenticationRecord, CredentialFilter, CredentialStore, SecretRotation};
pub use sync::{NoTokenSync, PolicyChange, SyncNote, TokenSync};
pub use usage::{
    MAX_ROLLUP_COUNT, MAX_ROLLUPS_PER_BATCH, MAX_USAGE_ADDRESSES, UsageBucket, UsageFilter,
    UsageGranularity, UsageKind, UsageReport, UsageRollup,
};
pub use usage_service::ListUsage;
pub use usage_store::UsageStore;
