//! Rule 6: project quotas hold under concurrency.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{
    Client, assert_refused, create_credential, create_project, create_project_with, list_all,
    new_credential,
};

/// Fires `count` creates for `owner` at once and returns how many succeeded
/// and the refusals.
async fn create_in_parallel(
    client: &Client,
    project: &str,
    owners: &[&str],
) -> (usize, Vec<tonic::Status>) {
    let calls: Vec<_> = owners
        .iter()
        .map(|owner| {
            let mut client = client.clone();
            let request = new_credential(project, owner);
            tokio::spawn(async move { client.create_credential(request).await })
        })
        .collect();
    let mut created = 0;
    let mut refusals = Vec::new();
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => created += 1,
            Err(status) => refusals.push(status),
        }
    }
    (created, refusals)
}

async fn fifty_parallel_creates_never_pass_max_credentials(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "ops").await; // default max_credentials = 10

    let owners: Vec<String> = (0..50).map(|i| format!("user{i}")).collect();
    let owners: Vec<&str> = owners.iter().map(String::as_str).collect();
    let (created, refusals) = create_in_parallel(&client, "ops", &owners).await;

    assert_eq!(created, 10);
    assert_eq!(refusals.len(), 40);
    for status in &refusals {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(
            status.message().contains("max_credentials = 10"),
            "{status:?}"
        );
    }
    assert_eq!(list_all(&mut client, "ops").await.len(), 10);
}

async fn the_per_owner_limit_holds_per_owner(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    // One seed platform: "You can create a maximum of two credentials."
    create_project_with(
        &mut client,
        "tiber",
        Some(pb::ProjectPolicy {
            max_credentials: Some(0),
            max_credentials_per_owner: Some(2),
            ..Default::default()
        }),
    )
    .await;

    let (created, refusals) = create_in_parallel(&client, "tiber", &["alice"; 20]).await;
    assert_eq!(created, 2);
    assert_eq!(refusals.len(), 18);
    for status in &refusals {
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("max_credentials_per_owner = 2"),
            "{status:?}"
        );
    }

    // Another member is unaffected by alice's credentials.
    create_credential(&mut client, new_credential("tiber", "bob")).await;
    create_credential(&mut client, new_credential("tiber", "bob")).await;
    let third = client
        .create_credential(new_credential("tiber", "bob"))
        .await;
    assert_refused(third, Code::ResourceExhausted, "max_credentials_per_owner");

    // Deleting one frees a place.
    let credentials = list_all(&mut client, "tiber").await;
    let alices = credentials.iter().find(|c| c.owner == "alice").unwrap();
    client
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: alices.id.clone(),
            confirm_name: alices.name.clone(),
        })
        .await
        .unwrap();
    create_credential(&mut client, new_credential("tiber", "alice")).await;
}

async fn zero_means_unlimited(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    // One seed platform: "There is no limit to the number of API keys".
    create_project_with(
        &mut client,
        "cloudops",
        Some(pb::ProjectPolicy {
            max_credentials: Some(0),
            ..Default::default()
        }),
    )
    .await;
    for _ in 0..12 {
        create_credential(&mut client, new_credential("cloudops", "alice")).await;
    }
    assert_eq!(list_all(&mut client, "cloudops").await.len(), 12);
}

async fn lowering_the_limit_stops_new_creates(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    for _ in 0..3 {
        create_credential(&mut client, new_credential("acme", "alice")).await;
    }
    client
        .update_project_policy(pb::UpdateProjectPolicyRequest {
            project_id: "acme".into(),
            policy: Some(pb::ProjectPolicy {
                max_credentials: Some(3),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let refused = client
        .create_credential(new_credential("acme", "bob"))
        .await;
    assert_refused(refused, Code::ResourceExhausted, "max_credentials = 3");
    assert_eq!(list_all(&mut client, "acme").await.len(), 3);
}

on_both_backends!(
    fifty_parallel_creates_never_pass_max_credentials,
    the_per_owner_limit_holds_per_owner,
    zero_means_unlimited,
    lowering_the_limit_stops_new_creates,
);
