//! Rule 11 (finding 7): failed client authentications are counted per
//! (client ID, source address) and per source address, in the token store
//! (shared by every replica). They refuse the failing source — 429 with
//! `Retry-After`, `RESOURCE_EXHAUSTED` with `retry-after` — never the right
//! secret from elsewhere, and never a secret the issuer has verified.

use std::net::{IpAddr, Ipv4Addr};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use latchkey_tests::{Stack, StackBackend};
use token_issuer::FailureLimitsConfig;
use tonic::{Code, Status};

use crate::sources::{
    Answer, channel_from, grpc_introspect_from, introspect_from, pair, post_from,
};
use crate::support::{Client, create_client, issue};

/// The tests' clients call from 127.0.0.1; strangers from here.
const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const HOME: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// Failures allowed per (client ID, address) and per address.
const PER_PAIR: u32 = 3;
const PER_ADDRESS: u32 = 9;

async fn limited_stack(backend: StackBackend) -> Stack {
    let (database, tokens) = backend.parts();
    let stack = Stack::start_with(
        database,
        tokens,
        |_| {},
        |issuer| {
            issuer.failed_authentication = FailureLimitsConfig {
                max_per_client_address: PER_PAIR,
                max_per_address: PER_ADDRESS,
                window_seconds: 60,
            };
        },
    )
    .await;
    stack
        .registry
        .client()
        .create_project(registry_pb::CreateProjectRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    stack
}

async fn new_client(stack: &Stack, owner: &str, apis: &[&str]) -> Client {
    create_client(
        stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: owner.to_owned(),
            allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
            ..Default::default()
        },
    )
    .await
}

fn wrong_secret() -> String {
    latchkey_secrets::CLIENT_SECRET.generate()
}

/// `POST /oauth2/token` from `from`.
async fn token_request(stack: &Stack, from: IpAddr, client_id: &str, secret: &str) -> Answer {
    post_from(
        stack,
        from,
        "/oauth2/token",
        (client_id, secret),
        &[("grant_type", "client_credentials")],
    )
    .await
}

/// `IssueToken` from `from`.
async fn grpc_issue(
    stack: &Stack,
    from: IpAddr,
    client_id: &str,
    secret: &str,
) -> Result<token_pb::IssueTokenResponse, Status> {
    TokenServiceClient::new(channel_from(stack, from))
        .issue_token(token_pb::IssueTokenRequest {
            client_id: client_id.to_owned(),
            client_secret: secret.to_owned(),
            scopes: vec![],
        })
        .await
        .map(tonic::Response::into_inner)
}

#[track_caller]
fn assert_refused(answer: &Answer) {
    assert_eq!(
        (answer.0, answer.2["error"].as_str()),
        (401, Some("invalid_client")),
        "{answer:?}"
    );
}

/// 429 `too_many_failed_attempts` with a `Retry-After` within the window.
#[track_caller]
fn assert_too_many(answer: &Answer) {
    assert_eq!(
        (answer.0, answer.2["error"].as_str()),
        (429, Some("too_many_failed_attempts")),
        "{answer:?}"
    );
    let seconds: u32 = answer.1.as_deref().expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
}

/// `RESOURCE_EXHAUSTED` with `retry-after` metadata within the window.
#[track_caller]
fn assert_resource_exhausted<T: std::fmt::Debug>(result: Result<T, Status>) {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let seconds: u32 = status
        .metadata()
        .get("retry-after")
        .expect("retry-after metadata")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
}

#[track_caller]
fn assert_issued(answer: &Answer) {
    assert_eq!(answer.0, 200, "{answer:?}");
    assert!(answer.2["access_token"].as_str().is_some(), "{answer:?}");
}

async fn assert_token_works(stack: &Stack, token: String) {
    let answer = stack
        .introspection_client()
        .introspect(token_pb::IntrospectRequest {
            token,
            client_ip: "127.0.0.1".into(),
            required_scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
}

/// A stranger elsewhere, knowing only client IDs, fails at three of them
/// until its address is refused; the clients, whether they have used their
/// secrets before (remembered) or never (asked at the registry), get their
/// tokens from their own address over HTTP and gRPC.
async fn a_strangers_failures_never_refuse_the_right_secret_elsewhere(backend: StackBackend) {
    let stack = limited_stack(backend).await;
    let victim = new_client(&stack, "victim", &[]).await;
    let never_used_http = new_client(&stack, "http", &[]).await;
    let never_used_grpc = new_client(&stack, "grpc", &[]).await;
    let id = |client: &Client| client.credential.client_id.clone();
    assert_issued(&token_request(&stack, HOME, &id(&victim), &victim.secret).await);

    for client in [&victim, &never_used_http, &never_used_grpc] {
        for _ in 0..PER_PAIR {
            assert_refused(&token_request(&stack, STRANGER, &id(client), &wrong_secret()).await);
        }
    }
    // The stranger's source is refused now, over both protocols.
    assert_too_many(&token_request(&stack, STRANGER, &id(&victim), &wrong_secret()).await);
    assert_resource_exhausted(grpc_issue(&stack, STRANGER, &id(&victim), &wrong_secret()).await);

    // The clients from their own address: remembered and fresh, HTTP and
    // gRPC.
    assert_issued(&token_request(&stack, HOME, &id(&victim), &victim.secret).await);
    let remembered = grpc_issue(&stack, HOME, &id(&victim), &victim.secret)
        .await
        .unwrap();
    let fresh_http =
        token_request(&stack, HOME, &id(&never_used_http), &never_used_http.secret).await;
    assert_issued(&fresh_http);
    let fresh_grpc = grpc_issue(&stack, HOME, &id(&never_used_grpc), &never_used_grpc.secret)
        .await
        .unwrap();
    assert_token_works(&stack, remembered.access_token).await;
    assert_token_works(
        &stack,
        fresh_http.2["access_token"].as_str().unwrap().to_owned(),
    )
    .await;
    assert_token_works(&stack, fresh_grpc.access_token).await;
}

/// Behind one address (an ingress without `trusted_proxies`, a NAT) a
/// stranger's failures refuse that address for the client ID, and spraying
/// client IDs refuses it for all; a secret the issuer has verified still
/// passes there, over HTTP and gRPC.
async fn a_verified_secret_passes_a_refused_source(backend: StackBackend) {
    let stack = limited_stack(backend).await;
    let victim = new_client(&stack, "victim", &[]).await;
    let bystander = new_client(&stack, "bystander", &[]).await;
    let never_used = new_client(&stack, "never-used", &[]).await;
    let id = |client: &Client| client.credential.client_id.clone();
    assert_issued(&token_request(&stack, HOME, &id(&victim), &victim.secret).await);
    assert_issued(&token_request(&stack, HOME, &id(&bystander), &bystander.secret).await);

    // Someone at the victim's own address guesses at it.
    for _ in 0..PER_PAIR {
        assert_refused(&token_request(&stack, HOME, &id(&victim), &wrong_secret()).await);
    }
    assert_too_many(&token_request(&stack, HOME, &id(&victim), &wrong_secret()).await);
    assert_issued(&token_request(&stack, HOME, &id(&victim), &victim.secret).await);
    issue(&stack, &victim, &[]).await.unwrap();

    // Someone sprays client IDs from the stranger's address until the
    // address is refused for every client ID...
    for _ in 0..PER_ADDRESS {
        let sprayed = latchkey_secrets::CLIENT_ID.generate();
        assert_refused(&token_request(&stack, STRANGER, &sprayed, &wrong_secret()).await);
    }
    assert_too_many(&token_request(&stack, STRANGER, &id(&never_used), &never_used.secret).await);
    // ...but not for a secret verified before (from anywhere).
    assert_issued(&token_request(&stack, STRANGER, &id(&bystander), &bystander.secret).await);
    grpc_issue(&stack, STRANGER, &id(&bystander), &bystander.secret)
        .await
        .unwrap();
    // And the never-used client is fine from its own address.
    assert_issued(&token_request(&stack, HOME, &id(&never_used), &never_used.secret).await);
}

/// A gateway whose source is refused gets 429 with `Retry-After` (HTTP)
/// and `RESOURCE_EXHAUSTED` with `retry-after` (gRPC), not 401; from its
/// own address it introspects, and once verified it passes the refused
/// source too.
async fn a_locked_out_gateway_gets_429_not_invalid_client(backend: StackBackend) {
    let stack = limited_stack(backend).await;
    let app = new_client(&stack, "app", &[]).await;
    let token = issue(&stack, &app, &[]).await.unwrap().access_token;
    let gateway = new_client(&stack, "gateway", &["tokens:introspect"]).await;
    let gateway_id = gateway.credential.client_id.as_str();
    let wrong = wrong_secret();
    for _ in 0..PER_PAIR {
        assert_refused(&introspect_from(&stack, STRANGER, (gateway_id, &wrong), &token).await);
    }
    // The right secret, never verified, from the refused source.
    assert_too_many(&introspect_from(&stack, STRANGER, pair(&gateway), &token).await);
    assert_resource_exhausted(grpc_introspect_from(&stack, STRANGER, pair(&gateway), &token).await);

    // From the gateway's own address it introspects...
    let answer = introspect_from(&stack, HOME, pair(&gateway), &token).await;
    assert_eq!((answer.0, answer.2["active"].as_bool()), (200, Some(true)));
    let answer = grpc_introspect_from(&stack, HOME, pair(&gateway), &token).await;
    assert!(answer.unwrap().active);
    // ...and, verified now, from the refused source too.
    let answer = introspect_from(&stack, STRANGER, pair(&gateway), &token).await;
    assert_eq!((answer.0, answer.2["active"].as_bool()), (200, Some(true)));
    let answer = grpc_introspect_from(&stack, STRANGER, pair(&gateway), &token).await;
    assert!(answer.unwrap().active);
}

on_both_stacks!(
    a_strangers_failures_never_refuse_the_right_secret_elsewhere,
    a_verified_secret_passes_a_refused_source,
    a_locked_out_gateway_gets_429_not_invalid_client,
);
