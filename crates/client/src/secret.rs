//! Values that must never reach a log: the client secret and access tokens.
//! Their `Debug` and `Display` print a placeholder, and the secret's memory
//! is zeroed when it is dropped.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A credential's client secret. `Debug` prints `ClientSecret(***)`; the
/// bytes are zeroed on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret (as printed once when the credential was created).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, to send to the issuer. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ClientSecret(***)")
    }
}

impl From<String> for ClientSecret {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

/// A bearer access token. `Debug` prints `AccessToken(***)`; the bytes are
/// zeroed on drop. Cheap to clone is not a goal: a token source hands each
/// caller its own copy.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, to put in an `authorization` header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `Bearer <token>`, the `authorization` header value.
    pub fn bearer_header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AccessToken(***)")
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1), the
/// client authentication of the token endpoint and of introspection.
#[cfg_attr(not(any(feature = "http", feature = "server")), allow(dead_code))]
pub(crate) fn basic_authorization(client_id: &str, client_secret: &ClientSecret) -> String {
    use base64::Engine;
    let encode =
        |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(client_secret.expose()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = ClientSecret::new("lks_very_secret");
        let token = AccessToken::new("lkt_very_secret");
        let printed = format!("{secret:?} {token:?}");
        assert!(!printed.contains("very_secret"), "{printed}");
        assert_eq!(secret.expose(), "lks_very_secret");
        assert_eq!(token.bearer_header(), "Bearer lkt_very_secret");
    }
}
