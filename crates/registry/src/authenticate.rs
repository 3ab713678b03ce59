//! Client authentication: client ID + secret + caller IP → credential.

use std::fmt;
use std::net::IpAddr;

use latchkey_secrets::{CLIENT_ID, CLIENT_SECRET, HashKeyId, SecretHash};

use crate::error::RegistryError;
use crate::member::effective_credential;
use crate::model::{Credential, CredentialState, ProjectPolicy, StoredSecret, now};
use crate::service::Registry;

/// Why a client was refused. Logged and audited; never told to the client,
/// which only learns "invalid client".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The client ID does not have the client ID format.
    MalformedClientId,
    /// The secret does not have the secret format (or fails its checksum).
    MalformedSecret,
    /// No credential has this client ID.
    UnknownClient,
    /// The secret matches none of the credential's live secrets.
    WrongSecret,
    /// The credential is disabled.
    Disabled,
    /// The credential has expired.
    Expired,
    /// The caller's IP is outside the credential's allowlist.
    IpNotAllowed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MalformedClientId => "malformed_client_id",
            Self::MalformedSecret => "malformed_secret",
            Self::UnknownClient => "unknown_client",
            Self::WrongSecret => "wrong_secret",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::IpNotAllowed => "ip_not_allowed",
        })
    }
}

/// The credential a refused client ID names, for the audit trail of its
/// project (never for the client, which learns only "invalid client").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedCredential {
    /// The credential's ID.
    pub credential_id: String,
    /// Its project.
    pub project_id: String,
}

/// A refused client: why, and which credential its client ID names when it
/// names one (every refusal after the credential was found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRefused {
    /// Why.
    pub reason: Refusal,
    /// The credential, when the client ID names one.
    pub credential: Option<RefusedCredential>,
}

/// The outcome of a failed authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// The client is refused.
    #[error("invalid client ({})", .0.reason)]
    Refused(ClientRefused),
    /// The request or the store failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Longest client ID looked at (the format's are far shorter): longer ones
/// are a malformed request, refused before anything else.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Longest client secret looked at (the format's are far shorter).
pub const MAX_CLIENT_SECRET_LEN: usize = 256;
/// Longest client IP looked at (an IPv6 address in text is at most 45).
pub const MAX_CLIENT_IP_LEN: usize = 64;

/// Refuses a value longer than `max` bytes, naming `field`; says nothing of
/// the value (it may be a secret).
fn bounded(field: &str, value: &str, max: usize) -> Result<(), RegistryError> {
    if value.len() > max {
        return Err(RegistryError::invalid(
            field,
            format!("longer than {max} bytes"),
        ));
    }
    Ok(())
}

/// A credential that passed authentication, with its project's policy.
#[derive(Debug, Clone)]
pub struct AuthenticatedCredential {
    /// The credential.
    pub credential: Credential,
    /// Its project's effective policy.
    pub policy: ProjectPolicy,
    /// When the presented secret stops working; `None` while it has no end.
    pub secret_expire_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl Registry {
    /// Authenticates a client presenting `client_id` and `secret` from
    /// `client_ip`. Malformed values are refused before the store is read.
    pub async fn authenticate(
        &self,
        client_id: &str,
        secret: &str,
        client_ip: &str,
    ) -> Result<AuthenticatedCredential, AuthenticateError> {
        bounded("client_id", client_id, MAX_CLIENT_ID_LEN)?;
        bounded("client_secret", secret, MAX_CLIENT_SECRET_LEN)?;
        bounded("client_ip", client_ip, MAX_CLIENT_IP_LEN)?;
        let client_ip: IpAddr = client_ip
            .parse()
            .map_err(|_| RegistryError::invalid("client_ip", "not an IP address"))?;
        let unknown = |reason| {
            Err(AuthenticateError::Refused(ClientRefused {
                reason,
                credential: None,
            }))
        };
        if CLIENT_ID.check(client_id).is_err() {
            return unknown(Refusal::MalformedClientId);
        }
        if CLIENT_SECRET.check(secret).is_err() {
            return unknown(Refusal::MalformedSecret);
        }
        let Some(record) = self.store().authentication_record(client_id).await? else {
            return unknown(Refusal::UnknownClient);
        };
        // From here on the client ID names a credential: its project sees
        // the refusal in its audit trail.
        let named = RefusedCredential {
            credential_id: record.credential.id.clone(),
            project_id: record.credential.project_id.clone(),
        };
        let refuse = |reason| {
            Err(AuthenticateError::Refused(ClientRefused {
                reason,
                credential: Some(named.clone()),
            }))
        };
        let at = now();
        // The presented secret hashed under each key a live secret names
        // (one, or two while a hash key rotation is under way).
        let live: Vec<&StoredSecret> = record
            .secrets
            .iter()
            .filter(|stored| stored.is_live_at(at))
            .collect();
        let mut presented: Vec<(HashKeyId, SecretHash)> = Vec::with_capacity(1);
        for stored in &live {
            if presented.iter().any(|(id, _)| *id == stored.hash_key_id) {
                continue;
            }
            // The start-up check refuses a database whose live secrets name
            // a key that is not configured; one seen here anyway (a secret
            // written meanwhile by a newer replica) cannot match.
            if let Some(key) = self.hash_keys().get(stored.hash_key_id) {
                presented.push((stored.hash_key_id, key.hash(secret)));
            }
        }
        // Compare with every live secret (each comparison constant-time) so
        // the time taken does not depend on which one matched.
        // Also note when the matching secret ends (secrets are 256 random
        // bits: at most one matches).
        let mut matched = false;
        let mut secret_expire_time = None;
        for stored in live {
            let same = presented
                .iter()
                .any(|(id, hash)| *id == stored.hash_key_id && *hash == stored.hash);
            if same {
                secret_expire_time = stored.expire_time;
            }
            matched |= same;
        }
        if !matched {
            return refuse(Refusal::WrongSecret);
        }
        // A member's ceiling and state bound the credential here as on
        // the token side, so a fresh token only gets what they allow.
        let credential = effective_credential(&record.credential, record.member.as_ref());
        if credential.state == CredentialState::Disabled {
            return refuse(Refusal::Disabled);
        }
        if credential.expire_time.is_some_and(|expiry| expiry <= at) {
            return refuse(Refusal::Expired);
        }
        if !credential.allowed_ips.allows(client_ip) {
            return refuse(Refusal::IpNotAllowed);
        }
        Ok(AuthenticatedCredential {
            credential,
            policy: record.policy,
            secret_expire_time,
        })
    }
}
