//! The `reqwest` middleware: a revoked token is replaced once on a 401, and
//! only once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use latchkey_client::BearerMiddleware;
use latchkey_tests::StackBackend;
use tokio::net::TcpListener;

use crate::support::{Inventory, builder, credential, gateway, issued, revoke, shop, token_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_the_callee_refetches_the_token_once() {
    let stack = shop(StackBackend::Embedded, None).await;
    let inventory = Inventory::start(gateway(&stack).await).await;
    let orders = credential(&stack, "orders", &["inventory.read"], &[]).await;
    let source = builder(&orders).build_http(&token_url(&stack)).unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(source.clone()))
        .build();
    let stock = format!("{}/stock/42", inventory.url);
    assert_eq!(
        client.get(&stock).send().await.unwrap().status(),
        StatusCode::OK
    );

    // The cached token is revoked behind the source's back.
    let cached = source.token().await.unwrap();
    revoke(&stack, &orders, cached.expose()).await;
    let before = issued(&stack).await;
    let response = client.get(&stock).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(issued(&stack).await - before, 1.0, "one new token");
    assert_ne!(source.token().await.unwrap(), cached);
    assert_eq!(inventory.handled(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callee_that_keeps_refusing_is_asked_twice_at_most() {
    let stack = shop(StackBackend::Embedded, None).await;
    let orders = credential(&stack, "orders", &["inventory.read"], &[]).await;
    let source = builder(&orders).build_http(&token_url(&stack)).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let app = Router::new().route(
        "/",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { StatusCode::UNAUTHORIZED }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerMiddleware::new(source))
        .build();
    let response = client
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    server.abort();
}
