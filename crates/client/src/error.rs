//! Why a token source has no token to give.

use std::time::Duration;

/// A token source's failure. `Clone`, because one failed fetch answers every
/// caller that waited for it, and a remembered permanent failure answers
/// later callers without asking the issuer again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The issuer refused the client ID or secret, or the credential is
    /// disabled, deleted, expired, or may not be used from this address.
    /// Permanent: retrying with the same credential does not help.
    #[error("the issuer refused the client credentials (invalid_client)")]
    InvalidClient,
    /// A requested scope is not one of the credential's allowed APIs.
    /// Permanent.
    #[error("the issuer refused the requested scope (invalid_scope): {0}")]
    InvalidScope(String),
    /// The issuer refused the request as malformed. Permanent; a bug or a
    /// misconfiguration on this side.
    #[error("the issuer refused the request (invalid_request): {0}")]
    InvalidRequest(String),
    /// The issuer asked to slow down (HTTP 429 or 503 with `Retry-After`,
    /// gRPC `RESOURCE_EXHAUSTED` with `retry-after`), e.g. after repeated
    /// failed authentications from this address, or at the credential's
    /// token limit. Transient.
    #[error("the issuer asked to retry later ({description})")]
    RateLimited {
        /// What the issuer said.
        description: String,
        /// How long it asked to wait, when it said (`Retry-After` in
        /// seconds, or until its HTTP-date).
        retry_after: Option<Duration>,
    },
    /// The issuer could not be reached or is temporarily unavailable.
    /// Transient.
    #[error("the issuer is unavailable: {0}")]
    Unavailable(String),
    /// The issuer answered something this client cannot read. Transient (a
    /// proxy in the way may recover).
    #[error("unexpected answer from the issuer: {0}")]
    Protocol(String),
    /// A previous attempt failed and the source waits before the next one,
    /// so a failing issuer is not asked in a hot loop.
    #[error("backing off for {retry_in:?} after: {last}")]
    BackingOff {
        /// The failure that started the wait.
        last: Box<TokenError>,
        /// Time left until the next attempt.
        retry_in: Duration,
    },
}

impl TokenError {
    /// Whether retrying with the same credential cannot help (the
    /// credential or the configuration must change).
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::InvalidClient | Self::InvalidScope(_) | Self::InvalidRequest(_) => true,
            Self::RateLimited { .. } | Self::Unavailable(_) | Self::Protocol(_) => false,
            Self::BackingOff { last, .. } => last.is_permanent(),
        }
    }

    /// The wait the issuer asked for, if any.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            Self::InvalidClient
            | Self::InvalidScope(_)
            | Self::InvalidRequest(_)
            | Self::Unavailable(_)
            | Self::Protocol(_)
            | Self::BackingOff { .. } => None,
        }
    }
}
