//! Who may introspect (RFC 7662 §2.1): a caller holding `tokens:introspect`,
//! presenting its client ID and secret (HTTP Basic or form fields) or a
//! bearer token.
//!
//! Checking the caller must not add a round trip to every introspection, so
//! a verified caller is remembered for a short while (the caller cache,
//! [`crate::DEFAULT_CALLER_TTL`]), keyed by a hash of what it presented (and its
//! address). Any policy change of the caller's credential (delete, disable,
//! rotate with revoke, narrowing) drops its entries at once on the replica
//! that applies the change; other replicas drop them when they expire.
//!
//! When its entry expires, a caller presenting client credentials is
//! verified the way clients are at issuance: a secret the registry verified
//! before (a keyed hash, never the secret; see [`crate::auth_cache`]) is
//! honoured as long as the token store holds the same policy version of
//! the caller's credential — one store read, no registry call. So
//! introspection keeps answering, correctly, while the registry or its
//! database is down, and a credential the registry deleted, disabled or
//! narrowed (its new version is in the store before the change commits) is
//! refused at once, even then.

use std::net::IpAddr;

use crate::audit::TokenAction;
use crate::authenticator::AuthenticatedClient;
use crate::error::{IssueError, StoreError};
use crate::introspection::{InactiveReason, Introspection, IntrospectionRequest};
use crate::introspector::Introspector;
use crate::key::CredentialKey;
use crate::model::{CredentialPolicy, PolicyState, unix_now};

/// The scope introspection callers need.
pub const INTROSPECT_SCOPE: &str = "tokens:introspect";

/// What an introspection caller presented.
#[derive(Debug, Clone, Copy)]
pub enum CallerCredentials<'a> {
    /// Client ID and secret.
    Client {
        /// The client ID.
        client_id: &'a str,
        /// The secret.
        client_secret: &'a str,
    },
    /// A bearer token issued to the caller.
    Bearer(&'a str),
    /// Nothing.
    None,
}

/// Why an introspection caller was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallerError {
    /// No or invalid credentials.
    #[error("introspection requires client authentication")]
    Unauthenticated,
    /// Valid credentials without `tokens:introspect`.
    #[error("the caller may not introspect (requires tokens:introspect)")]
    NotAllowed,
    /// The caller's source has too many failed authentications (for this
    /// client ID, or for any); try again after `retry_after` seconds.
    #[error("too many failed attempts; retry after {retry_after} s")]
    TooManyFailures {
        /// Seconds until the counting window ends.
        retry_after: u32,
    },
    /// The registry or the store cannot be asked; fail closed.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    /// A bug or corrupt data (logged where it happened).
    #[error("internal error")]
    Internal,
}

impl Introspector {
    /// Checks that the caller may introspect.
    pub async fn authorize_introspection_caller(
        &self,
        credentials: CallerCredentials<'_>,
        caller_ip: IpAddr,
    ) -> Result<(), CallerError> {
        let key = match credentials {
            CallerCredentials::None => return Err(CallerError::Unauthenticated),
            CallerCredentials::Client {
                client_id,
                client_secret,
            } => self.cache_key(&["client", client_id, client_secret], caller_ip),
            CallerCredentials::Bearer(token) => self.cache_key(&["bearer", token], caller_ip),
        };
        if self.callers.get(&key) {
            return Ok(());
        }
        let credential_id = match credentials {
            CallerCredentials::None => return Err(CallerError::Unauthenticated),
            CallerCredentials::Client {
                client_id,
                client_secret,
            } => {
                self.verify_client(client_id, client_secret, caller_ip)
                    .await?
            }
            CallerCredentials::Bearer(token) => self.verify_bearer(token, caller_ip).await?,
        };
        self.callers.insert(key, credential_id);
        Ok(())
    }

    async fn verify_client(
        &self,
        client_id: &str,
        client_secret: &str,
        caller_ip: IpAddr,
    ) -> Result<String, CallerError> {
        if let Some(remembered) =
            self.core
                .verifier
                .authentications
                .known(client_id, client_secret, unix_now())
            && let Some(decided) = self.check_remembered_caller(&remembered, caller_ip).await?
        {
            return decided;
        }
        let client = match self
            .core
            .verifier
            .authenticate_client(client_id, client_secret, caller_ip, false)
            .await
        {
            Ok(verified) => verified.client,
            Err(error) => {
                let refused = caller_refusal(&error);
                if matches!(error, IssueError::InvalidClient(_)) {
                    self.core.auditor.refused(
                        TokenAction::Authenticate,
                        &error,
                        client_id,
                        None,
                        caller_ip,
                    );
                }
                return Err(refused);
            }
        };
        if !allows_introspection(&client.policy) {
            return Err(CallerError::NotAllowed);
        }
        // Bind the verification to the store, so the next one needs no
        // registry: store the policy the registry answered with unless the
        // store holds it or a newer one (a first use, or a store that lost
        // it). The write also keeps it there a day from now.
        if let Some(credential) = CredentialKey::from_credential_id(&client.credential_id)
            && let Err(error) = self
                .core
                .store
                .apply_policy(credential, &client.policy, false)
                .await
        {
            // The caller is verified; only the next verification may cost
            // a registry call.
            tracing::warn!(%error, "cannot store an introspection caller's policy");
        }
        Ok(client.credential_id)
    }

    /// Decides a caller from a remembered verification when the token
    /// store allows it: `Ok(Some(..))` when it decides (the same policy
    /// version: accepted; a newer one that disables, deletes or narrows
    /// the credential: refused at once), `Ok(None)` when the registry must
    /// (no policy stored, another version, a newer one that may be a
    /// rotation).
    async fn check_remembered_caller(
        &self,
        remembered: &AuthenticatedClient,
        caller_ip: IpAddr,
    ) -> Result<Option<Result<String, CallerError>>, CallerError> {
        let Some(credential) = CredentialKey::from_credential_id(&remembered.credential_id) else {
            return Ok(None);
        };
        let stored = self.core.store.policy(credential).await.map_err(|error| {
            caller_store_error(&error, "cannot read an introspection caller's policy")
        })?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let remembered_version = remembered.policy.version;
        if stored.version < remembered_version {
            return Ok(None);
        }
        let refused_state = matches!(stored.state, PolicyState::Disabled | PolicyState::Deleted);
        if stored.version > remembered_version {
            // Changed since: a disabled, deleted or narrowed credential is
            // refused at once; anything else (a rotation, a wider policy)
            // is for the registry to judge.
            return Ok(if refused_state {
                Some(Err(CallerError::Unauthenticated))
            } else if !allows_introspection(&stored) {
                Some(Err(CallerError::NotAllowed))
            } else {
                None
            });
        }
        // Exactly the version the registry vouched for: the stored policy
        // is the one to apply (address, expiry, state).
        let expired = stored.expire_time.is_some_and(|end| end <= unix_now());
        if refused_state || expired || !stored.allowed_ips.allows(caller_ip) {
            // The registry says why (and counts it).
            return Ok(None);
        }
        if !allows_introspection(&stored) {
            return Ok(Some(Err(CallerError::NotAllowed)));
        }
        Ok(Some(Ok(remembered.credential_id.clone())))
    }

    async fn verify_bearer(&self, token: &str, caller_ip: IpAddr) -> Result<String, CallerError> {
        let scopes = [INTROSPECT_SCOPE.to_owned()];
        let answer = self
            .introspect_quietly(&IntrospectionRequest {
                token,
                client_ip: Some(caller_ip),
                required_scopes: &scopes,
            })
            .await
            .map_err(|error| caller_store_error(&error, "cannot introspect a caller's token"))?;
        match answer {
            Introspection::Active(info) => Ok(info.credential_id),
            Introspection::Inactive(InactiveReason::ScopeNotAllowed) => {
                Err(CallerError::NotAllowed)
            }
            Introspection::Inactive(_) => Err(CallerError::Unauthenticated),
        }
    }

    fn cache_key(&self, parts: &[&str], caller_ip: IpAddr) -> [u8; 32] {
        let mut material = parts.join("\0");
        material.push('\0');
        material.push_str(&caller_ip.to_string());
        *self.core.hash_keys.current().hash(&material).as_bytes()
    }

    /// Drops what is remembered about `credential_id` as an introspection
    /// caller; called on every policy change of that credential.
    pub fn forget_caller(&self, credential_id: &str) {
        self.callers.forget(credential_id);
    }
}

/// Whether `policy` lets its credential introspect.
fn allows_introspection(policy: &CredentialPolicy) -> bool {
    policy
        .allowed_apis
        .iter()
        .any(|api| api == INTROSPECT_SCOPE)
}

/// What a caller learns of a store that could not answer: an outage is
/// `Unavailable`; anything else is a bug, logged here.
fn caller_store_error(error: &StoreError, what: &'static str) -> CallerError {
    match error {
        StoreError::Unavailable(_) => CallerError::Unavailable("token store"),
        StoreError::Internal(source) => {
            tracing::error!(error = %source, "{what}");
            CallerError::Internal
        }
    }
}

/// What a caller learns of a failed verification at the registry.
fn caller_refusal(error: &IssueError) -> CallerError {
    match error {
        IssueError::InvalidClient(_) | IssueError::InvalidRequest { .. } => {
            CallerError::Unauthenticated
        }
        IssueError::TooManyFailures { retry_after } => CallerError::TooManyFailures {
            retry_after: *retry_after,
        },
        IssueError::Unavailable(what, source) => {
            tracing::warn!(error = %source, what, "cannot verify an introspection caller");
            CallerError::Unavailable(what)
        }
        IssueError::InvalidScope(_)
        | IssueError::TokenLimitReached(_)
        | IssueError::Internal(_) => {
            tracing::error!(%error, "cannot verify an introspection caller");
            CallerError::Internal
        }
    }
}
