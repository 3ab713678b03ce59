//! Quotas count API credentials only, and hold under concurrency
//! (DESIGN.md rule 6).

use super::support::{Fixture, PROJECT, admin, code, manager, strings};
use crate::{
    CredentialFilter, CredentialKind, CredentialStore, INTROSPECT_SCOPE, ListCredentials,
    MANAGE_SCOPE, PolicyOverrides, QuotaLimit, RegistryError, UpdateCredential,
};

#[tokio::test]
async fn management_credentials_take_no_place_in_the_quota() {
    let fixture = Fixture::with_policy(PolicyOverrides {
        max_credentials: Some(2),
        ..PolicyOverrides::default()
    })
    .await;
    // A console and a gateway credential, then the ten-per-operation story
    // in small: two API keys besides them.
    let console = fixture
        .create(&admin(), "console", "console", &[MANAGE_SCOPE])
        .await
        .unwrap()
        .credential;
    assert_eq!(console.kind(), CredentialKind::Management);
    fixture
        .create(&admin(), "gateway", "gateway", &[INTROSPECT_SCOPE])
        .await
        .unwrap();
    for name in ["one", "two"] {
        fixture
            .create(&manager(), "app", name, &["orders.read"])
            .await
            .unwrap();
    }
    let third = fixture
        .create(&manager(), "app", "three", &["orders.read"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            third,
            RegistryError::QuotaExceeded(QuotaLimit::Credentials(2))
        ),
        "{third:?}"
    );
    // Still room for management credentials.
    fixture
        .create(&admin(), "console", "console-2", &[MANAGE_SCOPE])
        .await
        .unwrap();

    let (api_keys, _) = fixture
        .registry
        .list_credentials(
            &manager(),
            ListCredentials {
                project_id: PROJECT.into(),
                kind: Some(CredentialKind::Api),
                ..ListCredentials::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        api_keys.len(),
        2,
        "the list filters management credentials out"
    );
}

#[tokio::test]
async fn a_management_credential_turned_api_key_needs_a_place() {
    let fixture = Fixture::with_policy(PolicyOverrides {
        max_credentials: Some(1),
        ..PolicyOverrides::default()
    })
    .await;
    let console = fixture
        .create(&admin(), "console", "console", &[MANAGE_SCOPE])
        .await
        .unwrap()
        .credential;
    fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap();
    let to_api_key = UpdateCredential {
        allowed_apis: Some(strings(&["orders.read"])),
        ..UpdateCredential::default()
    };
    let refused = fixture
        .registry
        .update_credential(&admin(), &console.id, to_api_key)
        .await;
    assert_eq!(code(refused), "RESOURCE_EXHAUSTED");
    assert_eq!(
        fixture.stored(&console.id).await,
        console,
        "nothing changed"
    );
    assert!(fixture.issuer.applied_to(&console.id).is_empty());
}

/// Runs 50 creates at once, of owners `owner_of(i)`, as `caller_of(i)`;
/// returns how many succeeded, and checks every failure is the quota.
async fn fifty_parallel_creates(
    fixture: &Fixture,
    owner_of: impl Fn(usize) -> String,
    expected_limit: QuotaLimit,
) -> usize {
    let mut tasks = Vec::new();
    for i in 0..50 {
        let fixture = fixture.clone();
        let owner = owner_of(i);
        tasks.push(tokio::spawn(async move {
            fixture
                .create(&manager(), &owner, &format!("key-{i}"), &["orders.read"])
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(RegistryError::QuotaExceeded(limit)) => assert_eq!(limit, expected_limit),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    created
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_creates_never_pass_the_project_quota() {
    let fixture = Fixture::with_policy(PolicyOverrides {
        max_credentials: Some(10),
        ..PolicyOverrides::default()
    })
    .await;
    let created = fifty_parallel_creates(
        &fixture,
        |i| format!("user-{i}"),
        QuotaLimit::Credentials(10),
    )
    .await;
    assert_eq!(created, 10);
    assert_eq!(fixture.count().await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_creates_for_members_hold_each_owners_quota() {
    let fixture = Fixture::with_policy(PolicyOverrides {
        max_credentials: Some(0),
        max_credentials_per_owner: Some(2),
        ..PolicyOverrides::default()
    })
    .await;
    for user in 0..5 {
        fixture
            .member(&format!("member-{user}"), &["orders.read"])
            .await;
    }
    let created = fifty_parallel_creates(
        &fixture,
        |i| format!("member-{}", i % 5),
        QuotaLimit::CredentialsPerOwner(2),
    )
    .await;
    assert_eq!(created, 10);
    for user in 0..5 {
        let owned = fixture
            .store
            .list_credentials(
                PROJECT,
                &CredentialFilter {
                    owner: Some(format!("member-{user}")),
                    kind: None,
                },
                &super::support::everything(),
            )
            .await
            .unwrap();
        assert_eq!(owned.items.len(), 2, "member-{user}");
    }
}
