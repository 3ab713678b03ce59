//! `POST /oauth2/introspect` (RFC 7662).
//!
//! Besides `token`, two extension parameters carry what a gateway knows:
//! `client_ip` (the address that presented the token) and `scope` (the
//! scopes the called API requires, space-separated).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use latchkey_token::{CallerError, Introspection, IntrospectionRequest, parse_scope_list};
use serde::Serialize;

use crate::HttpState;
use crate::client_auth::{caller_ip, introspection_caller};
use crate::error::{OAuthError, no_store};
use crate::form::Form;

/// RFC 7662 §2.2 fields, plus Latchkey's `project`, `owner` and
/// `credential_id`. Inactive answers carry `active: false` only, as the RFC
/// advises.
#[derive(Serialize, Default)]
struct IntrospectionResponse {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<String>,
}

pub(crate) async fn introspect(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let form = Form::parse(&headers, body)?;
    authorize_caller(&state, peer, &headers, &form).await?;
    let token = form.require("token")?;
    let client_ip = form
        .get("client_ip")
        .map(|text| {
            text.parse::<IpAddr>()
                .map_err(|_| OAuthError::invalid_request("client_ip: not an IP address"))
        })
        .transpose()?;
    let required_scopes = form.get("scope").map(parse_scope_list).unwrap_or_default();
    let answer = state
        .tokens
        .introspector()
        .introspect(&IntrospectionRequest {
            token,
            client_ip,
            required_scopes: &required_scopes,
        })
        .await?;
    let body = match answer {
        Introspection::Active(info) => IntrospectionResponse {
            active: true,
            scope: Some(info.scopes.join(" ")),
            token_type: Some("Bearer"),
            exp: Some(info.expires_at),
            iat: Some(info.issued_at),
            // For the client-credentials grant the client is the subject.
            sub: Some(info.client_id.clone()),
            client_id: Some(info.client_id),
            project: Some(info.project_id),
            owner: Some(info.owner),
            credential_id: Some(info.credential_id),
        },
        Introspection::Inactive(reason) => {
            tracing::debug!(?reason, "token inactive");
            IntrospectionResponse::default()
        }
    };
    Ok((no_store(), Json(body)).into_response())
}

/// RFC 7662 §2.1: the caller authenticates with HTTP Basic, form client
/// credentials or a bearer token (exactly one of them), and must hold
/// `tokens:introspect`.
async fn authorize_caller(
    state: &HttpState,
    peer: SocketAddr,
    headers: &HeaderMap,
    form: &Form,
) -> Result<(), OAuthError> {
    // One method only (RFC 6749 §2.3): header and form together, or two
    // headers, are refused before any credential is checked.
    let caller = introspection_caller(headers, form)?;
    state
        .tokens
        .introspector()
        .authorize_introspection_caller(
            caller.as_caller(),
            caller_ip(peer, headers, &state.proxies),
        )
        .await
        .map_err(|error| match error {
            CallerError::Unauthenticated => OAuthError::invalid_client(),
            CallerError::NotAllowed => OAuthError::insufficient_scope("tokens:introspect"),
            CallerError::TooManyFailures { retry_after } => {
                OAuthError::too_many_failures(retry_after)
            }
            CallerError::Unavailable(what) => OAuthError::unavailable(what),
            CallerError::Internal => OAuthError::server_error(),
        })
}
