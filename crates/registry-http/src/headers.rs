//! Response headers of the registry's HTTP listener.
//!
//! Every answer may carry a secret (`CreateCredential` answers one) and
//! none is a page to frame or a script to run, so API answers are never
//! cached and allow nothing to load; the console's pages set their own
//! Content-Security-Policy, which is kept.

use axum::http::HeaderValue;
use axum::http::header;
use axum::response::Response;

/// The policy of API answers: nothing may load, nothing may frame them.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// On every answer of the listener: no MIME sniffing, no framing, and the
/// API's Content-Security-Policy unless the answer set its own.
pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        );
    }
    response
}

/// On API answers: never stored by a browser or a proxy.
pub(crate) async fn api_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(API_CSP),
    );
    response
}
