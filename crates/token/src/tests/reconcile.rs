//! Finding 8: a store holding a newer policy than the registry committed
//! (a change applied on the token side whose commit was lost) converges by
//! itself: issuance asks the registry to reconcile, once.

use crate::error::IssueError;
use crate::model::PolicyState;
use crate::testing::{CREDENTIAL_ID, Fixture, client};

use super::right;

/// The leftover of a lost commit: version 2, disabled, while the registry
/// still answers version 1, active.
fn lost_commit(fixture: &Fixture) {
    let mut leftover = client(2, &[]).policy;
    leftover.state = PolicyState::Disabled;
    fixture.store.force(&leftover);
}

#[tokio::test]
async fn a_policy_the_registry_never_committed_is_reconciled_then_issuance_succeeds() {
    let fixture = Fixture::new();
    lost_commit(&fixture);
    let issued = fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(issued.credential_id, CREDENTIAL_ID);
    assert_eq!(
        *fixture.registry.reconciles.lock().unwrap(),
        [(CREDENTIAL_ID.to_owned(), 2)],
        "reconciled once, with the version the store holds"
    );
    assert_eq!(fixture.store.held_version(), Some(3));
    // Settled: the next issuance needs neither.
    let calls = fixture.registry.calls();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(fixture.registry.calls(), calls);
    assert_eq!(fixture.registry.reconciles.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_registry_that_cannot_reconcile_is_unavailable_not_a_loop() {
    let fixture = Fixture::new();
    fixture
        .registry
        .settles
        .store(false, std::sync::atomic::Ordering::SeqCst);
    lost_commit(&fixture);
    let refused = fixture.tokens.issuer().issue(right()).await;
    assert!(
        matches!(
            refused,
            Err(IssueError::Unavailable("credential registry", _))
        ),
        "{refused:?}"
    );
    assert_eq!(fixture.registry.reconciles.lock().unwrap().len(), 1);
    assert!(
        fixture.registry.calls() <= 4,
        "{}",
        fixture.registry.calls()
    );
    assert_eq!(fixture.store.held_version(), Some(2), "nothing overwritten");
}

#[tokio::test]
async fn an_older_stored_policy_or_none_needs_no_reconciling() {
    let fixture = Fixture::new();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    fixture.store.wipe();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert!(fixture.registry.reconciles.lock().unwrap().is_empty());
}
