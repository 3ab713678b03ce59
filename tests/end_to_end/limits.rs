//! `max_tokens_per_credential` with `REJECT` and `EVICT_OLDEST`, under
//! concurrency too (rule 6).

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1::InactiveReason;
use latchkey_tests::{Stack, StackBackend};
use tonic::Code;

use crate::support::{assert_code, credential, introspect, issue, project_with_client};

async fn the_eleventh_token_is_refused_under_reject(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    // The seed platform: "Each Client Credential can have a maximum of 10
    // access tokens."
    let client = project_with_client(&stack, "operation", None, credential(&[], &[])).await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(issue(&stack, &client, &[]).await.unwrap().access_token);
    }
    let refused = assert_code(issue(&stack, &client, &[]).await, Code::ResourceExhausted);
    assert!(refused.message().contains("10"), "{refused:?}");
    for token in &tokens {
        assert!(
            introspect(&stack, token, "127.0.0.1", &[]).await.active,
            "the first ten live on"
        );
    }
}

async fn the_oldest_token_dies_under_evict_oldest(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "rolling",
        Some(registry_pb::ProjectPolicy {
            max_tokens_per_credential: Some(3),
            on_token_limit: Some(registry_pb::OnTokenLimit::EvictOldest.into()),
            ..Default::default()
        }),
        credential(&[], &[]),
    )
    .await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(issue(&stack, &client, &[]).await.unwrap().access_token);
        // Tokens are ordered by expiry at one-second resolution.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let fourth = issue(&stack, &client, &[]).await.unwrap().access_token;
    assert_evicted(&introspect(&stack, &tokens[0], "127.0.0.1", &[]).await);
    for token in tokens[1..].iter().chain([&fourth]) {
        assert!(introspect(&stack, token, "127.0.0.1", &[]).await.active);
    }
}

/// An evicted token is revoked, and says so until it would have expired
/// (issue 13).
fn assert_evicted(answer: &latchkey_proto::token::v1::IntrospectResponse) {
    assert!(
        !answer.active,
        "the oldest token should be dead: {answer:?}"
    );
    assert_eq!(answer.reason(), InactiveReason::Revoked, "{answer:?}");
}

async fn parallel_issues_never_exceed_the_limit(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "burst", None, credential(&[], &[])).await;
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let mut tokens = stack.issuer.token_client();
            let request = latchkey_proto::token::v1::IssueTokenRequest {
                client_id: client.credential.client_id.clone(),
                client_secret: client.secret.clone(),
                scopes: vec![],
            };
            tokio::spawn(async move { tokens.issue_token(request).await })
        })
        .collect();
    let mut issued = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => issued += 1,
            Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
        }
    }
    assert_eq!(issued, 10);
}

on_both_stacks!(
    the_eleventh_token_is_refused_under_reject,
    the_oldest_token_dies_under_evict_oldest,
    parallel_issues_never_exceed_the_limit,
);
