//! Verifying a client's ID and secret: from a remembered verification, or
//! by asking the registry behind the failure counters.
//!
//! The counters exist to stop noise and enumeration (secrets are 256 bits:
//! guessing is hopeless), never to lock a client out. Failures are counted
//! per (client ID, source address) and per source address, in the token
//! store so every replica shares them; a source at a limit is refused with
//! `TooManyFailures` (HTTP 429 and `Retry-After`) before the registry is
//! asked. So a stranger's failures refuse the stranger's source only, never
//! the client elsewhere, and a secret this issuer has verified before
//! (known good, see [`crate::auth_cache`]) is never refused by a counter,
//! not even from a source that is.

use std::net::IpAddr;
use std::sync::Arc;

use crate::auth_cache::AuthenticationCache;
use crate::authenticator::{AuthenticatedClient, ClientAuthenticator};
use crate::error::{IssueError, StoreError};
use crate::model::unix_now;
use crate::store::{FailureGuard, GuardCheck, PolicyOrigin, TokenStore};

/// Limits on failed client authentications, counted in the token store so
/// every replica shares them. A source at a limit is refused until its
/// window ends; a verified secret never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimits {
    /// Failures allowed for one client ID from one source address in one
    /// window (a client's own misconfiguration, or someone guessing at one
    /// client from one address).
    pub per_client_address: u32,
    /// Failures allowed from one source address, whatever the client IDs,
    /// in one window (spraying many client IDs).
    pub per_address: u32,
    /// Length of the window, from the first failure.
    pub window_seconds: u32,
}

impl Default for FailureLimits {
    fn default() -> Self {
        Self {
            per_client_address: 10,
            per_address: 50,
            window_seconds: 300,
        }
    }
}

/// Longest client ID kept in a counter key (real ones are 32 characters).
const MAX_COUNTED_CLIENT_ID: usize = 64;

/// A client the issuer vouches for, and where the verification came from.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) client: AuthenticatedClient,
    pub(crate) origin: PolicyOrigin,
}

/// Verifies client IDs and secrets for the issuer and the introspector:
/// remembered verifications, the registry, and the failure counters in
/// front of it.
#[derive(Debug, Clone)]
pub(crate) struct ClientVerifier {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) authenticator: Arc<dyn ClientAuthenticator>,
    pub(crate) authentications: Arc<AuthenticationCache>,
    pub(crate) failure_limits: FailureLimits,
}

impl ClientVerifier {
    /// Verifies a client. With `remembered`, a fresh verification of the
    /// same ID and secret answers instead of the registry; the caller must
    /// then have the store confirm its policy version
    /// ([`PolicyOrigin::Remembered`]). Otherwise the registry answers,
    /// behind the failure counters (which a known-good secret passes), and
    /// a refusal is counted.
    pub(crate) async fn authenticate_client(
        &self,
        client_id: &str,
        client_secret: &str,
        client_ip: IpAddr,
        remembered: bool,
    ) -> Result<Verified, IssueError> {
        let now = unix_now();
        if remembered
            && let Some(client) =
                self.authentications
                    .fresh(client_id, client_secret, client_ip, now)
        {
            return Ok(Verified {
                client,
                origin: PolicyOrigin::Remembered,
            });
        }
        let known_good = self
            .authentications
            .known(client_id, client_secret, now)
            .is_some();
        let counters = self.failure_counters(client_id, client_ip);
        if !known_good {
            let checked = self
                .store
                .check_guards(&guards(&counters))
                .await
                .map_err(store_unavailable)?;
            match checked {
                GuardCheck::Clear => {}
                GuardCheck::AtLimit { retry_after } => return Err(too_many_failures(retry_after)),
            }
        }
        let outcome = self
            .authenticator
            .authenticate(client_id, client_secret, client_ip)
            .await;
        match &outcome {
            Ok(client) => self
                .authentications
                .put(client_id, client_secret, client, now),
            Err(IssueError::InvalidClient(_)) => {
                if known_good {
                    // Rotated, disabled, deleted: no longer known good.
                    self.authentications.forget(client_id);
                }
                self.count_failure(&counters).await;
            }
            Err(
                IssueError::InvalidRequest { .. }
                | IssueError::InvalidScope(_)
                | IssueError::TokenLimitReached(_)
                | IssueError::TooManyFailures { .. }
                | IssueError::Unavailable(..)
                | IssueError::Internal(_),
            ) => {}
        }
        outcome.map(|client| Verified {
            client,
            origin: PolicyOrigin::Registry,
        })
    }

    async fn count_failure(&self, counters: &[(String, u32); 2]) {
        for (key, _) in counters {
            if let Err(error) = self
                .store
                .record_failure(key, self.failure_limits.window_seconds)
                .await
            {
                tracing::warn!(%error, "cannot count a failed authentication");
            }
        }
    }

    /// The failure counters of a request from `client_ip` naming
    /// `client_id`, with their limits: the pair's and the address's.
    fn failure_counters(&self, client_id: &str, client_ip: IpAddr) -> [(String, u32); 2] {
        let counted_id: String = client_id.chars().take(MAX_COUNTED_CLIENT_ID).collect();
        let address = client_ip.to_canonical();
        [
            (
                format!("pair:{address}:{counted_id}"),
                self.failure_limits.per_client_address,
            ),
            (format!("ip:{address}"), self.failure_limits.per_address),
        ]
    }
}

/// `counters` (from `failure_counters`) as the store's failure guards.
fn guards(counters: &[(String, u32); 2]) -> [FailureGuard<'_>; 2] {
    counters
        .each_ref()
        .map(|(key, limit)| FailureGuard { key, limit: *limit })
}

/// The refusal for a counter at its limit; `Retry-After` is at least 1 s.
fn too_many_failures(retry_after: u32) -> IssueError {
    IssueError::TooManyFailures {
        retry_after: retry_after.max(1),
    }
}

/// A store failure on the way to an issuance or a revocation.
pub(crate) fn store_unavailable(error: StoreError) -> IssueError {
    match error {
        StoreError::Unavailable(source) => IssueError::Unavailable("token store", source),
        StoreError::Internal(source) => IssueError::Internal(source),
    }
}
