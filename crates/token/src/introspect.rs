//! Introspection: is this token active for this caller and these scopes?

use std::net::IpAddr;

use crate::error::StoreError;
use crate::issue::TokenService;
use crate::key::parse_token;
use crate::model::{PolicyState, unix_now};

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

impl TokenService {
    /// Answers whether the token is active. Store errors are returned, never
    /// turned into an answer: a store that cannot be read never yields
    /// "active" (fail closed).
    pub async fn introspect(
        &self,
        request: &IntrospectionRequest<'_>,
    ) -> Result<Introspection, StoreError> {
        let started = std::time::Instant::now();
        let answer = match self.introspect_quietly(request).await {
            Ok(answer) => answer,
            Err(error) => {
                self.events.store_error();
                self.events.introspection(None, started.elapsed());
                return Err(error);
            }
        };
        self.events.introspection(Some(&answer), started.elapsed());
        if let (Introspection::Active(info), Some(ip)) = (&answer, request.client_ip) {
            self.usage
                .record(&info.credential_id, std::time::SystemTime::now(), ip);
        }
        Ok(answer)
    }

    /// Introspection without recording a use (checking a caller's own
    /// token is not a use of it by a client).
    pub(crate) async fn introspect_quietly(
        &self,
        request: &IntrospectionRequest<'_>,
    ) -> Result<Introspection, StoreError> {
        use Introspection::Inactive;
        let Ok(parsed) = parse_token(request.token, &self.hash_key) else {
            return Ok(Inactive(InactiveReason::Malformed));
        };
        let lookup = self.store.lookup(parsed.credential, &parsed.hash).await?;
        // Revoked for good, whatever happens to the credential later.
        if lookup.revoked {
            return Ok(Inactive(InactiveReason::Revoked));
        }
        // The credential's state first: a deleted credential's tokens are
        // gone from the store, and "revoked" says more than "unknown".
        match lookup.policy.as_ref().map(|policy| policy.state) {
            Some(PolicyState::Deleted) => return Ok(Inactive(InactiveReason::Revoked)),
            Some(PolicyState::Disabled) => {
                return Ok(Inactive(InactiveReason::CredentialDisabled));
            }
            Some(PolicyState::Active) | None => {}
        }
        let (Some(token), Some(policy)) = (lookup.token, lookup.policy) else {
            return Ok(Inactive(InactiveReason::Unknown));
        };
        let now = unix_now();
        if token.expires_at <= now {
            return Ok(Inactive(InactiveReason::Expired));
        }
        if policy.expire_time.is_some_and(|expiry| expiry <= now) {
            return Ok(Inactive(InactiveReason::CredentialExpired));
        }
        let ip_allowed = match request.client_ip {
            Some(ip) => policy.allowed_ips.allows(ip),
            // Without the caller's address only an unrestricted credential
            // can be vouched for.
            None => policy.allowed_ips.is_empty(),
        };
        if !ip_allowed {
            return Ok(Inactive(InactiveReason::IpNotAllowed));
        }
        // Narrowing allowed APIs applies to tokens already issued.
        let scopes: Vec<String> = token
            .scopes
            .iter()
            .filter(|scope| policy.allowed_apis.contains(scope))
            .cloned()
            .collect();
        if !request
            .required_scopes
            .iter()
            .all(|required| scopes.contains(required))
        {
            return Ok(Inactive(InactiveReason::ScopeNotAllowed));
        }
        let credential_id = parsed.credential.credential_id();
        Ok(Introspection::Active(TokenInfo {
            client_id: policy.client_id.clone(),
            credential_id,
            project_id: policy.project_id.clone(),
            owner: policy.owner.clone(),
            scopes,
            issued_at: token.issued_at,
            expires_at: token.expires_at,
        }))
    }
}
