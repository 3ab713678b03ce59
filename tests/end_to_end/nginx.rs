//! A real NGINX in front of an API, every request checked with
//! `auth_request` against the issuer's `GET /auth/check`, on the shipped
//! `deploy/nginx/latchkey.conf`: valid tokens reach the API with the
//! caller's identity, everything else is refused, and the address judged is
//! the one NGINX saw, whatever the client claims. Then `/auth/check` called
//! directly: forwarding headers count only from a trusted proxy.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{GatewayStack, Stack, StackBackend};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{Client, credential, eventually, issue, project_with_client};

/// Where NGINX and the trusted proxy connect from.
const LOCAL: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// A caller elsewhere: loopback too, but not 127.0.0.1 and not trusted.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// An HTTP client whose connections come from `from`.
fn client_from(from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(from))
        .no_proxy()
        .build()
        .unwrap()
}

/// A response, its body parsed when it is JSON.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// The `x-latchkey-*` headers the upstream received, when NGINX let the
    /// request through.
    fn forwarded(&self, name: &str) -> &str {
        self.body["headers"][name]
            .as_str()
            .unwrap_or_else(|| panic!("the upstream did not receive {name}: {}", self.body))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap())
            .unwrap_or_default()
    }
}

/// GETs `url` from `from`, presenting `token` and `extra` headers.
async fn get(from: Ipv4Addr, url: &str, token: Option<&str>, extra: &[(&str, &str)]) -> Answer {
    let mut request = client_from(from).get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    answer(request.send().await.unwrap()).await
}

/// GETs `/auth/check` at `url` directly, from `from`, as a gateway: with
/// the stack admin's credential (which holds `tokens:introspect`) in
/// `Latchkey-Gateway-Authorization`.
async fn gateway_get(
    stack: &Stack,
    from: Ipv4Addr,
    url: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Answer {
    let gateway = stack.admin.basic_header();
    let mut headers = vec![(GATEWAY_AUTHORIZATION, gateway.as_str())];
    headers.extend_from_slice(extra);
    get(from, url, token, &headers).await
}

/// The header a gateway authenticates to `/auth/check` with.
const GATEWAY_AUTHORIZATION: &str = "latchkey-gateway-authorization";

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    // NGINX's own error pages are HTML; only the upstream and the issuer
    // answer JSON.
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// A project and a credential in it, with a token for `scopes`.
async fn client_with_token(
    stack: &Stack,
    project: &str,
    policy: Option<registry_pb::ProjectPolicy>,
    apis: &[&str],
    ips: &[&str],
    scopes: &[&str],
) -> (Client, String) {
    let client = project_with_client(stack, project, policy, credential(apis, ips)).await;
    let token = issue(stack, &client, scopes).await.unwrap().access_token;
    (client, token)
}

async fn nginx_lets_valid_tokens_through_with_the_callers_identity(backend: StackBackend) {
    let gateway = GatewayStack::start(backend).await;
    let (client, token) = client_with_token(
        &gateway.stack,
        "acme",
        None,
        &["orders.read", "orders.write"],
        &["127.0.0.1"],
        &["orders.read", "orders.write"],
    )
    .await;
    let url = format!("{}/orders/42?expand=lines", gateway.nginx.url());

    let passed = get(LOCAL, &url, Some(&token), &[]).await;
    assert_eq!(passed.status, 200, "{}", passed.body);
    assert_eq!(passed.body["method"], "GET");
    assert_eq!(passed.body["uri"], "/orders/42?expand=lines");
    assert_eq!(
        passed.forwarded("x-latchkey-client-id"),
        client.credential.client_id
    );
    assert_eq!(
        passed.forwarded("x-latchkey-credential-id"),
        client.credential.id
    );
    assert_eq!(passed.forwarded("x-latchkey-project"), "acme");
    assert_eq!(passed.forwarded("x-latchkey-owner"), "alice");
    assert_eq!(
        passed.forwarded("x-latchkey-scopes"),
        "orders.read orders.write"
    );

    // Identity headers the client sends itself are replaced, not added to.
    let spoofed = get(
        LOCAL,
        &url,
        Some(&token),
        &[
            ("x-latchkey-owner", "mallory"),
            ("x-latchkey-project", "other"),
            ("x-latchkey-client-id", "lk_forged"),
        ],
    )
    .await;
    assert_eq!(spoofed.status, 200);
    assert_eq!(spoofed.forwarded("x-latchkey-owner"), "alice");
    assert_eq!(spoofed.forwarded("x-latchkey-project"), "acme");
    assert_eq!(
        spoofed.forwarded("x-latchkey-client-id"),
        client.credential.client_id
    );

    // Requests with a body are checked the same way (the check never sees
    // the body).
    let posted = client_from(LOCAL)
        .post(&url)
        .bearer_auth(&token)
        .body("{\"qty\": 3}")
        .send()
        .await
        .unwrap();
    let posted = answer(posted).await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(posted.body["method"], "POST");
    assert_eq!(posted.forwarded("x-latchkey-owner"), "alice");
    assert_eq!(gateway.nginx.upstream_requests(), 3);
}

async fn nginx_refuses_missing_garbage_expired_and_deleted_tokens(backend: StackBackend) {
    let gateway = GatewayStack::start(backend).await;
    let stack = &gateway.stack;
    let url = format!("{}/orders", gateway.nginx.url());

    // NGINX passes the issuer's challenge on with a 401.
    let anonymous = get(LOCAL, &url, None, &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        r#"Bearer realm="latchkey""#
    );
    let basic = get(LOCAL, &url, None, &[("authorization", "Basic YTpi")]).await;
    assert_eq!(basic.status, 401);
    let garbage = get(LOCAL, &url, Some("not-a-token"), &[]).await;
    assert_eq!(garbage.status, 401);
    assert_eq!(
        garbage.header("www-authenticate"),
        r#"Bearer realm="latchkey", error="invalid_token""#
    );

    let (_, short_lived) = client_with_token(
        stack,
        "blink",
        Some(registry_pb::ProjectPolicy {
            token_ttl_seconds: Some(1),
            ..Default::default()
        }),
        &[],
        &[],
        &[],
    )
    .await;
    // Expiry is a point in time; the honest test waits for it.
    let expired = eventually(Duration::from_secs(5), || async {
        get(LOCAL, &url, Some(&short_lived), &[]).await.status == 401
    })
    .await;
    assert!(expired, "NGINX still lets an expired token through");

    let (client, token) = client_with_token(stack, "acme", None, &[], &[], &[]).await;
    let before = gateway.nginx.upstream_requests();
    assert_eq!(get(LOCAL, &url, Some(&token), &[]).await.status, 200);
    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: client.credential.id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();
    let deleted = get(LOCAL, &url, Some(&token), &[]).await;
    assert_eq!(deleted.status, 401, "a deleted credential's token passed");

    assert_eq!(
        gateway.nginx.upstream_requests(),
        before + 1,
        "only the valid request reached the API"
    );
}

async fn nginx_judges_the_address_it_saw_not_the_one_claimed(backend: StackBackend) {
    let gateway = GatewayStack::start(backend).await;
    let (_, token) =
        client_with_token(&gateway.stack, "acme", None, &[], &["127.0.0.1"], &[]).await;
    let url = format!("{}/orders", gateway.nginx.url());

    let local = get(LOCAL, &url, Some(&token), &[]).await;
    assert_eq!(local.status, 200, "{}", local.body);
    let elsewhere = get(ELSEWHERE, &url, Some(&token), &[]).await;
    assert_eq!(elsewhere.status, 403, "{}", elsewhere.body);

    // Claims of being 127.0.0.1 do not help: NGINX overwrites X-Real-IP
    // with the address it saw and drops the forwarding chains.
    for claim in [
        ("x-real-ip", "127.0.0.1"),
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=127.0.0.1"),
    ] {
        let claimed = get(ELSEWHERE, &url, Some(&token), &[claim]).await;
        assert_eq!(claimed.status, 403, "{claim:?} was believed");
    }
    assert_eq!(gateway.nginx.upstream_requests(), 1);
}

async fn nginx_enforces_the_scope_a_location_requires(backend: StackBackend) {
    let gateway = GatewayStack::start(backend).await;
    let stack = &gateway.stack;
    let client = project_with_client(
        stack,
        "acme",
        None,
        credential(&["orders.read", "orders.admin"], &[]),
    )
    .await;
    let reader = issue(stack, &client, &["orders.read"])
        .await
        .unwrap()
        .access_token;
    let admin = issue(stack, &client, &["orders.admin"])
        .await
        .unwrap()
        .access_token;
    // deploy/nginx/latchkey.conf requires orders.admin under /orders/admin/.
    let admin_url = format!("{}/orders/admin/refunds", gateway.nginx.url());
    let open_url = format!("{}/orders", gateway.nginx.url());

    let refused = get(LOCAL, &admin_url, Some(&reader), &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let granted = get(LOCAL, &admin_url, Some(&admin), &[]).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.forwarded("x-latchkey-scopes"), "orders.admin");

    // The location decides the required scopes, not the client.
    let open = get(
        LOCAL,
        &open_url,
        Some(&reader),
        &[("x-latchkey-scope", "orders.admin")],
    )
    .await;
    assert_eq!(open.status, 200, "{}", open.body);
    assert_eq!(gateway.nginx.upstream_requests(), 2);
    let log = gateway.nginx.error_log();
    assert!(
        !log.contains("[warn]") && !log.contains("[error]"),
        "NGINX complained about the shipped configuration:\n{log}"
    );
}

async fn nginx_fails_closed_when_the_issuer_is_down(backend: StackBackend) {
    let mut gateway = GatewayStack::start(backend).await;
    let (_, token) = client_with_token(&gateway.stack, "acme", None, &[], &[], &[]).await;
    let url = format!("{}/orders", gateway.nginx.url());
    assert_eq!(get(LOCAL, &url, Some(&token), &[]).await.status, 200);

    gateway.stack.issuer.stop().await;
    let down = get(LOCAL, &url, Some(&token), &[]).await;
    assert_eq!(
        down.status, 500,
        "NGINX must refuse when the check cannot be made: {}",
        down.body
    );
    assert_eq!(gateway.nginx.upstream_requests(), 1);
}

async fn auth_check_ignores_forwarding_headers_from_untrusted_peers(backend: StackBackend) {
    // The gateway stack's issuer trusts 127.0.0.1 only.
    let gateway = GatewayStack::start(backend).await;
    let stack = &gateway.stack;
    let (client, token) = client_with_token(
        stack,
        "acme",
        None,
        &["orders.read", "orders.write"],
        &["127.0.0.1"],
        &["orders.read"],
    )
    .await;
    let check = format!("{}/auth/check", stack.issuer.http_url());

    let allowed = gateway_get(stack, LOCAL, &check, Some(&token), &[]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.body, json!(""), "an allow has an empty body");
    assert_eq!(
        allowed.header("x-latchkey-client-id"),
        client.credential.client_id
    );
    assert_eq!(
        allowed.header("x-latchkey-credential-id"),
        client.credential.id
    );
    assert_eq!(allowed.header("x-latchkey-project"), "acme");
    assert_eq!(allowed.header("x-latchkey-owner"), "alice");
    assert_eq!(allowed.header("x-latchkey-scopes"), "orders.read");

    // An untrusted peer's claims are ignored: it is judged as itself.
    for claim in [
        ("x-real-ip", "127.0.0.1"),
        ("x-forwarded-for", "127.0.0.1"),
        ("forwarded", "for=127.0.0.1"),
    ] {
        let claimed = gateway_get(stack, ELSEWHERE, &check, Some(&token), &[claim]).await;
        assert_eq!(
            claimed.status, 403,
            "{claim:?} from an untrusted peer was believed"
        );
        assert_eq!(claimed.body, json!({ "error": "forbidden" }));
        assert!(
            claimed
                .header("www-authenticate")
                .contains("caller address not allowed"),
            "{:?}",
            claimed.headers
        );
    }
    // A trusted proxy's X-Real-IP is believed, and wins over the chains.
    let proxied = gateway_get(
        stack,
        LOCAL,
        &check,
        Some(&token),
        &[("x-real-ip", "127.0.0.2")],
    )
    .await;
    assert_eq!(proxied.status, 403);
    let real_ip_wins = gateway_get(
        stack,
        LOCAL,
        &check,
        Some(&token),
        &[
            ("x-real-ip", "127.0.0.1"),
            ("x-forwarded-for", "127.0.0.2"),
            ("forwarded", "for=127.0.0.2"),
        ],
    )
    .await;
    assert_eq!(real_ip_wins.status, 200);

    // Required scopes, from the query or the header.
    let write = gateway_get(
        stack,
        LOCAL,
        &format!("{check}?scope=orders.write"),
        Some(&token),
        &[],
    )
    .await;
    assert_eq!(write.status, 403);
    assert_eq!(
        write.header("www-authenticate"),
        r#"Bearer realm="latchkey", error="insufficient_scope""#
    );
    let by_header = gateway_get(
        stack,
        LOCAL,
        &check,
        Some(&token),
        &[("x-latchkey-scope", "orders.write")],
    )
    .await;
    assert_eq!(by_header.status, 403);
    let read = gateway_get(
        stack,
        LOCAL,
        &format!("{check}?scope=orders.read"),
        Some(&token),
        &[("x-latchkey-scope", "orders.read")],
    )
    .await;
    assert_eq!(read.status, 200);

    let anonymous = gateway_get(stack, LOCAL, &check, None, &[]).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.body, json!({ "error": "unauthorized" }));
    assert_eq!(
        anonymous.header("www-authenticate"),
        r#"Bearer realm="latchkey""#
    );
    assert_eq!(anonymous.header("cache-control"), "no-store");

    // With the default configuration no proxy is trusted: even 127.0.0.1's
    // X-Real-IP is ignored.
    let plain = Stack::start(backend).await;
    let (_, token) = client_with_token(&plain, "acme", None, &[], &["127.0.0.1"], &[]).await;
    let check = format!("{}/auth/check", plain.issuer.http_url());
    let ignored = gateway_get(
        &plain,
        LOCAL,
        &check,
        Some(&token),
        &[("x-real-ip", "127.0.0.2")],
    )
    .await;
    assert_eq!(ignored.status, 200);
}

async fn nginx_refuses_two_tokens_in_one_request(backend: StackBackend) {
    let gateway = GatewayStack::start(backend).await;
    let (_, token) = client_with_token(&gateway.stack, "acme", None, &[], &[], &[]).await;
    let url = format!("{}/orders", gateway.nginx.url());
    assert_eq!(get(LOCAL, &url, Some(&token), &[]).await.status, 200);
    let before = gateway.nginx.upstream_requests();
    // NGINX refuses a repeated Authorization header itself (400), and the
    // issuer's check would too (400, which `auth_request` turns into 500):
    // either way the API never sees the request.
    let bearer = format!("Bearer {token}");
    let twice = get(LOCAL, &url, Some(&token), &[("authorization", &bearer)]).await;
    assert!(
        [400, 500].contains(&twice.status),
        "two tokens got {}: {:?}",
        twice.status,
        twice.body
    );
    assert_eq!(gateway.nginx.upstream_requests(), before);
}

/// `/auth/check` is an introspection: only an authenticated gateway learns
/// anything, and what a stranger gets does not depend on the token.
async fn auth_check_answers_only_authenticated_gateways(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let (_, token) = client_with_token(&stack, "acme", None, &[], &[], &[]).await;
    let check = format!("{}/auth/check", stack.issuer.http_url());
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    // A gateway credential bound to 127.0.0.1, and a credential that may
    // not introspect.
    let gateway = project_with_client(
        &stack,
        "edge",
        None,
        credential(&["tokens:introspect"], &["127.0.0.1"]),
    )
    .await;
    let gateway_basic = basic(&gateway.credential.client_id, &gateway.secret);
    let reader = project_with_client(&stack, "shop", None, credential(&["orders.read"], &[])).await;
    let reader_basic = basic(&reader.credential.client_id, &reader.secret);
    let wrong_secret = basic(&gateway.credential.client_id, "lks_wrong");

    for presented in [Some(&token), Some(&"lkt_garbage".to_owned()), None] {
        let token = presented.map(String::as_str);
        let anonymous = get(LOCAL, &check, token, &[]).await;
        assert_eq!(anonymous.status, 401, "{:?}", anonymous.body);
        assert_eq!(anonymous.body["error"], "invalid_client");
        assert_eq!(
            anonymous.header("www-authenticate"),
            r#"Basic realm="latchkey-gateway""#
        );
        assert_eq!(anonymous.header("x-latchkey-credential-id"), "");
        let wrong = get(
            LOCAL,
            &check,
            token,
            &[(GATEWAY_AUTHORIZATION, &wrong_secret)],
        )
        .await;
        assert_eq!(
            (wrong.status, &wrong.body["error"]),
            (401, &json!("invalid_client"))
        );
        // Its own credential from an address it is not bound to.
        let elsewhere = get(
            ELSEWHERE,
            &check,
            token,
            &[(GATEWAY_AUTHORIZATION, &gateway_basic)],
        )
        .await;
        assert_eq!(elsewhere.status, 401, "{:?}", elsewhere.body);
        let not_a_gateway = get(
            LOCAL,
            &check,
            token,
            &[(GATEWAY_AUTHORIZATION, &reader_basic)],
        )
        .await;
        assert_eq!(not_a_gateway.status, 403, "{:?}", not_a_gateway.body);
        assert_eq!(not_a_gateway.body["error"], "insufficient_scope");
        let twice = get(
            LOCAL,
            &check,
            token,
            &[
                (GATEWAY_AUTHORIZATION, &gateway_basic),
                (GATEWAY_AUTHORIZATION, &gateway_basic),
            ],
        )
        .await;
        assert_eq!(twice.status, 400, "{:?}", twice.body);
    }
    // The gateway itself, from its address, gets the answers.
    let ok = get(
        LOCAL,
        &check,
        Some(&token),
        &[(GATEWAY_AUTHORIZATION, &gateway_basic)],
    )
    .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let garbage = get(
        LOCAL,
        &check,
        Some("lkt_garbage"),
        &[(GATEWAY_AUTHORIZATION, &gateway_basic)],
    )
    .await;
    assert_eq!(garbage.status, 401);
    assert_eq!(garbage.body["error"], "unauthorized");
    // A bearer token of the gateway's own works too.
    let gateway_token = issue(&stack, &gateway, &[]).await.unwrap().access_token;
    let bearer = format!("Bearer {gateway_token}");
    let by_token = get(
        LOCAL,
        &check,
        Some(&token),
        &[(GATEWAY_AUTHORIZATION, &bearer)],
    )
    .await;
    assert_eq!(by_token.status, 200, "{:?}", by_token.body);
}

/// NGINX with a gateway credential the issuer refuses lets nothing through.
async fn nginx_with_a_refused_gateway_credential_lets_nothing_through(backend: StackBackend) {
    let (database, tokens) = backend.parts();
    let stack = Stack::start_with(database, tokens, |_| {}, |_| {}).await;
    let (_, token) = client_with_token(&stack, "acme", None, &[], &[], &[]).await;
    let issuer_http = stack
        .issuer
        .http_url()
        .strip_prefix("http://")
        .and_then(|address| address.parse().ok())
        .unwrap();
    let pair = format!("{}:lks_not-the-secret", stack.admin.client_id);
    let wrong = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let nginx = latchkey_tests::NginxFixture::start(issuer_http, &wrong).await;
    let refused = get(LOCAL, &format!("{}/orders", nginx.url()), Some(&token), &[]).await;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    assert_eq!(nginx.upstream_requests(), 0);
}

on_both_stacks!(
    auth_check_answers_only_authenticated_gateways,
    nginx_with_a_refused_gateway_credential_lets_nothing_through,
    nginx_refuses_two_tokens_in_one_request,
    nginx_lets_valid_tokens_through_with_the_callers_identity,
    nginx_refuses_missing_garbage_expired_and_deleted_tokens,
    nginx_judges_the_address_it_saw_not_the_one_claimed,
    nginx_enforces_the_scope_a_location_requires,
    nginx_fails_closed_when_the_issuer_is_down,
    auth_check_ignores_forwarding_headers_from_untrusted_peers,
);
