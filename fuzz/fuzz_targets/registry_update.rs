//! The registry's update masks and list paging (`latchkey_registry`): an
//! `UpdateCredential` built from mask paths the way the gRPC and HTTP
//! transports build it, validated for a caller; page tokens, page sizes
//! and `order_by`.
//!
//! Input: `key=value` lines: `mask=` update-mask paths, `name=`,
//! `description=`, `api=`, `ip=`, `expire=` (Unix seconds) and `etag=` the
//! new values, `scope=` the caller's scopes (none: the bootstrap admin);
//! `page_size=`, `page_token=`, `filter=`, `order_by=`, and `micros=` /
//! `id=` a position to encode.
//!
//! Holds: no panic; every masked field and only those is updated; a valid
//! update's allowed IPs print back to the same list and its APIs are
//! distinct; no caller but an admin grants a Latchkey scope it does not
//! hold; a page token that is accepted continues from the same position
//! when re-encoded, and is refused for another filter or order; every page
//! size served is within 1..=MAX_PAGE_SIZE.

#![no_main]

use chrono::{DateTime, Utc};
use latchkey_registry::{
    ADMIN_SCOPE, Caller, CredentialField, IpAllowlist, ListOrder, MAX_PAGE_SIZE, PageToken,
    Position, UpdateCredential, is_latchkey_scope,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(fields) = latchkey_fuzz::fields(data) else {
        return;
    };
    let values = |key: &str| -> Vec<String> {
        fields
            .iter()
            .filter(|(name, _)| *name == key)
            .map(|(_, value)| (*value).to_owned())
            .collect()
    };
    let first = |key: &str| values(key).into_iter().next();
    update(&values, &first);
    paging(&first);
});

/// An update as a transport builds it from its mask (a masked field unset
/// in the message is cleared, AIP-134), then the domain's validation.
fn update(values: &dyn Fn(&str) -> Vec<String>, first: &dyn Fn(&str) -> Option<String>) {
    let paths = values("mask");
    if paths.is_empty() {
        return;
    }
    let mut update = UpdateCredential {
        etag: first("etag").unwrap_or_default(),
        ..UpdateCredential::default()
    };
    let mut masked = Vec::new();
    for path in &paths {
        let Ok(field) = CredentialField::from_mask_path(path) else {
            assert!(
                CredentialField::ALL
                    .iter()
                    .all(|field| path != field.path() && path != field.json_name())
            );
            return;
        };
        assert!(path == field.path() || path == field.json_name());
        masked.push(field);
        match field {
            CredentialField::Name => update.name = Some(first("name").unwrap_or_default()),
            CredentialField::Description => {
                update.description = Some(first("description").unwrap_or_default());
            }
            CredentialField::AllowedApis => update.allowed_apis = Some(values("api")),
            CredentialField::AllowedIps => update.allowed_ips = Some(values("ip")),
            CredentialField::ExpireTime => {
                update.expire_time = Some(
                    first("expire")
                        .and_then(|text| text.parse::<i64>().ok())
                        .and_then(|seconds| DateTime::from_timestamp(seconds, 0)),
                );
            }
        }
    }
    let scopes = values("scope");
    let caller = if scopes.is_empty() {
        Caller::bootstrap()
    } else {
        Caller {
            credential_id: "0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0b".to_owned(),
            project_id: "fuzz".to_owned(),
            owner: "fuzzer".to_owned(),
            scopes: scopes.clone(),
            address: None,
            on_behalf_of: None,
            own_ceiling: None,
        }
    };
    let admin = caller.scopes.iter().any(|scope| scope == ADMIN_SCOPE);
    let etag_sent = !update.etag.is_empty();
    let now: DateTime<Utc> = DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
    let Ok(valid) = update.validate(&caller, now) else {
        return;
    };
    assert_eq!(
        valid.name.is_some(),
        masked.contains(&CredentialField::Name)
    );
    assert_eq!(
        valid.description.is_some(),
        masked.contains(&CredentialField::Description)
    );
    assert_eq!(
        valid.allowed_apis.is_some(),
        masked.contains(&CredentialField::AllowedApis)
    );
    assert_eq!(
        valid.allowed_ips.is_some(),
        masked.contains(&CredentialField::AllowedIps)
    );
    assert_eq!(
        valid.expire_time.is_some(),
        masked.contains(&CredentialField::ExpireTime)
    );
    assert_eq!(valid.expected_version.is_some(), etag_sent);
    if let Some(Some(expiry)) = valid.expire_time {
        assert!(expiry > now);
    }
    if let Some(ips) = &valid.allowed_ips {
        assert_eq!(
            &IpAllowlist::parse(&ips.to_strings()).expect("printed"),
            ips
        );
    }
    if let Some(apis) = &valid.allowed_apis {
        for (index, api) in apis.iter().enumerate() {
            assert!(!apis[..index].contains(api), "duplicate {api:?}");
            if !admin && is_latchkey_scope(api) {
                assert!(caller.scopes.contains(api), "escalation to {api:?}");
            }
        }
    }
}

fn paging(first: &dyn Fn(&str) -> Option<String>) {
    let filter = first("filter").unwrap_or_default();
    let size = first("page_size")
        .and_then(|text| text.parse::<i32>().ok())
        .unwrap_or(0);
    let token = first("page_token").unwrap_or_default();
    if let Ok(request) = PageToken::request(size, &token, &filter) {
        assert!((1..=MAX_PAGE_SIZE).contains(&request.size));
        if let Some(position) = &request.after {
            let again = PageToken::encode(position, &filter);
            let reread = PageToken::request(size, &again, &filter).expect("its own token");
            assert_eq!(reread.after.as_ref(), Some(position));
            // Bound to its filter: another one is refused.
            assert!(PageToken::request(size, &again, &format!("{filter}x")).is_err());
        }
    }
    if let Ok(order) = ListOrder::parse(&first("order_by").unwrap_or_default())
        && let Ok(request) = PageToken::ordered_request(size, &token, &filter, order)
    {
        assert_eq!(request.order, order);
        if let Some(position) = &request.after {
            let other = match order {
                ListOrder::OldestFirst => ListOrder::NewestFirst,
                ListOrder::NewestFirst => ListOrder::OldestFirst,
            };
            let again = PageToken::encode(position, &PageToken::bound_filter(&filter, order));
            assert!(PageToken::ordered_request(size, &again, &filter, other).is_err());
        }
    }
    // Any position the registry hands out (its IDs hold no line break)
    // comes back from its token.
    let id = first("id").unwrap_or_default();
    if let Some(create_time) = first("micros")
        .and_then(|text| text.parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_micros)
        && !id.contains('\n')
    {
        let position = Position { create_time, id };
        let token = PageToken::encode(&position, &filter);
        let request = PageToken::request(1, &token, &filter).expect("a token of ours");
        assert_eq!(request.after, Some(position));
    }
}
