//! Self-healing sync (issue 12, finding 8): a change the token side applied
//! but whose commit was lost — the issuer's answer never reached the
//! registry, which rolled back — converges by itself within seconds to what
//! the registry committed: never hours of a credential stuck between the
//! two.

use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_tests::{Stack, TcpRelay};
use tonic::Code;

use crate::support::{credential, introspect, issue, project_with_client};

/// How long convergence may take (the registry retries every second).
const CONVERGENCE: Duration = Duration::from_secs(10);

async fn a_change_applied_but_never_committed_converges(backend: latchkey_tests::StackBackend) {
    // The registry reaches the issuer's internal listener through a relay
    // that can swallow the issuer's answers.
    let mut relay = TcpRelay::start(String::new()).await;
    let relay_address = relay.address();
    let (database, tokens) = backend.parts();
    let stack = Stack::start_with(
        database,
        tokens,
        |registry| {
            let target = registry
                .token_issuer_url
                .trim_start_matches("http://")
                .to_owned();
            relay.retarget(target);
            registry.token_issuer_url = format!("http://{relay_address}");
        },
        |_| {},
    )
    .await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;

    // The issuer applies the disable, but its answer is lost: the registry
    // times out, rolls back and says so. (The management call's own token
    // check passes first: only the answers from the policy change on are
    // lost.)
    relay.swallow_answers_after(client.credential.id.as_bytes());
    let mut management = stack.registry.client();
    let credential_id = client.credential.id.clone();
    let disabling = tokio::spawn(async move {
        management
            .disable_credential(registry_pb::DisableCredentialRequest { credential_id })
            .await
    });
    // Meanwhile the token side holds the disable (failing closed).
    let deadline = Instant::now() + Duration::from_secs(4);
    while introspect(&stack, &token, "127.0.0.1", &[]).await.active {
        assert!(
            Instant::now() < deadline,
            "the issuer never applied the disable"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = disabling.await.unwrap().unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    // The answers flow again: within seconds both sides agree on what the
    // registry committed (active), with no further call from anyone.
    relay.stop_swallowing().await;
    let deadline = Instant::now() + CONVERGENCE;
    while !introspect(&stack, &token, "127.0.0.1", &[]).await.active {
        assert!(
            Instant::now() < deadline,
            "the credential is still stuck disabled on the token side after {CONVERGENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The registry's connection to the issuer was cut with the relay: its
    // first call reconnects (UNAVAILABLE meanwhile, as a client retries).
    let stored = loop {
        match stack
            .registry
            .client()
            .get_credential(registry_pb::GetCredentialRequest {
                credential_id: client.credential.id.clone(),
            })
            .await
        {
            Ok(response) => break response.into_inner().credential.unwrap(),
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    };
    assert_eq!(
        stored.state(),
        registry_pb::CredentialState::Active,
        "the registry never committed the disable"
    );
    issue(&stack, &client, &[])
        .await
        .expect("issuance works again, with no 503");
    // And the registry's later changes still reach the token side.
    stack
        .registry
        .client()
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: client.credential.id.clone(),
        })
        .await
        .unwrap();
    assert!(!introspect(&stack, &token, "127.0.0.1", &[]).await.active);
}

async fn an_issuer_ahead_of_the_registry_asks_it_to_settle(backend: latchkey_tests::StackBackend) {
    let stack = latchkey_tests::Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    // What a registry stopped mid-change leaves behind, with nothing in its
    // memory to repair: the token side holds a newer policy (disabled) that
    // the registry never committed.
    TokenAdminClient::new(stack.issuer.internal_channel())
        .sync_policy(token_pb::SyncPolicyRequest {
            policy: Some(token_pb::CredentialPolicy {
                credential_id: client.credential.id.clone(),
                version: 1_000,
                state: token_pb::PolicyState::Disabled.into(),
                client_id: client.credential.client_id.clone(),
                project_id: "acme".into(),
                owner: "alice".into(),
                allowed_apis: vec!["a.read".into()],
                allowed_ips: Vec::new(),
                expire_time: None,
            }),
        })
        .await
        .unwrap();
    assert!(!introspect(&stack, &token, "127.0.0.1", &[]).await.active);

    // The client asks for a token with its right secret: the issuer finds
    // its store ahead of the registry's answer, has the registry settle,
    // and issues — no 503, no hours of a stuck credential.
    issue(&stack, &client, &[])
        .await
        .expect("issuance settles the credential and succeeds");
    assert!(
        introspect(&stack, &token, "127.0.0.1", &[]).await.active,
        "the registry's committed state (active) is back on the token side"
    );
}

on_both_stacks!(
    a_change_applied_but_never_committed_converges,
    an_issuer_ahead_of_the_registry_asks_it_to_settle,
);
