//! Requests from a chosen source address on the loopback network
//! (127.0.0.0/8), so tests can play a client and a stranger, or several
//! gateways, on one machine.

use std::net::IpAddr;

use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_tests::{BearerToken, Stack};
use tonic::Status;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::support::{Client, encode_form};

/// What an HTTP answer came to: status, `Retry-After`, JSON body.
pub(crate) type Answer = (u16, Option<String>, serde_json::Value);

/// POSTs `form` to the issuer's `path` from `from`, with HTTP Basic.
pub(crate) async fn post_from(
    stack: &Stack,
    from: IpAddr,
    path: &str,
    basic: (&str, &str),
    form: &[(&str, &str)],
) -> Answer {
    let response = reqwest::ClientBuilder::new()
        .local_address(from)
        .build()
        .unwrap()
        .post(format!("{}{path}", stack.issuer.http_url()))
        .basic_auth(basic.0, Some(basic.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(form))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

/// A gRPC channel to the issuer from `from`.
pub(crate) fn channel_from(stack: &Stack, from: IpAddr) -> Channel {
    Endpoint::from_shared(format!("http://{}", stack.issuer.grpc_address()))
        .unwrap()
        .local_address(Some(from))
        .connect_lazy()
}

/// `authorization: Basic …` for `client_id` and `secret`.
pub(crate) fn basic(client_id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{client_id}:{secret}")
        )
    )
}

/// `POST /oauth2/introspect` of `token` (used from 127.0.0.1) by `gateway`
/// with HTTP Basic, from `from`.
pub(crate) async fn introspect_from(
    stack: &Stack,
    from: IpAddr,
    gateway: (&str, &str),
    token: &str,
) -> Answer {
    post_from(
        stack,
        from,
        "/oauth2/introspect",
        gateway,
        &[("token", token), ("client_ip", "127.0.0.1")],
    )
    .await
}

/// gRPC `Introspect` of `token` (used from 127.0.0.1) by `gateway` with
/// Basic metadata, from `from`.
pub(crate) async fn grpc_introspect_from(
    stack: &Stack,
    from: IpAddr,
    gateway: (&str, &str),
    token: &str,
) -> Result<token_pb::IntrospectResponse, Status> {
    let header = MetadataValue::try_from(basic(gateway.0, gateway.1)).unwrap();
    IntrospectionClient::with_interceptor(channel_from(stack, from), BearerToken::raw(Some(header)))
        .introspect(token_pb::IntrospectRequest {
            token: token.to_owned(),
            client_ip: "127.0.0.1".into(),
            required_scopes: vec![],
        })
        .await
        .map(tonic::Response::into_inner)
}

/// `(client ID, secret)` of `client`.
pub(crate) fn pair(client: &Client) -> (&str, &str) {
    (&client.credential.client_id, &client.secret)
}
