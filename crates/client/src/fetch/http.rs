//! The grant over HTTP (RFC 6749 §4.4): `POST /oauth2/token` with HTTP Basic
//! client authentication, errors read from the RFC 6749 §5.2 JSON body.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::{Grant, Issued};
use crate::error::TokenError;
use crate::secret::AccessToken;

/// Fetches tokens from one token endpoint.
#[derive(Debug, Clone)]
pub(crate) struct HttpFetcher {
    client: reqwest::Client,
    token_url: Url,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
}

impl HttpFetcher {
    pub(crate) fn new(client: reqwest::Client, token_url: Url) -> Self {
        Self { client, token_url }
    }

    pub(crate) async fn fetch(&self, grant: &Grant) -> Result<Issued, TokenError> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !grant.scopes.is_empty() {
            form.push(("scope", grant.scopes.join(" ")));
        }
        let response = self
            .client
            .post(self.token_url.clone())
            .header(AUTHORIZATION, basic(grant))
            .form(&form)
            .send()
            .await
            .map_err(|error| TokenError::Unavailable(error.without_url().to_string()))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|error| TokenError::Unavailable(error.without_url().to_string()))?;
        if status.is_success() {
            let token: TokenBody = serde_json::from_slice(&body)
                .map_err(|error| TokenError::Protocol(format!("token response: {error}")))?;
            return Ok(Issued {
                token: AccessToken::new(token.access_token),
                expires_in: Duration::from_secs(token.expires_in),
            });
        }
        Err(refusal(status, retry_after, &body))
    }
}

/// The grant's `Basic` authorization.
fn basic(grant: &Grant) -> String {
    crate::secret::basic_authorization(&grant.client_id, &grant.client_secret)
}

/// `Retry-After`, in delta-seconds or as an HTTP-date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    super::retry_after(value, std::time::SystemTime::now())
}

/// The typed error of a refused request.
fn refusal(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> TokenError {
    let oauth: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, description) = oauth
        .map(|error| (error.error, error.error_description))
        .unwrap_or_default();
    match code.as_str() {
        "invalid_client" => return TokenError::InvalidClient,
        "invalid_scope" => return TokenError::InvalidScope(description),
        "invalid_request" | "unsupported_grant_type" | "invalid_grant" => {
            return TokenError::InvalidRequest(format!("{code}: {description}"));
        }
        _ => {}
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some())
    {
        let description = if code.is_empty() {
            status.to_string()
        } else {
            format!("{code}: {description}")
        };
        return TokenError::RateLimited {
            description,
            retry_after,
        };
    }
    if status == StatusCode::UNAUTHORIZED {
        return TokenError::InvalidClient;
    }
    if status.is_server_error() {
        return TokenError::Unavailable(format!("HTTP {status} {code}"));
    }
    TokenError::Protocol(format!("HTTP {status} {code}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_become_typed_errors() {
        let body = |code: &str| format!(r#"{{"error":"{code}","error_description":"d"}}"#);
        assert_eq!(
            refusal(
                StatusCode::UNAUTHORIZED,
                None,
                body("invalid_client").as_bytes()
            ),
            TokenError::InvalidClient
        );
        assert_eq!(
            refusal(
                StatusCode::BAD_REQUEST,
                None,
                body("invalid_scope").as_bytes()
            ),
            TokenError::InvalidScope("d".into())
        );
        assert!(matches!(
            refusal(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(7)),
                body("too_many_failed_attempts").as_bytes()
            ),
            TokenError::RateLimited { retry_after: Some(wait), .. } if wait == Duration::from_secs(7)
        ));
        assert!(matches!(
            refusal(StatusCode::SERVICE_UNAVAILABLE, None, b"<html>"),
            TokenError::Unavailable(_)
        ));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let in_two_minutes = std::time::SystemTime::now() + Duration::from_secs(120);
        headers.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(in_two_minutes).parse().unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        // The date has whole seconds, and a moment passes.
        assert!(
            wait > Duration::from_secs(117) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, "later".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
