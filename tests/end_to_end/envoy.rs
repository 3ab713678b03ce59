//! Envoy ext_authz end to end: the issuer's `Authorization/Check`, asked the
//! way Envoy's `ext_authz` filter asks it, allows good tokens with the
//! credential's identity and refuses the rest with 401 or 403 (400 for two
//! `Authorization` headers in one request).

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::socket_address::{PortSpecifier, Protocol};
use envoy_types::pb::envoy::config::core::v3::{
    Address, HeaderMap, HeaderValue, HeaderValueOption, SocketAddress,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, OkHttpResponse,
};
use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Stack, StackBackend};

use crate::support::{Client, credential, eventually, issue, project_with_client};

/// google.rpc codes Envoy reads from a `CheckResponse`.
const OK: i32 = 0;
const INVALID_ARGUMENT: i32 = 3;
const PERMISSION_DENIED: i32 = 7;
const UNAUTHENTICATED: i32 = 16;

const NO_TOKEN_CHALLENGE: &str = r#"Bearer realm="latchkey""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="latchkey", error="invalid_token""#;
const INSUFFICIENT_SCOPE_CHALLENGE: &str = r#"Bearer realm="latchkey", error="insufficient_scope""#;
const INVALID_REQUEST_CHALLENGE: &str = r#"Bearer realm="latchkey", error="invalid_request""#;

/// A `CheckRequest` as Envoy builds one for `GET /orders` from `source_ip`:
/// lower-cased headers (pseudo-headers included) in `http.headers`, the
/// peer in `source`, and the route's `context_extensions` (`scope`).
pub(crate) fn envoy_check(
    source_ip: &str,
    headers: &[(&str, &str)],
    scope: Option<&str>,
) -> CheckRequest {
    let mut all: HashMap<String, String> = [
        (":authority", "api.example.com"),
        (":method", "GET"),
        (":path", "/orders"),
        (":scheme", "https"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "9f1c2a53-4d1e-4b8a-9a57-2c1b0e6f7d11"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    all.extend(
        headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned())),
    );
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer(source_ip, 54_321)),
            destination: Some(peer("127.0.0.1", 10_000)),
            request: Some(Request {
                http: Some(HttpRequest {
                    id: "4521936301716185313".into(),
                    method: "GET".into(),
                    path: "/orders".into(),
                    host: "api.example.com".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/1.1".into(),
                    headers: all,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: scope
                .map(|scope| HashMap::from([("scope".to_owned(), scope.to_owned())]))
                .unwrap_or_default(),
            ..Default::default()
        }),
    }
}

/// The same request as Envoy sends it with `encode_raw_headers: true`: the
/// headers as raw bytes in `header_map`, `headers` left empty.
fn with_raw_headers(mut request: CheckRequest) -> CheckRequest {
    let http = request
        .attributes
        .as_mut()
        .and_then(|attributes| attributes.request.as_mut())
        .and_then(|request| request.http.as_mut())
        .unwrap();
    http.header_map = Some(HeaderMap {
        headers: http
            .headers
            .drain()
            .map(|(key, value)| HeaderValue {
                key,
                value: String::new(),
                raw_value: value.into_bytes(),
            })
            .collect(),
    });
    request
}

fn peer(ip: &str, port: u32) -> Peer {
    Peer {
        address: Some(Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                protocol: Protocol::Tcp.into(),
                address: ip.to_owned(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }),
        ..Default::default()
    }
}

/// Asks the issuer over the generated ext_authz client, as Envoy would:
/// authenticated as a gateway by the `Check` call's `authorization`
/// metadata (Envoy's `grpc_service.initial_metadata`), here the stack
/// admin's credential, which holds `tokens:introspect`.
pub(crate) async fn check(stack: &Stack, request: CheckRequest) -> CheckResponse {
    check_as(stack, request, &[&stack.admin.basic_header()]).await
}

/// Asks sending these `authorization` metadata values.
async fn check_as(stack: &Stack, request: CheckRequest, authorization: &[&str]) -> CheckResponse {
    let mut request = tonic::Request::new(request);
    for value in authorization {
        request
            .metadata_mut()
            .append("authorization", value.parse().unwrap());
    }
    AuthorizationClient::new(stack.issuer.channel())
        .check(request)
        .await
        .unwrap()
        .into_inner()
}

/// Asks for `GET /orders` from `source_ip` with `Authorization: Bearer token`.
async fn check_bearer(
    stack: &Stack,
    source_ip: &str,
    token: &str,
    scope: Option<&str>,
) -> CheckResponse {
    let authorization = format!("Bearer {token}");
    check(
        stack,
        envoy_check(source_ip, &[("authorization", &authorization)], scope),
    )
    .await
}

/// The allow, asserting it is one and that every header overwrites.
#[track_caller]
fn allowed(response: &CheckResponse) -> &OkHttpResponse {
    assert_eq!(
        response.status.as_ref().map(|status| status.code),
        Some(OK),
        "{response:?}"
    );
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else {
        panic!("an allow carries an OkHttpResponse: {response:?}");
    };
    for option in &ok.headers {
        assert_eq!(
            option.append_action(),
            HeaderAppendAction::OverwriteIfExistsOrAdd,
            "{option:?}"
        );
    }
    ok
}

/// The headers an allow sets for the upstream.
fn set_headers(headers: &[HeaderValueOption]) -> HashMap<&str, &str> {
    headers
        .iter()
        .filter_map(|option| option.header.as_ref())
        .map(|header| (header.key.as_str(), header.value.as_str()))
        .collect()
}

/// The identity headers an allow must carry for `client` with `scopes`.
fn identity<'a>(
    client: &'a Client,
    project: &'a str,
    scopes: &'a str,
) -> HashMap<&'a str, &'a str> {
    HashMap::from([
        ("x-latchkey-client-id", client.credential.client_id.as_str()),
        ("x-latchkey-credential-id", client.credential.id.as_str()),
        ("x-latchkey-project", project),
        ("x-latchkey-owner", "alice"),
        ("x-latchkey-scopes", scopes),
    ])
}

/// Asserts a denial with HTTP `status`, google.rpc `code` and the
/// `WWW-Authenticate` `challenge`.
#[track_caller]
fn assert_denied(response: &CheckResponse, status: i32, code: i32, challenge: &str) {
    assert_eq!(
        response.status.as_ref().map(|status| status.code),
        Some(code),
        "{response:?}"
    );
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
        panic!("a denial carries a DeniedHttpResponse: {response:?}");
    };
    assert_eq!(
        denied.status.as_ref().map(|status| status.code),
        Some(status)
    );
    let headers = set_headers(&denied.headers);
    assert_eq!(
        headers.get("www-authenticate"),
        Some(&challenge),
        "{denied:?}"
    );
    assert_eq!(headers.get("content-type"), Some(&"application/json"));
    assert_eq!(headers.get("cache-control"), Some(&"no-store"));
    // The same words the `auth_request` check answers with.
    let error = match status {
        400 => "invalid_request",
        401 => "unauthorized",
        _ => "forbidden",
    };
    assert_eq!(denied.body, format!(r#"{{"error":"{error}"}}"#));
}

async fn a_valid_token_is_allowed_with_the_credentials_identity(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(
            &["orders.read", "orders.write"],
            &["127.0.0.1", "10.0.0.0/8"],
        ),
    )
    .await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let expected = identity(&client, "acme", "orders.read orders.write");

    let response = check_bearer(&stack, "10.1.2.3", &token, Some("orders.read")).await;
    let ok = allowed(&response);
    assert_eq!(set_headers(&ok.headers), expected);
    assert!(ok.headers_to_remove.is_empty(), "{ok:?}");

    // No scope extension on the route: none required.
    let response = check_bearer(&stack, "10.1.2.3", &token, None).await;
    assert_eq!(set_headers(&allowed(&response).headers), expected);
    // Several required scopes, all granted.
    let both = Some("orders.read orders.write");
    let response = check_bearer(&stack, "10.1.2.3", &token, both).await;
    assert_eq!(set_headers(&allowed(&response).headers), expected);
    // A dual-stack listener reports IPv4 callers IPv4-mapped.
    let response = check_bearer(&stack, "::ffff:10.1.2.3", &token, None).await;
    assert_eq!(set_headers(&allowed(&response).headers), expected);
    // `encode_raw_headers: true` moves the headers into `header_map`.
    let authorization = format!("Bearer {token}");
    let raw = with_raw_headers(envoy_check(
        "10.1.2.3",
        &[("authorization", &authorization)],
        Some("orders.read"),
    ));
    let response = check(&stack, raw).await;
    assert_eq!(set_headers(&allowed(&response).headers), expected);
}

async fn missing_malformed_and_unknown_tokens_are_unauthenticated(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;

    let none = check(&stack, envoy_check("10.1.2.3", &[], None)).await;
    assert_denied(&none, 401, UNAUTHENTICATED, NO_TOKEN_CHALLENGE);
    let basic = check(
        &stack,
        envoy_check("10.1.2.3", &[("authorization", "Basic YWxpY2U6cHc=")], None),
    )
    .await;
    assert_denied(&basic, 401, UNAUTHENTICATED, NO_TOKEN_CHALLENGE);

    for garbage in ["garbage", "lkt_garbage"] {
        let response = check_bearer(&stack, "10.1.2.3", garbage, None).await;
        assert_denied(&response, 401, UNAUTHENTICATED, INVALID_TOKEN_CHALLENGE);
    }
    // Well-formed, for a real credential, never issued.
    let forged = latchkey_token::new_token(
        latchkey_token::CredentialKey::from_credential_id(&client.credential.id).unwrap(),
        &latchkey_secrets::HashKey::generate(),
    )
    .0;
    let response = check_bearer(&stack, "10.1.2.3", &forged, None).await;
    assert_denied(&response, 401, UNAUTHENTICATED, INVALID_TOKEN_CHALLENGE);
    // Far past any token's length: refused, not a failure.
    let response = check_bearer(&stack, "10.1.2.3", &"x".repeat(64 * 1024), None).await;
    assert_denied(&response, 401, UNAUTHENTICATED, INVALID_TOKEN_CHALLENGE);
}

async fn an_expired_token_is_unauthenticated(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "blink",
        Some(registry_pb::ProjectPolicy {
            token_ttl_seconds: Some(1),
            ..Default::default()
        }),
        credential(&[], &[]),
    )
    .await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    // Expiry is a point in time; the honest test waits for it. Polling the
    // check itself keeps this test about the gateway's answer alone.
    let expired = eventually(Duration::from_secs(5), || async {
        let response = check_bearer(&stack, "127.0.0.1", &token, None).await;
        response.status.is_some_and(|status| status.code != OK)
    })
    .await;
    assert!(expired, "the token outlived its one-second lifetime");

    let response = check_bearer(&stack, "127.0.0.1", &token, None).await;
    assert_denied(&response, 401, UNAUTHENTICATED, INVALID_TOKEN_CHALLENGE);
}

async fn a_deleted_credentials_token_is_unauthenticated(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    allowed(&check_bearer(&stack, "10.1.2.3", &token, None).await);

    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: client.credential.id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();

    let response = check_bearer(&stack, "10.1.2.3", &token, None).await;
    assert_denied(&response, 401, UNAUTHENTICATED, INVALID_TOKEN_CHALLENGE);
}

async fn a_caller_outside_the_allowlist_is_forbidden(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(&["orders.read"], &["127.0.0.1", "10.0.0.0/8"]),
    )
    .await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    allowed(&check_bearer(&stack, "10.200.0.1", &token, None).await);

    let forbidden = r#"Bearer realm="latchkey", error="invalid_token", error_description="caller address not allowed""#;
    for elsewhere in ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"] {
        let response = check_bearer(&stack, elsewhere, &token, None).await;
        assert_denied(&response, 403, PERMISSION_DENIED, forbidden);
    }
    // An address Envoy could not give is never a pass.
    let response = check_bearer(&stack, "not-an-address", &token, None).await;
    assert_denied(&response, 403, PERMISSION_DENIED, forbidden);
}

async fn a_scope_the_token_lacks_is_forbidden(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(&["orders.read", "orders.write"], &[]),
    )
    .await;
    let token = issue(&stack, &client, &["orders.read"])
        .await
        .unwrap()
        .access_token;
    allowed(&check_bearer(&stack, "10.1.2.3", &token, Some("orders.read")).await);

    for required in ["orders.write", "orders.read orders.write", "billing.read"] {
        let response = check_bearer(&stack, "10.1.2.3", &token, Some(required)).await;
        assert_denied(
            &response,
            403,
            PERMISSION_DENIED,
            INSUFFICIENT_SCOPE_CHALLENGE,
        );
    }
}

async fn spoofed_identity_headers_are_overwritten(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let authorization = format!("Bearer {token}");

    let response = check(
        &stack,
        envoy_check(
            "10.1.2.3",
            &[
                ("authorization", &authorization),
                ("X-Latchkey-Project", "someone-elses"),
                ("x-latchkey-owner", "mallory"),
                ("x-latchkey-admin", "true"),
            ],
            None,
        ),
    )
    .await;
    let ok = allowed(&response);
    // Overwritten with what the token vouches for...
    assert_eq!(
        set_headers(&ok.headers),
        identity(&client, "acme", "orders.read")
    );
    // ...and an identity header this service does not set is removed.
    assert_eq!(ok.headers_to_remove, ["x-latchkey-admin"]);
}

async fn two_authorization_headers_are_a_bad_request(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let bearer = format!("Bearer {token}");
    allowed(&check_bearer(&stack, "10.1.2.3", &token, None).await);

    // Envoy merges repeated headers into one value, joined by commas.
    let merged = format!("{bearer},{bearer}");
    let response = check(
        &stack,
        envoy_check("10.1.2.3", &[("authorization", &merged)], None),
    )
    .await;
    assert_denied(&response, 400, INVALID_ARGUMENT, INVALID_REQUEST_CHALLENGE);
    let other = format!("{bearer},Basic YWxpY2U6cHc=");
    let response = check(
        &stack,
        envoy_check("10.1.2.3", &[("authorization", &other)], None),
    )
    .await;
    assert_denied(&response, 400, INVALID_ARGUMENT, INVALID_REQUEST_CHALLENGE);

    // With `encode_raw_headers`, each header is its own entry.
    let mut raw = with_raw_headers(envoy_check("10.1.2.3", &[("authorization", &bearer)], None));
    raw.attributes
        .as_mut()
        .and_then(|attributes| attributes.request.as_mut())
        .and_then(|request| request.http.as_mut())
        .and_then(|http| http.header_map.as_mut())
        .unwrap()
        .headers
        .push(HeaderValue {
            key: "authorization".into(),
            value: String::new(),
            raw_value: bearer.clone().into_bytes(),
        });
    let response = check(&stack, raw).await;
    assert_denied(&response, 400, INVALID_ARGUMENT, INVALID_REQUEST_CHALLENGE);
}

/// Envoy's `Check` is an introspection: only an authenticated gateway
/// learns anything, and what a stranger gets does not depend on the token.
async fn only_an_authenticated_gateway_learns_anything(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    // Bound to 127.0.0.2: the test's connections come from 127.0.0.1.
    let elsewhere = project_with_client(
        &stack,
        "edge",
        None,
        credential(&["tokens:introspect"], &["127.0.0.2"]),
    )
    .await;
    let reader = project_with_client(&stack, "shop", None, credential(&["orders.read"], &[])).await;
    let wrong_secret = basic(&stack.admin.client_id, "lks_wrong");
    let bound_elsewhere = basic(&elsewhere.credential.client_id, &elsewhere.secret);
    let not_a_gateway = basic(&reader.credential.client_id, &reader.secret);
    let admin = stack.admin.basic_header();

    for presented in [token.as_str(), "lkt_garbage"] {
        let authorization = format!("Bearer {presented}");
        let request = || envoy_check("10.1.2.3", &[("authorization", &authorization)], None);
        for (case, metadata, code, status) in [
            ("no credential", vec![], UNAUTHENTICATED, 401),
            (
                "a wrong secret",
                vec![wrong_secret.as_str()],
                UNAUTHENTICATED,
                401,
            ),
            (
                "a credential bound to another address",
                vec![bound_elsewhere.as_str()],
                UNAUTHENTICATED,
                401,
            ),
            (
                "two credentials",
                vec![admin.as_str(), admin.as_str()],
                UNAUTHENTICATED,
                401,
            ),
            (
                "a credential without tokens:introspect",
                vec![not_a_gateway.as_str()],
                PERMISSION_DENIED,
                403,
            ),
        ] {
            let response = check_as(&stack, request(), &metadata).await;
            let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else {
                panic!("{case}: not a denial: {response:?}");
            };
            assert_eq!(
                (
                    response.status.as_ref().unwrap().code,
                    denied.status.as_ref().unwrap().code
                ),
                (code, status),
                "{case}"
            );
            assert!(
                denied.headers.iter().all(|header| header
                    .header
                    .as_ref()
                    .is_none_or(|header| !header.key.starts_with("x-latchkey-"))),
                "{case}: {denied:?}"
            );
        }
    }
    // A bearer token of a gateway's own works as well as its secret.
    let gateway_token = issue(
        &stack,
        &Client {
            credential: registry_pb::Credential {
                client_id: stack.admin.client_id.clone(),
                ..Default::default()
            },
            secret: stack.admin.client_secret.clone(),
        },
        &["tokens:introspect"],
    )
    .await
    .unwrap()
    .access_token;
    let response = check_as(
        &stack,
        envoy_check(
            "10.1.2.3",
            &[("authorization", &format!("Bearer {token}"))],
            None,
        ),
        &[&format!("Bearer {gateway_token}")],
    )
    .await;
    allowed(&response);
}

on_both_stacks!(
    only_an_authenticated_gateway_learns_anything,
    two_authorization_headers_are_a_bad_request,
    a_valid_token_is_allowed_with_the_credentials_identity,
    missing_malformed_and_unknown_tokens_are_unauthenticated,
    an_expired_token_is_unauthenticated,
    a_deleted_credentials_token_is_unauthenticated,
    a_caller_outside_the_allowlist_is_forbidden,
    a_scope_the_token_lacks_is_forbidden,
    spoofed_identity_headers_are_overwritten,
);
