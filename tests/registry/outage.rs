//! Rule 7 on the registry: with PostgreSQL unreachable, management calls and
//! client authentication answer UNAVAILABLE (never a guess), health says
//! NOT_SERVING, and the registry recovers by itself when the database is
//! back. The outage is a cut TCP relay in front of the shared PostgreSQL.

use std::time::Duration;

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{Backend, Stack, TcpRelay, TokenBackend};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{create_credential, create_project, new_credential};

async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn health(stack: &Stack) -> ServingStatus {
    HealthClient::new(stack.registry.channel())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| response.into_inner().status())
        .unwrap_or(ServingStatus::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_unreachable_calls_fail_and_the_registry_recovers() {
    let (mut relay, relayed) = TcpRelay::in_front_of_postgres().await;
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::Memory,
        |registry| {
            registry.database.url = relayed.clone();
            registry.database.acquire_timeout_ms = 500;
        },
        |_| {},
    )
    .await;
    let mut client = stack.registry.client();
    create_project(&mut client, "acme").await;
    let (credential, secret) =
        create_credential(&mut client, new_credential("acme", "alice")).await;

    relay.cut().await;
    let get = client
        .get_project(pb::GetProjectRequest {
            project_id: "acme".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::Unavailable, "{get:?}");
    let create = client
        .create_credential(new_credential("acme", "bob"))
        .await
        .unwrap_err();
    assert_eq!(create.code(), Code::Unavailable, "{create:?}");
    // Issuing needs the registry to check the secret: refused, not guessed.
    let issue = stack
        .issuer
        .token_client()
        .issue_token(token_pb::IssueTokenRequest {
            client_id: credential.client_id.clone(),
            client_secret: secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(issue.code(), Code::Unavailable, "{issue:?}");
    assert!(eventually(|| async { health(&stack).await == ServingStatus::NotServing }).await);

    relay.restore().await;
    assert!(eventually(|| async { health(&stack).await == ServingStatus::Serving }).await);
    let recovered = eventually(|| {
        let mut client = client.clone();
        async move {
            client
                .get_project(pb::GetProjectRequest {
                    project_id: "acme".into(),
                })
                .await
                .is_ok()
        }
    })
    .await;
    assert!(recovered, "the registry reconnects by itself");
    let listed = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.credentials.len(),
        1,
        "the refused create wrote nothing"
    );
}
