//! The introspector: is this token active for this caller and these
//! scopes? Also home of introspection-caller authentication
//! ([`crate::caller_auth`]) and gateway checks ([`crate::gateway`]), which
//! add `impl Introspector` blocks of their own.

use std::sync::Arc;

use crate::caller_cache::CallerCache;
use crate::core::Core;
use crate::error::StoreError;
use crate::introspection::{InactiveReason, Introspection, IntrospectionRequest, TokenInfo};
use crate::key::{hash_token, parse_token};
use crate::model::{PolicyState, unix_now};

/// Answers introspections, authenticates introspection callers and decides
/// gateway checks, over the core it shares with the [`crate::Issuer`].
/// Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Introspector {
    pub(crate) core: Core,
    /// Verified introspection callers.
    pub(crate) callers: Arc<CallerCache>,
}

impl Introspector {
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
                self.core.events.store_error();
                self.core.events.introspection(None, started.elapsed());
                return Err(error);
            }
        };
        self.core
            .events
            .introspection(Some(&answer), started.elapsed());
        if let (Introspection::Active(info), Some(ip)) = (&answer, request.client_ip) {
            self.core
                .usage
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
        let Ok(parsed) = parse_token(request.token, self.core.hash_keys.current()) else {
            return Ok(Inactive(InactiveReason::Malformed));
        };
        let mut lookup = self
            .core
            .store
            .lookup(parsed.credential, &parsed.hash)
            .await?;
        // A token issued before the hash key rotated is stored under an
        // older key's hash, until it expires. Only a miss looks there, so
        // tokens of the current key cost one lookup as before.
        if lookup.token.is_none() && !lookup.revoked {
            for (_, key) in self.core.hash_keys.older() {
                let older = self
                    .core
                    .store
                    .lookup(parsed.credential, &hash_token(request.token, key))
                    .await?;
                if older.token.is_some() || older.revoked {
                    lookup = older;
                    break;
                }
            }
        }
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
