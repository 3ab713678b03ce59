//! Form bodies (`application/x-www-form-urlencoded`), strictly: RFC 6749
//! §3.2 forbids repeating a parameter, and a wrong content type is refused
//! rather than guessed at.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};

use crate::error::OAuthError;

/// The parameters of a form body, each present at most once.
#[derive(Debug, Default)]
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    /// Parses the body after checking the content type. A body over the
    /// size limit gets an OAuth error too (413), not the framework's text.
    pub(crate) fn parse(
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Self, OAuthError> {
        let body = body.map_err(|rejection| {
            OAuthError::invalid_request(format!("unreadable body: {}", rejection.body_text()))
                .with_status(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                })
        })?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        if std::str::from_utf8(&body).is_err() {
            return Err(OAuthError::invalid_request("the body is not UTF-8"));
        }
        let mut parameters = HashMap::new();
        for (name, value) in form_urlencoded::parse(&body) {
            if parameters
                .insert(name.to_string(), value.into_owned())
                .is_some()
            {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name:?} is repeated"
                )));
            }
        }
        Ok(Self(parameters))
    }

    /// Every parameter, as sent (the fuzz target's view).
    pub(crate) fn parameters(&self) -> &HashMap<String, String> {
        &self.0
    }

    /// A parameter, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// Whether the parameter was sent at all, even empty.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A required parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name}: required")))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn parse(body: &'static str) -> Result<Form, OAuthError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        Form::parse(&headers, Ok(Bytes::from_static(body.as_bytes())))
    }

    #[test]
    fn a_repeated_credential_or_token_is_refused_by_name() {
        for (body, name) in [
            ("client_id=a&client_id=b&client_secret=s", "client_id"),
            (
                "client_id=a&client_secret=s&client_secret=t",
                "client_secret",
            ),
            ("token=a&token=b", "token"),
            // Even the same value twice, or an empty one: never guess.
            ("token=a&token=a", "token"),
            ("client_id=&client_id=a", "client_id"),
        ] {
            let error = format!("{:?}", parse(body).expect_err(body));
            assert!(error.contains(r#"code: "invalid_request""#), "{error}");
            assert!(
                error.contains(&format!(r#"\"{name}\" is repeated"#)),
                "{error}"
            );
        }
    }

    #[test]
    fn present_and_empty_differ_from_absent() {
        let form = parse("client_id=&token=t").unwrap();
        assert!(form.contains("client_id"));
        assert_eq!(form.get("client_id"), None);
        assert!(!form.contains("client_secret"));
        assert_eq!(form.require("token").unwrap(), "t");
    }
}
