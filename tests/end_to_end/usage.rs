//! Token usage through both services: a console asks "how often was this
//! key used today, and from where?" and `ListUsage` answers from the rollups
//! the issuer sends, exactly, however the tokens were asked for (gRPC or
//! HTTP, many at once), while the audit trail keeps only the refusals.

use std::time::Duration;

use futures_util::future::join_all;
use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{Stack, StackBackend};
use registry_pb::{AuditAction, AuditOutcome};
use tonic::Code;

use crate::support::{
    Client, assert_code, create_client, credential, eventually, issue, post_form,
    project_with_client,
};

/// Issues over gRPC (`grpc`) and HTTP (`http`) at once; returns the tokens.
async fn issue_many(stack: &Stack, client: &Client, grpc: usize, http: usize) -> Vec<String> {
    let over_grpc = join_all((0..grpc).map(|_| issue(stack, client, &[])));
    let over_http = join_all((0..http).map(|_| {
        post_form(
            stack,
            "/oauth2/token",
            Some((&client.credential.client_id, &client.secret)),
            &[("grant_type", "client_credentials")],
        )
    }));
    let (over_grpc, over_http) = tokio::join!(over_grpc, over_http);
    let mut tokens: Vec<String> = over_grpc
        .into_iter()
        .map(|issued| issued.unwrap().access_token)
        .collect();
    for (status, _, body) in over_http {
        assert_eq!(status, 200, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    tokens
}

/// Today's usage of the project (or one of its credentials), by day.
async fn today(stack: &Stack, project: &str, credential_id: &str) -> Vec<registry_pb::UsageBucket> {
    stack
        .registry
        .client()
        .list_usage(registry_pb::ListUsageRequest {
            project_id: project.to_owned(),
            credential_id: credential_id.to_owned(),
            granularity: registry_pb::UsageGranularity::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .buckets
}

async fn every_token_is_counted_in_usage_and_none_is_an_audit_row(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let policy = registry_pb::ProjectPolicy {
        max_tokens_per_credential: Some(100),
        ..Default::default()
    };
    let alice = project_with_client(
        &stack,
        "acme",
        Some(policy),
        credential(&["orders.read"], &[]),
    )
    .await;
    let bob = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: "bob".into(),
            ..credential(&["orders.read"], &[])
        },
    )
    .await;

    let tokens = issue_many(&stack, &alice, 30, 10).await;
    issue_many(&stack, &bob, 2, 1).await;
    for token in &tokens[..3] {
        stack
            .issuer
            .token_client()
            .revoke_token(token_pb::RevokeTokenRequest {
                token: token.clone(),
                client_id: alice.credential.client_id.clone(),
                client_secret: alice.secret.clone(),
            })
            .await
            .unwrap();
    }
    // Refusals are not usage: a scope alice does not hold, a wrong secret.
    assert_code(
        issue(&stack, &alice, &["billing.admin"]).await,
        Code::InvalidArgument,
    );
    let wrong = Client {
        credential: alice.credential.clone(),
        secret: bob.secret.clone(),
    };
    assert_code(issue(&stack, &wrong, &[]).await, Code::Unauthenticated);

    let alice_id = alice.credential.id.clone();
    let counted = eventually(Duration::from_secs(15), || async {
        today(&stack, "acme", &alice_id)
            .await
            .first()
            .is_some_and(|bucket| bucket.tokens_issued == 40 && bucket.tokens_revoked == 3)
    })
    .await;
    let buckets = today(&stack, "acme", &alice_id).await;
    assert!(counted, "alice's usage never added up: {buckets:?}");
    assert_eq!(buckets.len(), 1, "one day: {buckets:?}");
    let bucket = &buckets[0];
    assert_eq!(bucket.credential_id, alice_id);
    assert_eq!(bucket.addresses, ["127.0.0.1"], "{bucket:?}");
    assert!(!bucket.more_addresses);
    assert!(bucket.first_time.unwrap().seconds <= bucket.last_time.unwrap().seconds);

    // The project's view names both keys, each with its own count.
    let bob_id = bob.credential.id.clone();
    let both = eventually(Duration::from_secs(15), || async {
        today(&stack, "acme", "")
            .await
            .iter()
            .any(|bucket| bucket.credential_id == bob_id && bucket.tokens_issued == 3)
    })
    .await;
    let project = today(&stack, "acme", "").await;
    assert!(both, "bob's usage never showed: {project:?}");
    let mut counts: Vec<(String, i64, i64)> = project
        .iter()
        .map(|b| (b.credential_id.clone(), b.tokens_issued, b.tokens_revoked))
        .collect();
    counts.sort();
    let mut expected = vec![(alice_id.clone(), 40, 3), (bob_id, 3, 0)];
    expected.sort();
    assert_eq!(counts, expected);
    // Nothing secret in what a console shows.
    let shown = format!("{project:?}");
    for secret in [&alice.secret, &bob.secret, &tokens[0]] {
        assert!(
            !shown.contains(secret.as_str()),
            "secret material in {shown}"
        );
    }

    // The audit trail holds the two refusals, and not one row per token.
    let refusals_listed = eventually(Duration::from_secs(15), || async {
        token_events(&stack, &alice_id).await.len() >= 2
    })
    .await;
    let listed = token_events(&stack, &alice_id).await;
    assert!(
        refusals_listed,
        "the refusals never reached the audit trail: {listed:?}"
    );
    assert!(
        listed
            .iter()
            .all(|(_, outcome)| *outcome == AuditOutcome::Failed),
        "a successful token event was audited: {listed:?}"
    );
    assert_eq!(
        listed,
        [
            (AuditAction::AuthenticateClient, AuditOutcome::Failed),
            (AuditAction::IssueToken, AuditOutcome::Failed),
        ],
        "the two refusals (newest first), not a row per token"
    );
}

/// The token events of a credential's audit trail, newest first.
async fn token_events(stack: &Stack, credential_id: &str) -> Vec<(AuditAction, AuditOutcome)> {
    stack
        .registry
        .client()
        .list_audit_events(registry_pb::ListAuditEventsRequest {
            credential_id: credential_id.to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .iter()
        .filter(|event| {
            matches!(
                event.action(),
                AuditAction::IssueToken
                    | AuditAction::RevokeToken
                    | AuditAction::AuthenticateClient
            )
        })
        .map(|event| (event.action(), event.outcome()))
        .collect()
}

on_both_stacks!(every_token_is_counted_in_usage_and_none_is_an_audit_row);
