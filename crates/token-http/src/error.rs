//! OAuth error responses (RFC 6749 §5.2).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_token::{IssueError, StoreError};
use serde::Serialize;

/// An OAuth error: the code, a human description, and the HTTP status.
#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    retry_after: Option<u32>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl OAuthError {
    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description: description.into(),
            retry_after: None,
        }
    }

    /// The same error with another HTTP status.
    pub(crate) fn with_status(self, status: StatusCode) -> Self {
        Self { status, ..self }
    }

    pub(crate) fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: "client credentials are invalid".to_owned(),
            retry_after: None,
        }
    }

    pub(crate) fn insufficient_scope(scope: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "insufficient_scope",
            description: format!("the caller lacks the {scope} scope"),
            retry_after: None,
        }
    }

    pub(crate) fn unsupported_grant_type(grant: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "unsupported_grant_type",
            description: format!("grant_type {grant:?} is not supported; use client_credentials"),
            retry_after: None,
        }
    }

    pub(crate) fn unavailable(what: &str) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "temporarily_unavailable",
            description: format!("{what} unavailable, try again"),
            retry_after: None,
        }
    }

    /// A source with too many failed authentications. RFC 6585: 429 with
    /// `Retry-After`; an extension error code.
    pub(crate) fn too_many_failures(retry_after: u32) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_failed_attempts",
            description: format!(
                "too many failed attempts from this source; retry after {retry_after} s"
            ),
            retry_after: Some(retry_after),
        }
    }

    pub(crate) fn server_error() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "server_error",
            description: "internal error".to_owned(),
            retry_after: None,
        }
    }
}

impl From<IssueError> for OAuthError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::InvalidRequest { field, reason } => {
                Self::invalid_request(format!("{field}: {reason}"))
            }
            IssueError::InvalidClient(_) => Self::invalid_client(),
            IssueError::InvalidScope(scope) => Self {
                status: StatusCode::BAD_REQUEST,
                code: "invalid_scope",
                description: format!("scope {scope:?} is not allowed for this client"),
                retry_after: None,
            },
            IssueError::TokenLimitReached(max) => Self {
                // No RFC 6749 code fits; an extension code (§8.5) with 429
                // tells clients to reuse a token they hold.
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "token_limit_reached",
                description: format!(
                    "the client already holds its maximum of {max} live tokens; reuse one or revoke one"
                ),
                retry_after: None,
            },
            IssueError::TooManyFailures { retry_after } => Self::too_many_failures(retry_after),
            IssueError::Unavailable(what, source) => {
                tracing::warn!(error = %source, what, "dependency unavailable");
                Self::unavailable(what)
            }
            IssueError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                Self::server_error()
            }
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => {
                tracing::warn!(error = %source, "token store unavailable");
                Self::unavailable("token store")
            }
            StoreError::Internal(source) => {
                tracing::error!(error = %source, "token store error");
                Self::server_error()
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            error_description: &self.description,
        };
        let mut response = (self.status, no_store(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="latchkey", charset="UTF-8""#),
            );
        }
        response
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
