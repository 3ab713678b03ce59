//! Envoy's ext_authz `Check` (`latchkey_token_envoy`): a protobuf
//! `CheckRequest` mapped to a gateway introspection (the `Authorization`
//! header, the caller's address, the route's scopes, identity headers the
//! client sent) and decided over the in-process token store holding one
//! live token.
//!
//! Input: one byte choosing how the gateway authenticates (valid Basic,
//! none, a wrong secret, a bearer token that is no gateway's, two
//! headers), then the `CheckRequest` in protobuf.
//!
//! Holds: no panic, never a gRPC error nor an error response (Envoy would
//! apply `failure_mode_allow` to either), always an allow or a denial; a request is allowed only for an authenticated
//! gateway and a request carrying the stored token; an allow removes or
//! overwrites every `x-latchkey-*` header the client sent; no answer
//! carries the token or the gateway's secret.

#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use latchkey_net::IpAllowlist;
use latchkey_token::{
    AuthenticatedClient, ClientAuthenticator, ClientRefusal, CredentialPolicy, IssueError,
    LimitPolicy, NewToken, PolicyOrigin, PolicyState, TokenRecord, TokenService, TokenStore,
    UsageTracker, parse_token, unix_now,
};
use latchkey_token_envoy::EnvoyAuthorizationService;
use latchkey_token_store::MemoryTokenStore;
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// The gateway's made-up credentials.
const GATEWAY_ID: &str = "lkc_fuzzgateway";
const GATEWAY_SECRET: &str = "lks_fuzz-gateway-secret";
const GATEWAY_CREDENTIAL: &str = "0190a6b4-1c2d-7e3f-8a4b-5c6d7e8f9a0c";

/// The registry: it knows the gateway, holding `tokens:introspect`.
#[derive(Debug)]
struct OneGateway;

#[async_trait::async_trait]
impl ClientAuthenticator for OneGateway {
    async fn authenticate(
        &self,
        client_id: &str,
        client_secret: &str,
        _: IpAddr,
    ) -> Result<AuthenticatedClient, IssueError> {
        if (client_id, client_secret) != (GATEWAY_ID, GATEWAY_SECRET) {
            return Err(IssueError::InvalidClient(ClientRefusal::default()));
        }
        Ok(AuthenticatedClient {
            credential_id: GATEWAY_CREDENTIAL.to_owned(),
            policy: policy(GATEWAY_ID, &["tokens:introspect"], &[]),
            limit: LIMIT,
            token_ttl_seconds: 3600,
            secret_expires_at: None,
        })
    }
}

const LIMIT: LimitPolicy = LimitPolicy {
    max_tokens: 10,
    evict_oldest: false,
};

fn policy(client_id: &str, apis: &[&str], ips: &[&str]) -> CredentialPolicy {
    CredentialPolicy {
        version: 1,
        state: PolicyState::Active,
        client_id: client_id.to_owned(),
        project_id: "fuzz".to_owned(),
        owner: "fuzzer".to_owned(),
        allowed_apis: apis.iter().map(|&api| api.to_owned()).collect(),
        allowed_ips: IpAllowlist::parse(ips).expect("allowlist"),
        expire_time: None,
    }
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
});
static TOKEN: LazyLock<String> = LazyLock::new(latchkey_fuzz::token);

/// A fresh service (so no failure count carries over between inputs)
/// whose store holds [`TOKEN`], granted `orders.read` from 10.0.0.0/8 and
/// 2001:db8::/32.
async fn service() -> EnvoyAuthorizationService {
    let key = latchkey_fuzz::hash_key();
    let store = Arc::new(MemoryTokenStore::new());
    let parsed = parse_token(&TOKEN, &key).expect("a well-formed token");
    let now = unix_now();
    let record = TokenRecord {
        issued_at: now,
        expires_at: now + 3600,
        scopes: vec!["orders.read".to_owned()],
    };
    let client = policy(
        "lkc_fuzzclient",
        &["orders.read", "orders.write"],
        &["10.0.0.0/8", "2001:db8::/32"],
    );
    store
        .issue(&NewToken {
            credential: parsed.credential,
            hash: parsed.hash,
            record: &record,
            policy: &client,
            origin: PolicyOrigin::Registry,
            limit: LIMIT,
            now,
        })
        .await
        .expect("stored");
    let tokens = TokenService::new(
        store,
        Arc::new(OneGateway),
        key,
        Arc::new(UsageTracker::default()),
    );
    EnvoyAuthorizationService::new(tokens.introspector().clone())
}

fn basic(client_id: &str, client_secret: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{client_secret}"))
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, message)) = data.split_first() else {
        return;
    };
    let Ok(request) = CheckRequest::decode(message) else {
        return;
    };
    let gateway: Vec<String> = match mode % 5 {
        0 => vec![basic(GATEWAY_ID, GATEWAY_SECRET)],
        1 => vec![],
        2 => vec![basic(GATEWAY_ID, "lks_not-the-secret")],
        3 => vec![format!("Bearer {}", *TOKEN)],
        _ => vec![basic(GATEWAY_ID, GATEWAY_SECRET); 2],
    };
    let sent: Vec<String> = request
        .attributes
        .iter()
        .filter_map(|attributes| attributes.request.as_ref()?.http.as_ref())
        .flat_map(|http| {
            let names = http.headers.keys().cloned();
            let raw = http
                .header_map
                .iter()
                .flat_map(|map| map.headers.iter().map(|header| header.key.clone()));
            names.chain(raw).collect::<Vec<_>>()
        })
        .map(|name| name.to_ascii_lowercase())
        .filter(|name| name.starts_with("x-latchkey-"))
        .collect();
    let carries_token = message
        .windows(TOKEN.len())
        .any(|window| window == TOKEN.as_bytes());

    let response = RUNTIME.block_on(async {
        let service = service().await;
        let mut call = tonic::Request::new(request);
        for value in &gateway {
            call.metadata_mut()
                .append("authorization", value.parse().expect("ASCII"));
        }
        service.check(call).await
    });
    let response = response.expect("never a gRPC error").into_inner();
    let code = response.status.as_ref().expect("a status").code;
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            assert_eq!(code, 0);
            assert_eq!(
                mode % 5,
                0,
                "allowed for a gateway that did not authenticate"
            );
            assert!(carries_token, "allowed without the token");
            for name in &sent {
                let overwritten = ok
                    .headers
                    .iter()
                    .filter_map(|option| option.header.as_ref())
                    .any(|header| header.key.eq_ignore_ascii_case(name));
                assert!(
                    overwritten || ok.headers_to_remove.contains(name),
                    "client's {name} reaches the upstream"
                );
            }
        }
        Some(HttpResponse::DeniedResponse(_)) => assert_ne!(code, 0),
        // An error response is subject to `failure_mode_allow`: never sent.
        Some(HttpResponse::ErrorResponse(_)) | None => {
            panic!("not an allow or a denial: {response:?}")
        }
    }
    let text = format!("{response:?}");
    assert!(!text.contains(&*TOKEN) && !text.contains(GATEWAY_SECRET));
});
