//! Domain errors → gRPC statuses, in one exhaustive place.

use latchkey_registry::{AuthenticateError, ClientRefused, RegistryError};
use latchkey_runtime::{reason, status_with_reason};
use tonic::{Code, Status};

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
        RegistryError::Aborted(message) => {
            tracing::info!(%message, "aborted");
            Status::aborted(message)
        }
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

/// Metadata keys of an `INVALID_CLIENT` refusal, for the issuer's audit
/// trail: why, and the credential and project the client ID names (absent
/// when it names none).
pub(crate) mod refusal_metadata {
    /// The `Refusal` label (`wrong_secret`, `disabled`, …).
    pub(crate) const REFUSAL: &str = "refusal";
    /// The credential the client ID names.
    pub(crate) const CREDENTIAL_ID: &str = "credential_id";
    /// That credential's project.
    pub(crate) const PROJECT_ID: &str = "project_id";
}

/// Maps an authentication failure. Every refusal has the same code and
/// message; its details (`INVALID_CLIENT`, the refusal and the credential
/// named) tell the issuer it is the client that was refused, not the
/// issuer's own call, and feed the project's audit trail. The issuer never
/// passes them on to the client.
pub(crate) fn authentication_status(error: AuthenticateError) -> Status {
    match error {
        AuthenticateError::Refused(refused) => refusal_status(&refused),
        AuthenticateError::Registry(error) => to_status(error),
    }
}

fn refusal_status(refused: &ClientRefused) -> Status {
    let label = refused.reason.to_string();
    let credential = refused.credential.as_ref();
    tracing::info!(
        reason = %label,
        credential_id = credential.map(|named| named.credential_id.as_str()),
        "client authentication refused"
    );
    let mut metadata = vec![(refusal_metadata::REFUSAL, label.as_str())];
    if let Some(named) = credential {
        metadata.push((refusal_metadata::CREDENTIAL_ID, &named.credential_id));
        metadata.push((refusal_metadata::PROJECT_ID, &named.project_id));
    }
    status_with_reason(
        Code::Unauthenticated,
        INVALID_CLIENT,
        reason::INVALID_CLIENT,
        metadata,
    )
}
