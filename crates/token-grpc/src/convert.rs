//! Wire ↔ domain conversions of the token API.

use latchkey_net::IpAllowlist;
use latchkey_proto::token::v1 as pb;
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

/// A policy sent by the registry.
pub(crate) fn credential_policy(
    value: Option<pb::CredentialPolicy>,
) -> Result<(String, CredentialPolicy), Status> {
    let value = value.ok_or_else(|| Status::invalid_argument("policy: required"))?;
    let state = match pb::PolicyState::try_from(value.state) {
        Ok(pb::PolicyState::Active) => PolicyState::Active,
        Ok(pb::PolicyState::Disabled) => PolicyState::Disabled,
        Ok(pb::PolicyState::Deleted) => PolicyState::Deleted,
        Ok(pb::PolicyState::Unspecified) | Err(_) => {
            return Err(Status::invalid_argument("policy.state: required"));
        }
    };
    let allowed_ips = IpAllowlist::parse(&value.allowed_ips).map_err(|error| {
        Status::invalid_argument(format!(
            "policy.allowed_ips[{}]: {}",
            error.index, error.reason
        ))
    })?;
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
            expire_time: value.expire_time.map(|time| time.seconds),
        },
    ))
}
