//! Reading an `Authorization` value (an HTTP header, or the gRPC metadata
//! of the same name and syntax): HTTP Basic client credentials (RFC 6749
//! §2.3.1) or a bearer token (RFC 6750). Shared by every transport of the
//! issuer, so all of them read a credential the same way; the domain only
//! sees what was presented ([`CallerCredentials`]).

use latchkey_token::CallerCredentials;

/// Credentials in an `Authorization` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedAuthorization {
    /// `Basic base64(urlencoded(id):urlencoded(secret))` (RFC 6749 §2.3.1).
    Basic {
        /// The client ID.
        client_id: String,
        /// The secret.
        client_secret: String,
    },
    /// `Bearer <token>`.
    Bearer(String),
    /// No header.
    Absent,
    /// A header that is neither (or undecodable).
    Invalid,
}

impl PresentedAuthorization {
    /// Parses an `Authorization` value.
    pub fn parse(header: Option<&str>) -> Self {
        use base64::Engine;
        let Some(value) = header else {
            return Self::Absent;
        };
        let Some((scheme, rest)) = value.trim().split_once(' ') else {
            return Self::Invalid;
        };
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            return Self::Bearer(rest.to_owned());
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Self::Invalid;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let Some((client_id, client_secret)) =
            decoded.as_deref().and_then(|text| text.split_once(':'))
        else {
            return Self::Invalid;
        };
        Self::Basic {
            client_id: url_decode(client_id),
            client_secret: url_decode(client_secret),
        }
    }

    /// Parses the one value among a request's `Authorization` values
    /// (each `None` when it is not visible ASCII, which is invalid, never
    /// absent). `None` for two or more: which one a proxy and this server
    /// would each read cannot be told, so neither is (RFC 6749 §2.3).
    pub fn parse_single<'a>(mut values: impl Iterator<Item = Option<&'a str>>) -> Option<Self> {
        let Some(first) = values.next() else {
            return Some(Self::Absent);
        };
        if values.next().is_some() {
            return None;
        }
        Some(match first {
            Some(text) => Self::parse(Some(text)),
            None => Self::Invalid,
        })
    }

    /// What the caller presented, for the domain's caller check
    /// (`Introspector::authorize_introspection_caller`).
    pub fn as_caller(&self) -> CallerCredentials<'_> {
        match self {
            Self::Basic {
                client_id,
                client_secret,
            } => CallerCredentials::Client {
                client_id,
                client_secret,
            },
            Self::Bearer(token) => CallerCredentials::Bearer(token),
            Self::Absent | Self::Invalid => CallerCredentials::None,
        }
    }
}

/// The bearer token of an `Authorization` value, if it is one.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// RFC 6749 §2.3.1: the client ID and secret inside HTTP Basic are
/// `application/x-www-form-urlencoded`. Latchkey's own never need decoding,
/// so they are copied as they are; the decoding (which cost 3% of a gRPC
/// introspection through a form parser) is for other clients' encoders.
fn url_decode(text: &str) -> String {
    if !text.contains(['%', '+']) {
        return text.to_owned();
    }
    // `+` first: a `%2B` decodes to a `+` that must stay one.
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_url_decoded() {
        for (encoded, decoded) in [
            ("lkc_a", "lkc_a"),
            ("a+b", "a b"),
            ("a%2Bb", "a+b"),
            ("a%26b%3Dc", "a&b=c"),
            ("a&b=c", "a&b=c"),
            ("%E2%9C%93", "\u{2713}"),
            ("%ZZ", "%ZZ"),
            ("%FF", "\u{FFFD}"),
        ] {
            assert_eq!(url_decode(encoded), decoded, "{encoded}");
        }
    }

    #[test]
    fn authorization_headers_parse() {
        assert_eq!(
            PresentedAuthorization::parse(Some("Basic bGtjX2E6bGtzX2I=")),
            PresentedAuthorization::Basic {
                client_id: "lkc_a".into(),
                client_secret: "lks_b".into()
            }
        );
        assert_eq!(
            PresentedAuthorization::parse(Some("Bearer lkt_x")),
            PresentedAuthorization::Bearer("lkt_x".into())
        );
        assert_eq!(
            PresentedAuthorization::parse(None),
            PresentedAuthorization::Absent
        );
        for bad in ["Basic !!", "Basic bm9jb2xvbg==", "Digest x", "Bearer"] {
            assert_eq!(
                PresentedAuthorization::parse(Some(bad)),
                PresentedAuthorization::Invalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn only_bearer_credentials_are_tokens() {
        assert_eq!(bearer_token(Some("Bearer lkt_abc")), Some("lkt_abc"));
        assert_eq!(bearer_token(Some("bearer   lkt_abc ")), Some("lkt_abc"));
        assert_eq!(bearer_token(Some("Basic dXNlcjpwYXNz")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }
}
