//! Wire messages ↔ domain types.

use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use latchkey_proto::registry::v1 as pb;
use latchkey_registry::{
    Credential, CredentialField, CredentialKind, CredentialState, OnTokenLimit, PolicyOverrides,
    Project, ProjectPolicy, RegistryError, UpdateCredential, UpdateProject,
};
use prost_types::{FieldMask, Timestamp};

pub(crate) fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A wire timestamp as a domain time (microsecond precision, as stored).
pub(crate) fn time(field: &str, value: &Timestamp) -> Result<DateTime<Utc>, RegistryError> {
    u32::try_from(value.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(value.seconds, nanos))
        .map(|time| time.trunc_subsecs(6))
        .ok_or_else(|| RegistryError::invalid(field, "not a valid timestamp"))
}

/// Longest IP address looked at (an IPv6 address in text is at most 45).
const MAX_IP_ADDRESS_LEN: usize = 64;

/// An IP address from an internal message, bounded before it is parsed.
pub(crate) fn ip_address(field: &str, value: &str) -> Result<IpAddr, RegistryError> {
    if value.len() > MAX_IP_ADDRESS_LEN {
        return Err(RegistryError::invalid(
            field,
            format!("longer than {MAX_IP_ADDRESS_LEN} bytes"),
        ));
    }
    value
        .parse()
        .map_err(|_| RegistryError::invalid(field, "not an IP address"))
}

pub(crate) fn optional_time(
    field: &str,
    value: Option<&Timestamp>,
) -> Result<Option<DateTime<Utc>>, RegistryError> {
    value.map(|v| time(field, v)).transpose()
}

pub(crate) fn credential_state(state: CredentialState) -> pb::CredentialState {
    match state {
        CredentialState::Active => pb::CredentialState::Active,
        CredentialState::Disabled => pb::CredentialState::Disabled,
    }
}

pub(crate) fn credential_kind(kind: CredentialKind) -> pb::CredentialKind {
    match kind {
        CredentialKind::Api => pb::CredentialKind::Api,
        CredentialKind::Management => pb::CredentialKind::Management,
    }
}

/// The kind filter of a list request; unspecified lists every kind.
pub(crate) fn kind_filter(
    field: &str,
    value: i32,
) -> Result<Option<CredentialKind>, RegistryError> {
    match pb::CredentialKind::try_from(value) {
        Ok(pb::CredentialKind::Unspecified) => Ok(None),
        Ok(pb::CredentialKind::Api) => Ok(Some(CredentialKind::Api)),
        Ok(pb::CredentialKind::Management) => Ok(Some(CredentialKind::Management)),
        Err(_) => Err(RegistryError::invalid(field, "unknown value")),
    }
}

/// The wire form of a credential; `token_endpoint` is the configured URL
/// clients exchange their secret at, `api_endpoint` its project's API URL.
pub(crate) fn credential(
    value: Credential,
    token_endpoint: &str,
    api_endpoint: String,
) -> pb::Credential {
    pb::Credential {
        token_endpoint: token_endpoint.to_owned(),
        api_endpoint,
        etag: value.etag(),
        kind: credential_kind(value.kind()).into(),
        state: credential_state(value.state).into(),
        allowed_ips: value.allowed_ips.to_strings(),
        expire_time: value.expire_time.map(timestamp),
        create_time: Some(timestamp(value.create_time)),
        update_time: Some(timestamp(value.update_time)),
        last_used_time: value.last_use.map(|last| timestamp(last.time)),
        last_used_ip: value
            .last_use
            .map(|last| last.ip.to_string())
            .unwrap_or_default(),
        id: value.id,
        project_id: value.project_id,
        owner: value.owner,
        name: value.name,
        description: value.description,
        client_id: value.client_id,
        allowed_apis: value.allowed_apis,
    }
}

fn on_token_limit(value: OnTokenLimit) -> pb::OnTokenLimit {
    match value {
        OnTokenLimit::Reject => pb::OnTokenLimit::Reject,
        OnTokenLimit::EvictOldest => pb::OnTokenLimit::EvictOldest,
    }
}

pub(crate) fn policy(value: &ProjectPolicy) -> pb::ProjectPolicy {
    pb::ProjectPolicy {
        max_credentials: Some(value.max_credentials),
        max_credentials_per_owner: Some(value.max_credentials_per_owner),
        max_tokens_per_credential: Some(value.max_tokens_per_credential),
        token_ttl_seconds: Some(value.token_ttl_seconds),
        on_token_limit: Some(on_token_limit(value.on_token_limit).into()),
    }
}

pub(crate) fn project(value: Project, effective: &ProjectPolicy) -> pb::Project {
    pb::Project {
        policy: Some(policy(effective)),
        create_time: Some(timestamp(value.create_time)),
        update_time: Some(timestamp(value.update_time)),
        id: value.id,
        display_name: value.display_name,
        api_endpoint: value.api_endpoint,
    }
}

/// Policy values set in a request; unset fields stay `None`.
pub(crate) fn policy_overrides(
    field: &str,
    value: Option<&pb::ProjectPolicy>,
) -> Result<PolicyOverrides, RegistryError> {
    let Some(value) = value else {
        return Ok(PolicyOverrides::default());
    };
    let on_token_limit = match value.on_token_limit.map(pb::OnTokenLimit::try_from) {
        None | Some(Ok(pb::OnTokenLimit::Unspecified)) => None,
        Some(Ok(pb::OnTokenLimit::Reject)) => Some(OnTokenLimit::Reject),
        Some(Ok(pb::OnTokenLimit::EvictOldest)) => Some(OnTokenLimit::EvictOldest),
        Some(Err(_)) => {
            return Err(RegistryError::invalid(
                format!("{field}.on_token_limit"),
                "unknown value",
            ));
        }
    };
    Ok(PolicyOverrides {
        max_credentials: value.max_credentials,
        max_credentials_per_owner: value.max_credentials_per_owner,
        max_tokens_per_credential: value.max_tokens_per_credential,
        token_ttl_seconds: value.token_ttl_seconds,
        on_token_limit,
    })
}

/// The fields an update mask names (snake_case or camelCase), taken from
/// `credential`, with its etag. A field in the mask but unset in the
/// message is cleared, as AIP-134 describes.
pub(crate) fn credential_update(
    credential: &pb::Credential,
    mask: Option<&FieldMask>,
) -> Result<UpdateCredential, RegistryError> {
    let mut update = UpdateCredential {
        etag: credential.etag.clone(),
        ..UpdateCredential::default()
    };
    for path in mask_paths(mask)? {
        match CredentialField::from_mask_path(path)? {
            CredentialField::Name => update.name = Some(credential.name.clone()),
            CredentialField::Description => {
                update.description = Some(credential.description.clone());
            }
            CredentialField::AllowedApis => {
                update.allowed_apis = Some(credential.allowed_apis.clone());
            }
            CredentialField::AllowedIps => {
                update.allowed_ips = Some(credential.allowed_ips.clone());
            }
            CredentialField::ExpireTime => {
                update.expire_time = Some(optional_time(
                    "credential.expire_time",
                    credential.expire_time.as_ref(),
                )?);
            }
        }
    }
    Ok(update)
}

/// The fields of a project an update mask names (snake_case or camelCase).
pub(crate) fn project_update(
    project: &pb::Project,
    mask: Option<&FieldMask>,
) -> Result<UpdateProject, RegistryError> {
    let mut update = UpdateProject::default();
    for path in mask_paths(mask)? {
        match path.as_str() {
            "display_name" | "displayName" => {
                update.display_name = Some(project.display_name.clone());
            }
            "api_endpoint" | "apiEndpoint" => {
                update.api_endpoint = Some(project.api_endpoint.clone());
            }
            other => {
                return Err(RegistryError::invalid(
                    "update_mask",
                    format!("{other:?} cannot be updated (allowed: display_name, api_endpoint)"),
                ));
            }
        }
    }
    Ok(update)
}

fn mask_paths(mask: Option<&FieldMask>) -> Result<&[String], RegistryError> {
    match mask {
        Some(mask) if !mask.paths.is_empty() => Ok(&mask.paths),
        _ => Err(RegistryError::invalid(
            "update_mask",
            "required: name at least one field",
        )),
    }
}
