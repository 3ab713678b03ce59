//! Helpers that keep the end-to-end tests reading like the user's story.

use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::Stack;
use tonic::{Code, Status};

/// A credential and its secret.
pub(crate) struct Client {
    pub(crate) credential: registry_pb::Credential,
    pub(crate) secret: String,
}

/// Creates project `project` (with `policy`) and a credential in it.
pub(crate) async fn project_with_client(
    stack: &Stack,
    project: &str,
    policy: Option<registry_pb::ProjectPolicy>,
    credential: registry_pb::CreateCredentialRequest,
) -> Client {
    let mut registry = stack.registry.client();
    registry
        .create_project(registry_pb::CreateProjectRequest {
            project_id: project.to_owned(),
            display_name: String::new(),
            policy,
            ..Default::default()
        })
        .await
        .unwrap();
    create_client(
        stack,
        registry_pb::CreateCredentialRequest {
            project_id: project.to_owned(),
            ..credential
        },
    )
    .await
}

/// Creates a credential.
pub(crate) async fn create_client(
    stack: &Stack,
    request: registry_pb::CreateCredentialRequest,
) -> Client {
    let response = stack
        .registry
        .client()
        .create_credential(request)
        .await
        .unwrap()
        .into_inner();
    Client {
        credential: response.credential.unwrap(),
        secret: response.client_secret,
    }
}

/// A credential request for alice with the given APIs and IPs.
pub(crate) fn credential(apis: &[&str], ips: &[&str]) -> registry_pb::CreateCredentialRequest {
    registry_pb::CreateCredentialRequest {
        owner: "alice".into(),
        allowed_apis: apis.iter().map(|a| (*a).to_owned()).collect(),
        allowed_ips: ips.iter().map(|i| (*i).to_owned()).collect(),
        ..Default::default()
    }
}

/// Issues a token over gRPC (the caller is 127.0.0.1).
pub(crate) async fn issue(
    stack: &Stack,
    client: &Client,
    scopes: &[&str],
) -> Result<token_pb::IssueTokenResponse, Status> {
    stack
        .issuer
        .token_client()
        .issue_token(token_pb::IssueTokenRequest {
            client_id: client.credential.client_id.clone(),
            client_secret: client.secret.clone(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Introspects over gRPC as a gateway would.
pub(crate) async fn introspect(
    stack: &Stack,
    token: &str,
    client_ip: &str,
    required: &[&str],
) -> token_pb::IntrospectResponse {
    stack
        .introspection_client()
        .introspect(token_pb::IntrospectRequest {
            token: token.to_owned(),
            client_ip: client_ip.to_owned(),
            required_scopes: required.iter().map(|s| (*s).to_owned()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Asserts the token is inactive for `reason`.
#[track_caller]
pub(crate) fn assert_inactive(
    answer: &token_pb::IntrospectResponse,
    reason: token_pb::InactiveReason,
) {
    assert!(
        !answer.active,
        "expected inactive ({reason:?}), got {answer:?}"
    );
    assert_eq!(answer.reason(), reason, "{answer:?}");
    assert!(
        answer.client_id.is_empty() && answer.scopes.is_empty(),
        "inactive answers carry nothing"
    );
}

/// Asserts the call failed with `code`.
#[track_caller]
pub(crate) fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "{status:?}");
    status
}

/// Polls `check` until it returns true or `timeout` passes.
pub(crate) async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET url` (a `/metrics` endpoint): the Prometheus text.
pub(crate) async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// The value of the sample named exactly `series` (name and labels).
pub(crate) fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// POSTs a form to the issuer's HTTP endpoint `path`.
pub(crate) async fn post_form(
    stack: &Stack,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", stack.issuer.http_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(form));
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
    };
    (status, headers, body)
}

/// `application/x-www-form-urlencoded` encoding.
pub(crate) fn encode_form(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                char::from(b).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
