//! Client authentication on the OAuth endpoints (RFC 6749 §2.3.1): HTTP
//! Basic with the form-urlencoded client ID and secret, or `client_id` and
//! `client_secret` form fields; a caller of `/oauth2/introspect` may also
//! present a bearer token.
//!
//! A request uses exactly one method (RFC 6749 §2.3: "MUST NOT use more than
//! one authentication method in each request"): an `Authorization` header
//! together with a `client_id` or `client_secret` field, or two
//! `Authorization` headers, is refused as `invalid_request` before any
//! credential is checked. Which one "wins" is never guessed: a gateway and
//! the server could disagree on it, and a second credential could ride on a
//! request the first one authorized.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderValue, header};
use latchkey_net::TrustedProxies;
use latchkey_token::CallerCredentials;

use crate::authorization::PresentedAuthorization;
use crate::error::OAuthError;
use crate::form::Form;

/// A client ID and secret as presented.
#[derive(Debug)]
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

/// The request carries more than one `Authorization` header.
#[derive(Debug)]
pub(crate) struct RepeatedAuthorization;

impl RepeatedAuthorization {
    /// The description every endpoint gives.
    pub(crate) const DESCRIPTION: &'static str =
        "authorization: sent more than once; send exactly one Authorization header";
}

impl From<RepeatedAuthorization> for OAuthError {
    fn from(_: RepeatedAuthorization) -> Self {
        OAuthError::invalid_request(RepeatedAuthorization::DESCRIPTION)
    }
}

/// The request's `Authorization` header, if it has one; two or more are
/// refused.
pub(crate) fn single_authorization(
    headers: &HeaderMap,
) -> Result<Option<&HeaderValue>, RepeatedAuthorization> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(RepeatedAuthorization);
    }
    Ok(first)
}

/// Whether the form carries client credentials. A field counts even when
/// empty: the client meant to use it.
fn form_credentials_present(form: &Form) -> bool {
    form.contains("client_id") || form.contains("client_secret")
}

fn both_methods() -> OAuthError {
    OAuthError::invalid_request(
        "use one client authentication method: the Authorization header or the client_id and client_secret form fields, not both",
    )
}

/// The presented client credentials (token and revocation endpoints);
/// `invalid_client` when none are, or when the header is not Basic.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientCredentials, OAuthError> {
    let header = single_authorization(headers)?;
    match (header, form_credentials_present(form)) {
        (Some(_), true) => Err(both_methods()),
        (Some(value), false) => match parse_header(value) {
            PresentedAuthorization::Basic {
                client_id,
                client_secret,
            } => Ok(ClientCredentials {
                client_id,
                client_secret,
            }),
            PresentedAuthorization::Bearer(_)
            | PresentedAuthorization::Absent
            | PresentedAuthorization::Invalid => Err(OAuthError::invalid_client()),
        },
        (None, true) => Ok(ClientCredentials {
            client_id: form.get("client_id").unwrap_or_default().to_owned(),
            client_secret: form.get("client_secret").unwrap_or_default().to_owned(),
        }),
        (None, false) => Err(OAuthError::invalid_client()),
    }
}

/// What an introspection caller presented: its `Authorization` header
/// (Basic or Bearer), or client credentials in the form.
#[derive(Debug)]
pub(crate) enum IntrospectionCaller<'a> {
    /// The `Authorization` header.
    Header(PresentedAuthorization),
    /// `client_id` and `client_secret` form fields.
    Form {
        client_id: &'a str,
        client_secret: &'a str,
    },
    /// Nothing usable: refused as unauthenticated.
    None,
}

impl IntrospectionCaller<'_> {
    /// The credentials for `authorize_introspection_caller`.
    pub(crate) fn as_caller(&self) -> CallerCredentials<'_> {
        match self {
            Self::Header(presented) => presented.as_caller(),
            Self::Form {
                client_id,
                client_secret,
            } => CallerCredentials::Client {
                client_id,
                client_secret,
            },
            Self::None => CallerCredentials::None,
        }
    }
}

/// The introspection caller's one authentication method.
pub(crate) fn introspection_caller<'a>(
    headers: &HeaderMap,
    form: &'a Form,
) -> Result<IntrospectionCaller<'a>, OAuthError> {
    let header = single_authorization(headers)?;
    Ok(match (header, form_credentials_present(form)) {
        (Some(_), true) => return Err(both_methods()),
        (Some(value), false) => IntrospectionCaller::Header(parse_header(value)),
        (None, true) => match (form.get("client_id"), form.get("client_secret")) {
            (Some(client_id), Some(client_secret)) => IntrospectionCaller::Form {
                client_id,
                client_secret,
            },
            // Half a credential authenticates nobody.
            (Some(_), None) | (None, Some(_)) | (None, None) => IntrospectionCaller::None,
        },
        (None, false) => IntrospectionCaller::None,
    })
}

/// A header that is not visible ASCII cannot hold credentials: it is
/// invalid, never treated as absent (which would let form fields decide).
fn parse_header(value: &HeaderValue) -> PresentedAuthorization {
    match value.to_str() {
        Ok(text) => PresentedAuthorization::parse(Some(text)),
        Err(_) => PresentedAuthorization::Invalid,
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

#[cfg(test)]
mod tests {
    use axum::body::Bytes;

    use super::*;

    const BASIC: &str = "Basic bGtfaWQ6bGtzX3NlY3JldA=="; // lk_id:lks_secret

    fn headers(authorizations: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        for value in authorizations {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn form(body: &'static str) -> Form {
        Form::parse(&headers(&[]), Ok(Bytes::from_static(body.as_bytes()))).unwrap()
    }

    /// The refusal's debug form, which names its code and description.
    fn refused(result: Result<impl std::fmt::Debug, OAuthError>) -> String {
        let error = format!("{:?}", result.expect_err("refused"));
        assert!(error.contains(r#"code: "invalid_request""#), "{error}");
        error
    }

    #[test]
    fn each_method_alone_is_read() {
        let basic = client_credentials(&headers(&[BASIC]), &form("grant_type=x")).unwrap();
        assert_eq!(
            (basic.client_id.as_str(), basic.client_secret.as_str()),
            ("lk_id", "lks_secret")
        );
        let fields = client_credentials(
            &headers(&[]),
            &form("client_id=lk_id&client_secret=lks_secret"),
        )
        .unwrap();
        assert_eq!(fields.client_id, "lk_id");
        assert!(matches!(
            introspection_caller(&headers(&["Bearer lkt_x"]), &form("token=t")).unwrap(),
            IntrospectionCaller::Header(PresentedAuthorization::Bearer(_))
        ));
        let form_caller = form("token=t&client_id=lk_id&client_secret=s");
        assert!(matches!(
            introspection_caller(&headers(&[]), &form_caller).unwrap(),
            IntrospectionCaller::Form { .. }
        ));
    }

    #[test]
    fn a_header_and_form_credentials_together_are_refused() {
        for body in [
            "client_id=lk_id&client_secret=lks_secret",
            "client_id=lk_id",
            "client_secret=lks_secret",
            // Present but empty still means the client tried to use it.
            "client_id=",
        ] {
            for header in [BASIC, "Bearer lkt_x", "Digest nonsense"] {
                let description = refused(client_credentials(&headers(&[header]), &form(body)));
                assert!(description.contains("not both"), "{description}");
                let description = refused(introspection_caller(&headers(&[header]), &form(body)));
                assert!(description.contains("not both"), "{description}");
            }
        }
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        for pair in [
            [BASIC, BASIC],
            [BASIC, "Bearer lkt_x"],
            ["Bearer a", "Bearer b"],
        ] {
            let description = refused(client_credentials(&headers(&pair), &form("")));
            assert!(
                description.contains("authorization: sent more"),
                "{description}"
            );
            let description = refused(introspection_caller(&headers(&pair), &form("")));
            assert!(description.contains("more than once"), "{description}");
        }
    }

    #[test]
    fn an_unreadable_header_is_invalid_not_absent() {
        let mut map = headers(&[]);
        map.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Basic \xff").unwrap(),
        );
        let form_caller = form("token=t&client_id=lk_id&client_secret=s");
        refused(introspection_caller(&map, &form_caller));
        assert!(matches!(
            introspection_caller(&map, &form("token=t")).unwrap(),
            IntrospectionCaller::Header(PresentedAuthorization::Invalid)
        ));
        let error = client_credentials(&map, &form("grant_type=x")).unwrap_err();
        assert!(format!("{error:?}").contains(r#"code: "invalid_client""#));
    }
}
