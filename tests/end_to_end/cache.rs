//! Rule 3 across issuer replicas with the exact introspection cache: two
//! issuers on one Redis, the second has the token cached; deleting the
//! credential through the registry (which syncs through the first issuer)
//! makes the second answer inactive within the invalidation delay
//! (measured and printed; asserted under a second).

#![allow(clippy::print_stdout)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_tests::{
    BearerToken, GatewayIntrospectionClient, IssuerFixture, IssuerListeners, Stack, StackBackend,
    TokenBackend,
};
use tonic::metadata::MetadataValue;

use crate::support::{credential, issue, project_with_client};

async fn introspect_on(
    client: &mut GatewayIntrospectionClient,
    token: &str,
) -> token_pb::IntrospectResponse {
    client
        .introspect(token_pb::IntrospectRequest {
            token: token.to_owned(),
            client_ip: "127.0.0.1".to_owned(),
            required_scopes: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_reaches_a_replica_that_cached_the_token() {
    let first_config = Mutex::new(None);
    let (database, tokens) = StackBackend::Production.parts();
    let stack = Stack::start_with(
        database,
        tokens,
        |_| {},
        |config| *first_config.lock().unwrap() = Some(config.clone()),
    )
    .await;
    let first_config = first_config.into_inner().unwrap().unwrap();
    // A second replica: same Redis, same keys, same hash key.
    let second = IssuerFixture::start_with(
        TokenBackend::Memory,
        IssuerListeners::bind().await,
        &stack.registry,
        |config| {
            config.redis = first_config.redis.clone();
            config.hash_key = first_config.hash_key.clone();
        },
    )
    .await;
    let header = MetadataValue::try_from(stack.admin.basic_header()).unwrap();
    let mut gateway =
        IntrospectionClient::with_interceptor(second.channel(), BearerToken::raw(Some(header)));

    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    // Read (and cached) on the second replica.
    for _ in 0..3 {
        assert!(introspect_on(&mut gateway, &token).await.active);
    }

    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: client.credential.id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let answer = introspect_on(&mut gateway, &token).await;
        if !answer.active {
            println!(
                "second replica inactive {:?} after the delete returned",
                start.elapsed()
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the second replica still answers active after 1 s"
        );
    }
    // And stays inactive.
    for _ in 0..3 {
        assert!(!introspect_on(&mut gateway, &token).await.active);
    }
}
