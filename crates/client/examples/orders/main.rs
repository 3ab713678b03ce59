//! `orders`: asks `inventory` for stock, authenticated with its own
//! Latchkey credential through a [`TokenSource`] and [`BearerMiddleware`].
//!
//! ```sh
//! LATCHKEY_TOKEN_URL=http://127.0.0.1:8080/oauth2/token \
//! ORDERS_CLIENT_ID=lkc_... ORDERS_CLIENT_SECRET=lks_... \
//! INVENTORY_URL=http://127.0.0.1:8090 \
//!   cargo run -p latchkey-client --features axum,reqwest --example orders
//! ```

#![allow(unused_crate_dependencies)] // The library's dependencies are not all the example's.

mod service;

use service::{OrdersConfig, check_stock, inventory_client};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let variable = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let config = OrdersConfig {
        token_url: variable("LATCHKEY_TOKEN_URL")?,
        client_id: variable("ORDERS_CLIENT_ID")?,
        client_secret: variable("ORDERS_CLIENT_SECRET")?,
        inventory_url: variable("INVENTORY_URL")?,
    };
    let client = inventory_client(&config)?;
    let answer = check_stock(&client, &config, "42").await?;
    #[allow(clippy::print_stdout)]
    {
        println!("{answer}");
    }
    Ok(())
}
