//! Rule 3 at its source: every change tokens must follow reaches the token
//! side (with a higher policy version) before it commits, and a change the
//! token side does not confirm is rolled back. The registry's real store is
//! used; only the network call to the issuer is replaced, by a recorder that
//! can be told to fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use latchkey_registry::{
    Caller, CreateCredential, CredentialState, PolicyChange, RegistryError, RotateSecret,
    TokenSync, UpdateCredential,
};
use latchkey_tests::Backend;

use crate::support::registry_with_sync;

/// (credential version, deleted, revoke_tokens) of each change applied.
#[derive(Debug, Default)]
struct RecordingSync {
    failing: AtomicBool,
    applied: Mutex<Vec<(i64, bool, bool)>>,
}

#[async_trait]
impl TokenSync for RecordingSync {
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(RegistryError::TokenIssuerUnavailable("issuer down".into()));
        }
        self.applied.lock().unwrap().push((
            change.credential.policy_version,
            change.deleted,
            change.revoke_tokens,
        ));
        Ok(())
    }
}

async fn changes_reach_the_token_side_first_or_not_at_all(backend: Backend) {
    let sync = Arc::new(RecordingSync::default());
    let (registry, _database) = registry_with_sync(backend, sync.clone()).await;
    let caller = Caller::bootstrap();
    let created = registry
        .create_credential(
            &caller,
            CreateCredential {
                project_id: "acme".into(),
                owner: "alice".into(),
                allowed_apis: vec!["a.read".into(), "a.write".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = created.credential.id.clone();
    assert_eq!(created.credential.policy_version, 1);
    let narrow = || UpdateCredential {
        allowed_apis: Some(vec!["a.read".into()]),
        ..Default::default()
    };
    let rotate = |revoke_tokens| RotateSecret {
        credential_id: id.clone(),
        grace_period_seconds: 0,
        revoke_tokens,
    };

    // The issuer is down: each change fails and leaves the credential as it was.
    sync.failing.store(true, Ordering::SeqCst);
    let unavailable = |result: Result<_, RegistryError>| {
        assert!(
            matches!(result, Err(RegistryError::TokenIssuerUnavailable(_))),
            "{result:?}"
        );
    };
    unavailable(
        registry
            .update_credential(&caller, &id, narrow())
            .await
            .map(|_| ()),
    );
    unavailable(
        registry
            .set_credential_state(&caller, &id, CredentialState::Disabled)
            .await
            .map(|_| ()),
    );
    for revoke_tokens in [true, false] {
        unavailable(
            registry
                .rotate_secret(&caller, rotate(revoke_tokens))
                .await
                .map(|_| ()),
        );
    }
    unavailable(
        registry
            .delete_credential(&caller, &id, &created.credential.name)
            .await,
    );
    let unchanged = registry.get_credential(&caller, &id).await.unwrap();
    assert_eq!(
        unchanged, created.credential,
        "nothing changed, not even the version"
    );
    assert!(sync.applied.lock().unwrap().is_empty());

    // The issuer is back: each change is applied there with a higher version.
    sync.failing.store(false, Ordering::SeqCst);
    registry
        .update_credential(&caller, &id, narrow())
        .await
        .unwrap();
    registry
        .set_credential_state(&caller, &id, CredentialState::Disabled)
        .await
        .unwrap();
    registry
        .rotate_secret(&caller, rotate(false))
        .await
        .unwrap();
    registry.rotate_secret(&caller, rotate(true)).await.unwrap();
    registry
        .delete_credential(&caller, &id, &created.credential.name)
        .await
        .unwrap();
    assert_eq!(
        *sync.applied.lock().unwrap(),
        [
            // The failed changes may have reached the issuer before their
            // answer was lost: their note makes the next change settle the
            // committed state first, above any version they used.
            (3, false, false),
            (4, false, false),
            (5, false, false),
            (6, false, false),
            (7, false, true),
            (8, true, true)
        ],
        "every change reaches the token side, a rotation that keeps tokens too \
         (it ends issuers' cached authentications of the old secret)"
    );
}

on_both_backends!(changes_reach_the_token_side_first_or_not_at_all);
