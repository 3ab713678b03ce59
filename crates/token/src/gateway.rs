//! What a gateway check answers, shared by Envoy's ext_authz and the
//! `auth_request`/`forwardAuth` endpoint so both gateways behave alike.
//!
//! A gateway check is an introspection: it tells whoever asks whether a
//! token is good and whose it is. So the gateway authenticates first, as
//! every introspection caller does (RFC 7662 §2.1, DESIGN.md rule 8), with
//! its own credential holding `tokens:introspect`, from its own address (the
//! connection's peer, never a forwarded one: forwarding headers describe
//! the gateway's client). Nothing about the token is looked at before that.

use std::net::IpAddr;

use crate::caller_auth::{CallerCredentials, CallerError};
use crate::error::StoreError;
use crate::introspect::{InactiveReason, Introspection, IntrospectionRequest, TokenInfo};
use crate::issue::TokenService;

/// Headers an allowed request carries to the upstream.
pub mod headers {
    /// The credential's public client ID.
    pub const CLIENT_ID: &str = "x-latchkey-client-id";
    /// The credential's ID.
    pub const CREDENTIAL_ID: &str = "x-latchkey-credential-id";
    /// The credential's project.
    pub const PROJECT: &str = "x-latchkey-project";
    /// The credential's owner.
    pub const OWNER: &str = "x-latchkey-owner";
    /// The token's granted scopes, space-separated.
    pub const SCOPES: &str = "x-latchkey-scopes";
}

/// A gateway's verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayDecision {
    /// Forward the request with these headers added.
    Allow(Vec<(&'static str, String)>),
    /// Refuse it with this HTTP status and `WWW-Authenticate` value.
    Deny {
        /// 401 (no or bad token) or 403 (IP or scope refused).
        status: u16,
        /// The challenge (RFC 6750 §3).
        www_authenticate: &'static str,
        /// Why, for the gateway's logs (never sent to the client).
        reason: &'static str,
    },
    /// The gateway itself was refused as an introspection caller; the
    /// token was not looked at. Each transport answers it in its own terms
    /// (always a refusal of the request).
    GatewayRefused(CallerError),
}

/// Who asks for a gateway check.
#[derive(Debug, Clone, Copy)]
pub struct Gateway<'a> {
    /// What the gateway presented to authenticate itself.
    pub credentials: CallerCredentials<'a>,
    /// The gateway's own address: the connection's peer.
    pub address: IpAddr,
}

/// The `WWW-Authenticate` challenges of gateway denials (RFC 6750 §3),
/// shared so every gateway answers alike.
pub mod challenges {
    /// No bearer token at all.
    pub const NO_TOKEN: &str = r#"Bearer realm="latchkey""#;
    /// A token that is not (or no longer) good.
    pub const INVALID_TOKEN: &str = r#"Bearer realm="latchkey", error="invalid_token""#;
    /// A scope the token lacks.
    pub const INSUFFICIENT_SCOPE: &str = r#"Bearer realm="latchkey", error="insufficient_scope""#;
    /// A caller address the credential may not be used from.
    pub const FORBIDDEN: &str = r#"Bearer realm="latchkey", error="invalid_token", error_description="caller address not allowed""#;
}

use challenges::{FORBIDDEN, INSUFFICIENT_SCOPE, INVALID_TOKEN, NO_TOKEN};

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl TokenService {
    /// Decides a gateway check once `gateway` is authenticated as an
    /// introspection caller. `authorization` is the checked request's
    /// `Authorization` header, `client_ip` its client's address; store
    /// errors are returned (the caller fails closed), never turned into an
    /// allow.
    pub async fn check_gateway_request(
        &self,
        gateway: Gateway<'_>,
        authorization: Option<&str>,
        client_ip: IpAddr,
        required_scopes: &[String],
    ) -> Result<GatewayDecision, StoreError> {
        if let Err(refused) = self
            .authorize_introspection_caller(gateway.credentials, gateway.address)
            .await
        {
            return Ok(GatewayDecision::GatewayRefused(refused));
        }
        let Some(token) = bearer_token(authorization) else {
            return Ok(GatewayDecision::Deny {
                status: 401,
                www_authenticate: NO_TOKEN,
                reason: "no bearer token",
            });
        };
        let answer = self
            .introspect(&IntrospectionRequest {
                token,
                client_ip: Some(client_ip),
                required_scopes,
            })
            .await?;
        Ok(match answer {
            Introspection::Active(info) => GatewayDecision::Allow(identity_headers(info)),
            Introspection::Inactive(reason) => deny(reason),
        })
    }
}

fn identity_headers(info: TokenInfo) -> Vec<(&'static str, String)> {
    vec![
        (headers::CLIENT_ID, info.client_id),
        (headers::CREDENTIAL_ID, info.credential_id),
        (headers::PROJECT, info.project_id),
        (headers::OWNER, info.owner),
        (headers::SCOPES, info.scopes.join(" ")),
    ]
}

fn deny(reason: InactiveReason) -> GatewayDecision {
    let (status, www_authenticate, reason) = match reason {
        InactiveReason::Malformed => (401, INVALID_TOKEN, "malformed"),
        InactiveReason::Unknown => (401, INVALID_TOKEN, "unknown"),
        InactiveReason::Expired => (401, INVALID_TOKEN, "expired"),
        InactiveReason::Revoked => (401, INVALID_TOKEN, "revoked"),
        InactiveReason::CredentialDisabled => (401, INVALID_TOKEN, "credential_disabled"),
        InactiveReason::CredentialExpired => (401, INVALID_TOKEN, "credential_expired"),
        InactiveReason::IpNotAllowed => (403, FORBIDDEN, "ip_not_allowed"),
        InactiveReason::ScopeNotAllowed => (403, INSUFFICIENT_SCOPE, "scope_not_allowed"),
    };
    GatewayDecision::Deny {
        status,
        www_authenticate,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_credentials_are_tokens() {
        assert_eq!(bearer_token(Some("Bearer lkt_abc")), Some("lkt_abc"));
        assert_eq!(bearer_token(Some("bearer   lkt_abc ")), Some("lkt_abc"));
        assert_eq!(bearer_token(Some("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn bad_tokens_are_401_and_refused_callers_403() {
        for reason in [
            InactiveReason::Malformed,
            InactiveReason::Revoked,
            InactiveReason::Expired,
        ] {
            assert!(matches!(
                deny(reason),
                GatewayDecision::Deny { status: 401, .. }
            ));
        }
        for reason in [
            InactiveReason::IpNotAllowed,
            InactiveReason::ScopeNotAllowed,
        ] {
            assert!(matches!(
                deny(reason),
                GatewayDecision::Deny { status: 403, .. }
            ));
        }
    }
}
