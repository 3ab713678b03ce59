//! Issue 13: a token revoked by its own client (RFC 7009, gRPC
//! `RevokeToken`), evicted at the limit, or revoked with its credential's
//! secret rotation introspects `REVOKED` over gRPC until it would have
//! expired, then no longer says so; RFC 7662 still answers only
//! `{"active":false}`.

use std::time::Duration;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::InactiveReason;
use latchkey_tests::{Stack, StackBackend};

use crate::support::{
    assert_inactive, credential, introspect, issue, post_form, project_with_client,
};

async fn a_revoked_token_says_so_until_it_would_have_expired(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        Some(registry_pb::ProjectPolicy {
            token_ttl_seconds: Some(3),
            ..Default::default()
        }),
        credential(&["orders.read"], &[]),
    )
    .await;
    let basic = (client.credential.client_id.as_str(), client.secret.as_str());

    // RFC 7009 over HTTP.
    let over_http = issue(&stack, &client, &[]).await.unwrap().access_token;
    let (status, _, _) = post_form(
        &stack,
        "/oauth2/revoke",
        Some(basic),
        &[("token", &over_http)],
    )
    .await;
    assert_eq!(status, 200);
    assert_inactive(
        &introspect(&stack, &over_http, "127.0.0.1", &[]).await,
        InactiveReason::Revoked,
    );
    // RFC 7662 tells nothing more than inactive.
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some(stack.admin.basic()),
        &[("token", &over_http), ("client_ip", "127.0.0.1")],
    )
    .await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({ "active": false }))
    );

    // gRPC RevokeToken.
    let over_grpc = issue(&stack, &client, &[]).await.unwrap().access_token;
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
    // A token never issued stays unknown.
    let forged = latchkey_token::new_token(
        latchkey_token::CredentialKey::from_credential_id(&client.credential.id).unwrap(),
        &latchkey_secrets::HashKey::generate(),
    )
    .0;
    assert_inactive(
        &introspect(&stack, &forged, "127.0.0.1", &[]).await,
        InactiveReason::Unknown,
    );

    // Past the lifetime it would have had, it is no longer "revoked".
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let answer = introspect(&stack, &over_http, "127.0.0.1", &[]).await;
    assert!(!answer.active);
    assert_eq!(answer.reason(), InactiveReason::Unknown, "{answer:?}");
}

async fn a_rotation_that_revokes_leaves_its_tokens_revoked(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let tokens = [
        issue(&stack, &client, &[]).await.unwrap().access_token,
        issue(&stack, &client, &[]).await.unwrap().access_token,
    ];
    stack
        .registry
        .client()
        .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
            credential_id: client.credential.id.clone(),
            grace_period_seconds: 0,
            revoke_tokens: true,
        })
        .await
        .unwrap();
    for token in &tokens {
        assert_inactive(
            &introspect(&stack, token, "127.0.0.1", &[]).await,
            InactiveReason::Revoked,
        );
    }
}

on_both_stacks!(
    a_revoked_token_says_so_until_it_would_have_expired,
    a_rotation_that_revokes_leaves_its_tokens_revoked,
);
