//! The production stack on a Redis Cluster: a credential's whole life on
//! the shared three-master cluster of `scripts/test`, and a master killed
//! mid-run on a cluster of the test's own. Tokens whose slot lived on the
//! lost master fail closed (an error or inactive, never active); tokens on
//! the other masters keep working, and so does issuance for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::redis_cluster::RedisCluster;
use latchkey_tests::{Backend, Stack, TokenBackend, redis_cluster_urls};
use latchkey_token::CredentialKey;
use token_pb::InactiveReason;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::{
    Client, assert_code, assert_inactive, create_client, credential, eventually, introspect, issue,
    post_form, project_with_client,
};

/// Every key under `prefix` in the shared cluster (KEYS goes to every
/// master), as bytes.
fn cluster_keys(prefix: &str) -> Vec<Vec<u8>> {
    let client = redis::cluster::ClusterClient::new(redis_cluster_urls()).unwrap();
    let mut connection = client.get_connection().unwrap();
    redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut connection)
        .unwrap()
}

/// Create, issue (gRPC and HTTP), introspect, revoke, delete: every step
/// through the issuer running on the shared cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_lives_its_whole_life_on_a_cluster() {
    let mut prefix = String::new();
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::RedisCluster,
        |_| {},
        |issuer| {
            let redis = issuer.redis.as_ref().expect("the issuer runs on Redis");
            assert_eq!(redis.mode_name(), "cluster");
            prefix = redis.key_prefix.clone();
        },
    )
    .await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(&["orders.read"], &["127.0.0.0/8"]),
    )
    .await;

    let over_grpc = issue(&stack, &client, &["orders.read"])
        .await
        .unwrap()
        .access_token;
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/token",
        Some((&client.credential.client_id, &client.secret)),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders.read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let over_http = body["access_token"].as_str().unwrap().to_owned();

    // The issuer's keys are in the cluster: the credential's all share its
    // hash tag, so they sit in one slot.
    let key = CredentialKey::from_credential_id(&client.credential.id).unwrap();
    let tag = format!("{prefix}{{{}}}:", key.encoded());
    let keys = cluster_keys(&prefix);
    let credential_keys = keys
        .iter()
        .filter(|key| key.starts_with(tag.as_bytes()))
        .count();
    assert_eq!(
        credential_keys, 3,
        "policy, index and tokens in the cluster: {keys:?}"
    );

    for token in [&over_grpc, &over_http] {
        let answer = introspect(&stack, token, "127.0.0.1", &["orders.read"]).await;
        assert!(answer.active, "{answer:?}");
        assert_eq!(answer.client_id, client.credential.client_id);
        assert_eq!(answer.scopes, ["orders.read"]);
    }
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some(stack.admin.basic()),
        &[("token", &over_http), ("client_ip", "127.0.0.1")],
    )
    .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (200, Some(true)),
        "{body}"
    );

    stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: over_grpc.clone(),
            client_id: client.credential.client_id.clone(),
            client_secret: client.secret.clone(),
        })
        .await
        .unwrap();
    assert_inactive(
        &introspect(&stack, &over_grpc, "127.0.0.1", &[]).await,
        InactiveReason::Revoked,
    );
    assert!(
        introspect(&stack, &over_http, "127.0.0.1", &[])
            .await
            .active,
        "revoking one token leaves the other"
    );

    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: client.credential.id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();
    assert_inactive(
        &introspect(&stack, &over_http, "127.0.0.1", &[]).await,
        InactiveReason::Revoked,
    );
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/token",
        Some((&client.credential.client_id, &client.secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

async fn health(stack: &Stack) -> ServingStatus {
    HealthClient::new(stack.issuer.channel())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|response| response.into_inner().status())
        .unwrap_or(ServingStatus::Unknown)
}

/// A credential of the kill test, its token, and where its keys live.
struct Placed {
    client: Client,
    token: String,
    /// The master serving the credential's slot.
    owner: usize,
    /// The master serving its client ID's failed-authentication counter,
    /// which issuance reads before anything else.
    counter_owner: usize,
}

/// What one introspection during the kill answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Active,
    Inactive,
    Error,
}

/// One answer of the load that runs while the master dies.
struct Answer {
    credential: usize,
    started: Instant,
    took: Duration,
    outcome: Outcome,
}

/// Introspects every token in turn until `stop`, as gateways would.
async fn introspect_until(
    stack: Arc<Stack>,
    tokens: Vec<String>,
    stop: Arc<AtomicBool>,
) -> Vec<Answer> {
    let mut answers = Vec::new();
    let mut gateway = stack.introspection_client();
    while !stop.load(Ordering::Relaxed) {
        for (credential, token) in tokens.iter().enumerate() {
            let started = Instant::now();
            let outcome = match gateway
                .introspect(token_pb::IntrospectRequest {
                    token: token.clone(),
                    client_ip: "127.0.0.1".into(),
                    required_scopes: vec![],
                })
                .await
            {
                Ok(answer) if answer.get_ref().active => Outcome::Active,
                Ok(_) => Outcome::Inactive,
                Err(_) => Outcome::Error,
            };
            answers.push(Answer {
                credential,
                started,
                took: started.elapsed(),
                outcome,
            });
        }
    }
    answers
}

/// Issue 5 item 5: one master of three is SIGKILLed while gateways
/// introspect. From that moment no token of its slots introspects as
/// active; the tokens and the issuance of the other masters' credentials
/// keep working, and the lost master's credentials get tokens again once it
/// is back (empty: it kept nothing on disk, so their old tokens stay
/// inactive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_master_fails_its_tokens_closed_and_spares_the_others() {
    let mut cluster = RedisCluster::start(3).await;
    let prefix = format!("test:{}:", uuid::Uuid::now_v7().simple());
    let urls = cluster.urls();
    let stack = Stack::start_with(
        Backend::Postgres,
        TokenBackend::Redis,
        |_| {},
        |issuer| {
            let redis = issuer.redis.as_mut().expect("the issuer runs on Redis");
            redis.cluster_urls = urls;
            redis.key_prefix = prefix.clone();
        },
    )
    .await;

    // Every verification at the registry (of a secret not verified
    // before) reads the failed-authentication counters of the caller's
    // address and of its (address, client ID) pair first. The victim is a
    // master not holding the address's counter for the test's own address,
    // so what it takes down is its own slots.
    let address_counter = cluster
        .owner_of(format!("{prefix}f:ip:127.0.0.1").as_bytes())
        .await;
    // The gateway (verified before the kill, so its counters are not read
    // again) is verified against its credential's policy in the store once
    // its caller-cache entry ends: that master must live too.
    let gateway_credential = stack
        .registry
        .client()
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: stack.admin.project_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credentials
        .into_iter()
        .find(|credential| credential.client_id == stack.admin.client_id)
        .unwrap();
    let gateway_key = CredentialKey::from_credential_id(&gateway_credential.id).unwrap();
    let gateway_policy = cluster
        .owner_of(format!("{prefix}{{{}}}:p", gateway_key.encoded()).as_bytes())
        .await;
    let victim = (0..cluster.masters())
        .find(|master| ![address_counter, gateway_policy].contains(master))
        .unwrap();

    // Credentials until the victim serves several, the other masters
    // several whose counters are live too, and at least one lives on a
    // live master with its counter on the victim.
    stack
        .registry
        .client()
        .create_project(registry_pb::CreateProjectRequest {
            project_id: "acme".into(),
            display_name: String::new(),
            policy: Some(registry_pb::ProjectPolicy {
                max_credentials: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut placed: Vec<Placed> = Vec::new();
    let enough = |placed: &[Placed]| {
        let on_victim = placed.iter().filter(|p| p.owner == victim).count();
        let live = placed
            .iter()
            .filter(|p| p.owner != victim && p.counter_owner != victim)
            .count();
        let counter_lost = placed
            .iter()
            .filter(|p| p.owner != victim && p.counter_owner == victim)
            .count();
        on_victim >= 4 && live >= 4 && counter_lost >= 1
    };
    while !enough(&placed) {
        assert!(
            placed.len() < 80,
            "credentials do not spread over the masters"
        );
        let client = create_client(
            &stack,
            registry_pb::CreateCredentialRequest {
                project_id: "acme".into(),
                ..credential(&[], &[])
            },
        )
        .await;
        let key = CredentialKey::from_credential_id(&client.credential.id).unwrap();
        let policy_key = format!("{prefix}{{{}}}:p", key.encoded());
        let owner = cluster.owner_of(policy_key.as_bytes()).await;
        let counter_owner = cluster
            .owner_of(
                format!("{prefix}f:pair:127.0.0.1:{}", client.credential.client_id).as_bytes(),
            )
            .await;
        let token = issue(&stack, &client, &[]).await.unwrap().access_token;
        // Not a prediction only: the master said to serve the slot holds
        // the credential's keys.
        assert!(
            cluster.holds(owner, policy_key.as_bytes()).await,
            "master {owner} holds {policy_key}"
        );
        placed.push(Placed {
            client,
            token,
            owner,
            counter_owner,
        });
    }
    for p in &placed {
        assert!(introspect(&stack, &p.token, "127.0.0.1", &[]).await.active);
    }

    // Gateways introspect every token in a loop; the victim dies mid-run.
    let stack = Arc::new(stack);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(introspect_until(
        stack.clone(),
        placed.iter().map(|p| p.token.clone()).collect(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.kill(victim);
    let killed = Instant::now();
    let marked = eventually(Duration::from_secs(15), || cluster.marked_failed(victim)).await;
    assert!(marked, "the other masters mark the killed one failed");
    let marked_after = killed.elapsed();
    // Keep the load going as long again once the failure is known (at
    // least two of the issuer's one-second store probes), watching health:
    // a cluster still serving most slots keeps the issuer SERVING, so
    // readiness probes do not take every replica out for all credentials.
    let mut health_seen = Vec::new();
    let watch_until = Instant::now() + marked_after.max(Duration::from_millis(2500));
    while Instant::now() < watch_until {
        health_seen.push(health(&stack).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let answers = load.await.unwrap();

    let after_kill: Vec<&Answer> = answers.iter().filter(|a| a.started >= killed).collect();
    let lost: Vec<&&Answer> = after_kill
        .iter()
        .filter(|a| placed[a.credential].owner == victim)
        .collect();
    let spared: Vec<&&Answer> = after_kill
        .iter()
        .filter(|a| placed[a.credential].owner != victim)
        .collect();
    assert!(
        answers.iter().any(|a| a.started < killed),
        "the load ran before the kill"
    );
    assert!(
        lost.len() >= 2 * placed.iter().filter(|p| p.owner == victim).count(),
        "the lost master's tokens were asked about after the kill: {} answers",
        lost.len()
    );
    let active_lost = lost.iter().filter(|a| a.outcome == Outcome::Active).count();
    assert_eq!(
        active_lost, 0,
        "no token of the killed master answers active once it is dead"
    );
    let spared_errors = spared
        .iter()
        .filter(|a| a.outcome != Outcome::Active)
        .count();
    let slowest = |answers: &[&&Answer]| answers.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "kill test: {} masters, victim {victim}: marked failed after {marked_after:?}; \
         after the kill {} answers for its tokens ({} errors, {} inactive, slowest {:?}), \
         {} for the others ({} not active, slowest {:?})",
        cluster.masters(),
        lost.len(),
        lost.iter().filter(|a| a.outcome == Outcome::Error).count(),
        lost.iter()
            .filter(|a| a.outcome == Outcome::Inactive)
            .count(),
        slowest(&lost),
        spared.len(),
        spared_errors,
        slowest(&spared),
    );
    assert!(!spared.is_empty());
    assert!(
        health_seen
            .iter()
            .all(|status| *status == ServingStatus::Serving),
        "health during the partial outage: {health_seen:?}"
    );
    assert_eq!(
        spared_errors, 0,
        "tokens on the surviving masters keep introspecting active"
    );

    // After the load, one more look at each: the same split.
    for p in &placed {
        let answer = stack
            .introspection_client()
            .introspect(token_pb::IntrospectRequest {
                token: p.token.clone(),
                client_ip: "127.0.0.1".into(),
                required_scopes: vec![],
            })
            .await;
        if p.owner == victim {
            match answer {
                Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
                Ok(answer) => assert!(!answer.get_ref().active, "{answer:?}"),
            }
        } else {
            assert!(answer.unwrap().get_ref().active);
        }
    }

    // Issuance: a live master's credential gets a working token; one of
    // the victim's is refused as unavailable, and so is a secret never
    // verified whose brute-force counter was on it (the check is never
    // skipped for it).
    let live = placed
        .iter()
        .find(|p| p.owner != victim && p.counter_owner != victim)
        .unwrap();
    let fresh = issue(&stack, &live.client, &[]).await.unwrap().access_token;
    assert!(introspect(&stack, &fresh, "127.0.0.1", &[]).await.active);
    for p in placed.iter().filter(|p| p.owner == victim) {
        assert_code(issue(&stack, &p.client, &[]).await, Code::Unavailable);
    }
    // A secret verified before never meets the counters; a new one, never
    // verified, is checked against them and fails closed.
    for p in placed
        .iter()
        .filter(|p| p.owner != victim && p.counter_owner == victim)
    {
        issue(&stack, &p.client, &[]).await.unwrap();
        let rotated = stack
            .registry
            .client()
            .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
                credential_id: p.client.credential.id.clone(),
                grace_period_seconds: 0,
                revoke_tokens: false,
            })
            .await
            .unwrap()
            .into_inner();
        let unverified = Client {
            credential: p.client.credential.clone(),
            secret: rotated.client_secret,
        };
        assert_code(issue(&stack, &unverified, &[]).await, Code::Unavailable);
    }
    // Revocation on a live master still works.
    stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: fresh.clone(),
            client_id: live.client.credential.client_id.clone(),
            client_secret: live.client.secret.clone(),
        })
        .await
        .unwrap();
    assert_inactive(
        &introspect(&stack, &fresh, "127.0.0.1", &[]).await,
        InactiveReason::Revoked,
    );

    // The master comes back empty: the issuer reconnects by itself, its
    // credentials get tokens again, and their old tokens stay inactive.
    let restarted = Instant::now();
    cluster.restart(victim).await;
    let victims: Vec<&Placed> = placed.iter().filter(|p| p.owner == victim).collect();
    let recovered = eventually(Duration::from_secs(20), || async {
        issue(&stack, &victims[0].client, &[]).await.is_ok()
    })
    .await;
    assert!(recovered, "issuance recovers when the master is back");
    eprintln!(
        "kill test: issuance recovered {:?} after the restart",
        restarted.elapsed()
    );
    for p in &victims {
        assert_inactive(
            &introspect(&stack, &p.token, "127.0.0.1", &[]).await,
            InactiveReason::Unknown,
        );
        let token = issue(&stack, &p.client, &[]).await.unwrap().access_token;
        assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    }
}
