//! Field rules. Each function names the request field it checks, so a refusal
//! reads `allowed_ips[2]: not an IP address or CIDR block`.

use chrono::{DateTime, Utc};
use latchkey_net::IpAllowlist;
use latchkey_secrets::identifier::{self, InvalidIdentifier};

use crate::error::RegistryError;
use crate::model::{PolicyOverrides, ProjectPolicy};

/// Longest credential name.
pub const MAX_NAME_LEN: usize = 64;
/// Longest owner.
pub const MAX_OWNER_LEN: usize = identifier::MAX_OWNER_LEN;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// Longest project display name, in characters.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// Longest API identifier.
pub const MAX_API_LEN: usize = identifier::MAX_API_LEN;
/// Most entries in `allowed_apis` or `allowed_ips`.
pub const MAX_LIST_ENTRIES: usize = identifier::MAX_LIST_ENTRIES;
/// Shortest token lifetime a policy may set.
pub const MIN_TOKEN_TTL_SECONDS: u32 = 1;
/// Longest token lifetime a policy may set.
pub const MAX_TOKEN_TTL_SECONDS: u32 = 86_400;
/// Most live tokens per credential a policy may set.
pub const MAX_TOKENS_PER_CREDENTIAL: u32 = 10_000;
/// Longest project API endpoint URL.
pub const MAX_API_ENDPOINT_LEN: usize = 512;
/// Longest grace period of a rotated secret.
pub const MAX_GRACE_PERIOD_SECONDS: u32 = 30 * 24 * 3600;

fn invalid(field: &str, rule: InvalidIdentifier) -> RegistryError {
    RegistryError::invalid(field, rule.to_string())
}

fn required(field: &str, value: &str) -> Result<(), RegistryError> {
    if value.is_empty() {
        return Err(RegistryError::invalid(field, "required"));
    }
    Ok(())
}

/// A project ID: 3–63 characters of `a-z0-9-`, starting with a letter and not
/// ending with a hyphen (DNS-label-like, so it is safe in URLs and keys).
pub fn project_id(field: &str, value: &str) -> Result<(), RegistryError> {
    required(field, value)?;
    identifier::check_project_id(value).map_err(|rule| invalid(field, rule))
}

/// A credential ID as the server assigns them (a UUID).
pub fn credential_id(field: &str, value: &str) -> Result<(), RegistryError> {
    required(field, value)?;
    identifier::check_credential_id(value).map_err(|rule| invalid(field, rule))
}

/// A credential name: 1–64 characters of letters, digits, spaces and `._-`,
/// starting and ending with a letter or digit.
pub fn credential_name(field: &str, value: &str) -> Result<(), RegistryError> {
    required(field, value)?;
    let bytes = value.as_bytes();
    let valid = bytes.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-'));
    if !valid {
        return Err(RegistryError::invalid(
            field,
            format!(
                "must be 1 to {MAX_NAME_LEN} characters of letters, digits, spaces and '._-', starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// An owner: 1–128 characters of letters, digits and `._@:+-` (user IDs and
/// e-mail addresses fit).
pub fn owner(field: &str, value: &str) -> Result<(), RegistryError> {
    required(field, value)?;
    identifier::check_owner(value).map_err(|rule| invalid(field, rule))
}

/// Free text of at most `max` characters without control characters.
pub fn free_text(field: &str, value: &str, max: usize) -> Result<(), RegistryError> {
    if value.chars().count() > max {
        return Err(RegistryError::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(RegistryError::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Allowed APIs: each 1–128 characters of letters, digits and `._:/-`,
/// starting with a letter (valid OAuth scope tokens); duplicates dropped.
pub fn allowed_apis(field: &str, values: &[String]) -> Result<Vec<String>, RegistryError> {
    if values.len() > MAX_LIST_ENTRIES {
        return Err(RegistryError::invalid(
            field,
            format!("at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    let mut apis: Vec<String> = Vec::with_capacity(values.len());
    for (index, api) in values.iter().enumerate() {
        identifier::check_api(api).map_err(|rule| invalid(&format!("{field}[{index}]"), rule))?;
        if !apis.contains(api) {
            apis.push(api.clone());
        }
    }
    Ok(apis)
}

/// Allowed IPs: addresses and CIDR blocks, normalised.
pub fn allowed_ips(field: &str, values: &[String]) -> Result<IpAllowlist, RegistryError> {
    if values.len() > MAX_LIST_ENTRIES {
        return Err(RegistryError::invalid(
            field,
            format!("at most {MAX_LIST_ENTRIES} entries"),
        ));
    }
    IpAllowlist::parse(values)
        .map_err(|error| RegistryError::invalid(format!("{field}[{}]", error.index), error.reason))
}

/// An expiry, which must lie after `now`.
pub fn expire_time(
    field: &str,
    value: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, RegistryError> {
    match value {
        Some(expiry) if expiry <= now => {
            Err(RegistryError::invalid(field, "must be in the future"))
        }
        other => Ok(other),
    }
}

/// A project's API endpoint: empty (none), or an absolute `https://` or
/// `http://` URL of at most 512 characters with a host, without user
/// information (it is shown to every user of the project), fragment, spaces
/// or control characters.
pub fn api_endpoint(field: &str, value: &str) -> Result<(), RegistryError> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > MAX_API_ENDPOINT_LEN {
        return Err(RegistryError::invalid(
            field,
            format!("longer than {MAX_API_ENDPOINT_LEN} characters"),
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RegistryError::invalid(
            field,
            "must be an ASCII URL without spaces or control characters",
        ));
    }
    let Some(rest) = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
    else {
        return Err(RegistryError::invalid(
            field,
            "must be an absolute URL starting with https:// or http://",
        ));
    };
    if value.contains('#') {
        return Err(RegistryError::invalid(
            field,
            "must not have a fragment (#)",
        ));
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(RegistryError::invalid(
            field,
            "must not contain user information (user:password@)",
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal's colons sit inside its brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_valid = !host.is_empty()
        && if let Some(literal) = host.strip_prefix('[') {
            literal
                .strip_suffix(']')
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        } else {
            host.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
    if !host_valid {
        return Err(RegistryError::invalid(field, "must name a valid host"));
    }
    if let Some(port) = port
        && !port.parse::<u16>().is_ok_and(|port| port > 0)
    {
        return Err(RegistryError::invalid(
            field,
            "port must be a number from 1 to 65535",
        ));
    }
    Ok(())
}

/// Policy overrides: each value set must be in range.
pub fn policy(field: &str, overrides: &PolicyOverrides) -> Result<(), RegistryError> {
    if let Some(tokens) = overrides.max_tokens_per_credential
        && !(1..=MAX_TOKENS_PER_CREDENTIAL).contains(&tokens)
    {
        return Err(RegistryError::invalid(
            format!("{field}.max_tokens_per_credential"),
            format!("must be between 1 and {MAX_TOKENS_PER_CREDENTIAL}"),
        ));
    }
    if let Some(ttl) = overrides.token_ttl_seconds
        && !(MIN_TOKEN_TTL_SECONDS..=MAX_TOKEN_TTL_SECONDS).contains(&ttl)
    {
        return Err(RegistryError::invalid(
            format!("{field}.token_ttl_seconds"),
            format!("must be between {MIN_TOKEN_TTL_SECONDS} and {MAX_TOKEN_TTL_SECONDS}"),
        ));
    }
    Ok(())
}

/// A complete default policy from configuration.
pub fn default_policy(field: &str, policy_value: &ProjectPolicy) -> Result<(), RegistryError> {
    policy(
        field,
        &PolicyOverrides {
            max_tokens_per_credential: Some(policy_value.max_tokens_per_credential),
            token_ttl_seconds: Some(policy_value.token_ttl_seconds),
            ..PolicyOverrides::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(error: RegistryError) -> String {
        match error {
            RegistryError::InvalidArgument { field, .. } => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn api_endpoints_are_absolute_web_urls() {
        for good in [
            "",
            "https://api.example.com",
            "https://api.example.com/v1/",
            "http://localhost:8080/api?tenant=a",
            "https://[2001:db8::1]:8443/v2",
            "https://10.0.0.7",
        ] {
            assert!(api_endpoint("api_endpoint", good).is_ok(), "{good:?}");
        }
        for (bad, reason) in [
            ("api.example.com", "starting with https://"),
            ("ftp://example.com", "starting with https://"),
            ("javascript:alert(1)", "starting with https://"),
            ("https://", "valid host"),
            ("https:///path", "valid host"),
            ("https://user:pw@example.com", "user information"),
            ("https://example.com/#top", "fragment"),
            ("https://exa mple.com", "without spaces"),
            ("https://example.com:99999", "port"),
            ("https://example.com:", "port"),
            ("https://[::1/x", "valid host"),
        ] {
            let error = api_endpoint("api_endpoint", bad).unwrap_err();
            assert!(error.to_string().starts_with("api_endpoint:"), "{error}");
            assert!(error.to_string().contains(reason), "{bad:?}: {error}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_API_ENDPOINT_LEN));
        assert!(api_endpoint("api_endpoint", &long).is_err());
    }

    #[test]
    fn names_accept_console_style_names_and_refuse_the_rest() {
        for good in ["credential-7f3k", "CI deploy key", "a", "v1.2_prod"] {
            assert!(credential_name("name", good).is_ok(), "{good:?}");
        }
        let too_long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            " lead",
            "trail ",
            "-x",
            "tab\tname",
            "naïve",
            too_long.as_str(),
        ] {
            assert_eq!(
                field_of(credential_name("name", bad).unwrap_err()),
                "name",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn project_ids_are_dns_label_like() {
        assert!(project_id("project_id", "ops").is_ok());
        assert!(project_id("project_id", "acme-prod-2").is_ok());
        for bad in ["", "ab", "Ops", "1ops", "ops-", "o_ps", &"a".repeat(64)] {
            assert!(project_id("project_id", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn apis_are_scope_tokens_and_deduplicated() {
        let apis = allowed_apis(
            "allowed_apis",
            &[
                "orders.read".into(),
                "payments:write".into(),
                "orders.read".into(),
            ],
        )
        .unwrap();
        assert_eq!(apis, ["orders.read", "payments:write"]);
        let error = allowed_apis("allowed_apis", &["ok".into(), "has space".into()]).unwrap_err();
        assert_eq!(field_of(error), "allowed_apis[1]");
        let many: Vec<String> = (0..=MAX_LIST_ENTRIES).map(|i| format!("api{i}")).collect();
        assert_eq!(
            field_of(allowed_apis("allowed_apis", &many).unwrap_err()),
            "allowed_apis"
        );
    }

    #[test]
    fn ips_name_the_bad_entry() {
        let error =
            allowed_ips("allowed_ips", &["10.0.0.1".into(), "10.0.0.300".into()]).unwrap_err();
        assert_eq!(field_of(error), "allowed_ips[1]");
    }

    #[test]
    fn expiry_must_be_in_the_future() {
        let now = crate::now();
        assert!(expire_time("expire_time", Some(now), now).is_err());
        assert!(expire_time("expire_time", Some(now + chrono::Duration::seconds(1)), now).is_ok());
        assert_eq!(expire_time("expire_time", None, now).unwrap(), None);
    }

    #[test]
    fn policy_ranges_are_checked_per_field() {
        let bad_ttl = PolicyOverrides {
            token_ttl_seconds: Some(0),
            ..Default::default()
        };
        assert_eq!(
            field_of(policy("policy", &bad_ttl).unwrap_err()),
            "policy.token_ttl_seconds"
        );
        let zero_tokens = PolicyOverrides {
            max_tokens_per_credential: Some(0),
            ..Default::default()
        };
        assert_eq!(
            field_of(policy("policy", &zero_tokens).unwrap_err()),
            "policy.max_tokens_per_credential"
        );
        let unlimited_credentials = PolicyOverrides {
            max_credentials: Some(0),
            ..Default::default()
        };
        assert!(policy("policy", &unlimited_credentials).is_ok());
    }

    #[test]
    fn owner_and_free_text_rules() {
        assert!(owner("owner", "alice@example.com").is_ok());
        assert!(owner("owner", "").is_err());
        assert!(owner("owner", "bob smith").is_err());
        assert!(free_text("description", "Deploys from CI — prod", 256).is_ok());
        assert!(free_text("description", "line\nbreak", 256).is_err());
        assert!(free_text("description", &"é".repeat(257), 256).is_err());
    }
}
