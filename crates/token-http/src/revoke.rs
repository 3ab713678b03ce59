//! `POST /oauth2/revoke` (RFC 7009).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};

use crate::HttpState;
use crate::client_auth::{caller_ip, client_credentials};
use crate::error::OAuthError;
use crate::form::Form;

/// Revokes a token of the authenticated client. An unknown, expired or
/// foreign token still answers 200, as RFC 7009 §2.2 requires.
pub(crate) async fn revoke(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, OAuthError> {
    let form = Form::parse(&headers, body)?;
    let token = form.require("token")?;
    let credentials = client_credentials(&headers, &form)?;
    state
        .tokens
        .issuer()
        .revoke(
            token,
            &credentials.client_id,
            &credentials.client_secret,
            caller_ip(peer, &headers, &state.proxies),
        )
        .await?;
    Ok(StatusCode::OK)
}
