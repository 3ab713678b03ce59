//! Management credentials are not API keys: they take no place in the
//! project's quotas, answers say which is which, and lists can filter by
//! kind. Changing a credential's scopes cannot dodge a quota.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{
    Client, assert_refused, create_credential, create_project, create_project_with, get_credential,
    management_client, mask, new_credential,
};

/// Every credential of `project_id` of `kind`, in one page.
async fn list_kind(
    client: &mut Client,
    project_id: &str,
    kind: pb::CredentialKind,
) -> Vec<pb::Credential> {
    client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: project_id.to_owned(),
            kind: kind.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("list credentials")
        .into_inner()
        .credentials
}

/// An "operation" (default max_credentials = 10) whose console signs in
/// with a `credentials:manage` credential creates ten API keys, not nine,
/// even when fifty creates race.
async fn an_operation_holds_ten_api_keys_besides_its_console_credential(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    create_project(&mut stack.registry.client(), "ops").await;
    let (console, console_client) =
        management_client(&stack, "ops", "console", &["credentials:manage"]).await;
    assert_eq!(console.kind(), pb::CredentialKind::Management);

    let calls: Vec<_> = (0..50)
        .map(|i| {
            let mut client = console_client.clone();
            let request = pb::CreateCredentialRequest {
                allowed_apis: vec!["orders.read".into()],
                ..new_credential("ops", &format!("program{i}"))
            };
            tokio::spawn(async move { client.create_credential(request).await })
        })
        .collect();
    let mut created = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(answer) => {
                created += 1;
                let credential = answer.into_inner().credential.unwrap();
                assert_eq!(credential.kind(), pb::CredentialKind::Api);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                assert!(
                    status.message().contains("max_credentials = 10"),
                    "{status:?}"
                );
            }
        }
    }
    assert_eq!(created, 10);

    let mut admin = stack.registry.client();
    assert_eq!(
        list_kind(&mut admin, "ops", pb::CredentialKind::Api)
            .await
            .len(),
        10
    );
    let management = list_kind(&mut admin, "ops", pb::CredentialKind::Management).await;
    assert_eq!(management.len(), 1);
    assert_eq!(management[0].id, console.id);
    assert_eq!(
        list_kind(&mut admin, "ops", pb::CredentialKind::Unspecified)
            .await
            .len(),
        11,
        "unspecified lists every kind"
    );
    // A gateway's introspection credential takes no place either.
    let (gateway, _) = create_credential(
        &mut admin,
        pb::CreateCredentialRequest {
            allowed_apis: vec!["tokens:introspect".into()],
            ..new_credential("ops", "gateway")
        },
    )
    .await;
    assert_eq!(gateway.kind(), pb::CredentialKind::Management);
}

/// Intel Tiber: "You can create a maximum of two credentials." A
/// self-service user signed in with their own `credentials:own` login
/// credential creates exactly two API keys and sees which is which.
async fn a_self_service_user_creates_exactly_two_api_keys(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    create_project_with(
        &mut stack.registry.client(),
        "tiber",
        Some(pb::ProjectPolicy {
            max_credentials: Some(0),
            max_credentials_per_owner: Some(2),
            ..Default::default()
        }),
    )
    .await;
    self_service_member(&stack, "tiber", "alice").await;
    let (login, mut alice) =
        management_client(&stack, "tiber", "alice", &["credentials:own"]).await;
    for _ in 0..2 {
        let (key, _) = create_credential(
            &mut alice,
            pb::CreateCredentialRequest {
                allowed_apis: vec!["compute.read".into()],
                ..new_credential("tiber", "")
            },
        )
        .await;
        assert_eq!(key.kind(), pb::CredentialKind::Api);
        assert_eq!(key.owner, "alice");
    }
    let third = alice.create_credential(new_credential("tiber", "")).await;
    assert_refused(
        third,
        Code::ResourceExhausted,
        "max_credentials_per_owner = 2",
    );

    let own = list_kind(&mut alice, "tiber", pb::CredentialKind::Unspecified).await;
    assert_eq!(own.len(), 3, "the login credential and two keys");
    let keys = list_kind(&mut alice, "tiber", pb::CredentialKind::Api).await;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|key| key.id != login.id));
    let logins = list_kind(&mut alice, "tiber", pb::CredentialKind::Management).await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].id, login.id);

    let unknown_kind = alice
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "tiber".into(),
            kind: 99,
            ..Default::default()
        })
        .await;
    assert_refused(unknown_kind, Code::InvalidArgument, "kind");

    // Her keys stay within what she holds as a member, not what her login
    // token holds: an API beyond her ceiling is refused, naming it.
    let beyond = alice
        .create_credential(pb::CreateCredentialRequest {
            allowed_apis: vec!["compute.admin".into()],
            ..new_credential("tiber", "")
        })
        .await;
    assert_refused(beyond, Code::PermissionDenied, "compute.admin");
}

/// What an update that adds or removes Latchkey scopes does to counting:
/// the kind follows the scopes; a credential holding a platform API stays
/// an API key whatever Latchkey scopes it adds (so nobody frees a place by
/// adding one); turning a management credential into an API key needs a
/// free place, atomically as at create.
/// Makes `user` a member of `project_id` holding `compute.read` and the
/// right to manage their own keys: a self-service user, whose login
/// credential (`credentials:own` only) grants within that ceiling and is no
/// API key itself.
async fn self_service_member(stack: &Stack, project_id: &str, user: &str) {
    stack
        .registry
        .client()
        .create_member(pb::CreateMemberRequest {
            project_id: project_id.to_owned(),
            user_id: user.to_owned(),
            role: pb::MemberRole::Member.into(),
            api_ceiling: vec!["compute.read".into(), "credentials:own".into()],
            ..Default::default()
        })
        .await
        .expect("create the member");
}

async fn changing_scopes_never_dodges_a_quota(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    create_project_with(
        &mut stack.registry.client(),
        "tiber",
        Some(pb::ProjectPolicy {
            max_credentials: Some(0),
            max_credentials_per_owner: Some(2),
            ..Default::default()
        }),
    )
    .await;
    self_service_member(&stack, "tiber", "alice").await;
    let (login, mut alice) =
        management_client(&stack, "tiber", "alice", &["credentials:own"]).await;
    let mut keys = Vec::new();
    for _ in 0..2 {
        let request = pb::CreateCredentialRequest {
            allowed_apis: vec!["compute.read".into()],
            ..new_credential("tiber", "")
        };
        keys.push(create_credential(&mut alice, request).await.0);
    }

    // Alice adds her own Latchkey scope to an API key: still an API key.
    let mixed = alice
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: keys[0].id.clone(),
                allowed_apis: vec!["compute.read".into(), "credentials:own".into()],
                ..Default::default()
            }),
            update_mask: mask(&["allowed_apis"]),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(mixed.kind(), pb::CredentialKind::Api);
    let third = alice.create_credential(new_credential("tiber", "")).await;
    assert_refused(
        third,
        Code::ResourceExhausted,
        "max_credentials_per_owner = 2",
    );

    // Turning her login credential into a third API key is refused, and
    // changes nothing.
    let before = get_credential(&mut alice, &login.id).await;
    let widened = alice
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: login.id.clone(),
                allowed_apis: vec!["credentials:own".into(), "compute.read".into()],
                ..Default::default()
            }),
            update_mask: mask(&["allowed_apis"]),
        })
        .await;
    assert_refused(
        widened,
        Code::ResourceExhausted,
        "max_credentials_per_owner = 2",
    );
    let after = get_credential(&mut alice, &login.id).await;
    // (Its last use is reported as it goes; nothing else may move.)
    assert_eq!(
        (
            &after.allowed_apis,
            after.kind(),
            &after.etag,
            after.update_time
        ),
        (
            &before.allowed_apis,
            before.kind(),
            &before.etag,
            before.update_time
        )
    );

    // The admin makes one of her keys a pure management credential: it
    // frees a place, which a new key then takes.
    let mut admin = stack.registry.client();
    let converted = admin
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: keys[1].id.clone(),
                allowed_apis: vec!["credentials:own".into()],
                ..Default::default()
            }),
            update_mask: mask(&["allowed_apis"]),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(converted.kind(), pb::CredentialKind::Management);
    create_credential(&mut alice, new_credential("tiber", "")).await;
    let again = alice.create_credential(new_credential("tiber", "")).await;
    assert_refused(
        again,
        Code::ResourceExhausted,
        "max_credentials_per_owner = 2",
    );

    // And turning it back is refused now that the place is taken.
    let back = admin
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: keys[1].id.clone(),
                allowed_apis: vec!["compute.read".into()],
                ..Default::default()
            }),
            update_mask: mask(&["allowedApis"]),
        })
        .await;
    assert_refused(
        back,
        Code::ResourceExhausted,
        "max_credentials_per_owner = 2",
    );
    assert_eq!(
        get_credential(&mut admin, &keys[1].id).await.kind(),
        pb::CredentialKind::Management
    );
}

on_both_backends!(
    an_operation_holds_ten_api_keys_besides_its_console_credential,
    a_self_service_user_creates_exactly_two_api_keys,
    changing_scopes_never_dodges_a_quota,
);
