//! What introspection asks and answers: the vocabulary the introspector,
//! the gateway check and the event sink share. Types only, so the core can
//! name an answer without depending on the introspector.

use std::net::IpAddr;

/// Why a token is not active. Gateways may log it; it never says more than
/// the token's holder could find out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InactiveReason {
    /// Not a Latchkey token (format or checksum).
    Malformed,
    /// No such token (never issued, or expired and removed).
    Unknown,
    /// The token's lifetime is over.
    Expired,
    /// The token was revoked (by its client, by eviction at the token
    /// limit, or with all of its credential's tokens), or its credential
    /// deleted; answered until the token would have expired.
    Revoked,
    /// The credential is disabled.
    CredentialDisabled,
    /// The credential itself has expired.
    CredentialExpired,
    /// The caller's IP is outside the credential's allowlist (or was not
    /// given while the credential has one).
    IpNotAllowed,
    /// A required scope is not granted (or no longer allowed).
    ScopeNotAllowed,
}

/// An introspection question.
#[derive(Debug, Clone)]
pub struct IntrospectionRequest<'a> {
    /// The bearer token.
    pub token: &'a str,
    /// The address of the caller that presented the token to the gateway.
    pub client_ip: Option<IpAddr>,
    /// Scopes the called API requires; all must be granted.
    pub required_scopes: &'a [String],
}

/// What is known about an active token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The credential's public client ID.
    pub client_id: String,
    /// The credential's ID.
    pub credential_id: String,
    /// Its project.
    pub project_id: String,
    /// Its owner.
    pub owner: String,
    /// Granted scopes still allowed by the credential's current policy.
    pub scopes: Vec<String>,
    /// Issued at (Unix seconds).
    pub issued_at: i64,
    /// Expires at (Unix seconds).
    pub expires_at: i64,
}

/// The answer: active with the token's facts, or inactive with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// The token may be used for this request.
    Active(TokenInfo),
    /// It may not.
    Inactive(InactiveReason),
}
