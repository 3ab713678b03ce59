//! Acting on behalf of a member, and no escalation for anyone (DESIGN.md
//! rule 8).

use super::support::{Fixture, PROJECT, code, manager, owner, strings};
use crate::{
    AuditAction, AuditOutcome, Caller, CredentialStore, ListCredentials, MANAGE_SCOPE, MemberState,
    PolicyOverrides, QuotaLimit, RegistryError, UpdateCredential, UpdateMember,
};

/// The backend acting for `user`.
async fn acting_for(fixture: &Fixture, user: &str) -> Result<Caller, RegistryError> {
    fixture
        .registry
        .act_on_behalf(manager(), "on_behalf_of", user)
        .await
}

#[tokio::test]
async fn a_backend_acting_for_a_member_sees_only_their_keys() {
    let fixture = Fixture::new().await;
    fixture.member("alice", &["compute.read"]).await;
    fixture.member("bob", &["compute.read"]).await;
    let alices = fixture
        .create(&manager(), "alice", "alices", &["compute.read"])
        .await
        .unwrap()
        .credential;
    let bob = acting_for(&fixture, "bob").await.unwrap();
    let bobs = fixture
        .create(&bob, "", "bobs", &["compute.read"])
        .await
        .unwrap()
        .credential;
    assert_eq!(
        bobs.owner, "bob",
        "the member owns what is created for them"
    );

    let (listed, _) = fixture
        .registry
        .list_credentials(
            &bob,
            ListCredentials {
                project_id: PROJECT.into(),
                ..ListCredentials::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&bobs));
    let listing_alices = fixture
        .registry
        .list_credentials(
            &bob,
            ListCredentials {
                project_id: PROJECT.into(),
                owner: Some("alice".into()),
                ..ListCredentials::default()
            },
        )
        .await;
    assert_eq!(code(listing_alices), "PERMISSION_DENIED");

    // Alice's key answers exactly as a key that does not exist.
    let missing = fixture
        .registry
        .get_credential(&bob, &alices.id)
        .await
        .unwrap_err();
    let unknown_id = uuid::Uuid::now_v7().to_string();
    let unknown = fixture
        .registry
        .get_credential(&bob, &unknown_id)
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string().replace(&alices.id, "ID"),
        unknown.to_string().replace(&unknown_id, "ID")
    );
    let rename = UpdateCredential {
        name: Some("taken-over".into()),
        ..UpdateCredential::default()
    };
    let renaming = fixture
        .registry
        .update_credential(&bob, &alices.id, rename)
        .await;
    assert_eq!(code(renaming), "NOT_FOUND");
    let deleting = fixture
        .registry
        .delete_credential(&bob, &alices.id, &alices.name)
        .await;
    assert_eq!(code(deleting), "NOT_FOUND");
    assert_eq!(fixture.stored(&alices.id).await, alices, "nothing changed");
    assert!(fixture.issuer.applied_to(&alices.id).is_empty());
}

#[tokio::test]
async fn a_backend_acting_for_a_member_gets_their_quota_of_two() {
    let fixture = Fixture::with_policy(PolicyOverrides {
        max_credentials_per_owner: Some(2),
        ..PolicyOverrides::default()
    })
    .await;
    fixture.member("alice", &["compute.read"]).await;
    fixture.member("bob", &["compute.read"]).await;
    let bob = acting_for(&fixture, "bob").await.unwrap();
    for name in ["one", "two"] {
        fixture
            .create(&bob, "", name, &["compute.read"])
            .await
            .unwrap();
    }
    let third = fixture
        .create(&bob, "", "three", &["compute.read"])
        .await
        .unwrap_err();
    assert!(
        matches!(
            third,
            RegistryError::QuotaExceeded(QuotaLimit::CredentialsPerOwner(2))
        ),
        "{third:?}"
    );
    // The quota is bob's, not the backend's: alice still gets her two.
    let alice = acting_for(&fixture, "alice").await.unwrap();
    for name in ["a1", "a2"] {
        fixture
            .create(&alice, "", name, &["compute.read"])
            .await
            .unwrap();
    }
    assert_eq!(fixture.count().await, 4);
}

#[tokio::test]
async fn the_audit_trail_names_the_backend_and_the_member() {
    let fixture = Fixture::new().await;
    fixture.member("bob", &["compute.read"]).await;
    let bob = acting_for(&fixture, "bob").await.unwrap();
    let key = fixture
        .create(&bob, "", "key", &["compute.read"])
        .await
        .unwrap()
        .credential;
    // Beyond bob's ceiling, even though the backend could grant it to a
    // non-member.
    let refused = fixture.create(&bob, "", "admin", &["compute.admin"]).await;
    assert_eq!(code(refused), "PERMISSION_DENIED");

    let events: Vec<_> = fixture
        .audit()
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::CreateCredential)
        .collect();
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event.actor, manager().credential_id);
        assert_eq!(event.on_behalf_of, "bob");
    }
    assert_eq!(events[0].outcome, AuditOutcome::Succeeded);
    assert_eq!(events[0].credential_id, key.id);
    assert_eq!(events[1].outcome, AuditOutcome::Failed);
}

#[tokio::test]
async fn only_managers_act_and_only_for_active_members() {
    let fixture = Fixture::new().await;
    fixture.member("alice", &["compute.read"]).await;
    assert_eq!(
        code(acting_for(&fixture, "nobody").await),
        "PERMISSION_DENIED"
    );
    let own = fixture
        .registry
        .act_on_behalf(owner("carol", &[]), "on_behalf_of", "alice")
        .await;
    assert_eq!(code(own), "PERMISSION_DENIED");
    let other_project = fixture
        .registry
        .act_on_behalf(manager(), "on_behalf_of", "elsewhere/alice")
        .await;
    assert_eq!(code(other_project), "PERMISSION_DENIED");

    fixture
        .registry
        .update_member(
            &manager(),
            PROJECT,
            "alice",
            UpdateMember {
                state: Some(MemberState::Suspended),
                ..UpdateMember::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        code(acting_for(&fixture, "alice").await),
        "PERMISSION_DENIED"
    );
    // Acting for a member never manages members.
    fixture.member("bob", &["compute.read"]).await;
    let bob = acting_for(&fixture, "bob").await.unwrap();
    let managing = fixture.registry.remove_member(&bob, PROJECT, "alice").await;
    assert_eq!(code(managing), "PERMISSION_DENIED");
}

#[tokio::test]
async fn an_owner_grants_nothing_it_does_not_hold() {
    let fixture = Fixture::new().await;
    let carol = owner("carol", &["compute.read"]);
    for apis in [
        &["compute.admin"][..],
        &["compute.read", "billing.read"],
        &[MANAGE_SCOPE],
        &["registry:admin"],
    ] {
        let refused = fixture.create(&carol, "", "key", apis).await;
        assert_eq!(code(refused), "PERMISSION_DENIED", "{apis:?}");
    }
    let for_someone_else = fixture
        .create(&carol, "dave", "key", &["compute.read"])
        .await;
    assert_eq!(code(for_someone_else), "PERMISSION_DENIED");
    assert_eq!(fixture.count().await, 0);

    let key = fixture
        .create(&carol, "", "key", &["compute.read"])
        .await
        .unwrap()
        .credential;
    let widen = UpdateCredential {
        allowed_apis: Some(strings(&["compute.read", "compute.admin"])),
        ..UpdateCredential::default()
    };
    let widening = fixture
        .registry
        .update_credential(&carol, &key.id, widen)
        .await;
    assert_eq!(code(widening), "PERMISSION_DENIED");
    assert_eq!(
        fixture.store.get_credential(&key.id).await.unwrap(),
        key,
        "nothing changed"
    );
}
