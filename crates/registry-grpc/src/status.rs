//! Domain errors → gRPC statuses, in one exhaustive place.

use latchkey_registry::{AuthenticateError, RegistryError};
use tonic::Status;

/// Maps a registry error to the status the client sees, logging it at the
/// level its cause deserves. Server-side causes are logged with their source
/// and hidden from the client.
pub(crate) fn to_status(error: RegistryError) -> Status {
    match error {
        RegistryError::InvalidArgument { .. } => {
            tracing::info!(%error, "invalid argument");
            Status::invalid_argument(error.to_string())
        }
        RegistryError::NotFound { .. } => Status::not_found(error.to_string()),
        RegistryError::AlreadyExists(message) => Status::already_exists(message),
        RegistryError::FailedPrecondition(message) => Status::failed_precondition(message),
        RegistryError::PermissionDenied(message) => {
            tracing::info!(%message, "permission denied");
            Status::permission_denied(message)
        }
        RegistryError::QuotaExceeded(limit) => {
            tracing::info!(%limit, "quota exceeded");
            Status::resource_exhausted(limit.to_string())
        }
        RegistryError::Unavailable(source) => {
            tracing::warn!(error = %source, "credential store unavailable");
            Status::unavailable("credential store unavailable")
        }
        RegistryError::TokenIssuerUnavailable(source) => {
            tracing::warn!(error = %source, "token issuer unavailable: change rolled back");
            Status::unavailable("token issuer unavailable: the change was not applied")
        }
        RegistryError::Internal(source) => {
            tracing::error!(error = %source, "internal error");
            Status::internal("internal error")
        }
    }
}

/// The one message every refused client gets, whatever the reason.
pub(crate) const INVALID_CLIENT: &str = "invalid client";

/// Maps an authentication failure. Every refusal looks the same to the
/// caller; the reason goes to the log only.
pub(crate) fn authentication_status(error: AuthenticateError) -> Status {
    match error {
        AuthenticateError::Refused(reason) => {
            tracing::info!(%reason, "client authentication refused");
            Status::unauthenticated(INVALID_CLIENT)
        }
        AuthenticateError::Registry(error) => to_status(error),
    }
}
