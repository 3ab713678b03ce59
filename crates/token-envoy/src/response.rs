//! `CheckResponse`s: an allow carrying the identity headers, a denial
//! carrying Envoy's local reply.

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::Code;

/// Allows the request, setting each identity header for the upstream.
///
/// `spoofed` names the `x-latchkey-*` headers the client sent: those not
/// overwritten here are removed, so the upstream only ever sees identity
/// headers this service vouched for.
pub(crate) fn allow(identity: Vec<(&'static str, String)>, spoofed: &[String]) -> CheckResponse {
    let mut headers = Vec::with_capacity(identity.len());
    let mut headers_to_remove = Vec::new();
    for (name, value) in identity {
        if value.is_empty() {
            // Envoy may drop an empty-valued header instead of overwriting
            // with it (`keep_empty_value`), which would leave a client's
            // value in place; removing is unambiguous.
            headers_to_remove.push(name.to_owned());
        } else {
            headers.push(overwrite(name, value));
        }
    }
    for name in spoofed {
        let overwritten = headers.iter().any(|set| header_name(set) == name);
        if !overwritten && !headers_to_remove.contains(name) {
            headers_to_remove.push(name.clone());
        }
    }
    #[allow(deprecated)] // `dynamic_metadata` is deprecated; it has to be named
    let ok = OkHttpResponse {
        headers,
        headers_to_remove,
        dynamic_metadata: None,
        response_headers_to_add: Vec::new(),
        query_parameters_to_remove: Vec::new(),
        query_parameters_to_set: Vec::new(),
    };
    CheckResponse {
        status: Some(rpc_status(Code::Ok, "")),
        http_response: Some(HttpResponse::OkResponse(ok)),
        dynamic_metadata: None,
    }
}

/// Denies the request: Envoy answers the client with `status` (401 or 403),
/// the `WWW-Authenticate` challenge and a small JSON error body.
pub(crate) fn deny(status: u16, www_authenticate: &'static str, reason: &str) -> CheckResponse {
    let code = if status == 401 {
        Code::Unauthenticated
    } else {
        Code::PermissionDenied
    };
    let body = error_body(error_code(status));
    denied(
        code,
        reason,
        status,
        vec![overwrite("www-authenticate", www_authenticate)],
        body,
    )
}

/// Denies a malformed request (two `Authorization` headers): 400 with the
/// `invalid_request` challenge (RFC 6750 §3.1).
pub(crate) fn invalid_request(reason: &str) -> CheckResponse {
    denied(
        Code::InvalidArgument,
        reason,
        400,
        vec![overwrite("www-authenticate", INVALID_REQUEST_CHALLENGE)],
        error_body("invalid_request"),
    )
}

/// The challenge of a malformed request.
const INVALID_REQUEST_CHALLENGE: &str = r#"Bearer realm="latchkey", error="invalid_request""#;

/// Denies the request because the gateway asking was refused: `status`
/// for the client, `message` for Envoy's logs, and no challenge (the client
/// did nothing wrong that a new token would fix).
pub(crate) fn gateway_refused(code: Code, status: u16, message: &str) -> CheckResponse {
    let word = match status {
        401 => "unauthorized",
        403 => "forbidden",
        429 | 503 => "temporarily_unavailable",
        _ => "server_error",
    };
    denied(code, message, status, Vec::new(), error_body(word))
}

/// Denies the request because the token store could not answer: 503, so
/// the client retries later rather than discarding a good token.
pub(crate) fn unavailable() -> CheckResponse {
    denied(
        Code::Unavailable,
        "token store unavailable",
        503,
        Vec::new(),
        error_body("temporarily_unavailable"),
    )
}

fn denied(
    code: Code,
    message: &str,
    status: u16,
    mut headers: Vec<HeaderValueOption>,
    body: String,
) -> CheckResponse {
    headers.push(overwrite("content-type", "application/json"));
    // A refusal is about this request only; no cache may replay it.
    headers.push(overwrite("cache-control", "no-store"));
    CheckResponse {
        // The message reaches Envoy's logs only, never the client.
        status: Some(rpc_status(code, message)),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body,
        })),
        dynamic_metadata: None,
    }
}

/// The body's error word. Like the `auth_request` check's, it says only
/// "unauthorized" or "forbidden": the challenge already tells a client what
/// it needs, and every gateway answers a client with the same body.
fn error_code(status: u16) -> &'static str {
    if status == 401 {
        "unauthorized"
    } else {
        "forbidden"
    }
}

/// `{"error":"<code>"}`; codes are fixed ASCII words, so nothing to escape.
fn error_body(code: &'static str) -> String {
    format!(r#"{{"error":"{code}"}}"#)
}

fn rpc_status(code: Code, message: &str) -> rpc::Status {
    rpc::Status {
        code: i32::from(code),
        message: message.to_owned(),
        details: Vec::new(),
    }
}

/// A header that replaces any value of the same name.
fn overwrite(name: &str, value: impl Into<String>) -> HeaderValueOption {
    #[allow(deprecated)] // `append` is deprecated; left unset so `append_action` rules
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_owned(),
            value: value.into(),
            raw_value: Vec::new(),
        }),
        append: None,
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd.into(),
        keep_empty_value: false,
    }
}

fn header_name(option: &HeaderValueOption) -> &str {
    option
        .header
        .as_ref()
        .map_or("", |header| header.key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(response: &CheckResponse) -> &OkHttpResponse {
        match &response.http_response {
            Some(HttpResponse::OkResponse(ok)) => ok,
            other => panic!("not an allow: {other:?}"),
        }
    }

    fn denial(response: &CheckResponse) -> &DeniedHttpResponse {
        match &response.http_response {
            Some(HttpResponse::DeniedResponse(denied)) => denied,
            other => panic!("not a denial: {other:?}"),
        }
    }

    fn header<'a>(headers: &'a [HeaderValueOption], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .filter_map(|option| option.header.as_ref())
            .find(|header| header.key == name)
            .map(|header| header.value.as_str())
    }

    #[test]
    fn allow_overwrites_identity_and_removes_other_spoofed_headers() {
        let response = allow(
            vec![
                ("x-latchkey-project", "acme".to_owned()),
                ("x-latchkey-scopes", String::new()),
            ],
            &[
                "x-latchkey-project".to_owned(),
                "x-latchkey-admin".to_owned(),
                "x-latchkey-scopes".to_owned(),
            ],
        );
        assert_eq!(response.status.as_ref().unwrap().code, 0);
        let ok = ok(&response);
        assert_eq!(header(&ok.headers, "x-latchkey-project"), Some("acme"));
        #[allow(deprecated)]
        let appends = ok
            .headers
            .iter()
            .all(|option| option.append.is_none() && option.append_action == 2);
        assert!(appends, "identity headers overwrite: {ok:?}");
        assert_eq!(
            ok.headers_to_remove,
            ["x-latchkey-scopes", "x-latchkey-admin"],
            "empty values and unknown identity headers are removed, set ones are not"
        );
    }

    #[test]
    fn deny_maps_status_challenge_and_body() {
        let challenge = r#"Bearer realm="latchkey", error="invalid_token""#;
        let response = deny(401, challenge, "expired");
        let status = response.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (16, "expired"));
        let denied = denial(&response);
        assert_eq!(denied.status.as_ref().unwrap().code, 401);
        assert_eq!(header(&denied.headers, "www-authenticate"), Some(challenge));
        assert_eq!(
            header(&denied.headers, "content-type"),
            Some("application/json")
        );
        assert_eq!(header(&denied.headers, "cache-control"), Some("no-store"));
        assert_eq!(denied.body, r#"{"error":"unauthorized"}"#);

        let scope = deny(
            403,
            r#"Bearer realm="latchkey", error="insufficient_scope""#,
            "scope_not_allowed",
        );
        assert_eq!(scope.status.as_ref().unwrap().code, 7);
        assert_eq!(denial(&scope).status.as_ref().unwrap().code, 403);
        assert_eq!(denial(&scope).body, r#"{"error":"forbidden"}"#);

        let no_token = deny(401, r#"Bearer realm="latchkey""#, "no bearer token");
        assert_eq!(denial(&no_token).body, r#"{"error":"unauthorized"}"#);
    }

    #[test]
    fn unavailable_is_a_503_denial_never_ok() {
        let response = unavailable();
        assert_eq!(response.status.as_ref().unwrap().code, 14);
        let denied = denial(&response);
        assert_eq!(denied.status.as_ref().unwrap().code, 503);
        assert_eq!(denied.body, r#"{"error":"temporarily_unavailable"}"#);
        assert_eq!(header(&denied.headers, "www-authenticate"), None);
    }
}
