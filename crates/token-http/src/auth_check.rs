//! `GET /auth/check`: the authorization subrequest of NGINX `auth_request`
//! and Traefik `forwardAuth`.
//!
//! The gateway forwards the original request's headers; the answer is
//! [`Introspector::check_gateway_request`](latchkey_token::Introspector::check_gateway_request),
//! the same decision Envoy's ext_authz gets, so every gateway lets exactly
//! the same requests through:
//!
//! - **200**, empty body, with the identity headers (`x-latchkey-client-id`,
//!   `-credential-id`, `-project`, `-owner`, `-scopes`) for the gateway to
//!   copy onto the upstream request;
//! - **401** (no, bad, expired or revoked token) or **403** (caller address
//!   or scope refused), with the decision's `WWW-Authenticate` and a tiny
//!   JSON body (Traefik returns the check's response to the client as is;
//!   NGINX keeps only the status and the challenge);
//! - **400** `invalid_request` when the required scopes cannot be read or
//!   the request carries two `Authorization` headers, **503** when the token
//!   store cannot answer. Gateways treat any other status as an error and
//!   refuse the request (NGINX answers 500), so both fail closed.
//!
//! The gateway authenticates first, like every introspection caller (RFC
//! 7662 §2.1): the one `Latchkey-Gateway-Authorization` header holds `Basic`
//! client credentials or a bearer token of a credential with
//! `tokens:introspect`, checked against the connection's peer address (the
//! gateway's own; forwarding headers describe its client). NGINX sets it in
//! the `auth_request` location with `proxy_set_header`, so it never reaches
//! the upstream. A gateway that does not authenticate gets **401** with a
//! `Basic realm="latchkey-gateway"` challenge (**400** for two such headers,
//! **403** without `tokens:introspect`, **429** after repeated failures,
//! **503** when it cannot be verified now) and learns nothing about the
//! token.
//!
//! Inputs:
//!
//! - the token: the one `Authorization` header (`Bearer …`);
//! - the caller's address: the direct peer, or what a trusted proxy says
//!   (`X-Real-IP` first, then `Forwarded` / `X-Forwarded-For`); see
//!   [`gateway_client_ip`];
//! - the scopes the called API requires: the `scope` query parameter and the
//!   `X-Latchkey-Scope` header, each space-separated. Both are honoured (an
//!   extra requirement can only refuse more), and neither means none.
//!
//! Traefik also sends the original method and URI as `X-Forwarded-Method`
//! and `X-Forwarded-Uri`; the decision does not depend on them (a
//! credential's rules are about who calls and which scopes, not paths), so
//! they are ignored.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_net::TrustedProxies;
use latchkey_token::{CallerError, Gateway, GatewayDecision, StoreError, parse_scope_list};
use serde::Serialize;

use crate::authorization::{PresentedAuthorization, bearer_token};
use crate::gateway::{Denial, denial, headers, identity_headers};

use crate::HttpState;
use crate::client_auth::{RepeatedAuthorization, caller_ip, single_authorization};

/// The header NGINX's `proxy_set_header X-Real-IP $remote_addr` sets.
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The header a gateway authenticates itself with.
const GATEWAY_AUTHORIZATION: HeaderName = HeaderName::from_static("latchkey-gateway-authorization");

/// The challenge of a gateway that did not authenticate.
const GATEWAY_CHALLENGE: &str = r#"Basic realm="latchkey-gateway""#;

/// The header a gateway names the location's required scopes in.
const X_LATCHKEY_SCOPE: HeaderName = HeaderName::from_static("x-latchkey-scope");

/// The challenge of a malformed request (RFC 6750 §3.1 `invalid_request`).
const INVALID_REQUEST_CHALLENGE: &str = r#"Bearer realm="latchkey", error="invalid_request""#;

/// The body of every refusal: a machine-readable word, nothing that helps
/// an attacker tell one kind of bad token from another. Only a malformed
/// request says what is wrong with it.
#[derive(Serialize)]
struct CheckError {
    error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'static str>,
}

pub(crate) async fn check(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(presented) = PresentedAuthorization::parse_single(
        headers
            .get_all(GATEWAY_AUTHORIZATION)
            .iter()
            .map(|value| value.to_str().ok()),
    ) else {
        return refusal_described(
            StatusCode::BAD_REQUEST,
            None,
            "invalid_request",
            "latchkey-gateway-authorization: sent more than once",
        );
    };
    let gateway = Gateway {
        credentials: presented.as_caller(),
        address: peer.ip(),
    };
    let Some(required_scopes) = required_scopes(query.as_deref(), &headers) else {
        // Guessing would risk checking fewer scopes than the location needs.
        tracing::warn!("gateway check refused: unreadable X-Latchkey-Scope header");
        return refusal(StatusCode::BAD_REQUEST, None, "invalid_request");
    };
    let client_ip = gateway_client_ip(peer, &headers, &state.proxies);
    // Two tokens in one request: which one a gateway and an upstream would
    // each read is anybody's guess, so neither is checked.
    let Ok(authorization) = single_authorization(&headers) else {
        tracing::debug!(%client_ip, "gateway check refused: repeated Authorization header");
        return refusal_described(
            StatusCode::BAD_REQUEST,
            Some(INVALID_REQUEST_CHALLENGE),
            "invalid_request",
            RepeatedAuthorization::DESCRIPTION,
        );
    };
    // A header that is not visible ASCII cannot hold a bearer token; it is
    // treated as absent, which is refused as "no token".
    let token = bearer_token(authorization.and_then(|value| value.to_str().ok()));
    let decision = state
        .tokens
        .introspector()
        .check_gateway_request(gateway, token, client_ip, &required_scopes)
        .await;
    match decision {
        Ok(GatewayDecision::Allow(info)) => allowed(identity_headers(info), client_ip),
        Ok(GatewayDecision::Deny(reason)) => {
            let Denial {
                status,
                www_authenticate,
                reason,
            } = denial(reason);
            tracing::debug!(reason, status, %client_ip, "gateway check denied");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            let error = if status == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "forbidden"
            };
            refusal(status, Some(www_authenticate), error)
        }
        Ok(GatewayDecision::GatewayRefused(refused)) => gateway_refused(refused),
        Err(error) => store_failed(&error),
    }
}

/// The answer to a gateway that was refused as an introspection caller.
/// NGINX passes a 401 or 403 to its client and turns anything else into a
/// 500: a misconfigured gateway fails closed either way.
fn gateway_refused(refused: CallerError) -> Response {
    tracing::debug!(%refused, "gateway check refused: the gateway is not authorized");
    match refused {
        CallerError::Unauthenticated => refusal_described(
            StatusCode::UNAUTHORIZED,
            Some(GATEWAY_CHALLENGE),
            "invalid_client",
            "the gateway must authenticate with a Latchkey-Gateway-Authorization header",
        ),
        CallerError::NotAllowed => refusal_described(
            StatusCode::FORBIDDEN,
            None,
            "insufficient_scope",
            "the gateway's credential lacks tokens:introspect",
        ),
        CallerError::TooManyFailures { retry_after } => {
            let mut response = refusal(
                StatusCode::TOO_MANY_REQUESTS,
                None,
                "too_many_failed_attempts",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        CallerError::Unavailable(_) => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            "temporarily_unavailable",
        ),
        CallerError::Internal => refusal(StatusCode::INTERNAL_SERVER_ERROR, None, "server_error"),
    }
}

/// The caller's address as a gateway reports it.
///
/// `X-Real-IP` is the single address the proxy itself saw (NGINX sets it
/// from `$remote_addr`, Traefik's entry point from the connection), so when
/// present it wins over `Forwarded` / `X-Forwarded-For`, which carry
/// whatever the client sent before the proxy appended to them. Its values
/// are read as a chain (normally of one address) by the same rules as those
/// headers: believed only when the direct peer is a trusted proxy, and an
/// unparsable value stops at the proxy's own address, never at a forged
/// one.
fn gateway_client_ip(peer: SocketAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let real_ip: Vec<&str> = headers
        .get_all(X_REAL_IP)
        .iter()
        // An unreadable value still counts as "present" so that it ends the
        // walk rather than letting X-Forwarded-For decide.
        .map(|value| value.to_str().unwrap_or_default())
        .collect();
    if real_ip.is_empty() {
        caller_ip(peer, headers, proxies)
    } else {
        proxies.client_ip(peer.ip(), [], real_ip)
    }
}

/// The union of the `scope` query parameters and `X-Latchkey-Scope`
/// headers, sorted and deduplicated; `None` when a header is not readable
/// text (the caller fails closed).
fn required_scopes(query: Option<&str>, headers: &HeaderMap) -> Option<Vec<String>> {
    let mut scopes: Vec<String> = query
        .map(|query| {
            form_urlencoded::parse(query.as_bytes())
                .filter(|(name, _)| name == "scope")
                .flat_map(|(_, value)| parse_scope_list(&value))
                .collect()
        })
        .unwrap_or_default();
    for value in headers.get_all(X_LATCHKEY_SCOPE) {
        scopes.extend(parse_scope_list(value.to_str().ok()?));
    }
    scopes.sort_unstable();
    scopes.dedup();
    Some(scopes)
}

fn allowed(identity: Vec<(&'static str, String)>, client_ip: IpAddr) -> Response {
    let mut response = StatusCode::OK.into_response();
    let response_headers = response.headers_mut();
    for (name, value) in identity {
        if name == headers::CREDENTIAL_ID {
            tracing::debug!(credential_id = %value, %client_ip, "gateway check allowed");
        }
        // Registry-validated values always make valid headers; should one
        // ever not, the request is refused rather than forwarded without
        // the identity the upstream relies on.
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            tracing::error!(header = name, "identity is not a valid header");
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, None, "server_error");
        };
        response_headers.insert(name, value);
    }
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Every store error is a 503: the check could not be made, the request is
/// refused (fail closed), and a retry may succeed. The logs tell an outage
/// from a bug.
fn store_failed(error: &StoreError) -> Response {
    match error {
        StoreError::Unavailable(source) => {
            tracing::warn!(error = %source, "gateway check failed: token store unavailable");
        }
        StoreError::Internal(source) => {
            tracing::error!(error = %source, "gateway check failed: token store error");
        }
    }
    refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        None,
        "temporarily_unavailable",
    )
}

fn refusal(
    status: StatusCode,
    www_authenticate: Option<&'static str>,
    error: &'static str,
) -> Response {
    respond(status, www_authenticate, error, None)
}

fn refusal_described(
    status: StatusCode,
    www_authenticate: Option<&'static str>,
    error: &'static str,
    description: &'static str,
) -> Response {
    respond(status, www_authenticate, error, Some(description))
}

fn respond(
    status: StatusCode,
    www_authenticate: Option<&'static str>,
    error: &'static str,
    error_description: Option<&'static str>,
) -> Response {
    let body = CheckError {
        error,
        error_description,
    };
    let mut response = (status, Json(body)).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(challenge) = www_authenticate {
        response_headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40_000)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn loopback_trusted() -> TrustedProxies {
        TrustedProxies::new(vec!["127.0.0.1/32".parse().unwrap()])
    }

    #[test]
    fn an_untrusted_peer_is_the_caller_whatever_it_claims() {
        let claims = headers(&[
            ("x-real-ip", "10.1.1.1"),
            ("x-forwarded-for", "10.2.2.2"),
            ("forwarded", "for=10.3.3.3"),
        ]);
        let client = gateway_client_ip(peer("127.0.0.2"), &claims, &loopback_trusted());
        assert_eq!(client, ip("127.0.0.2"));
        let nobody = gateway_client_ip(peer("127.0.0.1"), &claims, &TrustedProxies::none());
        assert_eq!(nobody, ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_proxys_real_ip_wins_over_forwarded_chains() {
        // The client forged X-Forwarded-For and Forwarded; NGINX overwrote
        // X-Real-IP with the address it saw.
        let claims = headers(&[
            ("x-forwarded-for", "10.2.2.2"),
            ("forwarded", "for=10.3.3.3"),
            ("x-real-ip", "192.0.2.7"),
        ]);
        let client = gateway_client_ip(peer("127.0.0.1"), &claims, &loopback_trusted());
        assert_eq!(client, ip("192.0.2.7"));
    }

    #[test]
    fn without_real_ip_the_forwarded_chain_is_read() {
        let claims = headers(&[("x-forwarded-for", "1.1.1.1, 192.0.2.9")]);
        let client = gateway_client_ip(peer("127.0.0.1"), &claims, &loopback_trusted());
        assert_eq!(client, ip("192.0.2.9"));
        let bare = gateway_client_ip(peer("127.0.0.1"), &HeaderMap::new(), &loopback_trusted());
        assert_eq!(bare, ip("127.0.0.1"));
    }

    #[test]
    fn an_unparsable_real_ip_stops_at_the_proxy() {
        let claims = headers(&[("x-real-ip", "unknown"), ("x-forwarded-for", "192.0.2.9")]);
        let client = gateway_client_ip(peer("127.0.0.1"), &claims, &loopback_trusted());
        assert_eq!(client, ip("127.0.0.1"));
        let mut binary = HeaderMap::new();
        binary.insert(X_REAL_IP, HeaderValue::from_bytes(b"\xff").unwrap());
        binary.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.9"));
        let client = gateway_client_ip(peer("127.0.0.1"), &binary, &loopback_trusted());
        assert_eq!(client, ip("127.0.0.1"));
    }

    #[test]
    fn required_scopes_are_the_union_of_query_and_header() {
        let scopes = required_scopes(
            Some("scope=orders.read+orders.write&other=x&scope=billing.read"),
            &headers(&[
                ("x-latchkey-scope", "orders.read  audit.read"),
                ("x-latchkey-scope", "billing.read"),
            ]),
        );
        assert_eq!(
            scopes.unwrap(),
            ["audit.read", "billing.read", "orders.read", "orders.write"]
        );
        assert_eq!(required_scopes(None, &HeaderMap::new()).unwrap(), [""; 0]);
        assert_eq!(
            required_scopes(Some("scope="), &headers(&[("x-latchkey-scope", "")])).unwrap(),
            [""; 0]
        );
    }

    #[test]
    fn an_unreadable_scope_header_is_refused_not_ignored() {
        let mut map = HeaderMap::new();
        map.insert(
            X_LATCHKEY_SCOPE,
            HeaderValue::from_bytes(b"orders.\xff").unwrap(),
        );
        assert_eq!(required_scopes(None, &map), None);
    }

    #[test]
    fn refusals_carry_the_challenge_and_are_not_cached() {
        let response = refusal(
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer realm="latchkey""#),
            "unauthorized",
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="latchkey""#
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn an_allow_carries_every_identity_header() {
        let response = allowed(
            vec![
                (headers::CLIENT_ID, "lk_abc".to_owned()),
                (headers::CREDENTIAL_ID, "cred-1".to_owned()),
                (headers::SCOPES, String::new()),
            ],
            ip("127.0.0.1"),
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-latchkey-client-id"], "lk_abc");
        assert_eq!(response.headers()["x-latchkey-credential-id"], "cred-1");
        assert_eq!(response.headers()["x-latchkey-scopes"], "");
        let broken = allowed(vec![(headers::OWNER, "a\r\nb".to_owned())], ip("127.0.0.1"));
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
