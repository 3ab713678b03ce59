//! The issuer's OAuth request reading (`latchkey_token_http`): the strict
//! form parser (content type, UTF-8, no repeated parameter), client
//! authentication (HTTP Basic or form fields, never both, one
//! `Authorization` header) and the `Authorization` value parser.
//!
//! Input: header lines (`name: value`), an empty line, then the body, as
//! in HTTP/1.1.
//!
//! Holds: no panic; a form that parses re-encodes and parses to the same
//! parameters; form credentials are read as sent; two `Authorization`
//! headers, or a header beside form credentials, are refused; HTTP Basic
//! of URL-encoded credentials decodes to the same credentials; the bearer
//! reading of a value agrees with the full parser.

#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue};
use latchkey_token_http::authorization::{PresentedAuthorization, bearer_token};
use latchkey_token_http::fuzzing::read_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|pair| pair == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    let authorizations = headers.get_all(AUTHORIZATION).iter().count();
    for value in headers.get_all(AUTHORIZATION) {
        let text = value.to_str().ok();
        if let PresentedAuthorization::Bearer(token) = PresentedAuthorization::parse(text) {
            assert_eq!(bearer_token(text), Some(token.as_str()));
        }
    }

    let Ok(read) = read_request(&headers, body) else {
        return;
    };
    let parameters = &read.parameters;
    // Re-encoded, the form reads back the same.
    let encoded: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(parameters.iter())
        .finish();
    let mut form_headers = HeaderMap::new();
    form_headers.insert(
        CONTENT_TYPE,
        headers
            .get(CONTENT_TYPE)
            .expect("a form parsed only with its content type")
            .clone(),
    );
    let again = read_request(&form_headers, encoded.as_bytes()).expect("a re-encoded form");
    assert_eq!(&again.parameters, parameters);

    let form_credentials =
        parameters.contains_key("client_id") || parameters.contains_key("client_secret");
    if authorizations > 1 || (authorizations == 1 && form_credentials) {
        assert!(read.client.is_err(), "{:?}", read.client);
        assert!(read.introspection_caller.is_err());
    }
    if authorizations == 0 && form_credentials {
        let field = |name: &str| parameters.get(name).cloned().unwrap_or_default();
        let (client_id, client_secret) = read.client.clone().expect("form credentials");
        assert_eq!(
            (client_id, client_secret),
            (field("client_id"), field("client_secret"))
        );
    }
    if authorizations == 0 && !form_credentials {
        assert!(read.client.is_err());
        assert_eq!(read.introspection_caller, Ok("none"));
    }

    // HTTP Basic as RFC 6749 §2.3.1 writes it decodes to what was sent.
    if let (Some(client_id), Some(client_secret)) =
        (parameters.get("client_id"), parameters.get("client_secret"))
    {
        let encode =
            |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        let basic = format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", encode(client_id), encode(client_secret)))
        );
        assert_eq!(
            PresentedAuthorization::parse(Some(&basic)),
            PresentedAuthorization::Basic {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
            }
        );
    }
});
