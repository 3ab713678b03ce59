//! What the console needs to know of the server it runs on.

use serde::Serialize;

/// The console's configuration, from the registry's.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    token_endpoint: String,
    token_origin: String,
}

/// The token endpoint is not an absolute http(s) URL the console can sign in at.
#[derive(Debug, thiserror::Error)]
#[error(
    "token_endpoint: the console needs an absolute http:// or https:// URL without spaces, quotes, commas or semicolons, got {0:?}"
)]
pub struct InvalidTokenEndpoint(String);

impl ConsoleSettings {
    /// Settings for a console that signs in at `token_endpoint` (the
    /// issuer's `/oauth2/token`, as the registry shows it with every
    /// credential). Its origin is the only one besides the console's own
    /// that the page may connect to.
    pub fn new(token_endpoint: &str) -> Result<Self, InvalidTokenEndpoint> {
        let invalid = || InvalidTokenEndpoint(token_endpoint.to_owned());
        // The origin goes into the Content-Security-Policy header: anything
        // that could end or extend a directive is refused.
        if token_endpoint.chars().any(|character| {
            character.is_whitespace()
                || character.is_control()
                || matches!(character, ';' | ',' | '\'' | '"' | '\\')
        }) {
            return Err(invalid());
        }
        let (scheme, rest) = token_endpoint.split_once("://").ok_or_else(invalid)?;
        if scheme != "http" && scheme != "https" {
            return Err(invalid());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid());
        }
        Ok(Self {
            token_endpoint: token_endpoint.to_owned(),
            token_origin: format!("{scheme}://{authority}"),
        })
    }

    /// The token endpoint's origin (`scheme://host:port`).
    pub fn token_origin(&self) -> &str {
        &self.token_origin
    }

    /// `GET /console/config.json`.
    pub(crate) fn config_json(&self) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Config<'a> {
            token_endpoint: &'a str,
            api_prefix: &'a str,
        }
        serde_json::to_string(&Config {
            token_endpoint: &self.token_endpoint,
            api_prefix: "/latchkey.registry.v1.CredentialRegistry/",
        })
        .unwrap_or_default()
    }
}
