//! Errors of the token side.

/// A boxed driver error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a token store could not answer. Every store operation can fail so,
/// and a read (a lookup, a policy, a failure counter) can fail no other
/// way: its callers map exactly these two cases.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached; nothing was changed.
    #[error("token store unavailable")]
    Unavailable(#[source] BoxError),
    /// Corrupt data or a bug; logged, never returned.
    #[error("token store error")]
    Internal(#[source] BoxError),
}

/// Why a store did not store an issued token: the refusals only issuance
/// meets, apart from the store's own failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreIssueError {
    /// The credential already holds its maximum of live tokens.
    #[error("token limit reached ({0} live tokens)")]
    LimitReached(u32),
    /// The store does not hold the policy an issuance presented: a newer
    /// version (the credential changed after it was verified), the same
    /// version's tombstone, or — for a remembered verification — no policy
    /// or another version. Nothing was written.
    #[error("credential policy changed meanwhile")]
    StalePolicy {
        /// The version the store holds; `None` when it holds no policy.
        held: Option<i64>,
    },
    /// The store could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a token was not issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The request is malformed (`field` names what).
    #[error("{field}: {reason}")]
    InvalidRequest {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Wrong, unknown, disabled, expired or IP-refused client. The caller
    /// learns nothing more; the refusal's details go to the audit trail.
    #[error("client credentials are invalid")]
    InvalidClient(ClientRefusal),
    /// A requested scope is not among the credential's allowed APIs.
    #[error("scope {0:?} is not allowed for this client")]
    InvalidScope(String),
    /// The credential holds its maximum of live tokens (policy `REJECT`).
    #[error("the client already holds its maximum of {0} live tokens")]
    TokenLimitReached(u32),
    /// Too many failed authentications from this source (for this client ID
    /// from this address, or from this address for any client ID); try
    /// again after `retry_after` seconds.
    #[error("too many failed attempts; retry after {retry_after} s")]
    TooManyFailures {
        /// Seconds until the counting window ends.
        retry_after: u32,
    },
    /// The registry or the token store cannot be reached.
    #[error("{0} unavailable")]
    Unavailable(&'static str, #[source] BoxError),
    /// A bug or corrupt data.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// What the registry told the issuer about a refused client, for the audit
/// trail of the credential's project (never for the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientRefusal {
    /// Why, as the registry names it (`wrong_secret`, `disabled`,
    /// `ip_not_allowed`, …); empty when unknown.
    pub reason: String,
    /// The credential the client ID names, when it names one.
    pub credential_id: String,
    /// That credential's project.
    pub project_id: String,
}

impl ClientRefusal {
    /// A refusal the issuer decided itself, with `reason`.
    pub fn because(reason: &str) -> Self {
        Self {
            reason: reason.to_owned(),
            ..Self::default()
        }
    }
}
