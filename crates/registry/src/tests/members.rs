//! Members' ceilings at create, update and use; suspension, resumption and
//! removal (DESIGN.md "Member", rules 3 and 4).

use super::support::{Fixture, PROJECT, admin, code, manager, strings};
use crate::MemberStore;
use crate::{
    AuditOutcome, CreateMember, CredentialState, MemberState, Refusal, UpdateCredential,
    UpdateMember,
};

const CLIENT_IP: &str = "192.0.2.10";

#[tokio::test]
async fn nobody_creates_a_credential_beyond_the_members_ceiling() {
    let fixture = Fixture::new().await;
    fixture.member("alice", &["compute.read"]).await;
    for caller in [manager(), admin()] {
        let refused = fixture
            .create(&caller, "alice", "wide", &["compute.read", "compute.admin"])
            .await
            .unwrap_err();
        assert_eq!(refused.code_name(), "PERMISSION_DENIED");
        assert!(
            refused.to_string().contains("\"compute.admin\""),
            "{refused}"
        );
    }
    assert_eq!(fixture.count().await, 0, "nothing was stored");
    let failed = fixture.audit().await.pop().unwrap();
    assert_eq!(failed.outcome, AuditOutcome::Failed);
    assert!(failed.detail.contains("compute.admin"), "{}", failed.detail);
    fixture
        .create(&manager(), "alice", "narrow", &["compute.read"])
        .await
        .expect("within the ceiling");
}

#[tokio::test]
async fn an_update_beyond_the_ceiling_changes_nothing() {
    let fixture = Fixture::new().await;
    fixture
        .member("alice", &["compute.read", "billing.read"])
        .await;
    let key = fixture
        .create(&manager(), "alice", "key", &["compute.read"])
        .await
        .unwrap()
        .credential;
    let widen = |apis: &[&str]| UpdateCredential {
        allowed_apis: Some(strings(apis)),
        ..UpdateCredential::default()
    };
    let refused = fixture
        .registry
        .update_credential(&manager(), &key.id, widen(&["compute.admin"]))
        .await;
    assert_eq!(code(refused), "PERMISSION_DENIED");
    assert_eq!(fixture.stored(&key.id).await, key);
    assert!(fixture.issuer.applied_to(&key.id).is_empty());

    let widened = fixture
        .registry
        .update_credential(
            &manager(),
            &key.id,
            widen(&["compute.read", "billing.read"]),
        )
        .await
        .unwrap();
    assert_eq!(widened.allowed_apis, ["compute.read", "billing.read"]);
    assert_eq!(
        fixture.issuer.last_for(&key.id).credential.allowed_apis,
        ["compute.read", "billing.read"]
    );
}

#[tokio::test]
async fn a_lowered_ceiling_narrows_every_credential_of_the_member_at_once() {
    let fixture = Fixture::new().await;
    fixture
        .member("alice", &["compute.read", "compute.admin"])
        .await;
    fixture.member("bob", &["compute.admin"]).await;
    let both = &["compute.read", "compute.admin"];
    let first = fixture
        .create(&manager(), "alice", "one", both)
        .await
        .unwrap();
    let second = fixture
        .create(&manager(), "alice", "two", both)
        .await
        .unwrap();
    let bobs = fixture
        .create(&manager(), "bob", "bobs", &["compute.admin"])
        .await
        .unwrap();
    let lower = |ceiling: &[&str]| UpdateMember {
        api_ceiling: Some(strings(ceiling)),
        ..UpdateMember::default()
    };
    fixture
        .registry
        .update_member(&manager(), PROJECT, "alice", lower(&["compute.read"]))
        .await
        .unwrap();

    for key in [&first.credential, &second.credential] {
        let told = fixture.issuer.last_for(&key.id);
        assert_eq!(told.credential.allowed_apis, ["compute.read"]);
        assert_eq!(told.credential.policy_version, key.policy_version + 1);
        assert!(!told.revoke_tokens, "narrowed, not revoked");
        let stored = fixture.stored(&key.id).await;
        assert_eq!(
            stored.allowed_apis, both,
            "the credential keeps its own list"
        );
        assert_eq!(stored.policy_version, key.policy_version + 1);
    }
    assert!(
        fixture.issuer.applied_to(&bobs.credential.id).is_empty(),
        "another member's credentials are not touched"
    );
    // At use: authentication answers the narrowed credential.
    let used = fixture
        .registry
        .authenticate(&first.credential.client_id, &first.client_secret, CLIENT_IP)
        .await
        .unwrap();
    assert_eq!(used.credential.allowed_apis, ["compute.read"]);

    // Raising it again restores exactly what was taken away.
    fixture
        .registry
        .update_member(&manager(), PROJECT, "alice", lower(both))
        .await
        .unwrap();
    assert_eq!(
        fixture
            .issuer
            .last_for(&first.credential.id)
            .credential
            .allowed_apis,
        both
    );
}

#[tokio::test]
async fn every_credential_change_is_sent_within_the_ceiling() {
    let fixture = Fixture::new().await;
    fixture
        .member("alice", &["compute.read", "compute.admin"])
        .await;
    let key = fixture
        .create(
            &manager(),
            "alice",
            "key",
            &["compute.read", "compute.admin"],
        )
        .await
        .unwrap()
        .credential;
    fixture
        .registry
        .update_member(
            &manager(),
            PROJECT,
            "alice",
            UpdateMember {
                api_ceiling: Some(strings(&["compute.read"])),
                ..UpdateMember::default()
            },
        )
        .await
        .unwrap();
    // A rename, a disable, an enable and a rotation each tell the token
    // side the credential under the member's ceiling, never its own list.
    let renamed = UpdateCredential {
        name: Some("renamed".into()),
        ..UpdateCredential::default()
    };
    fixture
        .registry
        .update_credential(&manager(), &key.id, renamed)
        .await
        .unwrap();
    for state in [CredentialState::Disabled, CredentialState::Active] {
        fixture
            .registry
            .set_credential_state(&manager(), &key.id, state)
            .await
            .unwrap();
        assert_eq!(fixture.issuer.last_for(&key.id).credential.state, state);
    }
    fixture
        .registry
        .rotate_secret(
            &manager(),
            crate::RotateSecret {
                credential_id: key.id.clone(),
                ..crate::RotateSecret::default()
            },
        )
        .await
        .unwrap();
    let told = fixture.issuer.applied_to(&key.id);
    assert_eq!(told.len(), 5, "ceiling, rename, disable, enable, rotation");
    for change in &told {
        assert_eq!(change.credential.allowed_apis, ["compute.read"]);
    }
}

#[tokio::test]
async fn suspension_disables_the_members_credentials_and_resumption_restores_them() {
    let fixture = Fixture::new().await;
    fixture.member("alice", &["compute.read"]).await;
    let active = fixture
        .create(&manager(), "alice", "active", &["compute.read"])
        .await
        .unwrap();
    let disabled = fixture
        .create(&manager(), "alice", "disabled", &["compute.read"])
        .await
        .unwrap()
        .credential;
    fixture
        .registry
        .set_credential_state(&manager(), &disabled.id, CredentialState::Disabled)
        .await
        .unwrap();
    let set_state = |state| UpdateMember {
        state: Some(state),
        ..UpdateMember::default()
    };
    fixture
        .registry
        .update_member(
            &manager(),
            PROJECT,
            "alice",
            set_state(MemberState::Suspended),
        )
        .await
        .unwrap();

    let told = fixture.issuer.last_for(&active.credential.id);
    assert_eq!(told.credential.state, CredentialState::Disabled);
    assert_eq!(
        fixture.stored(&active.credential.id).await.state,
        CredentialState::Active,
        "suspension does not rewrite the credential"
    );
    let refused = fixture
        .registry
        .authenticate(
            &active.credential.client_id,
            &active.client_secret,
            CLIENT_IP,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, crate::AuthenticateError::Refused(refused) if refused.reason == Refusal::Disabled),
        "{refused:?}"
    );
    let no_new = fixture
        .create(&manager(), "alice", "new", &["compute.read"])
        .await;
    assert_eq!(code(no_new), "FAILED_PRECONDITION");
    // Enabling a credential of a suspended member tells the token side it
    // is still disabled.
    fixture
        .registry
        .set_credential_state(&manager(), &disabled.id, CredentialState::Active)
        .await
        .unwrap();
    assert_eq!(
        fixture.issuer.last_for(&disabled.id).credential.state,
        CredentialState::Disabled
    );
    fixture
        .registry
        .set_credential_state(&manager(), &disabled.id, CredentialState::Disabled)
        .await
        .unwrap();

    fixture
        .registry
        .update_member(&manager(), PROJECT, "alice", set_state(MemberState::Active))
        .await
        .unwrap();
    assert_eq!(
        fixture
            .issuer
            .last_for(&active.credential.id)
            .credential
            .state,
        CredentialState::Active
    );
    assert_eq!(
        fixture.issuer.last_for(&disabled.id).credential.state,
        CredentialState::Disabled,
        "resuming never enables what was disabled on its own"
    );
    fixture
        .registry
        .authenticate(
            &active.credential.client_id,
            &active.client_secret,
            CLIENT_IP,
        )
        .await
        .expect("works again");
}

#[tokio::test]
async fn removal_ends_the_members_tokens_for_good() {
    let fixture = Fixture::new().await;
    fixture.member("alice", &["compute.read"]).await;
    let key = fixture
        .create(&manager(), "alice", "key", &["compute.read"])
        .await
        .unwrap()
        .credential;
    let removed = fixture
        .registry
        .remove_member(&manager(), PROJECT, "alice")
        .await
        .unwrap();
    assert_eq!(removed.state, MemberState::Removed);
    let told = fixture.issuer.last_for(&key.id);
    assert!(told.revoke_tokens, "removal purges the tokens");
    assert_eq!(told.credential.state, CredentialState::Disabled);
    assert_eq!(fixture.count().await, 1, "the credential stays listed");

    let resume = fixture
        .registry
        .update_member(
            &manager(),
            PROJECT,
            "alice",
            UpdateMember {
                state: Some(MemberState::Active),
                ..UpdateMember::default()
            },
        )
        .await;
    assert_eq!(code(resume), "FAILED_PRECONDITION");
    let again = fixture
        .registry
        .create_member(
            &manager(),
            CreateMember {
                project_id: PROJECT.into(),
                user_id: "alice".into(),
                api_ceiling: strings(&["compute.read"]),
                ..CreateMember::default()
            },
        )
        .await;
    assert_eq!(code(again), "FAILED_PRECONDITION");
    assert_eq!(
        fixture.issuer.applied_to(&key.id).len(),
        1,
        "refusals tell the token side nothing"
    );
}

#[tokio::test]
async fn a_member_is_refused_below_what_the_users_credentials_hold() {
    let fixture = Fixture::new().await;
    fixture
        .create(
            &manager(),
            "carol",
            "key",
            &["compute.read", "compute.admin"],
        )
        .await
        .unwrap();
    let refused = fixture
        .registry
        .create_member(
            &manager(),
            CreateMember {
                project_id: PROJECT.into(),
                user_id: "carol".into(),
                api_ceiling: strings(&["compute.read"]),
                ..CreateMember::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code_name(), "FAILED_PRECONDITION");
    assert!(
        refused.to_string().contains("\"compute.admin\""),
        "{refused}"
    );
    assert_eq!(
        fixture.store.get_member(PROJECT, "carol").await.unwrap(),
        None,
        "nothing was stored"
    );
}
