//! Why a command failed, and the exit code each kind of failure gets.

use std::process::ExitCode;

use latchkey_client::TokenError;

/// The exit codes, as documented in `latchkey --help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success
  1   other failure (internal server error, I/O error)
  2   usage error (unknown command or flag, missing argument)
  3   not found
  4   not allowed: authentication failed or permission denied
  5   refused as asked: invalid argument, failed precondition (e.g. a wrong
      name typed to confirm a delete), already exists, changed meanwhile,
      quota exhausted
  6   Latchkey unavailable (cannot connect, timed out): retrying may help
  64  configuration error (no profile, bad profile file, bad URL)";

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The profile is missing, incomplete or unreadable.
    #[error("configuration: {0}")]
    Config(String),
    /// The command line lacks something clap cannot tell (e.g. a flag
    /// needed only without another).
    #[error("usage: {0}")]
    Usage(String),
    /// The registry answered with an error status.
    #[error("{}: {}", describe(.0.code()), .0.message())]
    Status(tonic::Status),
    /// No bearer token for the profile's credential.
    #[error("cannot get an access token: {0}")]
    Token(#[from] TokenError),
    /// The user did not confirm a destructive command; nothing was done.
    #[error("{0}")]
    NotConfirmed(String),
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<tonic::Status> for CliError {
    fn from(status: tonic::Status) -> Self {
        Self::Status(status)
    }
}

impl CliError {
    /// The process's exit code for this failure.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Config(_) => 64,
            Self::Usage(_) => 2,
            Self::Status(status) => status_exit_code(status.code()),
            Self::Token(error) => token_exit_code(error),
            Self::NotConfirmed(_) => 5,
            Self::Io(_) => 1,
        })
    }
}

/// Exit code of a gRPC status code, every code listed so a new one is a
/// decision, not an accident.
fn status_exit_code(code: tonic::Code) -> u8 {
    use tonic::Code;
    match code {
        Code::NotFound => 3,
        Code::Unauthenticated | Code::PermissionDenied => 4,
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::AlreadyExists
        | Code::Aborted
        | Code::OutOfRange
        | Code::ResourceExhausted => 5,
        Code::Unavailable | Code::DeadlineExceeded => 6,
        Code::Ok
        | Code::Cancelled
        | Code::Unknown
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => 1,
    }
}

/// Exit code when no token could be had for the profile's credential.
fn token_exit_code(error: &TokenError) -> u8 {
    match error {
        TokenError::InvalidClient | TokenError::InvalidScope(_) => 4,
        TokenError::InvalidRequest(_) => 5,
        TokenError::BackingOff { last, .. } => token_exit_code(last),
        // Non-exhaustive: anything else is the issuer being unreachable
        // or answering nonsense, which a retry may fix.
        _ => 6,
    }
}

/// What a gRPC status code means, for the user.
fn describe(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "no error",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "Latchkey did not answer in time",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "limit reached",
        Code::FailedPrecondition => "refused",
        Code::Aborted => "changed meanwhile, try again",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "not supported by this registry",
        Code::Internal => "internal error in Latchkey",
        Code::Unavailable => "Latchkey is unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "not authenticated (check the profile's client ID and secret)",
    }
}
