//! Statuses that say which case they are, for callers that must tell cases
//! apart (`google.rpc.ErrorInfo` in the status details).
//!
//! Between Latchkey's services one code can mean two things: a registry
//! answering `UNAUTHENTICATED` may refuse the *client* the issuer asked about
//! (a wrong secret, counted against brute force) or the *issuer itself* (no
//! client certificate, no or a bad service signature: a misconfiguration that
//! must never be counted against any client). The reason tells them apart.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Latchkey reason.
pub const ERROR_DOMAIN: &str = "latchkey";

/// `ErrorInfo.reason` values.
pub mod reason {
    /// The registry refused the client the issuer asked about (unknown
    /// client, wrong or expired secret, disabled, expired, IP not allowed).
    pub const INVALID_CLIENT: &str = "INVALID_CLIENT";
    /// An internal call without a valid service signature (missing,
    /// forged, outside the clock-skew window, replayed).
    pub const SERVICE_UNAUTHENTICATED: &str = "SERVICE_UNAUTHENTICATED";
    /// An internal call over TLS without the required client certificate.
    pub const CLIENT_CERTIFICATE_REQUIRED: &str = "CLIENT_CERTIFICATE_REQUIRED";
    /// Too many failed client authentications from this source.
    pub const TOO_MANY_FAILURES: &str = "TOO_MANY_FAILURES";
}

/// A status with `code` and `message` whose details name `reason` (one of
/// [`reason`]) and carry `metadata`.
pub fn status_with_reason<'a>(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Status {
    let metadata: std::collections::HashMap<String, String> = metadata
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// The Latchkey reason of `status` and its metadata, if it carries one.
pub fn status_reason(
    status: &Status,
) -> Option<(String, std::collections::HashMap<String, String>)> {
    let details = status.get_error_details();
    let info = details.error_info()?;
    (info.domain == ERROR_DOMAIN).then(|| (info.reason.clone(), info.metadata.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_survives_the_wire_form() {
        let status = status_with_reason(
            Code::Unauthenticated,
            "invalid client",
            reason::INVALID_CLIENT,
            [("refusal", "wrong_secret")],
        );
        // What a client decodes from the trailers.
        let response = status.into_http::<tonic::body::Body>();
        let received = Status::from_header_map(response.headers()).expect("a status");
        let (reason, metadata) = status_reason(&received).expect("a reason");
        assert_eq!(reason, reason::INVALID_CLIENT);
        assert_eq!(metadata["refusal"], "wrong_secret");
        assert!(status_reason(&Status::unauthenticated("plain")).is_none());
    }
}
