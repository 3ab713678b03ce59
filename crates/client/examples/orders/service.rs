//! `orders`'s code, apart from `main` so the workspace's `tests/client`
//! runs it in-process.

use latchkey_client::{BearerMiddleware, TokenSource};
use reqwest_middleware::ClientWithMiddleware;

/// Where Latchkey and inventory are, and who this service is.
#[derive(Debug)]
pub(crate) struct OrdersConfig {
    /// Latchkey's token endpoint.
    pub(crate) token_url: String,
    /// This service's client ID (allowed `inventory.read`).
    pub(crate) client_id: String,
    /// Its secret.
    pub(crate) client_secret: String,
    /// inventory's base URL.
    pub(crate) inventory_url: String,
}

/// An HTTP client that authenticates as this service.
pub(crate) fn inventory_client(
    config: &OrdersConfig,
) -> Result<ClientWithMiddleware, Box<dyn std::error::Error>> {
    let source = TokenSource::builder(config.client_id.clone(), config.client_secret.clone())
        .scopes(["inventory.read"])
        .build_http(&config.token_url)?;
    Ok(
        reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(BearerMiddleware::new(source))
            .build(),
    )
}

/// Asks inventory for `item`'s stock.
pub(crate) async fn check_stock(
    client: &ClientWithMiddleware,
    config: &OrdersConfig,
    item: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let response = client
        .get(format!("{}/stock/{item}", config.inventory_url))
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("inventory answered {status}").into());
    }
    Ok(response.text().await?)
}
