//! One RPC over HTTP/JSON: JSON → protobuf (through the method's
//! descriptors) → an in-process gRPC request to the registry's service →
//! protobuf → JSON. The gRPC framing is the 5-byte prefix of the gRPC
//! over HTTP/2 protocol: a compression flag (always 0 here) and the
//! message's length, big-endian.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::Code;
use tonic::codegen::http;
use tonic::transport::server::TcpConnectInfo;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::{ApiState, MAX_BODY_BYTES, SERVICE_NAME, descriptors};

/// Request headers passed through to the gRPC service: the bearer token,
/// the member acted for and the trace context.
const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "x-latchkey-on-behalf-of",
    "traceparent",
    "tracestate",
];

/// `POST /latchkey.registry.v1.CredentialRegistry/{method}`.
pub(crate) async fn call(
    State(state): State<Arc<ApiState>>,
    Path(method): Path<String>,
    request: Request,
) -> Response {
    match answer(&state, &method, request).await {
        Ok(json) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn answer(state: &ApiState, method: &str, request: Request) -> Result<Vec<u8>, ApiError> {
    let Some(descriptor) = descriptors::method(method) else {
        return Err(ApiError::new(
            Code::NotFound,
            format!("{SERVICE_NAME} has no method {method:?}"),
        ));
    };
    let (parts, body) = request.into_parts();
    check_content_type(&parts.headers)?;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let body = read_body(body).await?;
    let message = decode_json(descriptor.input(), &body)?;

    let mut grpc_request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("/{SERVICE_NAME}/{method}"))
        .version(http::Version::HTTP_2)
        .header(header::CONTENT_TYPE, "application/grpc")
        .header(header::TE, "trailers")
        .body(tonic::body::Body::new(http_body_util::Full::new(frame(
            &message.encode_to_vec(),
        ))))
        .map_err(|error| {
            tracing::error!(%error, "cannot build the in-process gRPC request");
            ApiError::new(Code::Internal, "internal error")
        })?;
    for name in FORWARDED_HEADERS {
        for value in parts.headers.get_all(*name) {
            grpc_request.headers_mut().append(*name, value.clone());
        }
    }
    // Management tokens are bound to addresses: the verifier reads the
    // peer address where the gRPC listener puts it.
    grpc_request.extensions_mut().insert(TcpConnectInfo {
        local_addr: None,
        remote_addr: peer,
    });

    let Ok(response) = state.service.clone().oneshot(grpc_request).await;
    let (response_parts, response_body) = response.into_parts();
    // A trailers-only answer (every error) carries its status in headers.
    if let Some(status) = tonic::Status::from_header_map(&response_parts.headers) {
        return Err(ApiError::from(status));
    }
    let collected = response_body.collect().await.map_err(|error| {
        tracing::warn!(%error, "the in-process gRPC answer broke off");
        ApiError::new(Code::Internal, "internal error")
    })?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    match tonic::Status::from_header_map(&trailers) {
        Some(status) if status.code() != Code::Ok => return Err(ApiError::from(status)),
        Some(_) => {}
        None => {
            tracing::error!("the in-process gRPC answer has no status");
            return Err(ApiError::new(Code::Internal, "internal error"));
        }
    }
    let body = collected.to_bytes();
    let payload = unframe(&body)?;
    let message = DynamicMessage::decode(descriptor.output(), payload).map_err(|error| {
        tracing::error!(%error, "the in-process gRPC answer does not decode");
        ApiError::new(Code::Internal, "internal error")
    })?;
    encode_json(&message)
}

/// Only JSON is spoken (a charset parameter is allowed).
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json" {
        return Ok(());
    }
    Err(ApiError::new(
        Code::InvalidArgument,
        "content-type: must be application/json",
    )
    .with_http_status(StatusCode::UNSUPPORTED_MEDIA_TYPE))
}

fn too_large() -> ApiError {
    ApiError::new(
        Code::ResourceExhausted,
        format!("request body larger than {MAX_BODY_BYTES} bytes"),
    )
    .with_http_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// The whole body, at most [`MAX_BODY_BYTES`].
async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => {
            tracing::debug!(%error, "cannot read the request body");
            Err(ApiError::new(
                Code::InvalidArgument,
                "cannot read the request body",
            ))
        }
    }
}

/// The request message from its proto3 JSON form; an unknown field is an
/// error (a typo must not be silently ignored). An empty body is the
/// empty message, as in Connect.
fn decode_json(descriptor: MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(descriptor));
    }
    let name = descriptor.full_name().to_owned();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let message = DynamicMessage::deserialize_with_options(descriptor, &mut deserializer, &options)
        .and_then(|message| deserializer.end().map(|()| message))
        .map_err(|error| {
            ApiError::new(
                Code::InvalidArgument,
                format!("request body is not a valid {name}: {error}"),
            )
        })?;
    Ok(message)
}

/// The response message in proto3 JSON, default values included so a
/// client sees every field (an empty list, a zero count) without knowing
/// the defaults.
fn encode_json(message: &DynamicMessage) -> Result<Vec<u8>, ApiError> {
    let mut serializer = serde_json::Serializer::new(Vec::new());
    let options = SerializeOptions::new().skip_default_fields(false);
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|error| {
            tracing::error!(%error, "cannot write the answer as JSON");
            ApiError::new(Code::Internal, "internal error")
        })?;
    Ok(serializer.into_inner())
}

/// `message` in a gRPC frame.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    // Bounded by MAX_BODY_BYTES (JSON is never shorter than its protobuf
    // form by more than the prefix), so it fits in the 4-byte length.
    let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

/// The one message of a unary gRPC answer.
fn unframe(body: &[u8]) -> Result<&[u8], ApiError> {
    let broken = || {
        tracing::error!("the in-process gRPC answer is not one uncompressed message");
        ApiError::new(Code::Internal, "internal error")
    };
    let (prefix, message) = body.split_at_checked(5).ok_or_else(broken)?;
    let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
    if prefix[0] != 0 || usize::try_from(length).ok() != Some(message.len()) {
        return Err(broken());
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let framed = frame(b"hello");
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 5]);
        assert_eq!(unframe(&framed).expect("one frame"), b"hello");
        assert!(unframe(&framed[..4]).is_err());
        assert!(unframe(&framed[..7]).is_err());
    }

    #[test]
    fn json_names_and_proto_names_both_decode() {
        let input = descriptors::method("ListCredentials")
            .expect("ListCredentials")
            .input();
        let camel = decode_json(input.clone(), br#"{"projectId":"acme","pageSize":5}"#)
            .expect("lowerCamelCase");
        let snake = decode_json(input.clone(), br#"{"project_id":"acme","page_size":5}"#)
            .expect("original names");
        assert_eq!(camel, snake);
        let error = decode_json(input.clone(), br#"{"projectid":"acme"}"#).expect_err("unknown");
        assert!(
            error.body()["message"]
                .as_str()
                .unwrap_or("")
                .contains("projectid")
        );
        assert!(decode_json(input, b"{").is_err());
    }
}

#[cfg(test)]
mod output_tests {
    use prost_reflect::Kind;

    use super::*;

    /// Answers show every scalar and list field, and leave unset messages
    /// (an unset `expireTime`, `lastUsedTime`) out rather than `null`.
    #[test]
    fn answers_show_defaults_but_no_nulls() {
        let output = descriptors::method("GetCredential")
            .expect("GetCredential")
            .output();
        let mut message = DynamicMessage::new(output.clone());
        let credential = output
            .get_field_by_name("credential")
            .expect("credential field");
        let Kind::Message(credential_descriptor) = credential.kind() else {
            panic!("credential is a message");
        };
        message.set_field(
            &credential,
            prost_reflect::Value::Message(DynamicMessage::new(credential_descriptor)),
        );
        let json: serde_json::Value =
            serde_json::from_slice(&encode_json(&message).expect("JSON")).expect("valid JSON");
        let credential = &json["credential"];
        assert_eq!(credential["allowedIps"], serde_json::json!([]));
        assert_eq!(credential["name"], "");
        assert_eq!(credential["state"], "CREDENTIAL_STATE_UNSPECIFIED");
        assert!(credential.get("expireTime").is_none(), "{json}");
    }
}
