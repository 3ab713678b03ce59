//! The entry of the OAuth form fuzz target (`fuzz/`, outside the
//! workspace): a request's headers and body read exactly as the token,
//! revocation and introspection endpoints read them. Hidden from the docs;
//! not an API.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::HeaderMap;

use crate::authorization::PresentedAuthorization;
use crate::client_auth::{IntrospectionCaller, client_credentials, introspection_caller};
use crate::form::Form;

/// What the endpoints read from one request whose form parsed.
#[derive(Debug)]
pub struct ReadRequest {
    /// The form's parameters, each sent once.
    pub parameters: HashMap<String, String>,
    /// The client ID and secret the token and revocation endpoints would
    /// check, or the refusal (its debug form).
    pub client: Result<(String, String), String>,
    /// How an introspection caller authenticated (`basic`, `bearer`,
    /// `form`, or `none` for nothing usable), or the refusal.
    pub introspection_caller: Result<&'static str, String>,
}

/// Reads `headers` and `body` as the OAuth endpoints do; `Err` (the
/// refusal's debug form) when the form itself is refused.
pub fn read_request(headers: &HeaderMap, body: &[u8]) -> Result<ReadRequest, String> {
    let form = Form::parse(headers, Ok(Bytes::copy_from_slice(body)))
        .map_err(|error| format!("{error:?}"))?;
    let client = client_credentials(headers, &form)
        .map(|credentials| (credentials.client_id, credentials.client_secret))
        .map_err(|error| format!("{error:?}"));
    let caller = introspection_caller(headers, &form)
        .map(|caller| match caller {
            IntrospectionCaller::Header(PresentedAuthorization::Basic { .. }) => "basic",
            IntrospectionCaller::Header(PresentedAuthorization::Bearer(_)) => "bearer",
            IntrospectionCaller::Form { .. } => "form",
            IntrospectionCaller::Header(
                PresentedAuthorization::Absent | PresentedAuthorization::Invalid,
            )
            | IntrospectionCaller::None => "none",
        })
        .map_err(|error| format!("{error:?}"));
    Ok(ReadRequest {
        parameters: form.parameters().clone(),
        client,
        introspection_caller: caller,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};

    use super::*;

    fn headers(authorization: Option<&'static str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some(value) = authorization {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn reads_what_the_endpoints_read() {
        let read = read_request(&headers(None), b"client_id=lkc_a&client_secret=lks_b").unwrap();
        assert_eq!(read.parameters.len(), 2);
        assert_eq!(
            read.client.unwrap(),
            ("lkc_a".to_owned(), "lks_b".to_owned())
        );
        assert_eq!(read.introspection_caller, Ok("form"));

        // "Basic lkc_a:lks_b" beside form credentials: both refused.
        let both =
            read_request(&headers(Some("Basic bGtjX2E6bGtzX2I=")), b"client_id=lkc_a").unwrap();
        assert!(both.client.unwrap_err().contains("not both"));
        assert!(both.introspection_caller.is_err());

        let repeated = read_request(&headers(None), b"token=a&token=a").unwrap_err();
        assert!(repeated.contains("is repeated"), "{repeated}");
    }
}
