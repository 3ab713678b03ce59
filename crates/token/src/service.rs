//! The token service as the issuer process assembles it: one [`Issuer`]
//! and one [`Introspector`] over a shared core. A thin holder: transports
//! take the part they serve ([`TokenService::issuer`],
//! [`TokenService::introspector`]); only administration (a policy change,
//! which concerns both) is answered here.

use std::sync::Arc;
use std::time::Duration;

use latchkey_secrets::HashKeys;

use crate::audit::{AuditQueue, Auditor};
use crate::auth_cache::AuthenticationCache;
use crate::authenticator::ClientAuthenticator;
use crate::caller_cache::CallerCache;
use crate::core::Core;
use crate::error::StoreError;
use crate::events::{NoEvents, TokenEvents};
use crate::introspector::Introspector;
use crate::issuer::Issuer;
use crate::key::CredentialKey;
use crate::model::CredentialPolicy;
use crate::rollup::UsageRollups;
use crate::store::TokenStore;
use crate::usage::UsageTracker;
use crate::verify::{ClientVerifier, FailureLimits};

/// Issues, introspects and revokes tokens: an [`Issuer`] and an
/// [`Introspector`] sharing one store, hash key, usage tracker, event sink,
/// audit trail and client verification.
#[derive(Debug, Clone)]
pub struct TokenService {
    issuer: Issuer,
    introspector: Introspector,
}

impl TokenService {
    /// A service over `store`, checking clients with `authenticator`,
    /// hashing tokens with the current key of `hash_keys` (a single
    /// [`latchkey_secrets::HashKey`] is key 1) and finding older tokens
    /// under older keys.
    pub fn new(
        store: Arc<dyn TokenStore>,
        authenticator: Arc<dyn ClientAuthenticator>,
        hash_keys: impl Into<HashKeys>,
        usage: Arc<UsageTracker>,
    ) -> Self {
        let core = Core {
            store: store.clone(),
            hash_keys: hash_keys.into(),
            usage,
            events: Arc::new(NoEvents),
            auditor: Auditor::default(),
            verifier: ClientVerifier {
                store,
                authenticator,
                authentications: Arc::new(AuthenticationCache::default()),
                failure_limits: FailureLimits::default(),
            },
        };
        Self {
            issuer: Issuer { core: core.clone() },
            introspector: Introspector {
                core,
                callers: Arc::new(CallerCache::default()),
            },
        }
    }

    /// The same service queueing audit events (issue, revoke, refused
    /// authentication) in `queue`, for the registry's audit trail.
    pub fn with_audit(self, queue: Arc<AuditQueue>) -> Self {
        self.with_core(|core| core.auditor.audit = Some(queue.clone()))
    }

    /// The same service counting successful issues and revocations in
    /// `rollups`, for the registry's usage rollups.
    pub fn with_usage_rollups(self, rollups: Arc<UsageRollups>) -> Self {
        self.with_core(|core| core.auditor.rollups = Some(rollups.clone()))
    }

    /// The same service also logging every issued or revoked token as an
    /// INFO event under the target [`crate::TOKEN_EVENT_TARGET`]
    /// (credential, project, client address, scopes; never the token), for
    /// operators who export each issuance. Off by default: it costs a log
    /// line per token.
    pub fn with_token_event_log(self, enabled: bool) -> Self {
        self.with_core(|core| core.auditor.token_event_log = enabled)
    }

    /// The same service reporting its work to `events`.
    pub fn with_events(self, events: Arc<dyn TokenEvents>) -> Self {
        self.with_core(|core| core.events = events.clone())
    }

    /// The same service with other limits on failed authentications.
    pub fn with_failure_limits(self, limits: FailureLimits) -> Self {
        self.with_core(|core| core.verifier.failure_limits = limits)
    }

    /// The same service trusting a verified introspection caller for `ttl`
    /// before looking again (a store read, or a registry call the first
    /// time); [`crate::DEFAULT_CALLER_TTL`] otherwise.
    pub fn with_caller_ttl(mut self, ttl: Duration) -> Self {
        self.introspector.callers = Arc::new(CallerCache::new(ttl));
        self
    }

    /// Applies `change` to both halves' core, so they keep sharing one.
    fn with_core(mut self, change: impl Fn(&mut Core)) -> Self {
        change(&mut self.issuer.core);
        change(&mut self.introspector.core);
        self
    }

    /// The issuer: token requests and revocations.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The introspector: introspection, its callers, gateway checks.
    pub fn introspector(&self) -> &Introspector {
        &self.introspector
    }

    /// The token store, for health checks.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.issuer.core.store
    }

    /// Applies a policy change the registry sent (see
    /// [`TokenStore::apply_policy`]) and forgets what this replica
    /// remembers of the credential as an introspection caller, which it may
    /// no longer be. Returns how many tokens were revoked.
    pub async fn apply_policy(
        &self,
        credential: CredentialKey,
        policy: &CredentialPolicy,
        revoke_tokens: bool,
    ) -> Result<u32, StoreError> {
        let revoked = self
            .store()
            .apply_policy(credential, policy, revoke_tokens)
            .await?;
        self.introspector.forget_caller(&credential.credential_id());
        Ok(revoked)
    }
}
