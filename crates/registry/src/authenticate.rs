//! Client authentication: client ID + secret + caller IP → credential.

use std::fmt;
use std::net::IpAddr;

use latchkey_secrets::{CLIENT_ID, CLIENT_SECRET};

use crate::error::RegistryError;
use crate::model::{Credential, CredentialState, ProjectPolicy, now};
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

/// The outcome of a failed authentication.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// The client is refused for the given reason.
    #[error("invalid client ({0})")]
    Refused(Refusal),
    /// The request or the store failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
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
        let client_ip: IpAddr = client_ip
            .parse()
            .map_err(|_| RegistryError::invalid("client_ip", "not an IP address"))?;
        let refuse = |reason| Err(AuthenticateError::Refused(reason));
        if CLIENT_ID.check(client_id).is_err() {
            return refuse(Refusal::MalformedClientId);
        }
        if CLIENT_SECRET.check(secret).is_err() {
            return refuse(Refusal::MalformedSecret);
        }
        let Some(record) = self.store().authentication_record(client_id).await? else {
            return refuse(Refusal::UnknownClient);
        };
        let at = now();
        let presented = self.hash_key().hash(secret);
        // Compare with every live secret (each comparison constant-time) so
        // the time taken does not depend on which one matched.
        // Also note when the matching secret ends (secrets are 256 random
        // bits: at most one matches).
        let mut matched = false;
        let mut secret_expire_time = None;
        for stored in record.secrets.iter().filter(|stored| stored.is_live_at(at)) {
            let same = stored.hash == presented;
            if same {
                secret_expire_time = stored.expire_time;
            }
            matched |= same;
        }
        if !matched {
            return refuse(Refusal::WrongSecret);
        }
        let credential = record.credential;
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
