//! Domain errors → gRPC statuses, in one exhaustive place.

use latchkey_token::{CallerError, IssueError, TokenStoreError};
use tonic::Status;

/// The status for a failed issuance or revocation.
pub(crate) fn issue_status(error: IssueError) -> Status {
    match error {
        IssueError::InvalidRequest { field, reason } => {
            Status::invalid_argument(format!("{field}: {reason}"))
        }
        IssueError::InvalidClient(_) => Status::unauthenticated("invalid client"),
        IssueError::InvalidScope(scope) => {
            Status::invalid_argument(format!("scopes: {scope:?} is not allowed for this client"))
        }
        IssueError::TokenLimitReached(max) => Status::resource_exhausted(format!(
            "the client already holds its maximum of {max} live tokens"
        )),
        IssueError::TooManyFailures { retry_after } => {
            let mut status = Status::resource_exhausted(format!(
                "too many failed attempts; retry after {retry_after} s"
            ));
            if let Ok(value) = retry_after.to_string().parse() {
                status.metadata_mut().insert("retry-after", value);
            }
            status
        }
        IssueError::Unavailable(what, source) => {
            tracing::warn!(error = %source, what, "dependency unavailable");
            Status::unavailable(format!("{what} unavailable"))
        }
        IssueError::Internal(source) => {
            tracing::error!(error = %source, "internal error");
            Status::internal("internal error")
        }
    }
}

/// The status for a token store failure.
pub(crate) fn store_status(error: TokenStoreError) -> Status {
    match error {
        TokenStoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "token store unavailable");
            Status::unavailable("token store unavailable")
        }
        TokenStoreError::LimitReached(_)
        | TokenStoreError::StalePolicy
        | TokenStoreError::TooManyFailures { .. } => {
            // Only issuance produces these, and it maps them itself.
            tracing::error!(%error, "unexpected token store answer");
            Status::internal("internal error")
        }
        TokenStoreError::Internal(source) => {
            tracing::error!(error = %source, "token store error");
            Status::internal("internal error")
        }
    }
}

/// The status for a refused introspection caller.
pub(crate) fn caller_status(error: CallerError) -> Status {
    match error {
        CallerError::Unauthenticated => Status::unauthenticated(
            "introspection requires client authentication (Basic client credentials or a bearer token with tokens:introspect)",
        ),
        CallerError::NotAllowed => {
            Status::permission_denied("the caller may not introspect (requires tokens:introspect)")
        }
        CallerError::Unavailable(what) => Status::unavailable(format!("{what} unavailable")),
    }
}
