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

    /// A parameter, if present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    /// A required parameter.
    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name}: required")))
    }
}
