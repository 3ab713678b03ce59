//! The token side hears of every change before it is visible; a failed
//! sync changes nothing and leaves a note the repair settles (DESIGN.md
//! rule 3).

use std::time::Duration;

use super::support::{Fixture, PROJECT, code, manager, strings};
use crate::{
    AuditAction, AuditOutcome, CredentialState, CredentialStore, MemberStore, RotateSecret,
    UpdateCredential, UpdateMember, now,
};

#[tokio::test]
async fn the_token_side_hears_of_a_change_before_it_is_visible() {
    let fixture = Fixture::new().await;
    let key = fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap()
        .credential;
    fixture
        .registry
        .set_credential_state(&manager(), &key.id, CredentialState::Disabled)
        .await
        .unwrap();
    fixture
        .registry
        .delete_credential(&manager(), &key.id, &key.name)
        .await
        .unwrap();
    let told = fixture.issuer.applied_to(&key.id);
    assert_eq!(told.len(), 2);
    assert_eq!(told[0].credential.policy_version, 2);
    assert_eq!(told[0].visible_version, Some(1), "still the old version");
    assert!(told[1].deleted && told[1].revoke_tokens);
    assert_eq!(told[1].credential.policy_version, 3);
    assert_eq!(told[1].visible_version, Some(2), "not deleted yet");
    assert_eq!(fixture.count().await, 0);
}

#[tokio::test]
async fn a_failed_sync_changes_nothing() {
    let fixture = Fixture::new().await;
    fixture
        .member("alice", &["orders.read", "orders.write"])
        .await;
    let created = fixture
        .create(&manager(), "alice", "key", &["orders.read"])
        .await
        .unwrap();
    let key = created.credential;
    let member = fixture.store.get_member(PROJECT, "alice").await.unwrap();
    let events_before = fixture.audit().await.len();
    fixture.issuer.set_down(true);

    let widen = UpdateCredential {
        allowed_apis: Some(strings(&["orders.read", "orders.write"])),
        ..UpdateCredential::default()
    };
    let registry = &fixture.registry;
    let caller = manager();
    // Each failed attempt leaves a note, which the next change would try to
    // settle first (and fail before reaching the store): forget them, so
    // every attempt reaches the store's own sync.
    let mut outcomes = Vec::new();
    outcomes.push(code(
        registry.update_credential(&caller, &key.id, widen).await,
    ));
    fixture.forget_notes().await;
    outcomes.push(code(
        registry
            .set_credential_state(&caller, &key.id, CredentialState::Disabled)
            .await,
    ));
    fixture.forget_notes().await;
    outcomes.push(code(
        registry
            .rotate_secret(
                &caller,
                RotateSecret {
                    credential_id: key.id.clone(),
                    revoke_tokens: true,
                    ..RotateSecret::default()
                },
            )
            .await,
    ));
    fixture.forget_notes().await;
    outcomes.push(code(
        registry
            .delete_credential(&caller, &key.id, &key.name)
            .await,
    ));
    fixture.forget_notes().await;
    let suspend = UpdateMember {
        state: Some(crate::MemberState::Suspended),
        ..UpdateMember::default()
    };
    outcomes.push(code(
        registry
            .update_member(&caller, PROJECT, "alice", suspend)
            .await,
    ));
    fixture.forget_notes().await;
    outcomes.push(code(
        registry.remove_member(&caller, PROJECT, "alice").await,
    ));
    assert_eq!(outcomes, ["UNAVAILABLE"; 6]);

    assert_eq!(fixture.stored(&key.id).await, key, "nothing changed");
    assert_eq!(
        fixture.store.get_member(PROJECT, "alice").await.unwrap(),
        member
    );
    // The old secret still works: the rotation did not land.
    fixture.issuer.set_down(false);
    registry
        .authenticate(&key.client_id, &created.client_secret, "192.0.2.1")
        .await
        .expect("the old secret is still the one");
    let events = fixture.audit().await;
    let attempts = &events[events_before..];
    assert_eq!(attempts.len(), 6, "one record per attempt");
    assert!(
        attempts
            .iter()
            .all(|event| event.outcome == AuditOutcome::Failed),
        "no change is recorded as made: {attempts:?}"
    );
}

#[tokio::test]
async fn a_note_left_by_a_failed_sync_is_settled_by_the_repair() {
    let fixture = Fixture::new().await;
    let key = fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap()
        .credential;
    fixture.issuer.set_down(true);
    let widen = UpdateCredential {
        allowed_apis: Some(strings(&["orders.read", "orders.write"])),
        ..UpdateCredential::default()
    };
    let failed = fixture
        .registry
        .update_credential(&manager(), &key.id, widen)
        .await;
    assert_eq!(code(failed), "UNAVAILABLE");
    let notes = fixture
        .store
        .sync_intents_before(now() + chrono::Duration::seconds(1), 10)
        .await
        .unwrap();
    assert_eq!(notes.len(), 1, "the change may have reached the token side");
    assert_eq!(notes[0].credential_id, key.id);

    // Too young to settle, then unreachable: the note stays.
    assert_eq!(fixture.registry.repair_pending().await, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(fixture.registry.repair_pending().await, 1, "left for later");

    fixture.issuer.set_down(false);
    assert_eq!(fixture.registry.repair_pending().await, 0);
    let told = fixture.issuer.last_for(&key.id);
    // The committed state, above any version the lost change could have
    // sent (the committed one + 1).
    assert_eq!(told.credential.allowed_apis, ["orders.read"]);
    assert_eq!(told.credential.policy_version, key.policy_version + 2);
    assert_eq!(
        fixture.stored(&key.id).await.policy_version,
        key.policy_version + 2
    );
    assert!(
        fixture
            .store
            .sync_intents_before(now() + chrono::Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty(),
        "the note is gone"
    );
}

#[tokio::test]
async fn an_earlier_note_is_settled_before_the_next_change() {
    let fixture = Fixture::new().await;
    let key = fixture
        .create(&manager(), "app", "key", &["orders.read"])
        .await
        .unwrap()
        .credential;
    fixture.issuer.set_down(true);
    let failed = fixture
        .registry
        .set_credential_state(&manager(), &key.id, CredentialState::Disabled)
        .await;
    assert_eq!(code(failed), "UNAVAILABLE");
    fixture.issuer.set_down(false);

    // At once, long before the repair loop would look.
    let renamed = UpdateCredential {
        name: Some("renamed".into()),
        ..UpdateCredential::default()
    };
    let after = fixture
        .registry
        .update_credential(&manager(), &key.id, renamed)
        .await
        .unwrap();
    let told = fixture.issuer.applied_to(&key.id);
    assert_eq!(told.len(), 2, "the settling, then the change");
    assert_eq!(told[0].credential.name, "key", "the committed state first");
    assert_eq!(told[0].credential.state, CredentialState::Active);
    assert_eq!(told[0].credential.policy_version, key.policy_version + 2);
    assert_eq!(told[1].credential.name, "renamed");
    assert_eq!(told[1].credential.policy_version, key.policy_version + 3);
    assert_eq!(after.policy_version, key.policy_version + 3);
    assert!(
        fixture
            .store
            .sync_intents_before(now() + chrono::Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let last = fixture.audit().await.pop().unwrap();
    assert_eq!(last.action, AuditAction::UpdateCredential);
    assert_eq!(last.outcome, AuditOutcome::Succeeded);
}

#[tokio::test]
async fn nothing_reaches_the_token_side_without_a_note() {
    // A member change lists the member's credentials and notes them before
    // it starts; one created in between (here: noted is `a` only, `b` is
    // met) must abort the change before anything of `b` is sent, so the
    // change can be retried with a fresh listing.
    let fixture = Fixture::new().await;
    let a = fixture
        .create(&manager(), "app", "a", &[])
        .await
        .unwrap()
        .credential;
    let b = fixture
        .create(&manager(), "app", "b", &[])
        .await
        .unwrap()
        .credential;
    let intent = fixture
        .registry
        .begin_sync_all([a.id.as_str()])
        .await
        .unwrap();
    let unnoted = crate::TokenSync::apply(
        &intent,
        crate::PolicyChange {
            credential: &b,
            deleted: false,
            revoke_tokens: false,
        },
    )
    .await;
    assert_eq!(code(unnoted), "ABORTED");
    assert!(
        fixture.issuer.applied_to(&b.id).is_empty(),
        "nothing of the unnoted credential was sent"
    );
    crate::TokenSync::apply(
        &intent,
        crate::PolicyChange {
            credential: &a,
            deleted: false,
            revoke_tokens: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(fixture.issuer.applied_to(&a.id).len(), 1);
    fixture.registry.end_sync(intent, &Ok::<(), _>(())).await;
}
