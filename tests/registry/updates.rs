//! `UpdateCredential`: etags (AIP-154) so two console editors cannot
//! silently overwrite each other, mask paths in snake_case and camelCase,
//! and every updatable field round-tripping through the store.

use latchkey_proto::registry::v1 as pb;
use latchkey_registry::CredentialField;
use latchkey_tests::{Backend, Stack};
use prost_types::Timestamp;
use tonic::Code;

use crate::support::{
    Client, assert_refused, create_credential, create_project, get_credential, mask, new_credential,
};

async fn update(
    client: &mut Client,
    credential: pb::Credential,
    paths: &[&str],
) -> Result<pb::Credential, tonic::Status> {
    client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(credential),
            update_mask: mask(paths),
        })
        .await
        .map(|answer| {
            answer
                .into_inner()
                .credential
                .expect("credential in answer")
        })
}

async fn a_stale_etag_changes_nothing(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    create_project(&mut client, "acme").await;
    let (created, _) = create_credential(&mut client, new_credential("acme", "alice")).await;
    assert!(
        created.etag.starts_with('"') && created.etag.ends_with('"'),
        "{}",
        created.etag
    );

    // Two editors read the same credential.
    let first_read = get_credential(&mut client, &created.id).await;
    let second_read = first_read.clone();
    assert_eq!(first_read.etag, created.etag);

    let renamed = update(
        &mut client,
        pb::Credential {
            name: "first editor".into(),
            ..first_read
        },
        &["name"],
    )
    .await
    .unwrap();
    assert_ne!(renamed.etag, created.etag, "a change changes the etag");

    let stale = update(
        &mut client,
        pb::Credential {
            name: "second editor".into(),
            allowed_ips: vec!["10.0.0.0/8".into()],
            ..second_read
        },
        &["name", "allowed_ips"],
    )
    .await;
    let status = assert_refused(stale, Code::Aborted, "credential.etag");
    assert!(status.message().contains("Read it again"), "{status:?}");
    assert_eq!(
        get_credential(&mut client, &created.id).await,
        renamed,
        "nothing changed"
    );

    // Re-read, then the change goes through; an empty etag updates
    // unconditionally (clients written before etags keep working).
    let fresh = get_credential(&mut client, &created.id).await;
    let second = update(
        &mut client,
        pb::Credential {
            name: "second editor".into(),
            ..fresh
        },
        &["name"],
    )
    .await
    .unwrap();
    let unconditional = update(
        &mut client,
        pb::Credential {
            id: created.id.clone(),
            description: "no etag".into(),
            ..Default::default()
        },
        &["description"],
    )
    .await
    .unwrap();
    assert_eq!(unconditional.name, "second editor");
    assert_ne!(unconditional.etag, second.etag);

    // Disable, enable and rotation change the etag too.
    let mut etags = vec![unconditional.etag.clone()];
    let disabled = client
        .disable_credential(pb::DisableCredentialRequest {
            credential_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    etags.push(disabled.etag);
    let rotated = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    etags.push(rotated.etag);
    etags.dedup();
    assert_eq!(etags.len(), 3, "{etags:?}");
    let stale = update(
        &mut client,
        pb::Credential {
            description: "late".into(),
            ..disabled_with_etag(&unconditional)
        },
        &["description"],
    )
    .await;
    assert_refused(stale, Code::Aborted, "credential.etag");

    // Not an etag of this service: a precise INVALID_ARGUMENT.
    let garbage = update(
        &mut client,
        pb::Credential {
            id: created.id.clone(),
            description: "x".into(),
            etag: "W/\"nonsense\"".into(),
            ..Default::default()
        },
        &["description"],
    )
    .await;
    assert_refused(garbage, Code::InvalidArgument, "credential.etag: ");
    assert_eq!(
        get_credential(&mut client, &created.id).await.description,
        "no etag"
    );
}

fn disabled_with_etag(credential: &pb::Credential) -> pb::Credential {
    pb::Credential {
        id: credential.id.clone(),
        etag: credential.etag.clone(),
        ..Default::default()
    }
}

async fn mask_paths_are_accepted_in_snake_case_and_camel_case(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    create_project(&mut client, "acme").await;
    let (created, _) = create_credential(&mut client, new_credential("acme", "alice")).await;
    let camel = update(
        &mut client,
        pb::Credential {
            id: created.id.clone(),
            allowed_ips: vec!["192.0.2.0/24".into()],
            allowed_apis: vec!["orders.read".into()],
            ..Default::default()
        },
        &["allowedIps", "allowedApis"],
    )
    .await
    .unwrap();
    assert_eq!(camel.allowed_ips, ["192.0.2.0/24"]);
    assert_eq!(camel.allowed_apis, ["orders.read"]);
    let snake = update(
        &mut client,
        pb::Credential {
            id: created.id.clone(),
            allowed_ips: vec!["198.51.100.7".into()],
            ..Default::default()
        },
        &["allowed_ips", "expireTime"],
    )
    .await
    .unwrap();
    assert_eq!(snake.allowed_ips, ["198.51.100.7"]);
    assert_eq!(snake.expire_time, None);
    for bad in ["AllowedIps", "allowed-ips", "client_id", "clientId"] {
        let refused = update(
            &mut client,
            pb::Credential {
                id: created.id.clone(),
                ..Default::default()
            },
            &[bad],
        )
        .await;
        assert_refused(refused, Code::InvalidArgument, "update_mask: ");
    }
}

fn in_a_day() -> Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp {
        seconds: now.as_secs() as i64 + 86_400,
        nanos: 0,
    }
}

/// Sets `field` of `message` to a value different from a fresh
/// credential's; exhaustive, so a new updatable field must be given one.
fn set_new_value(field: CredentialField, message: &mut pb::Credential) {
    match field {
        CredentialField::Name => message.name = "new name".into(),
        CredentialField::Description => message.description = "new description".into(),
        CredentialField::AllowedApis => message.allowed_apis = vec!["new.api".into()],
        CredentialField::AllowedIps => message.allowed_ips = vec!["203.0.113.9".into()],
        CredentialField::ExpireTime => message.expire_time = Some(in_a_day()),
    }
}

/// Every field of the one table of updatable fields round-trips through
/// an update, alone and in both spellings, and is read back as written.
async fn every_updatable_field_round_trips(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    create_project(&mut client, "acme").await;
    for field in CredentialField::ALL {
        for path in [field.path(), field.json_name()] {
            let (created, _) =
                create_credential(&mut client, new_credential("acme", "alice")).await;
            let mut wanted = get_credential(&mut client, &created.id).await;
            let mut message = pb::Credential {
                id: created.id.clone(),
                ..Default::default()
            };
            set_new_value(field, &mut message);
            set_new_value(field, &mut wanted);
            let updated = update(&mut client, message, &[path]).await.unwrap();
            let read = get_credential(&mut client, &created.id).await;
            assert_eq!(read, updated, "{path}: the answer is what is stored");
            // Only the field and the change's bookkeeping differ.
            wanted.update_time = read.update_time;
            wanted.etag = read.etag.clone();
            assert_eq!(read, wanted, "{path} round-trips, nothing else changes");
            assert_ne!(read, created, "{path} changed");
            client
                .delete_credential(pb::DeleteCredentialRequest {
                    credential_id: read.id.clone(),
                    confirm_name: read.name.clone(),
                })
                .await
                .unwrap();
        }
    }
}

on_both_backends!(
    a_stale_etag_changes_nothing,
    mask_paths_are_accepted_in_snake_case_and_camel_case,
    every_updatable_field_round_trips,
);
