//! What a `CheckRequest` says about the request Envoy is holding: its
//! `Authorization` header, the caller's address, the scopes the route
//! requires and any identity headers the client sent itself.

use std::borrow::Cow;
use std::net::IpAddr;

use envoy_types::ext_authz::v3::CheckRequestExt;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use latchkey_token::parse_scope_list;

/// Longest `Authorization` header looked at. Our tokens are far shorter;
/// anything longer is refused before it reaches the token store.
pub(crate) const MAX_AUTHORIZATION_LEN: usize = 4096;

/// The context extension (set per route in Envoy's config) naming the
/// scopes a route requires, space-separated.
pub(crate) const SCOPE_EXTENSION: &str = "scope";

/// The prefix every identity header shares. The upstream trusts these, so
/// any the client sent itself must not survive an allow.
pub(crate) const IDENTITY_HEADER_PREFIX: &str = "x-latchkey-";

/// The request's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthorizationHeader<'a> {
    /// None was sent.
    Absent,
    /// Its one value.
    Present(Cow<'a, str>),
    /// Sent more than once: two credentials in one request, refused rather
    /// than one of them picked (RFC 6749 §2.3). In `headers` Envoy joins
    /// repeated headers with `,`, which no bearer token or Basic credential
    /// contains, so a comma there means repetition too.
    Repeated,
    /// Longer than [`MAX_AUTHORIZATION_LEN`]: cannot be a token of ours.
    Oversized,
}

/// The parts of a `CheckRequest` a gateway decision needs.
#[derive(Debug, Clone)]
pub(crate) struct CheckInput<'a> {
    /// The `Authorization` header.
    pub(crate) authorization: AuthorizationHeader<'a>,
    /// The downstream peer's address; `None` if Envoy sent none usable.
    pub(crate) client_ip: Option<IpAddr>,
    /// Scopes the route requires.
    pub(crate) required_scopes: Vec<String>,
    /// Lower-cased names of `x-latchkey-*` headers the client sent.
    pub(crate) spoofed_headers: Vec<String>,
}

impl<'a> CheckInput<'a> {
    /// Reads `request`, borrowing from it where it can.
    pub(crate) fn from_request(request: &'a CheckRequest) -> Self {
        let http = request
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.request.as_ref())
            .and_then(|request| request.http.as_ref());
        let headers = http.map(request_headers).unwrap_or_default();
        let joined = http.is_some_and(|http| !http.headers.is_empty());
        let required_scopes = request
            .attributes
            .as_ref()
            .and_then(|attributes| attributes.context_extensions.get(SCOPE_EXTENSION))
            // Split as the `auth_request` check splits its `scope`, so a
            // route requires the same scopes behind either gateway.
            .map(|scopes| parse_scope_list(scopes))
            .unwrap_or_default();
        Self {
            authorization: authorization(&headers, joined),
            client_ip: client_ip(request),
            required_scopes,
            spoofed_headers: spoofed_headers(&headers),
        }
    }
}

/// The request's headers as `(name, value)` pairs: from `headers`, or from
/// `header_map` when Envoy runs with `encode_raw_headers` (then `headers`
/// is empty and values may arrive as raw bytes).
fn request_headers(http: &HttpRequest) -> Vec<(&str, Cow<'_, str>)> {
    if !http.headers.is_empty() {
        return http
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), Cow::Borrowed(value.as_str())))
            .collect();
    }
    http.header_map
        .iter()
        .flat_map(|map| &map.headers)
        .map(|header| {
            let value = if header.raw_value.is_empty() {
                Cow::Borrowed(header.value.as_str())
            } else {
                // Invalid UTF-8 cannot be a token; replacing it keeps the
                // header present so the answer is "invalid", not "missing".
                String::from_utf8_lossy(&header.raw_value)
            };
            (header.key.as_str(), value)
        })
        .collect()
}

/// The `Authorization` header of `headers`; `joined` says they come from
/// `headers`, where Envoy merged repeated headers into one value.
fn authorization<'a>(headers: &[(&str, Cow<'a, str>)], joined: bool) -> AuthorizationHeader<'a> {
    let mut values = headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value);
    let Some(value) = values.next() else {
        return AuthorizationHeader::Absent;
    };
    if values.next().is_some() || (joined && value.contains(',')) {
        return AuthorizationHeader::Repeated;
    }
    if value.len() > MAX_AUTHORIZATION_LEN {
        return AuthorizationHeader::Oversized;
    }
    AuthorizationHeader::Present(value.clone())
}

/// The downstream peer, as Envoy reports it. IPv4-mapped IPv6 (a dual-stack
/// listener) is written as IPv4 so allowlists and last-use records see one
/// form.
fn client_ip(request: &CheckRequest) -> Option<IpAddr> {
    request
        .get_client_address()?
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

fn spoofed_headers(headers: &[(&str, Cow<'_, str>)]) -> Vec<String> {
    let mut names: Vec<String> = headers
        .iter()
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| name.starts_with(IDENTITY_HEADER_PREFIX))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
    use envoy_types::pb::envoy::config::core::v3::{
        Address, HeaderMap, HeaderValue, Pipe, SocketAddress,
    };
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{Peer, Request};

    use super::*;

    fn request(
        source: Option<AddressKind>,
        http: HttpRequest,
        scope: Option<&str>,
    ) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                source: Some(Peer {
                    address: Some(Address { address: source }),
                    ..Default::default()
                }),
                request: Some(Request {
                    http: Some(http),
                    ..Default::default()
                }),
                context_extensions: scope
                    .map(|scope| HashMap::from([(SCOPE_EXTENSION.to_owned(), scope.to_owned())]))
                    .unwrap_or_default(),
                ..Default::default()
            }),
        }
    }

    fn socket(address: &str) -> Option<AddressKind> {
        Some(AddressKind::SocketAddress(SocketAddress {
            address: address.to_owned(),
            ..Default::default()
        }))
    }

    fn with_headers(headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reads_token_caller_and_scopes() {
        let request = request(
            socket("10.1.2.3"),
            with_headers(&[("authorization", "Bearer lkt_abc"), (":path", "/orders")]),
            Some(" orders.read  orders.write "),
        );
        let input = CheckInput::from_request(&request);
        assert_eq!(
            input.authorization,
            AuthorizationHeader::Present("Bearer lkt_abc".into())
        );
        assert_eq!(input.client_ip, Some("10.1.2.3".parse().unwrap()));
        assert_eq!(input.required_scopes, ["orders.read", "orders.write"]);
        assert!(input.spoofed_headers.is_empty());
    }

    #[test]
    fn nothing_required_without_the_extension() {
        let request = request(socket("10.1.2.3"), with_headers(&[]), None);
        let input = CheckInput::from_request(&request);
        assert_eq!(input.authorization, AuthorizationHeader::Absent);
        assert!(input.required_scopes.is_empty());
    }

    #[test]
    fn raw_header_map_is_read_when_headers_is_empty() {
        let http = HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![
                    HeaderValue {
                        key: "authorization".into(),
                        raw_value: b"Bearer lkt_raw".to_vec(),
                        ..Default::default()
                    },
                    HeaderValue {
                        key: "X-Latchkey-Owner".into(),
                        value: "mallory".into(),
                        ..Default::default()
                    },
                ],
            }),
            ..Default::default()
        };
        let request = request(socket("10.1.2.3"), http, None);
        let input = CheckInput::from_request(&request);
        assert_eq!(
            input.authorization,
            AuthorizationHeader::Present("Bearer lkt_raw".into())
        );
        assert_eq!(input.spoofed_headers, ["x-latchkey-owner"]);
    }

    #[test]
    fn repeated_authorization_headers_are_flagged() {
        let header = |value: &str| HeaderValue {
            key: "authorization".into(),
            value: value.into(),
            ..Default::default()
        };
        let http = HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![header("Bearer a"), header("Bearer a")],
            }),
            ..Default::default()
        };
        let raw = request(socket("10.1.2.3"), http, None);
        assert_eq!(
            CheckInput::from_request(&raw).authorization,
            AuthorizationHeader::Repeated
        );
        // As Envoy merges them in `headers`.
        let merged = request(
            socket("10.1.2.3"),
            with_headers(&[("authorization", "Bearer a,Bearer b")]),
            None,
        );
        assert_eq!(
            CheckInput::from_request(&merged).authorization,
            AuthorizationHeader::Repeated
        );
        // One raw header is taken as sent, comma or not (it is then just
        // not a token).
        let http = HttpRequest {
            header_map: Some(HeaderMap {
                headers: vec![header("Bearer a,b")],
            }),
            ..Default::default()
        };
        let single = request(socket("10.1.2.3"), http, None);
        assert_eq!(
            CheckInput::from_request(&single).authorization,
            AuthorizationHeader::Present("Bearer a,b".into())
        );
    }

    #[test]
    fn oversized_authorization_is_flagged() {
        let oversized = |value: &str| {
            let request = request(
                socket("10.1.2.3"),
                with_headers(&[("authorization", value)]),
                None,
            );
            let input = CheckInput::from_request(&request);
            matches!(input.authorization, AuthorizationHeader::Oversized)
        };
        assert!(!oversized(&"x".repeat(MAX_AUTHORIZATION_LEN)));
        assert!(oversized(&"x".repeat(MAX_AUTHORIZATION_LEN + 1)));
    }

    #[test]
    fn caller_address_must_be_an_ip() {
        for (source, expected) in [
            (socket("192.0.2.7"), Some("192.0.2.7")),
            (socket("::ffff:10.0.0.1"), Some("10.0.0.1")),
            (socket("2001:db8::1"), Some("2001:db8::1")),
            (socket("not-an-ip"), None),
            (socket(""), None),
            (
                Some(AddressKind::Pipe(Pipe {
                    path: "/run/envoy.sock".into(),
                    mode: 0,
                })),
                None,
            ),
            (None, None),
        ] {
            let request = request(source, with_headers(&[]), None);
            assert_eq!(
                CheckInput::from_request(&request).client_ip,
                expected.map(|ip| ip.parse().unwrap())
            );
        }
        assert_eq!(
            CheckInput::from_request(&CheckRequest::default()).client_ip,
            None
        );
    }

    #[test]
    fn identity_headers_share_the_stripped_prefix() {
        use latchkey_token_http::gateway::headers;
        for name in [
            headers::CLIENT_ID,
            headers::CREDENTIAL_ID,
            headers::PROJECT,
            headers::OWNER,
            headers::SCOPES,
        ] {
            assert!(name.starts_with(IDENTITY_HEADER_PREFIX), "{name}");
        }
    }
}
