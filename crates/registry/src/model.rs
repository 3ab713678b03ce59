//! Projects, policies and credentials as the domain sees them.

use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use latchkey_secrets::{HashKeyId, SecretHash};
use serde::Deserialize;

use latchkey_net::IpAllowlist;

use crate::fields::CredentialField;

/// The current time at the precision the stores keep (microseconds), so a
/// value written and read back compares equal.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// What happens when a credential asks for a token past its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTokenLimit {
    /// Refuse the new token.
    Reject,
    /// Issue it and revoke the credential's oldest live token.
    EvictOldest,
}

/// A project's effective limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectPolicy {
    /// Most API credentials in the project; 0 = unlimited (management
    /// credentials do not count).
    pub max_credentials: u32,
    /// Most API credentials per owner in the project; 0 = unlimited.
    pub max_credentials_per_owner: u32,
    /// Most live tokens per credential.
    pub max_tokens_per_credential: u32,
    /// Lifetime of issued tokens.
    pub token_ttl_seconds: u32,
    /// What happens past `max_tokens_per_credential`.
    pub on_token_limit: OnTokenLimit,
}

impl Default for ProjectPolicy {
    /// The defaults of the design; configuration may replace them.
    fn default() -> Self {
        Self {
            max_credentials: 10,
            max_credentials_per_owner: 0,
            max_tokens_per_credential: 10,
            token_ttl_seconds: 3600,
            on_token_limit: OnTokenLimit::Reject,
        }
    }
}

/// A project's own policy values; `None` follows the configured default, so
/// changing a default reaches every project that did not override it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOverrides {
    /// See [`ProjectPolicy::max_credentials`].
    pub max_credentials: Option<u32>,
    /// See [`ProjectPolicy::max_credentials_per_owner`].
    pub max_credentials_per_owner: Option<u32>,
    /// See [`ProjectPolicy::max_tokens_per_credential`].
    pub max_tokens_per_credential: Option<u32>,
    /// See [`ProjectPolicy::token_ttl_seconds`].
    pub token_ttl_seconds: Option<u32>,
    /// See [`ProjectPolicy::on_token_limit`].
    pub on_token_limit: Option<OnTokenLimit>,
}

impl PolicyOverrides {
    /// The effective policy under `defaults`.
    pub fn resolve(&self, defaults: &ProjectPolicy) -> ProjectPolicy {
        ProjectPolicy {
            max_credentials: self.max_credentials.unwrap_or(defaults.max_credentials),
            max_credentials_per_owner: self
                .max_credentials_per_owner
                .unwrap_or(defaults.max_credentials_per_owner),
            max_tokens_per_credential: self
                .max_tokens_per_credential
                .unwrap_or(defaults.max_tokens_per_credential),
            token_ttl_seconds: self.token_ttl_seconds.unwrap_or(defaults.token_ttl_seconds),
            on_token_limit: self.on_token_limit.unwrap_or(defaults.on_token_limit),
        }
    }

    /// These overrides with every value set in `newer` replaced.
    pub fn merged_with(&self, newer: &PolicyOverrides) -> PolicyOverrides {
        PolicyOverrides {
            max_credentials: newer.max_credentials.or(self.max_credentials),
            max_credentials_per_owner: newer
                .max_credentials_per_owner
                .or(self.max_credentials_per_owner),
            max_tokens_per_credential: newer
                .max_tokens_per_credential
                .or(self.max_tokens_per_credential),
            token_ttl_seconds: newer.token_ttl_seconds.or(self.token_ttl_seconds),
            on_token_limit: newer.on_token_limit.or(self.on_token_limit),
        }
    }

    /// True when no value is set.
    pub fn is_empty(&self) -> bool {
        *self == PolicyOverrides::default()
    }
}

/// A project (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Chosen identifier.
    pub id: String,
    /// Human-readable name.
    pub display_name: String,
    /// The platform's API base URL shown beside the project's
    /// credentials; empty when not set.
    pub api_endpoint: String,
    /// The project's own policy values.
    pub overrides: PolicyOverrides,
    /// Creation time.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
}

/// Whether a credential may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Its secret is accepted.
    Active,
    /// Its secret is refused.
    Disabled,
}

/// The last use of a credential, as reported by the token issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastUse {
    /// When.
    pub time: DateTime<Utc>,
    /// From where.
    pub ip: IpAddr,
}

/// A client credential, without any secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Server-assigned identifier.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// Owning user.
    pub owner: String,
    /// Name, unique in the project.
    pub name: String,
    /// Free text; empty when not given.
    pub description: String,
    /// Public client identifier.
    pub client_id: String,
    /// APIs its tokens may call.
    pub allowed_apis: Vec<String>,
    /// Addresses it may be used from.
    pub allowed_ips: IpAllowlist,
    /// Active or disabled.
    pub state: CredentialState,
    /// Refused from this time on, when set.
    pub expire_time: Option<DateTime<Utc>>,
    /// Creation time.
    pub create_time: DateTime<Utc>,
    /// Last change.
    pub update_time: DateTime<Utc>,
    /// Last use, if any.
    pub last_use: Option<LastUse>,
    /// Increases with every change of what the token side enforces (allowed
    /// APIs and IPs, state, expiry, deletion, revocation), so a late write
    /// there can never undo a newer one.
    pub policy_version: i64,
}

/// One stored secret of a credential: only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// Keyed BLAKE3 hash of the secret.
    pub hash: SecretHash,
    /// The ID of the hash key `hash` was made with.
    pub hash_key_id: HashKeyId,
    /// When the secret was made.
    pub create_time: DateTime<Utc>,
    /// When it stops working (set by a rotation's grace period).
    pub expire_time: Option<DateTime<Utc>>,
}

impl StoredSecret {
    /// Whether the secret still works at `at`.
    pub fn is_live_at(&self, at: DateTime<Utc>) -> bool {
        self.expire_time.is_none_or(|expiry| expiry > at)
    }
}

/// A validated credential ready to be written, with its first secret's hash.
#[derive(Debug, Clone)]
pub struct NewCredential {
    /// The credential's fields (`last_use` is `None`).
    pub credential: Credential,
    /// Its first secret.
    pub secret: StoredSecret,
}

/// A validated partial update; `None` leaves a field as it is. Its fields
/// are those of [`CredentialField`]: the destructuring below makes a new
/// one a compile error until it is listed, applied and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialUpdate {
    /// New name.
    pub name: Option<String>,
    /// New description (empty clears it).
    pub description: Option<String>,
    /// New allowed APIs.
    pub allowed_apis: Option<Vec<String>>,
    /// New allowed IPs.
    pub allowed_ips: Option<IpAllowlist>,
    /// New expiry (`Some(None)` clears it).
    pub expire_time: Option<Option<DateTime<Utc>>>,
    /// Apply only if the credential is still at this version (the caller's
    /// etag, AIP-154); `None`: unconditionally.
    pub expected_version: Option<i64>,
}

impl CredentialUpdate {
    /// The fields this update changes, in [`CredentialField::ALL`] order.
    pub fn fields(&self) -> Vec<CredentialField> {
        let Self {
            name,
            description,
            allowed_apis,
            allowed_ips,
            expire_time,
            expected_version: _,
        } = self;
        let present = [
            (CredentialField::Name, name.is_some()),
            (CredentialField::Description, description.is_some()),
            (CredentialField::AllowedApis, allowed_apis.is_some()),
            (CredentialField::AllowedIps, allowed_ips.is_some()),
            (CredentialField::ExpireTime, expire_time.is_some()),
        ];
        present
            .into_iter()
            .filter_map(|(field, set)| set.then_some(field))
            .collect()
    }

    /// True when no field would change.
    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }

    /// Applies the update to `credential`.
    pub fn apply_to(&self, credential: &mut Credential) {
        let Self {
            name,
            description,
            allowed_apis,
            allowed_ips,
            expire_time,
            expected_version: _,
        } = self;
        if let Some(name) = name {
            credential.name.clone_from(name);
        }
        if let Some(description) = description {
            credential.description.clone_from(description);
        }
        if let Some(apis) = allowed_apis {
            credential.allowed_apis.clone_from(apis);
        }
        if let Some(ips) = allowed_ips {
            credential.allowed_ips.clone_from(ips);
        }
        if let Some(expiry) = expire_time {
            credential.expire_time = *expiry;
        }
    }
}

/// Whether a credential is a program's API key or a management credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// Holds platform APIs (or nothing): counts against the project's
    /// `max_credentials` and `max_credentials_per_owner`.
    Api,
    /// Holds Latchkey scopes only (`registry:`, `credentials:`, `tokens:`):
    /// a console's, a gateway's or a user's login credential, never counted
    /// against API-key quotas.
    Management,
}

impl CredentialKind {
    /// The kind of a credential allowed `apis`. A credential that also holds
    /// a platform API is an API key: adding a Latchkey scope to an API key
    /// must not take it out of the quota.
    pub fn of(apis: &[String]) -> Self {
        if !apis.is_empty() && apis.iter().all(|api| crate::access::is_latchkey_scope(api)) {
            Self::Management
        } else {
            Self::Api
        }
    }
}

impl Credential {
    /// Whether this is an API key or a management credential.
    pub fn kind(&self) -> CredentialKind {
        CredentialKind::of(&self.allowed_apis)
    }

    /// The credential's etag (AIP-154): changes with every change of it.
    pub fn etag(&self) -> String {
        crate::etag::of(self.policy_version)
    }
}

/// A validated change of a project's settings; `None` keeps a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectUpdate {
    /// New display name (empty: the project ID).
    pub display_name: Option<String>,
    /// New API endpoint (empty clears it).
    pub api_endpoint: Option<String>,
}

/// One credential's latest use, as a token issuer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialUse {
    /// The credential.
    pub credential_id: String,
    /// When and from where.
    pub last_use: LastUse,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apis(list: &[&str]) -> Vec<String> {
        list.iter().map(|api| (*api).to_owned()).collect()
    }

    #[test]
    fn only_latchkey_scopes_make_a_management_credential() {
        for management in [
            &["credentials:own"][..],
            &["credentials:manage", "tokens:introspect"],
            &["registry:admin"],
        ] {
            assert_eq!(
                CredentialKind::of(&apis(management)),
                CredentialKind::Management,
                "{management:?}"
            );
        }
        for api_key in [
            &[][..],
            &["orders.read"],
            // Adding a Latchkey scope to an API key keeps it one.
            &["orders.read", "credentials:own"],
            &["credentialsX:own"],
        ] {
            assert_eq!(
                CredentialKind::of(&apis(api_key)),
                CredentialKind::Api,
                "{api_key:?}"
            );
        }
    }
}
