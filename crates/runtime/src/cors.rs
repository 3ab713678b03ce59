//! CORS for the endpoints a browser calls: the registry's HTTP/JSON API
//! (from the console) and the issuer's token endpoint (the console signs
//! in there). Off unless origins are configured.

use axum::http::header::{self, HeaderName};
use axum::http::{HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::ConfigError;

/// Checks one origin: `http://` or `https://`, a host and an optional
/// port, nothing after (an origin, not a URL; no `*`).
fn validate_origin(key: &str, origin: &str) -> Result<HeaderValue, ConfigError> {
    let refuse = |reason: &str| ConfigError::new(format!("{key}: {origin:?} {reason}"));
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| refuse("must start with http:// or https://"))?;
    if rest.is_empty() {
        return Err(refuse("names no host"));
    }
    if rest.contains(['/', '?', '#', '*', '@']) || rest.chars().any(char::is_whitespace) {
        return Err(refuse(
            "must be scheme://host[:port] only (no path, wildcard or user)",
        ));
    }
    HeaderValue::from_str(origin).map_err(|_| refuse("not printable ASCII"))
}

/// The CORS layer allowing `origins` to call `methods` with the API's
/// request headers (`authorization`, `content-type`,
/// `x-latchkey-on-behalf-of`); `None` (CORS off) when `origins` is empty.
/// Credentials (cookies) are never allowed: tokens travel in the
/// `authorization` header only.
pub fn cors_layer(
    key: &str,
    origins: &[String],
    methods: &[Method],
) -> Result<Option<CorsLayer>, ConfigError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|origin| validate_origin(key, origin))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(methods.to_vec())
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-latchkey-on-behalf-of"),
            ])
            .allow_credentials(false)
            .max_age(std::time::Duration::from_secs(600)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert!(validate_origin("k", "http://127.0.0.1:8081").is_ok());
        assert!(validate_origin("k", "https://console.example.com").is_ok());
        for bad in [
            "*",
            "127.0.0.1:8081",
            "https://example.com/",
            "https://example.com/console",
            "https://*.example.com",
            "https://",
            "ftp://example.com",
        ] {
            assert!(validate_origin("k", bad).is_err(), "{bad} accepted");
        }
        assert!(
            cors_layer("k", &[], &[Method::POST])
                .expect("empty")
                .is_none()
        );
    }
}
