//! Rule 8: every management call is authenticated and authorized, and
//! introspection callers authenticate too. Each refusal is checked with the
//! right code and no change made.

use std::time::Duration;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{ManagementClient, Stack, StackBackend};
use tonic::Code;

use crate::support::{Client, assert_code, create_client, eventually, issue, post_form};

/// A credential with `scopes` in `project`, and a management client using
/// its token.
async fn member(
    stack: &Stack,
    project: &str,
    owner: &str,
    scopes: &[&str],
) -> (Client, ManagementClient) {
    let client = create_client(
        stack,
        registry_pb::CreateCredentialRequest {
            project_id: project.to_owned(),
            owner: owner.to_owned(),
            allowed_apis: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        },
    )
    .await;
    let token = issue(stack, &client, &[]).await.unwrap().access_token;
    let management = stack.registry.client_with_token(Some(&token));
    (client, management)
}

async fn new_project(stack: &Stack, project: &str) {
    stack
        .registry
        .client()
        .create_project(registry_pb::CreateProjectRequest {
            project_id: project.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
}

fn get(id: &str) -> registry_pb::GetCredentialRequest {
    registry_pb::GetCredentialRequest {
        credential_id: id.to_owned(),
    }
}

async fn without_a_valid_token_nothing_answers(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    new_project(&stack, "acme").await;
    for token in [
        None,
        Some("garbage"),
        Some("lkt_0000000000000000000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000"),
    ] {
        let mut anonymous = stack.registry.client_with_token(token);
        let refused = anonymous
            .create_credential(registry_pb::CreateCredentialRequest {
                project_id: "acme".into(),
                owner: "mallory".into(),
                ..Default::default()
            })
            .await;
        assert_code(refused, Code::Unauthenticated);
        assert_code(
            anonymous
                .list_projects(registry_pb::ListProjectsRequest::default())
                .await,
            Code::Unauthenticated,
        );
    }
    let listed = stack
        .registry
        .client()
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.credentials.is_empty(),
        "no refused call wrote anything"
    );

    // A platform API token is a valid token without any management scope.
    let (_, api_client) = member(&stack, "acme", "app", &["orders.read"]).await;
    let mut api_client = api_client;
    let denied = api_client
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await;
    assert_code(denied, Code::PermissionDenied);
}

async fn owners_see_and_change_only_their_own_credentials(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    new_project(&stack, "tiber").await;
    let (_, mut alice) = member(&stack, "tiber", "alice", &["credentials:own"]).await;
    let bobs = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "tiber".into(),
            owner: "bob".into(),
            name: "bobs key".into(),
            ..Default::default()
        },
    )
    .await;

    // Creating: the owner is alice's own, whatever the request says.
    let created = alice
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: "tiber".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(created.owner, "alice");
    let for_bob = alice
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: "tiber".into(),
            owner: "bob".into(),
            ..Default::default()
        })
        .await;
    assert_code(for_bob, Code::PermissionDenied);

    // Listing shows only alice's; asking for bob's is refused.
    let listed = alice
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: "tiber".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.credentials.iter().all(|c| c.owner == "alice"),
        "{listed:?}"
    );
    assert_eq!(
        listed.credentials.len(),
        2,
        "her own key and the one she created"
    );
    let bob_list = alice
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: "tiber".into(),
            owner: "bob".into(),
            ..Default::default()
        })
        .await;
    assert_code(bob_list, Code::PermissionDenied);

    // Bob's credential is invisible: NOT_FOUND, exactly as a missing one.
    let id = bobs.credential.id.clone();
    let hidden = assert_code(alice.get_credential(get(&id)).await, Code::NotFound);
    let missing = assert_code(
        alice.get_credential(get(&uuid_like())).await,
        Code::NotFound,
    );
    assert_eq!(
        hidden.message().replace(&id, "ID"),
        missing.message().replace(&uuid_like(), "ID"),
        "no existence leak"
    );
    assert_code(
        alice
            .delete_credential(registry_pb::DeleteCredentialRequest {
                credential_id: id.clone(),
                confirm_name: "bobs key".into(),
            })
            .await,
        Code::NotFound,
    );
    assert_code(
        alice
            .disable_credential(registry_pb::DisableCredentialRequest {
                credential_id: id.clone(),
            })
            .await,
        Code::NotFound,
    );
    assert_code(
        alice
            .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
                credential_id: id.clone(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    // Bob's credential is untouched.
    let bob_now = stack
        .registry
        .client()
        .get_credential(get(&id))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(bob_now.state(), registry_pb::CredentialState::Active);

    // Other projects are out of reach.
    new_project(&stack, "elsewhere").await;
    let foreign = alice
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: "elsewhere".into(),
            ..Default::default()
        })
        .await;
    assert_code(foreign, Code::PermissionDenied);
    assert_code(
        alice
            .create_project(registry_pb::CreateProjectRequest {
                project_id: "mine".into(),
                ..Default::default()
            })
            .await,
        Code::PermissionDenied,
    );
}

fn uuid_like() -> String {
    "0190a7c4-0000-7000-8000-000000000000".to_owned()
}

async fn nobody_grants_more_than_it_holds(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    new_project(&stack, "acme").await;
    let (own_client, mut own) =
        member(&stack, "acme", "alice", &["credentials:own", "orders.read"]).await;
    let (_, mut manager) = member(&stack, "acme", "carol", &["credentials:manage"]).await;

    for (mut caller, scope) in [
        (own.clone(), "credentials:manage"),
        (own.clone(), "registry:admin"),
        (own.clone(), "tokens:introspect"),
        (manager.clone(), "registry:admin"),
    ] {
        let refused = caller
            .create_credential(registry_pb::CreateCredentialRequest {
                project_id: "acme".into(),
                owner: "alice".into(),
                allowed_apis: vec!["orders.read".into(), scope.into()],
                ..Default::default()
            })
            .await;
        assert!(
            assert_code(refused, Code::PermissionDenied)
                .message()
                .contains(scope)
        );
    }
    // Widening one's own credential is escalation too.
    let widen = own
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: own_client.credential.id.clone(),
                allowed_apis: vec!["credentials:own".into(), "credentials:manage".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["allowed_apis".into()],
            }),
        })
        .await;
    assert_code(widen, Code::PermissionDenied);
    // What it holds it may pass on; a platform API it lacks it may not
    // (CloudOps: "a user's API keys have the same level of privilege that
    // the user has").
    own.create_credential(registry_pb::CreateCredentialRequest {
        project_id: "acme".into(),
        allowed_apis: vec!["credentials:own".into(), "orders.read".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let beyond = own
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            allowed_apis: vec!["orders.read".into(), "orders.admin".into()],
            ..Default::default()
        })
        .await;
    assert!(
        assert_code(beyond, Code::PermissionDenied)
            .message()
            .contains("orders.admin")
    );
    manager
        .create_credential(registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: "dave".into(),
            allowed_apis: vec!["credentials:manage".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    // Managers manage every credential of their project, not policies.
    manager
        .get_credential(get(&own_client.credential.id))
        .await
        .unwrap();
    let policy = manager
        .update_project_policy(registry_pb::UpdateProjectPolicyRequest {
            project_id: "acme".into(),
            policy: Some(registry_pb::ProjectPolicy {
                max_credentials: Some(0),
                ..Default::default()
            }),
        })
        .await;
    assert_code(policy, Code::PermissionDenied);
}

async fn expired_tokens_and_deleted_admins_lose_access_at_once(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    stack
        .registry
        .client()
        .create_project(registry_pb::CreateProjectRequest {
            project_id: "blink".into(),
            policy: Some(registry_pb::ProjectPolicy {
                token_ttl_seconds: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_, short) = member(&stack, "blink", "ops", &["credentials:manage"]).await;
    let expired = eventually(Duration::from_secs(5), || {
        let mut short = short.clone();
        async move {
            short
                .list_credentials(registry_pb::ListCredentialsRequest {
                    project_id: "blink".into(),
                    ..Default::default()
                })
                .await
                .is_err_and(|status| status.code() == Code::Unauthenticated)
        }
    })
    .await;
    assert!(expired, "an expired management token is refused");

    // A second admin, deleted by the first: its token stops working at once.
    let (second, mut second_admin) = member(&stack, "admin", "admin2", &["registry:admin"]).await;
    second_admin
        .list_projects(registry_pb::ListProjectsRequest::default())
        .await
        .unwrap();
    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: second.credential.id.clone(),
            confirm_name: second.credential.name.clone(),
        })
        .await
        .unwrap();
    let refused = second_admin
        .list_projects(registry_pb::ListProjectsRequest::default())
        .await;
    assert_code(refused, Code::Unauthenticated);
}

async fn introspection_callers_must_authenticate(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    new_project(&stack, "acme").await;
    let (app, _) = member(&stack, "acme", "app", &["orders.read"]).await;
    let token = issue(&stack, &app, &[]).await.unwrap().access_token;
    let request = || token_pb::IntrospectRequest {
        token: token.clone(),
        client_ip: "127.0.0.1".into(),
        required_scopes: vec![],
    };

    // gRPC: no credentials, bad ones, and ones without tokens:introspect.
    assert_code(
        stack
            .introspection_client_with(None)
            .introspect(request())
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        stack
            .introspection_client_with(Some("Basic Z2FyYmFnZQ=="))
            .introspect(request())
            .await,
        Code::Unauthenticated,
    );
    let app_basic = basic(&app);
    assert_code(
        stack
            .introspection_client_with(Some(&app_basic))
            .introspect(request())
            .await,
        Code::PermissionDenied,
    );
    let app_bearer = format!("Bearer {token}");
    assert_code(
        stack
            .introspection_client_with(Some(&app_bearer))
            .introspect(request())
            .await,
        Code::PermissionDenied,
    );

    // A gateway credential with tokens:introspect, by Basic and by bearer token.
    let (gateway, _) = member(&stack, "acme", "gateway", &["tokens:introspect"]).await;
    let gateway_basic = basic(&gateway);
    assert!(
        stack
            .introspection_client_with(Some(&gateway_basic))
            .introspect(request())
            .await
            .unwrap()
            .into_inner()
            .active
    );
    let gateway_token = issue(&stack, &gateway, &[]).await.unwrap().access_token;
    let gateway_bearer = format!("Bearer {gateway_token}");
    assert!(
        stack
            .introspection_client_with(Some(&gateway_bearer))
            .introspect(request())
            .await
            .unwrap()
            .into_inner()
            .active
    );

    // HTTP: the same rules.
    let form = [("token", token.as_str()), ("client_ip", "127.0.0.1")];
    let (status, headers, body) = post_form(&stack, "/oauth2/introspect", None, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(headers.contains_key("www-authenticate"));
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some((&app.credential.client_id, &app.secret)),
        &form,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );
    let (status, _, body) = post_form(
        &stack,
        "/oauth2/introspect",
        Some((&gateway.credential.client_id, &gateway.secret)),
        &form,
    )
    .await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(true)));

    // Deleting the gateway's credential ends its right to introspect at
    // once, though it was just verified (and remembered).
    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: gateway.credential.id.clone(),
            confirm_name: gateway.credential.name.clone(),
        })
        .await
        .unwrap();
    assert_code(
        stack
            .introspection_client_with(Some(&gateway_basic))
            .introspect(request())
            .await,
        Code::Unauthenticated,
    );
    assert_code(
        stack
            .introspection_client_with(Some(&gateway_bearer))
            .introspect(request())
            .await,
        Code::Unauthenticated,
    );
    let (status, _, _) = post_form(
        &stack,
        "/oauth2/introspect",
        Some((&gateway.credential.client_id, &gateway.secret)),
        &form,
    )
    .await;
    assert_eq!(status, 401);
}

fn basic(client: &Client) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", client.credential.client_id, client.secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

on_both_stacks!(
    without_a_valid_token_nothing_answers,
    owners_see_and_change_only_their_own_credentials,
    nobody_grants_more_than_it_holds,
    expired_tokens_and_deleted_admins_lose_access_at_once,
    introspection_callers_must_authenticate,
);
