//! The service layer in front of an axum and a tonic service: the verified
//! identity reaches the handler; a missing scope, another address, a revoked
//! token are refused like Latchkey's gateways refuse them; Latchkey down
//! refuses everything (fail closed); the opt-in cache is stale for at most
//! its TTL.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use latchkey_client::BearerLayer;
use latchkey_client::server::{AccessRules, LatchkeyAuthLayer};
use latchkey_tests::{Stack, StackBackend};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{
    Inventory, active, builder, credential, eventually, gateway, revoke, shop, token_url,
};

/// `GET url` with `token` (if any) from 127.0.0.1, or from `from`.
async fn get(url: &str, token: Option<&str>, from: Option<IpAddr>) -> (StatusCode, String, String) {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, response.text().await.unwrap())
}

async fn both_stacks_pass_a_valid_token_with_its_identity(backend: StackBackend) {
    let stack = shop(backend, None).await;
    let inventory = Inventory::start(gateway(&stack).await).await;
    let orders = credential(&stack, "orders", &["inventory.read"], &["127.0.0.1"]).await;
    let token = builder(&orders)
        .build_http(&token_url(&stack))
        .unwrap()
        .token()
        .await
        .unwrap();

    let (status, _, body) = get(
        &format!("{}/stock/42", inventory.url),
        Some(token.expose()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        format!(
            "{} {} shop orders inventory.read",
            orders.client_id, orders.credential_id
        )
    );
    assert_eq!(inventory.handled(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_passes_with_its_identity_embedded() {
    both_stacks_pass_a_valid_token_with_its_identity(StackBackend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_passes_with_its_identity_production() {
    both_stacks_pass_a_valid_token_with_its_identity(StackBackend::Production).await;
}

/// No token, a bad token, a missing scope, another address, a path without
/// a rule: refused before the handler, with the gateways' challenges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_401_and_403_like_the_gateways() {
    let stack = shop(StackBackend::Embedded, None).await;
    let inventory = Inventory::start(gateway(&stack).await).await;
    let stock = format!("{}/stock/42", inventory.url);

    let (status, challenge, _) = get(&stock, None, None).await;
    assert_eq!(
        (status, challenge.as_str()),
        (StatusCode::UNAUTHORIZED, r#"Bearer realm="latchkey""#)
    );
    let (status, challenge, _) = get(&stock, Some("lkt_forged"), None).await;
    assert_eq!(
        (status, challenge.as_str()),
        (
            StatusCode::UNAUTHORIZED,
            r#"Bearer realm="latchkey", error="invalid_token""#
        )
    );

    // Read-only: reserving needs inventory.write.
    let reader = credential(&stack, "reader", &["inventory.read"], &[]).await;
    let token = builder(&reader)
        .build_http(&token_url(&stack))
        .unwrap()
        .token()
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/reserve", inventory.url))
        .bearer_auth(token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="latchkey", error="insufficient_scope""#
    );

    // Bound to 127.0.0.1; the call comes from 127.0.0.2.
    let bound = credential(&stack, "bound", &["inventory.read"], &["127.0.0.1/32"]).await;
    let token = builder(&bound)
        .build_http(&token_url(&stack))
        .unwrap()
        .token()
        .await
        .unwrap();
    let elsewhere = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let (status, challenge, _) = get(&stock, Some(token.expose()), Some(elsewhere)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge.contains("caller address not allowed"),
        "{challenge}"
    );
    let (status, _, _) = get(&stock, Some(token.expose()), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same token from its own address"
    );

    let (status, _, _) = get(
        &format!("{}/admin", inventory.url),
        Some(token.expose()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no rule, no entry");
    assert_eq!(inventory.handled(), 1);
}

/// Without the cache, a revoked token is refused on the very next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_once() {
    let stack = shop(StackBackend::Production, None).await;
    let inventory = Inventory::start(gateway(&stack).await).await;
    let orders = credential(&stack, "orders", &["inventory.read"], &[]).await;
    let token = builder(&orders)
        .build_http(&token_url(&stack))
        .unwrap()
        .token()
        .await
        .unwrap();
    let stock = format!("{}/stock/42", inventory.url);
    assert_eq!(
        get(&stock, Some(token.expose()), None).await.0,
        StatusCode::OK
    );

    revoke(&stack, &orders, token.expose()).await;
    assert_eq!(
        get(&stock, Some(token.expose()), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(inventory.handled(), 1);
}

/// Latchkey unreachable: 503, and the handler never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latchkey_down_fails_closed() {
    let stack = shop(StackBackend::Embedded, None).await;
    let inventory = Inventory::start(gateway(&stack).await).await;
    let orders = credential(&stack, "orders", &["inventory.read"], &[]).await;
    let token = builder(&orders)
        .build_http(&token_url(&stack))
        .unwrap()
        .token()
        .await
        .unwrap();
    let stock = format!("{}/stock/42", inventory.url);
    assert_eq!(
        get(&stock, Some(token.expose()), None).await.0,
        StatusCode::OK
    );

    let Stack {
        registry: _registry,
        mut issuer,
        ..
    } = stack;
    issuer.stop().await;
    let (status, challenge, _) = get(&stock, Some(token.expose()), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(challenge.is_empty());
    assert_eq!(inventory.handled(), 1, "nothing reached the handler");
}

/// With the opt-in cache, a revoked token keeps working for at most the
/// cache's TTL, then is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opt_in_cache_is_stale_for_at_most_its_ttl() {
    let stack = shop(StackBackend::Embedded, None).await;
    let ttl = Duration::from_secs(2);
    let inventory = Inventory::start(gateway(&stack).await.with_cache(ttl, 1000)).await;
    let orders = credential(&stack, "orders", &["inventory.read"], &[]).await;
    let token = builder(&orders)
        .build_http(&token_url(&stack))
        .unwrap()
        .token()
        .await
        .unwrap();
    let stock = format!("{}/stock/42", inventory.url);
    assert_eq!(
        get(&stock, Some(token.expose()), None).await.0,
        StatusCode::OK
    );
    let cached_at = Instant::now();

    revoke(&stack, &orders, token.expose()).await;
    assert!(!active(&stack, token.expose()).await);
    // Served from the cache: the staleness the option buys.
    assert_eq!(
        get(&stock, Some(token.expose()), None).await.0,
        StatusCode::OK
    );
    let refused = eventually(Duration::from_secs(3), || async {
        get(&stock, Some(token.expose()), None).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused);
    assert!(
        cached_at.elapsed() < ttl + Duration::from_secs(1),
        "{:?}",
        cached_at.elapsed()
    );
}

/// A tonic server behind the layer, called through `BearerLayer`: the
/// method's scope is checked, refusals are gRPC statuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_service_checks_grpc_callers() {
    let stack = shop(StackBackend::Embedded, None).await;
    let introspector = gateway(&stack).await;
    let printed = format!("{introspector:?}");
    assert!(
        !printed.contains("lks_") && !printed.contains("Basic"),
        "{printed}"
    );
    let (_reporter, health) = tonic_health::server::health_reporter();
    let rules = AccessRules::new().route("/grpc.health.v1.Health/Check", ["inventory.read"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(LatchkeyAuthLayer::new(introspector, rules))
            .add_service(health)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect_lazy();
    let check = HealthCheckRequest {
        service: String::new(),
    };

    let reader = credential(&stack, "reader", &["inventory.read"], &[]).await;
    let source = builder(&reader).build_grpc(stack.issuer.channel());
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(BearerLayer::new(source))
            .service(channel.clone()),
    );
    let answer = client.check(check.clone()).await.unwrap().into_inner();
    assert_eq!(answer.status, 1, "SERVING");

    // (A revoked token is replaced and the call resent: tests/client/bearer.rs.)

    let unscoped = credential(&stack, "stranger", &["orders.read"], &[]).await;
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(BearerLayer::new(
                builder(&unscoped).build_grpc(stack.issuer.channel()),
            ))
            .service(channel.clone()),
    );
    assert_eq!(
        client.check(check.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    let mut anonymous = HealthClient::new(channel);
    assert_eq!(
        anonymous.check(check).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    server.abort();
}
