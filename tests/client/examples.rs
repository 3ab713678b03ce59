//! The crate's examples, run in-process against a real Latchkey: `orders`
//! calls `inventory` with its token source; `inventory` checks it with the
//! service layer. A wrong secret and a deleted credential do not get in.

use latchkey_tests::StackBackend;
use tokio::net::TcpListener;

use crate::support::{credential, delete, shop, token_url};

#[allow(dead_code)]
#[path = "../../crates/client/examples/inventory/service.rs"]
mod inventory;
#[allow(dead_code)]
#[path = "../../crates/client/examples/orders/service.rs"]
mod orders;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_calls_inventory_through_latchkey() {
    let stack = shop(StackBackend::Embedded, None).await;
    let inventory_credential = credential(&stack, "inventory", &["tokens:introspect"], &[]).await;
    let orders_credential = credential(&stack, "orders", &["inventory.read"], &[]).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inventory_url = format!("http://{}", listener.local_addr().unwrap());
    let config = inventory::InventoryConfig {
        latchkey_grpc_url: format!("http://{}", stack.issuer.grpc_address()),
        client_id: inventory_credential.client_id.clone(),
        client_secret: inventory_credential.secret.clone(),
    };
    let server = tokio::spawn(async move {
        inventory::serve(listener, &config).await.unwrap();
    });

    let config = |secret: &str| orders::OrdersConfig {
        token_url: token_url(&stack),
        client_id: orders_credential.client_id.clone(),
        client_secret: secret.to_owned(),
        inventory_url: inventory_url.clone(),
    };
    let good = config(&orders_credential.secret);
    let client = orders::inventory_client(&good).unwrap();
    let answer = orders::check_stock(&client, &good, "42").await.unwrap();
    assert_eq!(
        answer,
        format!(
            "item 42: 7 in stock (asked by {} of project shop)",
            orders_credential.client_id
        )
    );

    let wrong = config("lks_wrong");
    let error = orders::check_stock(&orders::inventory_client(&wrong).unwrap(), &wrong, "42")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("invalid_client"), "{error}");

    delete(&stack, &orders_credential).await;
    // The client still holds the deleted credential's token: inventory
    // refuses it, the middleware tries a new one, the issuer refuses that.
    let error = orders::check_stock(&client, &good, "42").await.unwrap_err();
    assert!(error.to_string().contains("invalid_client"), "{error}");
    server.abort();
}
