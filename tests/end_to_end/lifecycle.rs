//! Issue, introspect, narrow, disable, rotate, delete, expire, revoke, and
//! the last use showing up.

use std::time::Duration;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::InactiveReason;
use latchkey_tests::{Stack, StackBackend};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{
    assert_code, assert_inactive, credential, eventually, introspect, issue, post_form,
    project_with_client,
};

async fn issued_tokens_introspect_active_only_for_allowed_callers_and_scopes(
    backend: StackBackend,
) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(
            &["orders.read", "orders.write"],
            &["127.0.0.1", "10.0.0.0/8"],
        ),
    )
    .await;

    let issued = issue(&stack, &client, &["orders.read"]).await.unwrap();
    assert!(issued.access_token.starts_with("lkt_"));
    assert_eq!(issued.token_type, "Bearer");
    assert_eq!(issued.scopes, ["orders.read"]);
    assert!(
        (3590..=3600).contains(&issued.expires_in),
        "an hour: {}",
        issued.expires_in
    );

    let active = introspect(&stack, &issued.access_token, "10.1.2.3", &["orders.read"]).await;
    assert!(active.active, "{active:?}");
    assert_eq!(active.client_id, client.credential.client_id);
    assert_eq!(active.credential_id, client.credential.id);
    assert_eq!(active.project_id, "acme");
    assert_eq!(active.owner, "alice");
    assert_eq!(active.scopes, ["orders.read"]);
    let issued_at = active.issue_time.unwrap().seconds;
    assert_eq!(
        active.expire_time.unwrap().seconds - issued_at,
        i64::from(issued.expires_in)
    );

    // Rule 5: an address outside the allowlist is refused.
    let elsewhere = introspect(&stack, &issued.access_token, "192.0.2.1", &[]).await;
    assert_inactive(&elsewhere, InactiveReason::IpNotAllowed);
    let no_ip = introspect(&stack, &issued.access_token, "", &[]).await;
    assert_inactive(&no_ip, InactiveReason::IpNotAllowed);
    // A scope the token was not granted.
    let write = introspect(&stack, &issued.access_token, "10.1.2.3", &["orders.write"]).await;
    assert_inactive(&write, InactiveReason::ScopeNotAllowed);

    // No scopes asked: every allowed API.
    let all = issue(&stack, &client, &[]).await.unwrap();
    assert_eq!(all.scopes, ["orders.read", "orders.write"]);
    // A scope outside the allowed APIs is refused, naming it.
    let refused = assert_code(
        issue(&stack, &client, &["billing.read"]).await,
        Code::InvalidArgument,
    );
    assert!(refused.message().contains("billing.read"), "{refused:?}");

    // One character changed (never to itself: a token may end in `x`).
    let (kept, last) = issued.access_token.split_at(issued.access_token.len() - 1);
    let tampered = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    assert_inactive(
        &introspect(&stack, &tampered, "10.1.2.3", &[]).await,
        InactiveReason::Malformed,
    );
    assert_inactive(
        &introspect(&stack, "not-a-token", "10.1.2.3", &[]).await,
        InactiveReason::Malformed,
    );
    // Well-formed, right credential, never issued.
    let forged = latchkey_token::new_token(
        latchkey_token::CredentialKey::from_credential_id(&client.credential.id).unwrap(),
        &latchkey_secrets::HashKey::generate(),
    )
    .0;
    assert_inactive(
        &introspect(&stack, &forged, "10.1.2.3", &[]).await,
        InactiveReason::Unknown,
    );

    let bad_ip = stack
        .introspection_client()
        .introspect(token_pb::IntrospectRequest {
            token: issued.access_token.clone(),
            client_ip: "10.0.0.300".into(),
            required_scopes: vec![],
        })
        .await;
    assert!(
        assert_code(bad_ip, Code::InvalidArgument)
            .message()
            .contains("client_ip")
    );
    let oversized = stack
        .introspection_client()
        .introspect(token_pb::IntrospectRequest {
            token: "x".repeat(100_000),
            client_ip: "10.0.0.1".into(),
            required_scopes: vec![],
        })
        .await;
    assert!(
        assert_code(oversized, Code::InvalidArgument)
            .message()
            .contains("token")
    );
}

async fn narrowing_applies_to_live_tokens_at_once(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "acme",
        None,
        credential(
            &["orders.read", "orders.write"],
            &["127.0.0.1", "10.0.0.0/8"],
        ),
    )
    .await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    assert!(
        introspect(&stack, &token, "10.9.9.9", &["orders.write"])
            .await
            .active
    );

    stack
        .registry
        .client()
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: client.credential.id.clone(),
                allowed_ips: vec!["127.0.0.1".into()],
                allowed_apis: vec!["orders.read".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["allowed_ips".into(), "allowed_apis".into()],
            }),
        })
        .await
        .unwrap();

    // Rule 4: the live token follows the narrowed credential immediately.
    assert_inactive(
        &introspect(&stack, &token, "10.9.9.9", &[]).await,
        InactiveReason::IpNotAllowed,
    );
    assert_inactive(
        &introspect(&stack, &token, "127.0.0.1", &["orders.write"]).await,
        InactiveReason::ScopeNotAllowed,
    );
    let still = introspect(&stack, &token, "127.0.0.1", &["orders.read"]).await;
    assert!(still.active);
    assert_eq!(
        still.scopes,
        ["orders.read"],
        "the removed API is gone from the token"
    );
}

async fn disable_rotate_and_delete_each_end_live_tokens(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let mut registry = stack.registry.client();
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let id = client.credential.id.clone();

    // Disable: tokens inactive, the secret refused; enable brings both back.
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    registry
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: id.clone(),
        })
        .await
        .unwrap();
    assert_inactive(
        &introspect(&stack, &token, "127.0.0.1", &[]).await,
        InactiveReason::CredentialDisabled,
    );
    assert_code(issue(&stack, &client, &[]).await, Code::Unauthenticated);
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
    registry
        .enable_credential(registry_pb::EnableCredentialRequest {
            credential_id: id.clone(),
        })
        .await
        .unwrap();
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);

    // Rotate with revoke: old tokens and the old secret die, the new secret works.
    let rotated = registry
        .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
            credential_id: id.clone(),
            grace_period_seconds: 0,
            revoke_tokens: true,
        })
        .await
        .unwrap()
        .into_inner();
    let answer = introspect(&stack, &token, "127.0.0.1", &[]).await;
    assert!(!answer.active, "{answer:?}");
    assert_code(issue(&stack, &client, &[]).await, Code::Unauthenticated);
    let renewed = crate::support::Client {
        credential: client.credential.clone(),
        secret: rotated.client_secret,
    };
    let fresh = issue(&stack, &renewed, &[]).await.unwrap().access_token;
    assert!(introspect(&stack, &fresh, "127.0.0.1", &[]).await.active);

    // Rotate without revoke keeps tokens working.
    registry
        .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
            credential_id: id.clone(),
            grace_period_seconds: 60,
            revoke_tokens: false,
        })
        .await
        .unwrap();
    assert!(introspect(&stack, &fresh, "127.0.0.1", &[]).await.active);

    // Delete: tokens revoked, the secret refused with 401 invalid_client.
    registry
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();
    assert_inactive(
        &introspect(&stack, &fresh, "127.0.0.1", &[]).await,
        InactiveReason::Revoked,
    );
    let (status, headers, body) = post_form(
        &stack,
        "/oauth2/token",
        Some((&client.credential.client_id, &renewed.secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "client credentials are invalid");
    assert!(headers.contains_key("www-authenticate"));
}

async fn a_short_lived_token_expires(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "blink",
        Some(registry_pb::ProjectPolicy {
            token_ttl_seconds: Some(1),
            ..Default::default()
        }),
        credential(&[], &[]),
    )
    .await;
    let issued = issue(&stack, &client, &[]).await.unwrap();
    assert_eq!(issued.expires_in, 1);
    // Expiry is a point in time; the honest test waits for it.
    let expired = eventually(Duration::from_secs(5), || async {
        !introspect(&stack, &issued.access_token, "127.0.0.1", &[])
            .await
            .active
    })
    .await;
    assert!(expired, "the token outlived its one-second lifetime");
    let answer = introspect(&stack, &issued.access_token, "127.0.0.1", &[]).await;
    assert!(
        matches!(
            answer.reason(),
            InactiveReason::Expired | InactiveReason::Unknown
        ),
        "{answer:?}"
    );
}

async fn a_client_revokes_its_own_tokens_only(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let other = crate::support::create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: "bob".into(),
            ..Default::default()
        },
    )
    .await;
    let first = issue(&stack, &client, &[]).await.unwrap().access_token;
    let second = issue(&stack, &client, &[]).await.unwrap().access_token;

    // Another client's revocation of this token is ignored (RFC 7009).
    stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: first.clone(),
            client_id: other.credential.client_id.clone(),
            client_secret: other.secret.clone(),
        })
        .await
        .unwrap();
    assert!(introspect(&stack, &first, "127.0.0.1", &[]).await.active);
    // Revocation needs the right secret.
    let wrong = stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: first.clone(),
            client_id: client.credential.client_id.clone(),
            client_secret: other.secret.clone(),
        })
        .await;
    assert_code(wrong, Code::Unauthenticated);

    stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: first.clone(),
            client_id: client.credential.client_id.clone(),
            client_secret: client.secret.clone(),
        })
        .await
        .unwrap();
    assert!(!introspect(&stack, &first, "127.0.0.1", &[]).await.active);

    let (status, _, _) = post_form(
        &stack,
        "/oauth2/revoke",
        Some((&client.credential.client_id, &client.secret)),
        &[("token", &second)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(!introspect(&stack, &second, "127.0.0.1", &[]).await.active);
    // Unknown tokens answer 200 too (RFC 7009 §2.2).
    let (status, _, _) = post_form(
        &stack,
        "/oauth2/revoke",
        Some((&client.credential.client_id, &client.secret)),
        &[("token", "lkt_garbage")],
    )
    .await;
    assert_eq!(status, 200);
}

async fn last_use_shows_up_within_five_seconds(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let after_issue = eventually(Duration::from_secs(5), || async {
        let credential = stack
            .registry
            .client()
            .get_credential(registry_pb::GetCredentialRequest {
                credential_id: client.credential.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .credential
            .unwrap();
        credential.last_used_ip == "127.0.0.1" && credential.last_used_time.is_some()
    })
    .await;
    assert!(after_issue, "issuance shows up as the last use");

    assert!(
        introspect(&stack, &token, "198.51.100.23", &[])
            .await
            .active
    );
    let after_introspection = eventually(Duration::from_secs(5), || async {
        let page = stack
            .registry
            .client()
            .list_credentials(registry_pb::ListCredentialsRequest {
                project_id: "acme".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        page.credentials[0].last_used_ip == "198.51.100.23"
    })
    .await;
    assert!(
        after_introspection,
        "the gateway's caller shows up as the last use"
    );
}

on_both_stacks!(
    issued_tokens_introspect_active_only_for_allowed_callers_and_scopes,
    narrowing_applies_to_live_tokens_at_once,
    disable_rotate_and_delete_each_end_live_tokens,
    a_short_lived_token_expires,
    a_client_revokes_its_own_tokens_only,
    last_use_shows_up_within_five_seconds,
);
