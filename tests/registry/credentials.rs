//! The credential operations the seed consoles describe: create (with a
//! generated name), view, list in creation order, rename and edit, disable,
//! enable, rotate.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use crate::support::{assert_refused, create_credential, create_project, micros, new_credential};

fn seconds_from_now(seconds: i64) -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp {
        seconds: now.as_secs() as i64 + seconds,
        nanos: 0,
    }
}

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn create_returns_the_credential_and_its_secret(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;

    let expiry = seconds_from_now(86_400);
    let (credential, secret) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "ci deploy".into(),
            description: "Deploys from CI".into(),
            allowed_apis: vec!["orders.read".into(), "payments:write".into()],
            allowed_ips: vec!["10.1.2.3/8".into(), "::ffff:192.0.2.7".into()],
            expire_time: Some(expiry),
            ..new_credential("acme", "alice")
        },
    )
    .await;

    assert_eq!(credential.project_id, "acme");
    assert_eq!(credential.owner, "alice");
    assert_eq!(credential.name, "ci deploy");
    assert_eq!(credential.description, "Deploys from CI");
    assert_eq!(credential.allowed_apis, ["orders.read", "payments:write"]);
    assert_eq!(
        credential.allowed_ips,
        ["10.0.0.0/8", "192.0.2.7"],
        "normalised"
    );
    assert_eq!(credential.state(), pb::CredentialState::Active);
    assert_eq!(credential.expire_time, Some(expiry));
    assert!(credential.client_id.starts_with("lkc_"));
    assert!(secret.starts_with("lks_"));
    assert!(credential.create_time.is_some());
    assert_eq!(credential.create_time, credential.update_time);
    assert_eq!(credential.last_used_time, None, "never used yet");
    assert_eq!(credential.last_used_ip, "");

    let fetched = client
        .get_credential(pb::GetCredentialRequest {
            credential_id: credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential;
    assert_eq!(fetched, Some(credential));
}

async fn a_name_is_generated_when_none_is_given(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (first, _) = create_credential(&mut client, new_credential("acme", "alice")).await;
    let (second, _) = create_credential(&mut client, new_credential("acme", "alice")).await;
    for credential in [&first, &second] {
        let suffix = credential
            .name
            .strip_prefix("credential-")
            .expect("generated prefix");
        assert_eq!(suffix.len(), 4, "{}", credential.name);
        assert!(
            suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }
    assert_ne!(first.name, second.name);
    assert_ne!(first.client_id, second.client_id);
}

async fn list_is_paged_in_creation_order_and_filters_by_owner(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    create_project(&mut client, "other").await;
    let mut created = Vec::new();
    for owner in ["alice", "bob", "alice", "bob", "alice"] {
        created.push(
            create_credential(&mut client, new_credential("acme", owner))
                .await
                .0,
        );
    }
    create_credential(&mut client, new_credential("other", "alice")).await;

    let mut listed = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_credentials(pb::ListCredentialsRequest {
                project_id: "acme".into(),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.credentials.len() <= 2);
        pages += 1;
        listed.extend(page.credentials);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, created, "every credential once, oldest first");

    let alices = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "acme".into(),
            owner: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let expected: Vec<_> = created
        .iter()
        .filter(|c| c.owner == "alice")
        .cloned()
        .collect();
    assert_eq!(alices.credentials, expected);

    // A token from the owner-filtered list cannot be replayed unfiltered.
    let first_alice = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "acme".into(),
            owner: "alice".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let replay = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "acme".into(),
            page_token: first_alice.next_page_token,
            ..Default::default()
        })
        .await;
    assert_refused(replay, Code::InvalidArgument, "page_token");

    let unknown = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "ghost".into(),
            ..Default::default()
        })
        .await;
    assert_refused(unknown, Code::NotFound, "ghost");
}

async fn update_changes_only_the_masked_fields(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (original, _) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "old name".into(),
            description: "kept".into(),
            allowed_apis: vec!["a.read".into(), "a.write".into()],
            allowed_ips: vec!["10.0.0.0/8".into()],
            expire_time: Some(seconds_from_now(3600)),
            ..new_credential("acme", "alice")
        },
    )
    .await;

    let updated = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: original.id.clone(),
                name: "new name".into(),
                description: "ignored: not in the mask".into(),
                allowed_apis: vec!["a.read".into()],
                allowed_ips: vec!["10.1.0.0/16".into()],
                ..Default::default()
            }),
            update_mask: mask(&["name", "allowed_apis", "allowed_ips", "expire_time"]),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(updated.name, "new name");
    assert_eq!(updated.description, "kept");
    assert_eq!(updated.allowed_apis, ["a.read"]);
    assert_eq!(updated.allowed_ips, ["10.1.0.0/16"]);
    assert_eq!(updated.expire_time, None, "masked but unset clears it");
    assert_eq!(updated.client_id, original.client_id);
    assert_eq!(updated.create_time, original.create_time);
    assert!(micros(&updated.update_time) > micros(&original.update_time));

    let fetched = client
        .get_credential(pb::GetCredentialRequest {
            credential_id: original.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential;
    assert_eq!(fetched, Some(updated.clone()));

    let (other, _) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "taken".into(),
            ..new_credential("acme", "bob")
        },
    )
    .await;
    let clash = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: other.id.clone(),
                name: "new name".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await;
    assert_refused(clash, Code::AlreadyExists, "new name");

    let no_mask = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: original.id.clone(),
                name: "x".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await;
    assert_refused(no_mask, Code::InvalidArgument, "update_mask");
    let immutable = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: original.id.clone(),
                owner: "mallory".into(),
                ..Default::default()
            }),
            update_mask: mask(&["owner"]),
        })
        .await;
    assert_refused(immutable, Code::InvalidArgument, "update_mask");
    let unknown = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: uuid::Uuid::now_v7().to_string(),
                name: "whatever".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await;
    assert_refused(unknown, Code::NotFound, "credential");
}

async fn disable_and_enable_change_the_state(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (credential, _) = create_credential(&mut client, new_credential("acme", "alice")).await;

    let disabled = client
        .disable_credential(pb::DisableCredentialRequest {
            credential_id: credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(disabled.state(), pb::CredentialState::Disabled);
    let fetched = client
        .get_credential(pb::GetCredentialRequest {
            credential_id: credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(fetched.state(), pb::CredentialState::Disabled);

    let enabled = client
        .enable_credential(pb::EnableCredentialRequest {
            credential_id: credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(enabled.state(), pb::CredentialState::Active);

    let unknown = client
        .disable_credential(pb::DisableCredentialRequest {
            credential_id: uuid::Uuid::now_v7().to_string(),
        })
        .await;
    assert_refused(unknown, Code::NotFound, "credential");
    let malformed = client
        .enable_credential(pb::EnableCredentialRequest {
            credential_id: "not-an-id".into(),
        })
        .await;
    assert_refused(malformed, Code::InvalidArgument, "credential_id");
}

async fn rotation_returns_a_new_secret_and_the_grace_period_end(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (credential, first_secret) =
        create_credential(&mut client, new_credential("acme", "alice")).await;

    let rotated = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: credential.id.clone(),
            grace_period_seconds: 300,
            revoke_tokens: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rotated.client_secret.starts_with("lks_"));
    assert_ne!(rotated.client_secret, first_secret);
    let rotated_credential = rotated.credential.unwrap();
    assert_eq!(
        rotated_credential.client_id, credential.client_id,
        "client ID is kept"
    );
    let grace_end = rotated
        .previous_secret_expire_time
        .expect("grace period end");
    let update_time = rotated_credential.update_time.unwrap();
    assert_eq!(grace_end.seconds - update_time.seconds, 300);

    let immediate = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: credential.id.clone(),
            grace_period_seconds: 0,
            revoke_tokens: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(immediate.previous_secret_expire_time, None);

    let too_long = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: credential.id.clone(),
            grace_period_seconds: 31 * 24 * 3600,
            revoke_tokens: false,
        })
        .await;
    assert_refused(too_long, Code::InvalidArgument, "grace_period_seconds");
    let unknown = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: uuid::Uuid::now_v7().to_string(),
            grace_period_seconds: 0,
            revoke_tokens: false,
        })
        .await;
    assert_refused(unknown, Code::NotFound, "credential");
}

on_both_backends!(
    create_returns_the_credential_and_its_secret,
    a_name_is_generated_when_none_is_given,
    list_is_paged_in_creation_order_and_filters_by_owner,
    update_changes_only_the_masked_fields,
    disable_and_enable_change_the_state,
    rotation_returns_a_new_secret_and_the_grace_period_end,
);
