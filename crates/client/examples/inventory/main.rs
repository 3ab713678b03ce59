//! `inventory`: an HTTP service that only Latchkey-authenticated callers
//! with the `inventory.read` scope may ask for stock.
//!
//! ```sh
//! LATCHKEY_GRPC_URL=http://127.0.0.1:50051 \
//! INVENTORY_CLIENT_ID=lkc_... INVENTORY_CLIENT_SECRET=lks_... \
//! INVENTORY_LISTEN=127.0.0.1:8090 \
//!   cargo run -p latchkey-client --features axum,reqwest --example inventory
//! ```
//!
//! Its own credential must hold `tokens:introspect`: it is what the service
//! introspects its callers' tokens with.

#![allow(unused_crate_dependencies)] // The library's dependencies are not all the example's.

mod service;

use service::{InventoryConfig, serve};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let variable = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let config = InventoryConfig {
        latchkey_grpc_url: variable("LATCHKEY_GRPC_URL")?,
        client_id: variable("INVENTORY_CLIENT_ID")?,
        client_secret: variable("INVENTORY_CLIENT_SECRET")?,
    };
    let listen = std::env::var("INVENTORY_LISTEN").unwrap_or_else(|_| "127.0.0.1:8090".into());
    serve(TcpListener::bind(&listen).await?, &config).await
}
