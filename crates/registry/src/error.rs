//! The registry's error model. Every variant maps to exactly one gRPC status
//! at the transport edge.

use std::fmt;

/// A boxed source error from a store driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which project quota a create would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaLimit {
    /// `max_credentials` of the project.
    Credentials(u32),
    /// `max_credentials_per_owner` of the project.
    CredentialsPerOwner(u32),
}

impl fmt::Display for QuotaLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Credentials(limit) => write!(
                f,
                "project credential limit reached (max_credentials = {limit})"
            ),
            Self::CredentialsPerOwner(limit) => write!(
                f,
                "owner credential limit reached (max_credentials_per_owner = {limit})"
            ),
        }
    }
}

/// Everything a registry operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request is malformed; `field` names the offending field.
    #[error("{field}: {reason}")]
    InvalidArgument {
        /// The request field, as named in the API (e.g. `allowed_ips[2]`).
        field: String,
        /// What is wrong with it, without echoing secret material.
        reason: String,
    },
    /// The named project or credential does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// `project`, `credential` or `member`.
        kind: &'static str,
        /// The identifier asked for.
        id: String,
    },
    /// A project ID or credential name is already taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The operation's precondition does not hold (e.g. delete confirmation).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The resource changed since the caller read it (an etag mismatch,
    /// AIP-154); nothing was changed.
    #[error("{0}")]
    Aborted(String),
    /// The caller is authenticated but may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A project quota would be exceeded.
    #[error("{0}")]
    QuotaExceeded(QuotaLimit),
    /// The store cannot be reached; the operation changed nothing.
    #[error("credential store unavailable")]
    Unavailable(#[source] BoxError),
    /// The token issuer did not confirm a change tokens must follow; the
    /// change was rolled back.
    #[error("token issuer unavailable: the change was not applied")]
    TokenIssuerUnavailable(#[source] BoxError),
    /// A bug or corrupt data; details are logged, never returned.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl RegistryError {
    /// The gRPC status code name this error maps to (e.g. `NOT_FOUND`),
    /// for audit events and logs.
    pub fn code_name(&self) -> &'static str {
        match self {
            Self::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::FailedPrecondition(_) => "FAILED_PRECONDITION",
            Self::Aborted(_) => "ABORTED",
            Self::PermissionDenied(_) => "PERMISSION_DENIED",
            Self::QuotaExceeded(_) => "RESOURCE_EXHAUSTED",
            Self::Unavailable(_) | Self::TokenIssuerUnavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// An [`RegistryError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A [`RegistryError::NotFound`] for a credential.
    pub fn credential_not_found(id: impl Into<String>) -> Self {
        Self::NotFound {
            kind: "credential",
            id: id.into(),
        }
    }

    /// The [`RegistryError::Aborted`] of a stale etag.
    pub fn stale_etag() -> Self {
        Self::Aborted(
            "credential.etag: the credential changed since it was read; nothing was changed. \
             Read it again and reapply the change"
                .to_owned(),
        )
    }

    /// A [`RegistryError::NotFound`] for a project.
    pub fn project_not_found(id: impl Into<String>) -> Self {
        Self::NotFound {
            kind: "project",
            id: id.into(),
        }
    }
}
