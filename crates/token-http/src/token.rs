//! `POST /oauth2/token`: the client-credentials grant.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use latchkey_token::{IssueRequest, parse_scope_list};
use serde::Serialize;

use crate::HttpState;
use crate::client_auth::{caller_ip, client_credentials};
use crate::error::{OAuthError, no_store};
use crate::form::Form;

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u32,
    scope: String,
}

pub(crate) async fn issue(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = Form::parse(&headers, body)?;
    let grant_type = form.require("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::unsupported_grant_type(grant_type));
    }
    let credentials = client_credentials(&headers, &form)?;
    let issued = state
        .tokens
        .issuer()
        .issue(IssueRequest {
            client_id: credentials.client_id,
            client_secret: credentials.client_secret,
            scopes: form.get("scope").map(parse_scope_list).unwrap_or_default(),
            client_ip: caller_ip(peer, &headers, &state.proxies),
        })
        .await?;
    // DEBUG: see the gRPC handler.
    tracing::debug!(credential_id = %issued.credential_id, "token issued");
    let body = TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        scope: issued.scopes.join(" "),
    };
    Ok((no_store(), Json(body)).into_response())
}
