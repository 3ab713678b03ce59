//! HTTP endpoints of the token issuer:
//!
//! - `POST /oauth2/token`: the client-credentials grant (RFC 6749 §4.4),
//!   client authentication by HTTP Basic or form fields;
//! - `POST /oauth2/introspect`: token introspection (RFC 7662);
//! - `POST /oauth2/revoke`: token revocation (RFC 7009);
//! - `GET /.well-known/oauth-authorization-server`: server metadata
//!   (RFC 8414), so OAuth client libraries configure themselves;
//! - `GET /auth/check`: the gateway check for NGINX `auth_request` and
//!   Traefik `forwardAuth`.
//!
//! Every error is an OAuth error object (`error`, `error_description`) with
//! the status the RFCs name; no handler panics on any input.
//!
//! [`authorization`] and [`gateway`] are the HTTP vocabulary the gRPC and
//! Envoy transports share with these endpoints.

mod auth_check;
pub mod authorization;
mod client_auth;
mod error;
mod form;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
mod introspect;
mod metadata;
mod revoke;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use latchkey_net::TrustedProxies;
use latchkey_token::TokenService;
use tower_http::cors::CorsLayer;

/// Largest request body accepted (a token request is well under 1 KiB).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// What the HTTP handlers share.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The token service.
    pub tokens: TokenService,
    /// Proxies whose forwarding headers are believed.
    pub proxies: TrustedProxies,
    /// The URL clients reach this server at, without a trailing slash
    /// (e.g. `https://auth.example.com`); the metadata document names the
    /// endpoints under it.
    pub public_url: String,
}

/// The issuer's HTTP routes. Serve with
/// `into_make_service_with_connect_info::<SocketAddr>()` so handlers see
/// the peer address. `token_cors`, when set, lets browsers of its origins
/// call `POST /oauth2/token` (and only it: introspection and revocation
/// are for servers).
pub fn router(state: HttpState, token_cors: Option<CorsLayer>) -> Router {
    let token = match token_cors {
        Some(cors) => post(token::issue).layer(cors),
        None => post(token::issue),
    };
    Router::new()
        .route("/oauth2/token", token)
        .route("/oauth2/introspect", post(introspect::introspect))
        .route("/oauth2/revoke", post(revoke::revoke))
        .route("/auth/check", get(auth_check::check))
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Behind an `Arc`: axum clones the state for every request (the
        // route and the extractor), and the token service's parts are not
        // all shared handles; cloning them cost about 5% of an
        // introspection's CPU.
        .with_state(Arc::new(state))
}
