//! Failed client authentications are limited per client ID and per source
//! address, in the token store (shared by every replica); someone else's
//! failures never lock out a correct client elsewhere.

use std::net::{IpAddr, Ipv4Addr};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{Stack, StackBackend};
use token_issuer::FailureLimitsConfig;
use tonic::Code;

use crate::support::{Client, create_client, encode_form, issue};

const SECOND_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

async fn token_request(
    stack: &Stack,
    from: Option<IpAddr>,
    client_id: &str,
    secret: &str,
) -> (u16, Option<String>, serde_json::Value) {
    let mut builder = reqwest::ClientBuilder::new();
    if let Some(address) = from {
        builder = builder.local_address(address);
    }
    let response = builder
        .build()
        .unwrap()
        .post(format!("{}/oauth2/token", stack.issuer.http_url()))
        .basic_auth(client_id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode_form(&[("grant_type", "client_credentials")]))
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

async fn guessing_secrets_is_cut_off_without_locking_out_others(backend: StackBackend) {
    let (database, tokens) = backend.parts();
    let stack = Stack::start_with(
        database,
        tokens,
        |_| {},
        |issuer| {
            issuer.failed_authentication = FailureLimitsConfig {
                max_per_client: 3,
                max_per_address: 6,
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
    let new_client = |owner: &str| registry_pb::CreateCredentialRequest {
        project_id: "acme".into(),
        owner: owner.to_owned(),
        ..Default::default()
    };
    let victim = create_client(&stack, new_client("victim")).await;
    let bystander = create_client(&stack, new_client("bystander")).await;
    let id = victim.credential.client_id.as_str();

    // The victim's secret works, and the issuer now remembers it verified:
    // the lockout below must hold on that path too.
    let (status, _, body) = token_request(&stack, None, id, &victim.secret).await;
    assert_eq!(status, 200, "{body}");

    // Three wrong secrets for the victim's client ID...
    for _ in 0..3 {
        let wrong = latchkey_secrets::CLIENT_SECRET.generate();
        let (status, _, body) = token_request(&stack, None, id, &wrong).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    // ...and the client ID is refused for a while, even with the right secret.
    let (status, retry_after, body) = token_request(&stack, None, id, &victim.secret).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_failed_attempts")),
        "{body}"
    );
    let seconds: u32 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    let grpc = issue(&stack, &victim, &[]).await;
    assert_eq!(grpc.unwrap_err().code(), Code::ResourceExhausted);

    // Another client ID from the same address is unaffected.
    let (status, _, _) = token_request(
        &stack,
        None,
        &bystander.credential.client_id,
        &bystander.secret,
    )
    .await;
    assert_eq!(status, 200);

    // Spraying many client IDs from one address blocks that address only.
    for _ in 0..6 {
        let (status, _, _) = token_request(
            &stack,
            Some(SECOND_ADDRESS),
            &latchkey_secrets::CLIENT_ID.generate(),
            &latchkey_secrets::CLIENT_SECRET.generate(),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, _, _) = token_request(
        &stack,
        Some(SECOND_ADDRESS),
        &bystander.credential.client_id,
        &bystander.secret,
    )
    .await;
    assert_eq!(status, 429, "the spraying address is blocked");
    let (status, _, _) = token_request(
        &stack,
        None,
        &bystander.credential.client_id,
        &bystander.secret,
    )
    .await;
    assert_eq!(status, 200, "the same client elsewhere is not");
    assert_client_works(&stack, &bystander).await;
}

async fn assert_client_works(stack: &Stack, client: &Client) {
    let token = issue(stack, client, &[]).await.unwrap().access_token;
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

on_both_stacks!(guessing_secrets_is_cut_off_without_locking_out_others);
