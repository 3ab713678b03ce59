//! Rows ↔ domain values.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use latchkey_registry::{
    AuditEvent, Credential, CredentialState, IpAllowlist, LastUse, OnTokenLimit, PolicyOverrides,
    Project, RegistryError, StoredSecret,
};
use latchkey_secrets::{HashKeyId, SecretHash};

use crate::entity::{audit_event, credential, credential_secret, project};

pub(crate) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(crate) fn corrupt(what: &str) -> RegistryError {
    RegistryError::Internal(format!("corrupt stored value: {what}").into())
}

pub(crate) fn time(value: i64) -> Result<DateTime<Utc>, RegistryError> {
    DateTime::from_timestamp_micros(value).ok_or_else(|| corrupt("timestamp"))
}

fn optional_time(value: Option<i64>) -> Result<Option<DateTime<Utc>>, RegistryError> {
    value.map(time).transpose()
}

fn limit(value: Option<i64>) -> Result<Option<u32>, RegistryError> {
    value
        .map(|v| u32::try_from(v).map_err(|_| corrupt("policy limit")))
        .transpose()
}

pub(crate) fn on_token_limit_text(value: OnTokenLimit) -> &'static str {
    match value {
        OnTokenLimit::Reject => "reject",
        OnTokenLimit::EvictOldest => "evict_oldest",
    }
}

fn on_token_limit(text: &str) -> Result<OnTokenLimit, RegistryError> {
    match text {
        "reject" => Ok(OnTokenLimit::Reject),
        "evict_oldest" => Ok(OnTokenLimit::EvictOldest),
        _ => Err(corrupt("on_token_limit")),
    }
}

pub(crate) fn state_text(state: CredentialState) -> &'static str {
    match state {
        CredentialState::Active => "active",
        CredentialState::Disabled => "disabled",
    }
}

pub(crate) fn join_list(items: &[String]) -> String {
    items.join(" ")
}

pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

pub(crate) fn project_from_row(row: project::Model) -> Result<Project, RegistryError> {
    Ok(Project {
        overrides: PolicyOverrides {
            max_credentials: limit(row.max_credentials)?,
            max_credentials_per_owner: limit(row.max_credentials_per_owner)?,
            max_tokens_per_credential: limit(row.max_tokens_per_credential)?,
            token_ttl_seconds: limit(row.token_ttl_seconds)?,
            on_token_limit: row
                .on_token_limit
                .as_deref()
                .map(on_token_limit)
                .transpose()?,
        },
        id: row.id,
        display_name: row.display_name,
        api_endpoint: row.api_endpoint,
        create_time: time(row.create_time)?,
        update_time: time(row.update_time)?,
    })
}

pub(crate) fn credential_from_row(row: credential::Model) -> Result<Credential, RegistryError> {
    let state = match row.state.as_str() {
        "active" => CredentialState::Active,
        "disabled" => CredentialState::Disabled,
        _ => return Err(corrupt("credential state")),
    };
    let allowed_ips =
        IpAllowlist::parse(&split_list(&row.allowed_ips)).map_err(|_| corrupt("allowed_ips"))?;
    let last_use = match (row.last_used_time, row.last_used_ip) {
        (Some(at), Some(ip)) => Some(LastUse {
            time: time(at)?,
            ip: ip.parse::<IpAddr>().map_err(|_| corrupt("last_used_ip"))?,
        }),
        _ => None,
    };
    Ok(Credential {
        id: row.id,
        project_id: row.project_id,
        owner: row.owner,
        name: row.name,
        description: row.description,
        client_id: row.client_id,
        allowed_apis: split_list(&row.allowed_apis),
        allowed_ips,
        state,
        expire_time: optional_time(row.expire_time)?,
        create_time: time(row.create_time)?,
        update_time: time(row.update_time)?,
        last_use,
        policy_version: row.policy_version,
    })
}

pub(crate) fn secret_from_row(
    row: credential_secret::Model,
) -> Result<StoredSecret, RegistryError> {
    Ok(StoredSecret {
        hash: SecretHash::from_slice(&row.secret_hash).ok_or_else(|| corrupt("secret hash"))?,
        hash_key_id: HashKeyId::try_from(row.hash_key_id).map_err(|_| corrupt("hash key ID"))?,
        create_time: time(row.create_time)?,
        expire_time: optional_time(row.expire_time)?,
    })
}

pub(crate) fn audit_row(event: &AuditEvent) -> audit_event::ActiveModel {
    use sea_orm::ActiveValue::Set;
    audit_event::ActiveModel {
        id: Set(event.id.clone()),
        time: Set(micros(event.time)),
        actor: Set(event.actor.clone()),
        on_behalf_of: Set(event.on_behalf_of.clone()),
        action: Set(event.action.as_str().to_owned()),
        project_id: Set(event.project_id.clone()),
        credential_id: Set(event.credential_id.clone()),
        source_ip: Set(event.source_ip.map(|ip| ip.to_string()).unwrap_or_default()),
        outcome: Set(event.outcome.as_str().to_owned()),
        detail: Set(event.detail.clone()),
    }
}

pub(crate) fn audit_from_row(row: audit_event::Model) -> Result<AuditEvent, RegistryError> {
    Ok(AuditEvent {
        time: time(row.time)?,
        action: row.action.parse().map_err(|()| corrupt("audit action"))?,
        outcome: row.outcome.parse().map_err(|()| corrupt("audit outcome"))?,
        source_ip: if row.source_ip.is_empty() {
            None
        } else {
            Some(
                row.source_ip
                    .parse::<IpAddr>()
                    .map_err(|_| corrupt("audit source_ip"))?,
            )
        },
        id: row.id,
        actor: row.actor,
        on_behalf_of: row.on_behalf_of,
        project_id: row.project_id,
        credential_id: row.credential_id,
        detail: row.detail,
    })
}
