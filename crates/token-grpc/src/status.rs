//! Domain errors → gRPC statuses, in one exhaustive place.

use latchkey_runtime::{reason, status_with_reason};
use latchkey_token::{CallerError, IssueError, StoreError};
use tonic::{Code, Status};

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
        IssueError::TooManyFailures { retry_after } => too_many_failures(retry_after),
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
pub(crate) fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "token store unavailable");
            Status::unavailable("token store unavailable")
        }
        StoreError::Internal(source) => {
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
        CallerError::TooManyFailures { retry_after } => too_many_failures(retry_after),
        CallerError::Unavailable(what) => Status::unavailable(format!("{what} unavailable")),
        CallerError::Internal => Status::internal("internal error"),
    }
}

/// `RESOURCE_EXHAUSTED` for a source with too many failed authentications:
/// `retry-after` metadata (seconds) and the `TOO_MANY_FAILURES` reason, so
/// a caller tells it apart from a token limit.
fn too_many_failures(retry_after: u32) -> Status {
    let seconds = retry_after.to_string();
    let mut status = status_with_reason(
        Code::ResourceExhausted,
        format!("too many failed attempts from this source; retry after {retry_after} s"),
        reason::TOO_MANY_FAILURES,
        [("retry_after_seconds", seconds.as_str())],
    );
    if let Ok(value) = seconds.parse() {
        status.metadata_mut().insert("retry-after", value);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_out_source_gets_resource_exhausted_with_retry_after() {
        for status in [
            caller_status(CallerError::TooManyFailures { retry_after: 42 }),
            issue_status(IssueError::TooManyFailures { retry_after: 42 }),
        ] {
            assert_eq!(status.code(), Code::ResourceExhausted);
            assert_eq!(status.metadata().get("retry-after").unwrap(), "42");
            let (reason, _) = latchkey_runtime::status_reason(&status).unwrap();
            assert_eq!(reason, reason::TOO_MANY_FAILURES);
        }
    }
}
