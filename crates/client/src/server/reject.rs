//! Refusals in HTTP and gRPC terms, shaped like Latchkey's gateway answers
//! (`/auth/check`, Envoy ext_authz): status, RFC 6750 `WWW-Authenticate`.

use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Response, StatusCode};

use crate::server::introspector::InactiveReason;

/// The challenges (RFC 6750 §3), as the gateways send them.
const NO_TOKEN: &str = r#"Bearer realm="latchkey""#;
const INVALID_TOKEN: &str = r#"Bearer realm="latchkey", error="invalid_token""#;
const INSUFFICIENT_SCOPE: &str = r#"Bearer realm="latchkey", error="insufficient_scope""#;
const FORBIDDEN: &str = r#"Bearer realm="latchkey", error="invalid_token", error_description="caller address not allowed""#;

/// Why the layer refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No bearer token (or more than one `authorization`).
    NoToken,
    /// Latchkey says the token is not active for this request.
    Inactive(InactiveReason),
    /// No access rule covers the path.
    NoRule,
    /// Latchkey could not answer; the request is refused (fail closed).
    Unavailable,
}

impl Rejection {
    /// `(HTTP status, gRPC code, challenge)`.
    fn shape(self) -> (StatusCode, tonic::Code, Option<&'static str>) {
        use InactiveReason as Reason;
        let unauthenticated = |challenge| {
            (
                StatusCode::UNAUTHORIZED,
                tonic::Code::Unauthenticated,
                Some(challenge),
            )
        };
        match self {
            Self::NoToken => unauthenticated(NO_TOKEN),
            Self::Inactive(reason) => match reason {
                Reason::Malformed
                | Reason::Unknown
                | Reason::Expired
                | Reason::Revoked
                | Reason::CredentialDisabled
                | Reason::CredentialExpired
                | Reason::Unspecified => unauthenticated(INVALID_TOKEN),
                Reason::IpNotAllowed => (
                    StatusCode::FORBIDDEN,
                    tonic::Code::PermissionDenied,
                    Some(FORBIDDEN),
                ),
                Reason::ScopeNotAllowed => (
                    StatusCode::FORBIDDEN,
                    tonic::Code::PermissionDenied,
                    Some(INSUFFICIENT_SCOPE),
                ),
            },
            Self::NoRule => (StatusCode::FORBIDDEN, tonic::Code::PermissionDenied, None),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                tonic::Code::Unavailable,
                None,
            ),
        }
    }

    /// What the caller is told (no detail of the credential).
    fn message(self) -> &'static str {
        match self {
            Self::NoToken => "a bearer token is required",
            Self::Inactive(reason) => match reason {
                InactiveReason::IpNotAllowed => "the caller address is not allowed",
                InactiveReason::ScopeNotAllowed => "the token lacks a required scope",
                InactiveReason::Malformed
                | InactiveReason::Unknown
                | InactiveReason::Expired
                | InactiveReason::Revoked
                | InactiveReason::CredentialDisabled
                | InactiveReason::CredentialExpired
                | InactiveReason::Unspecified => "the token is not valid",
            },
            Self::NoRule => "this route may not be called",
            Self::Unavailable => "authorization is unavailable, try again",
        }
    }

    /// The refusal as a response: a trailers-only gRPC status for a gRPC
    /// request, else an HTTP status with the challenge.
    pub(crate) fn into_response<B: Default>(self, grpc: bool) -> Response<B> {
        let (status, code, challenge) = self.shape();
        if grpc {
            return tonic::Status::new(code, self.message()).into_http();
        }
        let mut response = Response::new(B::default());
        *response.status_mut() = status;
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
