//! The client-credentials grant and token revocation.

use std::net::IpAddr;
use std::sync::Arc;

use latchkey_secrets::{CLIENT_ID, HashKey};

use crate::audit::{AuditQueue, TokenAction, TokenAuditEvent};
use crate::auth_cache::AuthenticationCache;
use crate::authenticator::{AuthenticatedClient, ClientAuthenticator};
use crate::caller_auth::CallerCache;
use crate::error::{ClientRefusal, IssueError, TokenStoreError};
use crate::events::{NoEvents, TokenEvents, refusal_label};
use crate::key::{CredentialKey, new_token, parse_token};
use crate::model::{TokenRecord, unix_now};
use crate::scope::{MAX_SCOPES, check_scope_syntax};
use crate::store::{FailureGuard, NewToken, TokenStore};
use crate::usage::UsageTracker;

/// A token request, however it arrived (gRPC or `/oauth2/token`).
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The presented client ID.
    pub client_id: String,
    /// The presented client secret.
    pub client_secret: String,
    /// Requested scopes; empty = every allowed API.
    pub scopes: Vec<String>,
    /// The caller's address, after trusted-proxy resolution.
    pub client_ip: IpAddr,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The bearer token. Shown to the client only.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// The scopes it grants.
    pub scopes: Vec<String>,
    /// The credential it belongs to.
    pub credential_id: String,
}

/// Issues, introspects and revokes tokens.
#[derive(Debug, Clone)]
pub struct TokenService {
    pub(crate) store: Arc<dyn TokenStore>,
    authenticator: Arc<dyn ClientAuthenticator>,
    pub(crate) hash_key: HashKey,
    pub(crate) usage: Arc<UsageTracker>,
    pub(crate) callers: Arc<CallerCache>,
    failure_limits: FailureLimits,
    pub(crate) events: Arc<dyn TokenEvents>,
    audit: Option<Arc<AuditQueue>>,
    authentications: Arc<AuthenticationCache>,
}

/// Limits on failed client authentications, counted in the token store so
/// every replica shares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureLimits {
    /// Failures allowed per client ID in one window.
    pub per_client: u32,
    /// Failures allowed per source address in one window.
    pub per_address: u32,
    /// Length of the window, from the first failure.
    pub window_seconds: u32,
}

impl Default for FailureLimits {
    fn default() -> Self {
        Self {
            per_client: 10,
            per_address: 50,
            window_seconds: 300,
        }
    }
}

/// Longest client ID kept as a counter key (real ones are 32 characters).
const MAX_COUNTED_CLIENT_ID: usize = 64;

/// How often an issuance re-authenticates after the credential changed
/// under it before giving up.
const STALE_RETRIES: usize = 2;

impl TokenService {
    /// A service over `store`, checking clients with `authenticator`.
    pub fn new(
        store: Arc<dyn TokenStore>,
        authenticator: Arc<dyn ClientAuthenticator>,
        hash_key: HashKey,
        usage: Arc<UsageTracker>,
    ) -> Self {
        Self {
            store,
            authenticator,
            hash_key,
            usage,
            callers: Arc::new(CallerCache::default()),
            failure_limits: FailureLimits::default(),
            events: Arc::new(NoEvents),
            audit: None,
            authentications: Arc::new(AuthenticationCache::default()),
        }
    }

    /// The same service queueing audit events (issue, revoke, refused
    /// authentication) in `queue`, for the registry's audit trail.
    pub fn with_audit(mut self, queue: Arc<AuditQueue>) -> Self {
        self.audit = Some(queue);
        self
    }

    /// Queues an audit event about `client_id`'s attempt from `client_ip`.
    fn audit(
        &self,
        action: TokenAction,
        outcome: Result<&str, &IssueError>,
        client_id: &str,
        client: Option<&AuthenticatedClient>,
        client_ip: IpAddr,
    ) {
        let Some(queue) = &self.audit else {
            return;
        };
        let (credential_id, project_id) = client
            .map(|client| {
                (
                    client.credential_id.clone(),
                    client.policy.project_id.clone(),
                )
            })
            .unwrap_or_default();
        let actor = if !credential_id.is_empty() {
            credential_id.clone()
        } else if CLIENT_ID.check(client_id).is_ok() {
            client_id.to_owned()
        } else {
            // Never record what is not a client ID: it may be a pasted secret.
            String::new()
        };
        let action = match outcome {
            Err(IssueError::InvalidClient(_) | IssueError::TooManyFailures { .. }) => {
                TokenAction::Authenticate
            }
            _ => action,
        };
        queue.push(TokenAuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            time: std::time::SystemTime::now(),
            action,
            succeeded: outcome.is_ok(),
            actor,
            credential_id,
            project_id,
            client_ip,
            detail: match outcome {
                Ok(detail) => detail.to_owned(),
                Err(error) => refusal_label(error).to_owned(),
            },
        });
    }

    /// The same service reporting its work to `events`.
    pub fn with_events(mut self, events: Arc<dyn TokenEvents>) -> Self {
        self.events = events;
        self
    }

    /// The same service with other limits on failed authentications.
    pub fn with_failure_limits(mut self, limits: FailureLimits) -> Self {
        self.failure_limits = limits;
        self
    }

    /// Asks the registry about a client, refusing at once a client ID or
    /// an address with too many recent failures, and counting a refusal
    /// against both (brute-force protection). With `cached`, a recent
    /// verification of the same ID and secret answers instead of the
    /// registry, without reading the counters: the caller must then store
    /// under the answer's policy version and with the request's failure
    /// guards, both of which the store checks with the write (see
    /// `auth_cache` and [`TokenStore::issue`]).
    pub(crate) async fn authenticate_client(
        &self,
        client_id: &str,
        client_secret: &str,
        client_ip: IpAddr,
        cached: bool,
    ) -> Result<AuthenticatedClient, IssueError> {
        let now = unix_now();
        if cached
            && let Some(client) = self
                .authentications
                .get(client_id, client_secret, client_ip, now)
        {
            return Ok(client);
        }
        let keys = self.failure_keys(client_id, client_ip);
        self.store
            .check_guards(&guards(&keys))
            .await
            .map_err(|error| match error {
                TokenStoreError::TooManyFailures { retry_after } => too_many_failures(retry_after),
                other => store_unavailable(other),
            })?;
        let outcome = self
            .authenticator
            .authenticate(client_id, client_secret, client_ip)
            .await;
        if let Ok(client) = &outcome {
            self.authentications
                .put(client_id, client_secret, client, now);
        }
        if matches!(outcome, Err(IssueError::InvalidClient(_))) {
            for (key, _) in &keys {
                if let Err(error) = self
                    .store
                    .record_failure(key, self.failure_limits.window_seconds)
                    .await
                {
                    tracing::warn!(%error, "cannot count a failed authentication");
                }
            }
        }
        outcome
    }

    /// The brute-force counters of a request (its client ID's and its
    /// address's), with their limits.
    fn failure_keys(&self, client_id: &str, client_ip: IpAddr) -> [(String, u32); 2] {
        let counted_id: String = client_id.chars().take(MAX_COUNTED_CLIENT_ID).collect();
        [
            (
                format!("client:{counted_id}"),
                self.failure_limits.per_client,
            ),
            (
                format!("ip:{}", client_ip.to_canonical()),
                self.failure_limits.per_address,
            ),
        ]
    }

    /// The token store, for health checks and administration.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.store
    }

    /// The client-credentials grant: authenticate, check scopes, store.
    pub async fn issue(&self, request: IssueRequest) -> Result<IssuedToken, IssueError> {
        let started = std::time::Instant::now();
        let mut client = None;
        let outcome = self.issue_unobserved(&request, &mut client).await;
        let granted;
        self.audit(
            TokenAction::Issue,
            match &outcome {
                Ok(issued) => {
                    granted = format!("scopes {:?}", issued.scopes.join(" "));
                    Ok(granted.as_str())
                }
                Err(error) => Err(error),
            },
            &request.client_id,
            client.as_ref(),
            request.client_ip,
        );
        if matches!(&outcome, Err(IssueError::Unavailable("token store", _))) {
            self.events.store_error();
        }
        self.events
            .issuance(outcome.as_ref().map(|_| ()), started.elapsed());
        outcome
    }

    async fn issue_unobserved(
        &self,
        request: &IssueRequest,
        authenticated: &mut Option<AuthenticatedClient>,
    ) -> Result<IssuedToken, IssueError> {
        if request.scopes.len() > MAX_SCOPES {
            return Err(IssueError::InvalidRequest {
                field: "scope",
                reason: format!("at most {MAX_SCOPES} scopes"),
            });
        }
        for scope in &request.scopes {
            check_scope_syntax(scope).map_err(|reason| IssueError::InvalidRequest {
                field: "scope",
                reason,
            })?;
        }
        if request.client_id.is_empty() {
            return Err(IssueError::InvalidRequest {
                field: "client_id",
                reason: "required".into(),
            });
        }
        for _ in 0..=STALE_RETRIES {
            let client = self
                .authenticate_client(
                    &request.client_id,
                    &request.client_secret,
                    request.client_ip,
                    true,
                )
                .await?;
            let stored = self.store_token(&client, request).await;
            *authenticated = Some(client);
            if let Some(issued) = stored? {
                return Ok(issued);
            }
            self.authentications.forget(&request.client_id);
            // The credential changed between authentication and storing:
            // ask the registry again, which answers with the new state.
        }
        Err(IssueError::Unavailable(
            "credential policy",
            "the credential kept changing during issuance".into(),
        ))
    }

    /// Stores a token for an authenticated client; `None` when the store
    /// holds a newer policy than the one authenticated.
    async fn store_token(
        &self,
        client: &AuthenticatedClient,
        request: &IssueRequest,
    ) -> Result<Option<IssuedToken>, IssueError> {
        let scopes = granted_scopes(&client.policy.allowed_apis, &request.scopes)?;
        let credential =
            CredentialKey::from_credential_id(&client.credential_id).ok_or_else(|| {
                IssueError::Internal("registry returned a malformed credential ID".into())
            })?;
        let now = unix_now();
        let mut expires_at = now + i64::from(client.token_ttl_seconds);
        // A token never outlives its credential.
        if let Some(credential_expiry) = client.policy.expire_time {
            expires_at = expires_at.min(credential_expiry);
        }
        if expires_at <= now {
            // The credential expires within this second: nothing to issue.
            return Err(IssueError::InvalidClient(ClientRefusal::because("expired")));
        }
        let record = TokenRecord {
            issued_at: now,
            expires_at,
            scopes,
        };
        let (access_token, parsed) = new_token(credential, &self.hash_key);
        let keys = self.failure_keys(&request.client_id, request.client_ip);
        let guards = guards(&keys);
        let new = NewToken {
            credential,
            hash: parsed.hash,
            record: &record,
            policy: &client.policy,
            limit: client.limit,
            now,
            guards: &guards,
        };
        match self.store.issue(&new).await {
            Ok(evicted) => {
                if evicted > 0 {
                    tracing::info!(credential_id = %client.credential_id, evicted, "oldest token evicted at the limit");
                }
            }
            Err(TokenStoreError::LimitReached(max)) => {
                return Err(IssueError::TokenLimitReached(max));
            }
            Err(TokenStoreError::StalePolicy) => return Ok(None),
            Err(TokenStoreError::TooManyFailures { retry_after }) => {
                return Err(too_many_failures(retry_after));
            }
            Err(TokenStoreError::Unavailable(source)) => {
                return Err(IssueError::Unavailable("token store", source));
            }
            Err(TokenStoreError::Internal(source)) => return Err(IssueError::Internal(source)),
        }
        self.usage.record(
            &client.credential_id,
            std::time::SystemTime::now(),
            request.client_ip,
        );
        Ok(Some(IssuedToken {
            access_token,
            expires_in: u32::try_from(expires_at - now).unwrap_or(0),
            scopes: record.scopes,
            credential_id: client.credential_id.clone(),
        }))
    }

    /// Revokes `token` for the client that presents `client_id` and
    /// `client_secret` (RFC 7009: a client may only revoke its own tokens;
    /// an unknown or foreign token is ignored, as the RFC asks).
    pub async fn revoke(
        &self,
        token: &str,
        client_id: &str,
        client_secret: &str,
        client_ip: IpAddr,
    ) -> Result<(), IssueError> {
        let client = match self
            .authenticate_client(client_id, client_secret, client_ip, false)
            .await
        {
            Ok(client) => client,
            Err(error) => {
                self.audit(TokenAction::Revoke, Err(&error), client_id, None, client_ip);
                return Err(error);
            }
        };
        let outcome = self.revoke_for(&client, token).await;
        self.audit(
            TokenAction::Revoke,
            match &outcome {
                Ok(true) => Ok("revoked"),
                Ok(false) => Ok("not a live token of this client: nothing to revoke"),
                Err(error) => Err(error),
            },
            client_id,
            Some(&client),
            client_ip,
        );
        outcome.map(|_| ())
    }

    /// Revokes `token` if it is a live token of `client`; whether it was.
    async fn revoke_for(
        &self,
        client: &AuthenticatedClient,
        token: &str,
    ) -> Result<bool, IssueError> {
        let Ok(parsed) = parse_token(token, &self.hash_key) else {
            return Ok(false);
        };
        if parsed.credential.credential_id() != client.credential_id {
            tracing::info!(credential_id = %client.credential_id, "revocation of another client's token ignored");
            return Ok(false);
        }
        match self.store.revoke(parsed.credential, &parsed.hash).await {
            Ok(revoked) => {
                if revoked {
                    self.events.revoked();
                    tracing::info!(credential_id = %client.credential_id, "token revoked");
                }
                Ok(revoked)
            }
            Err(TokenStoreError::Unavailable(source)) => {
                Err(IssueError::Unavailable("token store", source))
            }
            Err(other) => Err(IssueError::Internal(Box::new(other))),
        }
    }
}

/// `keys` (from `failure_keys`) as the store's failure guards.
fn guards(keys: &[(String, u32); 2]) -> [FailureGuard<'_>; 2] {
    keys.each_ref()
        .map(|(key, limit)| FailureGuard { key, limit: *limit })
}

/// The refusal for a counter at its limit; `Retry-After` is at least 1 s.
fn too_many_failures(retry_after: u32) -> IssueError {
    IssueError::TooManyFailures {
        retry_after: retry_after.max(1),
    }
}

fn store_unavailable(error: TokenStoreError) -> IssueError {
    match error {
        TokenStoreError::Unavailable(source) => IssueError::Unavailable("token store", source),
        other => IssueError::Internal(Box::new(other)),
    }
}

/// The scopes a token gets: the requested ones if all are allowed, every
/// allowed API if none was requested.
fn granted_scopes(allowed: &[String], requested: &[String]) -> Result<Vec<String>, IssueError> {
    if requested.is_empty() {
        return Ok(allowed.to_vec());
    }
    let mut granted: Vec<String> = Vec::with_capacity(requested.len());
    for scope in requested {
        if !allowed.contains(scope) {
            return Err(IssueError::InvalidScope(scope.clone()));
        }
        if !granted.contains(scope) {
            granted.push(scope.clone());
        }
    }
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_default_to_all_allowed_and_must_be_a_subset() {
        let allowed = strings(&["a.read", "a.write"]);
        assert_eq!(granted_scopes(&allowed, &[]).unwrap(), allowed);
        assert_eq!(
            granted_scopes(&allowed, &strings(&["a.read", "a.read"])).unwrap(),
            ["a.read"]
        );
        assert!(matches!(
            granted_scopes(&allowed, &strings(&["a.read", "b.admin"])),
            Err(IssueError::InvalidScope(scope)) if scope == "b.admin"
        ));
    }
}
