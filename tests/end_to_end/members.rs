//! Members through both services (issue 13; rules 3 and 4): a member's
//! ceiling and state reach live tokens at once, fresh tokens get only what
//! the ceiling allows, a suspended or removed member's secrets are refused
//! with 401 `invalid_client`, and resuming restores what suspension took.

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1::InactiveReason;
use latchkey_tests::{Stack, StackBackend};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{
    Client, assert_code, assert_inactive, create_client, credential, introspect, issue, post_form,
    project_with_client,
};

/// Project `acme` with member alice (`ceiling`) and one credential of hers
/// holding `apis`.
async fn member_with_key(stack: &Stack, ceiling: &[&str], apis: &[&str]) -> Client {
    let mut admin = stack.registry.client();
    admin
        .create_project(registry_pb::CreateProjectRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .create_member(registry_pb::CreateMemberRequest {
            project_id: "acme".into(),
            user_id: "alice".into(),
            api_ceiling: ceiling.iter().map(|api| (*api).to_owned()).collect(),
            ..Default::default()
        })
        .await
        .unwrap();
    create_client(
        stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            ..credential(apis, &[])
        },
    )
    .await
}

async fn change_alice(stack: &Stack, member: registry_pb::Member, path: &str) {
    stack
        .registry
        .client()
        .update_member(registry_pb::UpdateMemberRequest {
            member: Some(registry_pb::Member {
                project_id: "acme".into(),
                user_id: "alice".into(),
                ..member
            }),
            update_mask: Some(FieldMask {
                paths: vec![path.to_owned()],
            }),
        })
        .await
        .unwrap();
}

async fn set_ceiling(stack: &Stack, apis: &[&str]) {
    let member = registry_pb::Member {
        api_ceiling: apis.iter().map(|api| (*api).to_owned()).collect(),
        ..Default::default()
    };
    change_alice(stack, member, "api_ceiling").await;
}

async fn set_state(stack: &Stack, state: registry_pb::MemberState) {
    let member = registry_pb::Member {
        state: state.into(),
        ..Default::default()
    };
    change_alice(stack, member, "state").await;
}

/// `POST /oauth2/token` with the client's secret: (status, error code).
async fn token_over_http(stack: &Stack, client: &Client, scope: Option<&str>) -> (u16, String) {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let (status, _, body) = post_form(
        stack,
        "/oauth2/token",
        Some((&client.credential.client_id, &client.secret)),
        &form,
    )
    .await;
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn a_lower_ceiling_narrows_live_and_new_tokens_at_once(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let alice = member_with_key(
        &stack,
        &["orders.read", "orders.write"],
        &["orders.read", "orders.write"],
    )
    .await;
    let second = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            ..credential(&["orders.read", "orders.write"], &[])
        },
    )
    .await;
    let token = issue(&stack, &alice, &[]).await.unwrap().access_token;
    assert!(
        introspect(&stack, &token, "127.0.0.1", &["orders.write"])
            .await
            .active
    );

    set_ceiling(&stack, &["orders.read"]).await;

    // The live token lost the scope at once; the other one stays.
    assert_inactive(
        &introspect(&stack, &token, "127.0.0.1", &["orders.write"]).await,
        InactiveReason::ScopeNotAllowed,
    );
    let still = introspect(&stack, &token, "127.0.0.1", &["orders.read"]).await;
    assert!(still.active);
    assert_eq!(still.scopes, ["orders.read"]);
    // A fresh token gets only the ceiling's APIs, and cannot ask for more.
    let fresh = issue(&stack, &alice, &[]).await.unwrap();
    assert_eq!(fresh.scopes, ["orders.read"]);
    assert_eq!(
        token_over_http(&stack, &alice, Some("orders.write")).await,
        (400, "invalid_scope".to_owned())
    );
    // The credential itself still lists both: raising the ceiling again
    // gives the scope back at once, to a key the issuer has a cached
    // authentication of as to one it has not.
    let shown = stack
        .registry
        .client()
        .get_credential(registry_pb::GetCredentialRequest {
            credential_id: alice.credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(shown.allowed_apis, ["orders.read", "orders.write"]);
    set_ceiling(&stack, &["orders.read", "orders.write"]).await;
    let cached = issue(&stack, &alice, &["orders.write"]).await.unwrap();
    assert_eq!(cached.scopes, ["orders.write"]);
    assert_eq!(
        token_over_http(&stack, &alice, Some("orders.write"))
            .await
            .0,
        200
    );
    let widened = issue(&stack, &second, &["orders.write"]).await.unwrap();
    assert_eq!(widened.scopes, ["orders.write"]);
    assert!(
        introspect(
            &stack,
            &widened.access_token,
            "127.0.0.1",
            &["orders.write"]
        )
        .await
        .active
    );
}

async fn suspension_ends_tokens_at_once_and_resuming_restores_them(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let alice = member_with_key(&stack, &["orders.read"], &["orders.read"]).await;
    let mut admin = stack.registry.client();
    // A second key alice disabled herself before the suspension.
    let parked = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            ..credential(&["orders.read"], &[])
        },
    )
    .await;
    admin
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: parked.credential.id.clone(),
        })
        .await
        .unwrap();
    let token = issue(&stack, &alice, &[]).await.unwrap().access_token;

    set_state(&stack, registry_pb::MemberState::Suspended).await;
    assert_inactive(
        &introspect(&stack, &token, "127.0.0.1", &[]).await,
        InactiveReason::CredentialDisabled,
    );
    assert_eq!(
        token_over_http(&stack, &alice, None).await,
        (401, "invalid_client".to_owned())
    );
    assert_code(issue(&stack, &alice, &[]).await, Code::Unauthenticated);
    // The credential's own state was not touched.
    let shown = admin
        .get_credential(registry_pb::GetCredentialRequest {
            credential_id: alice.credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(shown.state(), registry_pb::CredentialState::Active);

    set_state(&stack, registry_pb::MemberState::Active).await;
    assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    assert_eq!(token_over_http(&stack, &alice, None).await.0, 200);
    // What was disabled before stays disabled.
    assert_eq!(
        token_over_http(&stack, &parked, None).await,
        (401, "invalid_client".to_owned())
    );
}

async fn removal_ends_tokens_for_good(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let alice = member_with_key(&stack, &["orders.read"], &["orders.read"]).await;
    // Someone else's key in the project is not affected.
    let bob = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: "bob".into(),
            allowed_apis: vec!["orders.read".into()],
            ..Default::default()
        },
    )
    .await;
    let token = issue(&stack, &alice, &[]).await.unwrap().access_token;
    let bobs_token = issue(&stack, &bob, &[]).await.unwrap().access_token;
    let mut admin = stack.registry.client();

    admin
        .remove_member(registry_pb::RemoveMemberRequest {
            project_id: "acme".into(),
            user_id: "alice".into(),
        })
        .await
        .unwrap();
    // Its tokens were purged (revoked for as long as they would have
    // lived), and its policy says disabled for good.
    assert_inactive(
        &introspect(&stack, &token, "127.0.0.1", &[]).await,
        InactiveReason::Revoked,
    );
    assert_eq!(
        token_over_http(&stack, &alice, None).await,
        (401, "invalid_client".to_owned())
    );
    assert!(
        introspect(&stack, &bobs_token, "127.0.0.1", &[])
            .await
            .active
    );

    // The key stays listed, and nothing brings it back: enabling it, or
    // making alice a member again.
    let listed = admin
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: "acme".into(),
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credentials;
    assert_eq!(listed.len(), 1);
    admin
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: alice.credential.id.clone(),
        })
        .await
        .unwrap();
    admin
        .enable_credential(registry_pb::EnableCredentialRequest {
            credential_id: alice.credential.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        token_over_http(&stack, &alice, None).await,
        (401, "invalid_client".to_owned())
    );
    assert_code(
        admin
            .create_member(registry_pb::CreateMemberRequest {
                project_id: "acme".into(),
                user_id: "alice".into(),
                api_ceiling: vec!["orders.read".into()],
                ..Default::default()
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_code(
        admin
            .create_credential(registry_pb::CreateCredentialRequest {
                project_id: "acme".into(),
                ..credential(&["orders.read"], &[])
            })
            .await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        token_over_http(&stack, &alice, None).await,
        (401, "invalid_client".to_owned())
    );
}

async fn a_project_without_members_keeps_the_owner_model(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(
        &stack,
        "plain",
        None,
        credential(&["orders.read", "orders.admin"], &[]),
    )
    .await;
    let issued = issue(&stack, &client, &[]).await.unwrap();
    assert_eq!(issued.scopes, ["orders.read", "orders.admin"]);
}

on_both_stacks!(
    a_lower_ceiling_narrows_live_and_new_tokens_at_once,
    suspension_ends_tokens_at_once_and_resuming_restores_them,
    removal_ends_tokens_for_good,
    a_project_without_members_keeps_the_owner_model,
);
