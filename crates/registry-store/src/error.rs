//! Database errors as domain errors.

use latchkey_registry::RegistryError;
use sea_orm::{DbErr, RuntimeErr, SqlErr, sqlx};

/// Classifies a database error. Callers that expect a unique violation map
/// it themselves first (to say which name is taken); everything else lands
/// here.
pub(crate) fn from_db(error: DbErr) -> RegistryError {
    if is_unavailable(&error) {
        return RegistryError::Unavailable(Box::new(error));
    }
    if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
        return RegistryError::AlreadyExists("already exists".to_owned());
    }
    RegistryError::Internal(Box::new(error))
}

/// Whether the error means "the database cannot be reached" rather than
/// "the statement is wrong": those become UNAVAILABLE, so clients retry.
fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            matches!(
                inner,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Tls(_)
            ) || is_database_shutting_down(inner)
        }
        _ => false,
    }
}

/// PostgreSQL's "admin shutdown" / "cannot connect now" classes (57P),
/// raised while a server stops or starts.
fn is_database_shutting_down(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .is_some_and(|code| code.starts_with("57P"))
}

/// True for a unique violation, which callers turn into a precise
/// `AlreadyExists`.
pub(crate) fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
