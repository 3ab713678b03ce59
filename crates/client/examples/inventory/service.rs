//! `inventory`'s code, apart from `main` so the workspace's `tests/client`
//! runs it in-process.

use std::net::SocketAddr;

use axum::extract::Path;
use axum::routing::get;
use axum::{Extension, Router};
use latchkey_client::server::{AccessRules, Identity, Introspector, LatchkeyAuthLayer};
use tokio::net::TcpListener;

/// The scope the stock route requires.
pub(crate) const READ_SCOPE: &str = "inventory.read";

/// Where Latchkey is and who this service is.
#[derive(Debug)]
pub(crate) struct InventoryConfig {
    /// Latchkey's gRPC URL, e.g. `http://127.0.0.1:50051`.
    pub(crate) latchkey_grpc_url: String,
    /// This service's client ID (holding `tokens:introspect`).
    pub(crate) client_id: String,
    /// Its secret.
    pub(crate) client_secret: String,
}

/// The router: `GET /stock/{item}` for callers holding `inventory.read`.
pub(crate) fn app(config: &InventoryConfig) -> Result<Router, Box<dyn std::error::Error>> {
    let latchkey =
        tonic::transport::Endpoint::from_shared(config.latchkey_grpc_url.clone())?.connect_lazy();
    let introspector = Introspector::new(latchkey, &config.client_id, config.client_secret.clone());
    let rules = AccessRules::new().route("/stock", [READ_SCOPE]);
    Ok(Router::new()
        .route("/stock/{item}", get(stock))
        .layer(LatchkeyAuthLayer::new(introspector, rules)))
}

/// Serves `app` on `listener` with the peer addresses Latchkey checks.
pub(crate) async fn serve(
    listener: TcpListener,
    config: &InventoryConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let app = app(config)?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}

async fn stock(Path(item): Path<String>, Extension(caller): Extension<Identity>) -> String {
    format!(
        "item {item}: 7 in stock (asked by {} of project {})",
        caller.client_id, caller.project_id
    )
}
