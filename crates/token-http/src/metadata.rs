//! `GET /.well-known/oauth-authorization-server` (RFC 8414).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;

use crate::HttpState;

#[derive(Serialize)]
pub(crate) struct ServerMetadata {
    issuer: String,
    token_endpoint: String,
    introspection_endpoint: String,
    revocation_endpoint: String,
    grant_types_supported: [&'static str; 1],
    token_endpoint_auth_methods_supported: [&'static str; 2],
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    revocation_endpoint_auth_methods_supported: [&'static str; 2],
    response_types_supported: [&'static str; 0],
}

const CLIENT_AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

pub(crate) async fn metadata(State(state): State<Arc<HttpState>>) -> Json<ServerMetadata> {
    let base = state.public_url.trim_end_matches('/');
    Json(ServerMetadata {
        issuer: base.to_owned(),
        token_endpoint: format!("{base}/oauth2/token"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        revocation_endpoint: format!("{base}/oauth2/revoke"),
        grant_types_supported: ["client_credentials"],
        token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        response_types_supported: [],
    })
}
