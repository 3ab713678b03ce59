//! A gateway check's answer in HTTP terms: status, `WWW-Authenticate`
//! challenge (RFC 6750 §3) and identity headers. Shared by `/auth/check`
//! (NGINX, Traefik) and Envoy's ext_authz, so every gateway answers alike;
//! the domain only says what it decided ([`GatewayDecision`]).
//!
//! [`GatewayDecision`]: latchkey_token::GatewayDecision

use latchkey_token::{DenyReason, InactiveReason, TokenInfo};

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

/// The `WWW-Authenticate` challenges of gateway denials (RFC 6750 §3).
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

/// How a denied request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// 401 (no or bad token) or 403 (address or scope refused).
    pub status: u16,
    /// The challenge.
    pub www_authenticate: &'static str,
    /// Why, for the gateway's logs (never sent to the client).
    pub reason: &'static str,
}

/// The refusal of a request the domain denied.
pub fn denial(reason: DenyReason) -> Denial {
    let (status, www_authenticate, reason) = match reason {
        DenyReason::NoToken => (401, NO_TOKEN, "no bearer token"),
        DenyReason::Inactive(inactive) => match inactive {
            InactiveReason::Malformed => (401, INVALID_TOKEN, "malformed"),
            InactiveReason::Unknown => (401, INVALID_TOKEN, "unknown"),
            InactiveReason::Expired => (401, INVALID_TOKEN, "expired"),
            InactiveReason::Revoked => (401, INVALID_TOKEN, "revoked"),
            InactiveReason::CredentialDisabled => (401, INVALID_TOKEN, "credential_disabled"),
            InactiveReason::CredentialExpired => (401, INVALID_TOKEN, "credential_expired"),
            InactiveReason::IpNotAllowed => (403, FORBIDDEN, "ip_not_allowed"),
            InactiveReason::ScopeNotAllowed => (403, INSUFFICIENT_SCOPE, "scope_not_allowed"),
        },
    };
    Denial {
        status,
        www_authenticate,
        reason,
    }
}

/// The headers that carry an allowed token's identity to the upstream.
pub fn identity_headers(info: TokenInfo) -> Vec<(&'static str, String)> {
    vec![
        (headers::CLIENT_ID, info.client_id),
        (headers::CREDENTIAL_ID, info.credential_id),
        (headers::PROJECT, info.project_id),
        (headers::OWNER, info.owner),
        (headers::SCOPES, info.scopes.join(" ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tokens_are_401_and_refused_addresses_and_scopes_403() {
        assert_eq!(
            denial(DenyReason::NoToken),
            Denial {
                status: 401,
                www_authenticate: NO_TOKEN,
                reason: "no bearer token"
            }
        );
        for reason in [
            InactiveReason::Malformed,
            InactiveReason::Revoked,
            InactiveReason::Expired,
        ] {
            let denied = denial(DenyReason::Inactive(reason));
            assert_eq!(
                (denied.status, denied.www_authenticate),
                (401, INVALID_TOKEN)
            );
        }
        for reason in [
            InactiveReason::IpNotAllowed,
            InactiveReason::ScopeNotAllowed,
        ] {
            assert_eq!(denial(DenyReason::Inactive(reason)).status, 403);
        }
    }
}
