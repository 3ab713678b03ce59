//! Rule 7, finding 6: store loss means fail closed. A client used its
//! secret (the issuer remembers the verification); then its credential is
//! deleted, disabled or rotated with revocation through the registry; then
//! the token store loses everything — a Redis restarted empty, or a flushed
//! key prefix on a Redis Cluster. Within the issuer's memory of the
//! verification, the old secret is refused (the registry decides, not the
//! memory) and no token of those credentials introspects as active.

use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Backend, Stack, TokenBackend, redis_cluster_urls};
use tonic::Code;

use crate::store_outage::PrivateRedis;
use crate::support::{
    Client, assert_code, create_client, credential, introspect, issue, post_form,
    project_with_client,
};

/// How long the issuer answers from a verification it remembers; every
/// refusal below must happen within it to show anything.
const REMEMBERED_FOR: Duration = Duration::from_secs(30);

/// What the registry did to a credential.
#[derive(Debug, Clone, Copy)]
enum Change {
    Delete,
    Disable,
    RotateWithRevoke,
}

/// A credential that has used its secret, its token, and what happens to it.
struct Used {
    client: Client,
    token: String,
    change: Change,
}

async fn use_and_change(stack: &Stack) -> (Vec<Used>, Client, Vec<Client>) {
    let unchanged =
        project_with_client(stack, "acme", None, credential(&["orders.read"], &[])).await;
    let mut used = Vec::new();
    for change in [Change::Delete, Change::Disable, Change::RotateWithRevoke] {
        let client = create_client(
            stack,
            registry_pb::CreateCredentialRequest {
                project_id: "acme".into(),
                ..credential(&["orders.read"], &[])
            },
        )
        .await;
        let token = issue(stack, &client, &[]).await.unwrap().access_token;
        // Twice: the second one from the remembered verification.
        issue(stack, &client, &[]).await.unwrap();
        used.push(Used {
            client,
            token,
            change,
        });
    }
    issue(stack, &unchanged, &[]).await.unwrap();

    let mut admin = stack.registry.client();
    let mut rotated = Vec::new();
    for item in &used {
        let id = item.client.credential.id.clone();
        match item.change {
            Change::Delete => {
                admin
                    .delete_credential(registry_pb::DeleteCredentialRequest {
                        credential_id: id,
                        confirm_name: item.client.credential.name.clone(),
                    })
                    .await
                    .unwrap();
            }
            Change::Disable => {
                admin
                    .disable_credential(registry_pb::DisableCredentialRequest { credential_id: id })
                    .await
                    .unwrap();
            }
            Change::RotateWithRevoke => {
                let secret = admin
                    .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
                        credential_id: id,
                        grace_period_seconds: 0,
                        revoke_tokens: true,
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .client_secret;
                rotated.push(Client {
                    credential: item.client.credential.clone(),
                    secret,
                });
            }
        }
    }
    (used, unchanged, rotated)
}

/// After the loss: the unchanged client still gets tokens (the registry
/// vouches again), every changed one is refused over gRPC and HTTP, and
/// no token of theirs is active.
async fn assert_nothing_revived(
    stack: &Stack,
    used: &[Used],
    unchanged: &Client,
    rotated: &[Client],
    verified_at: Instant,
) {
    // The store comes back (a restarted Redis takes a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        match issue(stack, unchanged, &[]).await {
            Ok(issued) => break issued.access_token,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("the unchanged client was refused: {status:?}"),
        }
    };
    assert!(introspect(stack, &fresh, "127.0.0.1", &[]).await.active);

    for item in used {
        let refused = issue(stack, &item.client, &[]).await;
        assert_code(refused, Code::Unauthenticated);
        let (status, _, body) = post_form(
            stack,
            "/oauth2/token",
            Some((&item.client.credential.client_id, &item.client.secret)),
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{:?}: {body}",
            item.change
        );
        let answer = introspect(stack, &item.token, "127.0.0.1", &[]).await;
        assert!(!answer.active, "{:?}: {answer:?}", item.change);
    }
    assert!(
        verified_at.elapsed() < REMEMBERED_FOR,
        "too slow to show anything: the verifications were no longer remembered"
    );
    for client in rotated {
        let token = issue(stack, client, &[]).await.unwrap().access_token;
        assert!(introspect(stack, &token, "127.0.0.1", &[]).await.active);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restarted_empty_revives_no_deleted_disabled_or_rotated_credential() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::Redis,
        |_| {},
        |issuer| {
            if let Some(store) = issuer.redis.as_mut() {
                store.url = url.clone();
                store.response_timeout_ms = 300;
            }
        },
    )
    .await;
    let verified_at = Instant::now();
    let (used, unchanged, rotated) = use_and_change(&stack).await;

    redis.stop();
    redis.resume();
    assert_nothing_revived(&stack, &used, &unchanged, &rotated, verified_at).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_cluster_revives_no_deleted_disabled_or_rotated_credential() {
    let prefix = std::sync::Mutex::new(String::new());
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::RedisCluster,
        |_| {},
        |issuer| {
            *prefix.lock().unwrap() = issuer.redis.as_ref().unwrap().key_prefix.clone();
        },
    )
    .await;
    let prefix = prefix.into_inner().unwrap();
    let verified_at = Instant::now();
    let (used, unchanged, rotated) = use_and_change(&stack).await;

    flush_prefix(&prefix).await;
    assert_nothing_revived(&stack, &used, &unchanged, &rotated, verified_at).await;
}

/// Deletes every key under `prefix` on every master of the test cluster.
async fn flush_prefix(prefix: &str) {
    let mut deleted = 0;
    for url in redis_cluster_urls() {
        let mut node = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut node)
            .await
            .unwrap();
        for key in keys {
            let removed: i64 = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut node)
                .await
                .unwrap();
            deleted += removed;
        }
    }
    assert!(deleted > 0, "the test's keys were where expected");
}
