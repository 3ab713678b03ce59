//! Issue 13, rule 4: a widening (an API added, an address added, an
//! enable) applies to the next issuance at once on every issuer replica,
//! though each remembers a verification of the client made under the
//! narrower policy; narrowing stays exact too. Two issuers share one Redis
//! (the registry syncs through the first); the embedded stack has one.

use std::net::IpAddr;
use std::sync::Mutex;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{IssuerFixture, IssuerListeners, Stack, StackBackend, TokenBackend};

use crate::support::{Client, credential, project_with_client};

/// The client's usual address, and the one the widening adds.
const USUAL: &str = "127.0.0.2";
const ADDED: &str = "127.0.0.1";

/// `POST /oauth2/token` on `replica` from `source`: the status and body.
async fn token(
    replica: &IssuerFixture,
    client: &Client,
    source: &str,
    scope: Option<&str>,
) -> (u16, serde_json::Value) {
    let http = reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut form = "grant_type=client_credentials".to_owned();
    if let Some(scope) = scope {
        form.push_str(&format!("&scope={scope}"));
    }
    let response = http
        .post(format!("{}/oauth2/token", replica.http_url()))
        .basic_auth(&client.credential.client_id, Some(&client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn update(stack: &Stack, client: &Client, change: registry_pb::Credential, path: &str) {
    stack
        .registry
        .client()
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: client.credential.id.clone(),
                ..change
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![path.to_owned()],
            }),
        })
        .await
        .unwrap();
}

fn apis(apis: &[&str]) -> registry_pb::Credential {
    registry_pb::Credential {
        allowed_apis: apis.iter().map(|api| (*api).to_owned()).collect(),
        ..Default::default()
    }
}

fn ips(ips: &[&str]) -> registry_pb::Credential {
    registry_pb::Credential {
        allowed_ips: ips.iter().map(|ip| format!("{ip}/32")).collect(),
        ..Default::default()
    }
}

/// Each replica issues twice under the current policy, so the second
/// answer comes from the verification it remembers.
async fn use_on_every_replica(replicas: &[&IssuerFixture], client: &Client, scope: &str) {
    for (index, replica) in replicas.iter().enumerate() {
        for _ in 0..2 {
            let (status, body) = token(replica, client, USUAL, Some(scope)).await;
            assert_eq!(status, 200, "replica {index}: {body}");
        }
    }
}

async fn widening_applies_at_once_on_every_replica(stack: &Stack, replicas: &[&IssuerFixture]) {
    let client = project_with_client(
        stack,
        "operations",
        Some(registry_pb::ProjectPolicy {
            max_tokens_per_credential: Some(1000),
            ..Default::default()
        }),
        credential(&["orders.read"], &[&format!("{USUAL}/32")]),
    )
    .await;
    use_on_every_replica(replicas, &client, "orders.read").await;
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, USUAL, Some("refunds.write")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "replica {index}"
        );
    }

    // An API added: granted at once everywhere.
    update(
        stack,
        &client,
        apis(&["orders.read", "refunds.write"]),
        "allowed_apis",
    )
    .await;
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, USUAL, Some("refunds.write")).await;
        assert_eq!(status, 200, "replica {index}: {body}");
        assert_eq!(body["scope"], "refunds.write");
        let (status, body) = token(replica, &client, USUAL, None).await;
        assert_eq!(status, 200, "replica {index}: {body}");
        assert_eq!(
            body["scope"], "orders.read refunds.write",
            "replica {index}"
        );
    }

    // An address added: usable at once everywhere.
    use_on_every_replica(replicas, &client, "orders.read").await;
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, ADDED, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "replica {index}"
        );
    }
    update(stack, &client, ips(&[USUAL, ADDED]), "allowed_ips").await;
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, ADDED, None).await;
        assert_eq!(status, 200, "replica {index}: {body}");
    }

    // Disabled, then enabled: refused, then usable at once everywhere.
    use_on_every_replica(replicas, &client, "orders.read").await;
    let mut registry = stack.registry.client();
    registry
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: client.credential.id.clone(),
        })
        .await
        .unwrap();
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, USUAL, None).await;
        assert_eq!(status, 401, "replica {index}: {body}");
    }
    registry
        .enable_credential(registry_pb::EnableCredentialRequest {
            credential_id: client.credential.id.clone(),
        })
        .await
        .unwrap();
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, USUAL, Some("refunds.write")).await;
        assert_eq!(status, 200, "replica {index}: {body}");
    }

    // Narrowing stays exact: the API and the address are refused at once.
    use_on_every_replica(replicas, &client, "refunds.write").await;
    for replica in replicas {
        let (status, body) = token(replica, &client, ADDED, None).await;
        assert_eq!(status, 200, "{body}");
    }
    update(stack, &client, apis(&["orders.read"]), "allowed_apis").await;
    update(stack, &client, ips(&[USUAL]), "allowed_ips").await;
    for (index, replica) in replicas.iter().enumerate() {
        let (status, body) = token(replica, &client, USUAL, Some("refunds.write")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "replica {index}"
        );
        let (status, body) = token(replica, &client, ADDED, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "replica {index}"
        );
        let (status, body) = token(replica, &client, USUAL, None).await;
        assert_eq!(
            (status, body["scope"].as_str()),
            (200, Some("orders.read")),
            "replica {index}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widening_applies_at_once_on_both_replicas_sharing_redis() {
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
    widening_applies_at_once_on_every_replica(&stack, &[&stack.issuer, &second]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widening_applies_at_once_on_the_embedded_stack() {
    let stack = Stack::start(StackBackend::Embedded).await;
    widening_applies_at_once_on_every_replica(&stack, &[&stack.issuer]).await;
}
