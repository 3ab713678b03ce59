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
/// raised while a server stops or starts, and SQLite's "busy" / "locked"
/// (5, 6 and their extended codes), raised when another process holds the
/// file's write lock: all pass, so the client should retry.
fn is_database_shutting_down(error: &sqlx::Error) -> bool {
    let Some(database) = error.as_database_error() else {
        return false;
    };
    let Some(code) = database.code() else {
        return false;
    };
    if database
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // Extended result codes keep the primary code in the low byte.
        code.parse::<u32>()
            .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6))
    } else {
        code.starts_with("57P")
    }
}

/// True for a unique violation, which callers turn into a precise
/// `AlreadyExists`.
pub(crate) fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
