//! The issuer: the client-credentials grant and token revocation, with
//! client verification and the audit trail of both.

use std::net::IpAddr;

use crate::audit::TokenAction;
use crate::authenticator::AuthenticatedClient;
use crate::core::Core;
use crate::error::{ClientRefusal, IssueError, StoreIssueError};
use crate::key::{CredentialKey, hash_token, new_token, parse_token};
use crate::model::{CredentialPolicy, PolicyState, TokenRecord, unix_now};
use crate::scope::{MAX_SCOPES, check_scope_syntax};
use crate::store::{NewToken, PolicyOrigin};
use crate::verify::{Verified, store_unavailable};

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

/// Issues and revokes tokens, over the core it shares with the
/// [`crate::Introspector`]. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Issuer {
    pub(crate) core: Core,
}

/// Most verifications one issuance makes: a remembered one the store no
/// longer confirms, the registry's answer meeting a newer stored policy
/// (a change committing meanwhile), the same answer again (then the
/// registry is asked to reconcile), and the answer after that.
const MAX_VERIFICATIONS: usize = 4;

impl Issuer {
    /// The client-credentials grant: authenticate, check scopes, store.
    pub async fn issue(&self, request: IssueRequest) -> Result<IssuedToken, IssueError> {
        let started = std::time::Instant::now();
        let mut client = None;
        let outcome = self.issue_unobserved(&request, &mut client).await;
        match (&outcome, &client) {
            (Ok(issued), Some(client)) => {
                self.core
                    .auditor
                    .issued(client, &issued.scopes, request.client_ip);
            }
            // A token is only issued to a verified client.
            (Ok(_), None) => {}
            (Err(error), client) => self.core.auditor.refused(
                TokenAction::Issue,
                error,
                &request.client_id,
                client.as_ref(),
                request.client_ip,
            ),
        }
        if matches!(&outcome, Err(IssueError::Unavailable("token store", _))) {
            self.core.events.store_error();
        }
        self.core
            .events
            .issuance(outcome.as_ref().map(|_| ()), started.elapsed());
        outcome
    }

    async fn issue_unobserved(
        &self,
        request: &IssueRequest,
        authenticated: &mut Option<AuthenticatedClient>,
    ) -> Result<IssuedToken, IssueError> {
        check_request(request)?;
        let mut remembered = true;
        let mut newer_held_seen = false;
        let mut reconciled = false;
        for _ in 0..MAX_VERIFICATIONS {
            let verified = self
                .core
                .verifier
                .authenticate_client(
                    &request.client_id,
                    &request.client_secret,
                    request.client_ip,
                    remembered,
                )
                .await?;
            let stored = self.store_token(&verified, request).await;
            let client = authenticated.insert(verified.client);
            let held = match stored? {
                Stored::Issued(issued) => return Ok(issued),
                Stored::Stale { held } => held,
            };
            // The store does not hold the policy the verification was made
            // under: ask the registry, whose answer decides. The secret
            // stays known good until the registry refuses it.
            remembered = false;
            let answered = client.policy.version;
            let Some(held) =
                held.filter(|&held| verified.origin == PolicyOrigin::Registry && held > answered)
            else {
                continue;
            };
            // The registry answered an older version than the store holds.
            // Once is a change committing meanwhile; twice is a change
            // applied on the token side whose commit was lost.
            if reconciled {
                tracing::warn!(
                    credential_id = %client.credential_id,
                    held,
                    answered,
                    "the registry still answers an older policy than the token store holds after reconciling"
                );
                return Err(IssueError::Unavailable(
                    "credential registry",
                    format!(
                        "the token store holds policy version {held}, newer than the registry's {answered}, and reconciling did not settle it"
                    )
                    .into(),
                ));
            }
            if newer_held_seen {
                tracing::info!(
                    credential_id = %client.credential_id,
                    held,
                    answered,
                    "token store holds a policy the registry never committed; reconciling"
                );
                self.core
                    .verifier
                    .authenticator
                    .reconcile(&client.credential_id, held)
                    .await?;
                reconciled = true;
            }
            newer_held_seen = true;
        }
        Err(IssueError::Unavailable(
            "credential policy",
            "the credential kept changing during issuance".into(),
        ))
    }

    /// Stores a token for a verified client, unless the store does not
    /// hold the policy the verification was made under.
    async fn store_token(
        &self,
        verified: &Verified,
        request: &IssueRequest,
    ) -> Result<Stored, IssueError> {
        let client = &verified.client;
        let credential =
            CredentialKey::from_credential_id(&client.credential_id).ok_or_else(|| {
                IssueError::Internal("registry returned a malformed credential ID".into())
            })?;
        let scopes = match granted_scopes(&client.policy.allowed_apis, &request.scopes) {
            Ok(scopes) => scopes,
            Err(refusal @ IssueError::InvalidScope(_))
                if verified.origin == PolicyOrigin::Remembered =>
            {
                return self
                    .confirm_refusal(credential, &client.policy, refusal)
                    .await;
            }
            Err(refusal) => return Err(refusal),
        };
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
        let (access_token, parsed) = new_token(credential, self.core.hash_keys.current());
        let new = NewToken {
            credential,
            hash: parsed.hash,
            record: &record,
            policy: &client.policy,
            origin: verified.origin,
            limit: client.limit,
            now,
        };
        match self.core.store.issue(&new).await {
            Ok(evicted) => {
                if evicted > 0 {
                    // Per issuance: counted, logged at debug only.
                    self.core.events.evicted(evicted);
                    tracing::debug!(credential_id = %client.credential_id, evicted, "oldest token evicted at the limit");
                }
            }
            Err(StoreIssueError::LimitReached(max)) => {
                return Err(IssueError::TokenLimitReached(max));
            }
            Err(StoreIssueError::StalePolicy { held }) => return Ok(Stored::Stale { held }),
            Err(StoreIssueError::Store(error)) => return Err(store_unavailable(error)),
        }
        self.core.usage.record(
            &client.credential_id,
            std::time::SystemTime::now(),
            request.client_ip,
        );
        Ok(Stored::Issued(IssuedToken {
            access_token,
            expires_in: u32::try_from(expires_at - now).unwrap_or(0),
            scopes: record.scopes,
            credential_id: client.credential_id.clone(),
        }))
    }

    /// A scope outside a remembered verification's allowed APIs: refused
    /// only if the store still holds that verification's policy version.
    /// A newer one may have widened the list (every registry change raises
    /// the version in the store before it commits), so the issuance goes
    /// back to the registry, whose answer decides. The read is on the
    /// refusal path only, and served by the Redis store's exact cache.
    async fn confirm_refusal(
        &self,
        credential: CredentialKey,
        remembered: &CredentialPolicy,
        refusal: IssueError,
    ) -> Result<Stored, IssueError> {
        let held = self
            .core
            .store
            .policy(credential)
            .await
            .map_err(store_unavailable)?;
        match held {
            Some(held)
                if held.version == remembered.version && held.state == PolicyState::Active =>
            {
                Err(refusal)
            }
            held => Ok(Stored::Stale {
                held: held.map(|held| held.version),
            }),
        }
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
            .core
            .verifier
            .authenticate_client(client_id, client_secret, client_ip, false)
            .await
        {
            Ok(verified) => verified.client,
            Err(error) => {
                self.core
                    .auditor
                    .refused(TokenAction::Revoke, &error, client_id, None, client_ip);
                return Err(error);
            }
        };
        let outcome = self.revoke_for(&client, token).await;
        match &outcome {
            Ok(true) => self.core.auditor.revoked(&client, client_ip),
            // Not a live token of this client: nothing changed.
            Ok(false) => {}
            Err(error) => self.core.auditor.refused(
                TokenAction::Revoke,
                error,
                client_id,
                Some(&client),
                client_ip,
            ),
        }
        outcome.map(|_| ())
    }

    /// Revokes `token` if it is a live token of `client`; whether it was.
    async fn revoke_for(
        &self,
        client: &AuthenticatedClient,
        token: &str,
    ) -> Result<bool, IssueError> {
        let Ok(parsed) = parse_token(token, self.core.hash_keys.current()) else {
            return Ok(false);
        };
        if parsed.credential.credential_id() != client.credential_id {
            tracing::debug!(credential_id = %client.credential_id, "revocation of another client's token ignored");
            return Ok(false);
        }
        // The current key's hash first; a token issued before the hash key
        // rotated is stored under an older key's.
        let older = self
            .core
            .hash_keys
            .older()
            .map(|(_, key)| hash_token(token, key));
        for hash in std::iter::once(parsed.hash).chain(older) {
            let revoked = self
                .core
                .store
                .revoke(parsed.credential, &hash)
                .await
                .map_err(store_unavailable)?;
            if revoked {
                self.core.events.revoked();
                tracing::debug!(credential_id = %client.credential_id, "token revoked");
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// What storing a token came to.
enum Stored {
    Issued(IssuedToken),
    /// The store does not hold the verification's policy; it holds `held`.
    Stale {
        held: Option<i64>,
    },
}

/// Refuses a malformed request before anything is asked.
fn check_request(request: &IssueRequest) -> Result<(), IssueError> {
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
    Ok(())
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
