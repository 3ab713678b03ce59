//! The console's security headers: a strict Content-Security-Policy (no
//! inline script or style, connections only to its own origin and the
//! token endpoint's), no framing, no sniffing, no referrer.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::ConsoleSettings;

/// The headers every console answer carries.
#[derive(Debug, Clone)]
pub(crate) struct SecurityHeaders {
    content_security_policy: HeaderValue,
}

impl SecurityHeaders {
    pub(crate) fn new(settings: &ConsoleSettings) -> Self {
        let policy = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self' {}; frame-ancestors 'none'; base-uri 'none'; \
             form-action 'none'; object-src 'none'",
            settings.token_origin()
        );
        Self {
            // The origin was checked by ConsoleSettings::new: printable ASCII.
            content_security_policy: HeaderValue::from_str(&policy)
                .unwrap_or(HeaderValue::from_static("default-src 'none'")),
        }
    }

    pub(crate) fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_SECURITY_POLICY,
            self.content_security_policy.clone(),
        );
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        response
    }
}

/// `config.json`: never cached, it follows the server's configuration.
pub(crate) fn config_response(body: String) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
