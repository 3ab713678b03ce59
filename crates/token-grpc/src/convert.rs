//! Wire ↔ domain conversions of the token API.

use latchkey_net::IpAllowlist;
use latchkey_proto::token::v1 as pb;
use latchkey_secrets::CLIENT_ID;
use latchkey_secrets::identifier::{self, InvalidIdentifier, MAX_LIST_ENTRIES};
use latchkey_token::{CredentialPolicy, InactiveReason, PolicyState};
use prost_types::Timestamp;
use tonic::Status;

pub(crate) fn timestamp(unix_seconds: i64) -> Timestamp {
    Timestamp {
        seconds: unix_seconds,
        nanos: 0,
    }
}

pub(crate) fn inactive_reason(reason: InactiveReason) -> pb::InactiveReason {
    match reason {
        InactiveReason::Malformed => pb::InactiveReason::Malformed,
        InactiveReason::Unknown => pb::InactiveReason::Unknown,
        InactiveReason::Expired => pb::InactiveReason::Expired,
        InactiveReason::Revoked => pb::InactiveReason::Revoked,
        InactiveReason::CredentialDisabled => pb::InactiveReason::CredentialDisabled,
        InactiveReason::CredentialExpired => pb::InactiveReason::CredentialExpired,
        InactiveReason::IpNotAllowed => pb::InactiveReason::IpNotAllowed,
        InactiveReason::ScopeNotAllowed => pb::InactiveReason::ScopeNotAllowed,
    }
}

/// Highest policy version accepted: versions are counters the registry
/// increases by one per change, and 2^53 keeps them exact wherever a JSON
/// number carries them.
pub(crate) const MAX_POLICY_VERSION: i64 = (1 << 53) - 1;

/// Latest expiry accepted (9999-12-31T23:59:59Z, the end of RFC 3339 time).
const MAX_EXPIRE_SECONDS: i64 = 253_402_300_799;

fn invalid(field: &str, reason: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {reason}"))
}

/// Checks a required identifier with `rule`.
fn required_identifier(
    field: &str,
    value: &str,
    rule: fn(&str) -> Result<(), InvalidIdentifier>,
) -> Result<(), Status> {
    if value.is_empty() {
        return Err(invalid(field, "required"));
    }
    rule(value).map_err(|error| invalid(field, error))
}

/// A policy sent by the registry, checked field by field with the bounds of
/// the registry's public API (the token store keeps what is accepted here
/// for a day, so nothing unbounded may pass).
pub(crate) fn credential_policy(
    value: Option<pb::CredentialPolicy>,
) -> Result<(String, CredentialPolicy), Status> {
    let value = value.ok_or_else(|| invalid("policy", "required"))?;
    required_identifier(
        "policy.credential_id",
        &value.credential_id,
        identifier::check_credential_id,
    )?;
    if !(1..=MAX_POLICY_VERSION).contains(&value.version) {
        return Err(invalid(
            "policy.version",
            format!("must be between 1 and {MAX_POLICY_VERSION}"),
        ));
    }
    let state = match pb::PolicyState::try_from(value.state) {
        Ok(pb::PolicyState::Active) => PolicyState::Active,
        Ok(pb::PolicyState::Disabled) => PolicyState::Disabled,
        Ok(pb::PolicyState::Deleted) => PolicyState::Deleted,
        Ok(pb::PolicyState::Unspecified) | Err(_) => {
            return Err(invalid("policy.state", "required"));
        }
    };
    if value.client_id.is_empty() {
        return Err(invalid("policy.client_id", "required"));
    }
    if CLIENT_ID.check(&value.client_id).is_err() {
        return Err(invalid("policy.client_id", "not a client ID"));
    }
    required_identifier(
        "policy.project_id",
        &value.project_id,
        identifier::check_project_id,
    )?;
    required_identifier("policy.owner", &value.owner, identifier::check_owner)?;
    if value.allowed_apis.len() > MAX_LIST_ENTRIES {
        return Err(invalid(
            "policy.allowed_apis",
            format!("at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    for (index, api) in value.allowed_apis.iter().enumerate() {
        identifier::check_api(api)
            .map_err(|error| invalid(&format!("policy.allowed_apis[{index}]"), error))?;
    }
    if value.allowed_ips.len() > MAX_LIST_ENTRIES {
        return Err(invalid(
            "policy.allowed_ips",
            format!("at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    let allowed_ips = IpAllowlist::parse(&value.allowed_ips).map_err(|error| {
        invalid(
            &format!("policy.allowed_ips[{}]", error.index),
            error.reason,
        )
    })?;
    let expire_time = value.expire_time.map(expire_seconds).transpose()?;
    Ok((
        value.credential_id,
        CredentialPolicy {
            version: value.version,
            state,
            client_id: value.client_id,
            project_id: value.project_id,
            owner: value.owner,
            allowed_apis: value.allowed_apis,
            allowed_ips,
            expire_time,
        },
    ))
}

/// A credential's expiry: a valid timestamp between the epoch and the end of
/// year 9999. A past expiry is fine (the registry disables or deletes
/// expired credentials too).
fn expire_seconds(time: Timestamp) -> Result<i64, Status> {
    if !(0..=MAX_EXPIRE_SECONDS).contains(&time.seconds)
        || !(0..1_000_000_000).contains(&time.nanos)
    {
        return Err(invalid(
            "policy.expire_time",
            "must be a valid time between 1970 and 9999",
        ));
    }
    Ok(time.seconds)
}
