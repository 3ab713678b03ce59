//! What the console needs to know of the server it runs on.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde::Serialize;

/// Who a trusted authentication proxy signed in, as `config.json` tells
/// the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedInByProxy {
    /// The member's user ID.
    pub user: String,
    /// The project the proxy signs members in to.
    pub project: String,
}

/// The trust check of the registry's auth proxy: the user a request from
/// the peer with the headers was signed in as, if any. The registry passes
/// the very check its JSON API applies, so the page and the API agree.
pub type ProxySignIn =
    Arc<dyn Fn(Option<SocketAddr>, &HeaderMap) -> Option<SignedInByProxy> + Send + Sync>;

/// The console's configuration, from the registry's.
#[derive(Clone)]
pub struct ConsoleSettings {
    token_endpoint: String,
    token_origin: String,
    proxy_sign_in: Option<ProxySignIn>,
}

impl fmt::Debug for ConsoleSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSettings")
            .field("token_endpoint", &self.token_endpoint)
            .field("token_origin", &self.token_origin)
            .field("proxy_sign_in", &self.proxy_sign_in.is_some())
            .finish()
    }
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
            proxy_sign_in: None,
        })
    }

    /// Lets users signed in by a trusted authentication proxy skip the
    /// sign-in form: `check` says who a request was signed in as.
    #[must_use]
    pub fn with_proxy_sign_in(mut self, check: ProxySignIn) -> Self {
        self.proxy_sign_in = Some(check);
        self
    }

    /// The token endpoint's origin (`scheme://host:port`).
    pub fn token_origin(&self) -> &str {
        &self.token_origin
    }

    /// `GET /console/config.json` for a request from `peer` with `headers`:
    /// `signedInByProxy` is there only when the trusted proxy signed the
    /// request's user in.
    pub(crate) fn config_json(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Config<'a> {
            token_endpoint: &'a str,
            api_prefix: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            signed_in_by_proxy: Option<SignedInByProxy>,
        }
        serde_json::to_string(&Config {
            token_endpoint: &self.token_endpoint,
            api_prefix: "/latchkey.registry.v1.CredentialRegistry/",
            signed_in_by_proxy: self
                .proxy_sign_in
                .as_ref()
                .and_then(|check| check(peer, headers)),
        })
        .unwrap_or_default()
    }
}
