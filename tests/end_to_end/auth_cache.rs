//! The issuer reuses a recent verification of a client's ID and secret
//! instead of asking the registry on every token request. These tests pin
//! down that it changes nothing a user can see: a client that has just
//! used its secret is refused at once after a rotation, a disable, or a
//! narrowed allowlist, and a grace period ends on time.

use std::time::Duration;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_tests::{Stack, StackBackend};
use tonic::Code;

use crate::support::{Client, assert_code, create_client, credential, issue, project_with_client};

async fn rotate(stack: &Stack, client: &Client, grace_period_seconds: u32) -> Client {
    let rotated = stack
        .registry
        .client()
        .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
            credential_id: client.credential.id.clone(),
            grace_period_seconds,
            revoke_tokens: false,
        })
        .await
        .unwrap()
        .into_inner();
    Client {
        credential: client.credential.clone(),
        secret: rotated.client_secret,
    }
}

async fn a_rotated_secret_is_refused_at_once_after_use(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let old = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    // Used twice: the second request is answered from the verification of
    // the first.
    for _ in 0..2 {
        issue(&stack, &old, &[]).await.unwrap();
    }
    // A wrong (well-formed, someone else's) secret right after a verified
    // use is still refused.
    let other = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            ..credential(&["orders.read"], &[])
        },
    )
    .await;
    let wrong = Client {
        credential: old.credential.clone(),
        secret: other.secret,
    };
    assert_code(issue(&stack, &wrong, &[]).await, Code::Unauthenticated);
    let new = rotate(&stack, &old, 0).await;
    assert_code(issue(&stack, &old, &[]).await, Code::Unauthenticated);
    issue(&stack, &new, &[]).await.unwrap();
    issue(&stack, &new, &[]).await.unwrap();
    assert_code(issue(&stack, &old, &[]).await, Code::Unauthenticated);
}

async fn a_grace_period_keeps_the_old_secret_until_it_ends(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let old = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    issue(&stack, &old, &[]).await.unwrap();
    let new = rotate(&stack, &old, 2).await;
    // Within the grace period the old secret keeps working, repeatedly
    // (the second time from the issuer's verification of the first).
    for _ in 0..2 {
        issue(&stack, &old, &[]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_code(issue(&stack, &old, &[]).await, Code::Unauthenticated);
    issue(&stack, &new, &[]).await.unwrap();
}

async fn disable_and_a_narrowed_allowlist_apply_at_once_after_use(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let mut registry = stack.registry.client();
    issue(&stack, &client, &[]).await.unwrap();
    registry
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: client.credential.id.clone(),
                allowed_ips: vec!["10.0.0.0/8".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["allowed_ips".into()],
            }),
        })
        .await
        .unwrap();
    // The tests call from 127.0.0.1, now outside the allowlist.
    assert_code(issue(&stack, &client, &[]).await, Code::Unauthenticated);
    registry
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: client.credential.id.clone(),
                allowed_ips: vec![],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["allowed_ips".into()],
            }),
        })
        .await
        .unwrap();
    issue(&stack, &client, &[]).await.unwrap();
    registry
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: client.credential.id.clone(),
        })
        .await
        .unwrap();
    assert_code(issue(&stack, &client, &[]).await, Code::Unauthenticated);
}

on_both_stacks!(
    a_rotated_secret_is_refused_at_once_after_use,
    a_grace_period_keeps_the_old_secret_until_it_ends,
    disable_and_a_narrowed_allowlist_apply_at_once_after_use,
);
