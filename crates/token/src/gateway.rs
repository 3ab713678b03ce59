//! What a gateway check decides, shared by Envoy's ext_authz and the
//! `auth_request`/`forwardAuth` endpoint so both gateways behave alike. The
//! domain says what happened ([`GatewayDecision`]); each transport turns it
//! into its own status codes and challenges.
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
use crate::introspection::{InactiveReason, Introspection, IntrospectionRequest, TokenInfo};
use crate::introspector::Introspector;

/// Why a gateway check refuses the request it was asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The request carries no bearer token.
    NoToken,
    /// Its token is not active for this caller and these scopes.
    Inactive(InactiveReason),
}

/// A gateway's verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayDecision {
    /// Forward the request carrying this identity.
    Allow(TokenInfo),
    /// Refuse it.
    Deny(DenyReason),
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

impl Introspector {
    /// Decides a gateway check once `gateway` is authenticated as an
    /// introspection caller. `token` is the checked request's bearer token
    /// (the transport reads it from its `Authorization` header), `client_ip`
    /// its client's address; store errors are returned (the caller fails
    /// closed), never turned into an allow.
    pub async fn check_gateway_request(
        &self,
        gateway: Gateway<'_>,
        token: Option<&str>,
        client_ip: IpAddr,
        required_scopes: &[String],
    ) -> Result<GatewayDecision, StoreError> {
        if let Err(refused) = self
            .authorize_introspection_caller(gateway.credentials, gateway.address)
            .await
        {
            return Ok(GatewayDecision::GatewayRefused(refused));
        }
        let Some(token) = token else {
            return Ok(GatewayDecision::Deny(DenyReason::NoToken));
        };
        let answer = self
            .introspect(&IntrospectionRequest {
                token,
                client_ip: Some(client_ip),
                required_scopes,
            })
            .await?;
        Ok(match answer {
            Introspection::Active(info) => GatewayDecision::Allow(info),
            Introspection::Inactive(reason) => GatewayDecision::Deny(DenyReason::Inactive(reason)),
        })
    }
}
