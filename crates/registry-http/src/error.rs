//! Errors on the wire: `{"code", "message", "details"}` with the HTTP
//! status Connect gives each gRPC code.
//!
//! A gRPC status from the service keeps its code and message; its
//! `google.rpc` details become JSON objects named by `@type`, as the
//! proto3 JSON mapping writes an `Any`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::{ErrorDetail, StatusExt};

/// An error answer of the HTTP/JSON API.
#[derive(Debug, Clone)]
pub struct ApiError {
    code: Code,
    message: String,
    details: Vec<Value>,
    status: StatusCode,
}

impl ApiError {
    /// An error with `code` and `message`, and the HTTP status of `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
            status: http_status(code),
        }
    }

    /// The same error answered with `status` instead of the code's own
    /// (415 for a wrong content type, 413 for a body too large).
    #[must_use]
    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({
            "code": connect_code(self.code),
            "message": self.message,
            "details": self.details,
        })
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let details = status
            .get_error_details_vec()
            .into_iter()
            .filter_map(detail_json)
            .collect();
        Self {
            code: status.code(),
            message: status.message().to_owned(),
            details,
            status: http_status(status.code()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The Connect name of a gRPC code (its name in snake_case; `canceled`
/// spelt as Connect spells it).
pub fn connect_code(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status Connect's protocol gives a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 "client closed request", as Connect answers it.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// A `google.rpc` detail in the proto3 JSON form of an `Any`. `DebugInfo`
/// is dropped: stack entries are for the server's logs, never a client.
fn detail_json(detail: ErrorDetail) -> Option<Value> {
    const PREFIX: &str = "type.googleapis.com/google.rpc.";
    Some(match detail {
        ErrorDetail::ErrorInfo(info) => json!({
            "@type": format!("{PREFIX}ErrorInfo"),
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }),
        ErrorDetail::RetryInfo(info) => json!({
            "@type": format!("{PREFIX}RetryInfo"),
            "retryDelay": info.retry_delay.map(|delay| format!("{}s", delay.as_secs_f64())),
        }),
        ErrorDetail::BadRequest(request) => json!({
            "@type": format!("{PREFIX}BadRequest"),
            "fieldViolations": request.field_violations.iter().map(|violation| json!({
                "field": violation.field,
                "description": violation.description,
                "reason": violation.reason,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::QuotaFailure(failure) => json!({
            "@type": format!("{PREFIX}QuotaFailure"),
            "violations": failure.violations.iter().map(|violation| json!({
                "subject": violation.subject,
                "description": violation.description,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::PreconditionFailure(failure) => json!({
            "@type": format!("{PREFIX}PreconditionFailure"),
            "violations": failure.violations.iter().map(|violation| json!({
                "type": violation.r#type,
                "subject": violation.subject,
                "description": violation.description,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::ResourceInfo(info) => json!({
            "@type": format!("{PREFIX}ResourceInfo"),
            "resourceType": info.resource_type,
            "resourceName": info.resource_name,
            "owner": info.owner,
            "description": info.description,
        }),
        ErrorDetail::RequestInfo(info) => json!({
            "@type": format!("{PREFIX}RequestInfo"),
            "requestId": info.request_id,
            "servingData": info.serving_data,
        }),
        ErrorDetail::Help(help) => json!({
            "@type": format!("{PREFIX}Help"),
            "links": help.links.iter().map(|link| json!({
                "description": link.description,
                "url": link.url,
            })).collect::<Vec<_>>(),
        }),
        ErrorDetail::LocalizedMessage(message) => json!({
            "@type": format!("{PREFIX}LocalizedMessage"),
            "locale": message.locale,
            "message": message.message,
        }),
        ErrorDetail::DebugInfo(_) => return None,
        // `ErrorDetail` is non-exhaustive: a kind a later tonic-types adds
        // is left out until it is mapped here.
        _ => return None,
    })
}

/// The answer to a path the API does not serve.
pub(crate) async fn no_such_path() -> ApiError {
    ApiError::new(Code::NotFound, "no such path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_reaches_the_json_details() {
        let status = latchkey_runtime::status_with_reason(
            Code::Unauthenticated,
            "invalid client",
            "INVALID_CLIENT",
            [("refusal", "wrong_secret")],
        );
        let body = ApiError::from(status).body();
        assert_eq!(body["code"], "unauthenticated");
        assert_eq!(body["message"], "invalid client");
        assert_eq!(
            body["details"][0]["@type"],
            "type.googleapis.com/google.rpc.ErrorInfo"
        );
        assert_eq!(body["details"][0]["reason"], "INVALID_CLIENT");
        assert_eq!(body["details"][0]["metadata"]["refusal"], "wrong_secret");
    }

    #[test]
    fn codes_map_to_connect_statuses() {
        assert_eq!(http_status(Code::InvalidArgument), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(connect_code(Code::Cancelled), "canceled");
    }
}
