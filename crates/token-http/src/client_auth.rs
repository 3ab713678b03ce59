//! Client authentication on the OAuth endpoints (RFC 6749 §2.3.1): HTTP
//! Basic with the form-urlencoded client ID and secret, or `client_id` and
//! `client_secret` form fields. Using both is refused.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use latchkey_net::TrustedProxies;
use latchkey_token::PresentedAuthorization;

use crate::error::OAuthError;
use crate::form::Form;

/// A client ID and secret as presented.
#[derive(Debug)]
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// The presented credentials; `invalid_client` when none are.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientCredentials, OAuthError> {
    let basic = basic_credentials(headers)?;
    let in_form = form.get("client_id").is_some() || form.get("client_secret").is_some();
    match (basic, in_form) {
        (Some(_), true) => Err(OAuthError::invalid_request(
            "use one client authentication method: HTTP Basic or form fields, not both",
        )),
        (Some(credentials), false) => Ok(credentials),
        (None, true) => Ok(ClientCredentials {
            client_id: form.get("client_id").unwrap_or_default().to_owned(),
            client_secret: form.get("client_secret").unwrap_or_default().to_owned(),
        }),
        (None, false) => Err(OAuthError::invalid_client()),
    }
}

/// Credentials in an HTTP Basic `Authorization` header; any other value of
/// the header is an invalid client.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<ClientCredentials>, OAuthError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str());
    let presented = match value {
        None => PresentedAuthorization::Absent,
        Some(Ok(text)) => PresentedAuthorization::parse(Some(text)),
        Some(Err(_)) => PresentedAuthorization::Invalid,
    };
    match presented {
        PresentedAuthorization::Absent => Ok(None),
        PresentedAuthorization::Basic {
            client_id,
            client_secret,
        } => Ok(Some(ClientCredentials {
            client_id,
            client_secret,
        })),
        PresentedAuthorization::Bearer(_) | PresentedAuthorization::Invalid => {
            Err(OAuthError::invalid_client())
        }
    }
}

/// The caller's IP, through trusted proxies only.
pub(crate) fn caller_ip(peer: SocketAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let values = |name: header::HeaderName| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect::<Vec<_>>()
    };
    proxies.client_ip(
        peer.ip(),
        values(header::FORWARDED),
        values(header::HeaderName::from_static("x-forwarded-for")),
    )
}
