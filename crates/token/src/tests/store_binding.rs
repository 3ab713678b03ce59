//! Finding 6: a remembered verification is honoured only while the token
//! store holds exactly the policy version it was made under.

use crate::error::IssueError;
use crate::model::PolicyState;
use crate::testing::{Answer, Fixture};

use super::right;

#[tokio::test]
async fn a_remembered_verification_answers_while_the_store_holds_its_version() {
    let fixture = Fixture::new();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(fixture.registry.calls(), 1, "the second one was remembered");
}

#[tokio::test]
async fn a_store_that_lost_the_policy_sends_issuance_back_to_the_registry() {
    for (change, reason) in [
        (PolicyState::Deleted, "not_found"),
        (PolicyState::Disabled, "disabled"),
        // A rotation with revocation: the same active state, another secret.
        (PolicyState::Active, "wrong_secret"),
    ] {
        let fixture = Fixture::new();
        fixture.tokens.issuer().issue(right()).await.unwrap();
        // The registry applies the change to the store, commits, and then
        // the store loses everything (a Redis restarted empty).
        fixture
            .registry
            .change(|client| client.policy.state = change)
            .await;
        *fixture.registry.answer.lock().unwrap() = Answer::Refused(reason);
        fixture.store.wipe();

        let refused = fixture.tokens.issuer().issue(right()).await;
        assert!(
            matches!(&refused, Err(IssueError::InvalidClient(refusal)) if refusal.reason == reason),
            "{change:?}: {refused:?}"
        );
        assert_eq!(
            fixture.registry.calls(),
            2,
            "{change:?}: the registry decided"
        );
        assert_eq!(
            fixture.store.held_version(),
            None,
            "{change:?}: nothing written"
        );
    }
}

#[tokio::test]
async fn without_a_change_a_lost_policy_is_written_again_from_the_registry() {
    let fixture = Fixture::new();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    fixture.store.wipe();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(fixture.registry.calls(), 2);
    assert_eq!(fixture.store.held_version(), Some(1));
    // And remembered again from there.
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(fixture.registry.calls(), 2);
}

#[tokio::test]
async fn a_store_holding_an_older_version_does_not_confirm_a_newer_verification() {
    // A failover to a replica that missed the last policy write.
    let fixture = Fixture::new();
    fixture.registry.change(|_| {}).await;
    fixture.tokens.issuer().issue(right()).await.unwrap();
    let mut older = crate::testing::client(1, &[]).policy;
    older.state = PolicyState::Active;
    fixture.store.force(&older);
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(fixture.registry.calls(), 2, "the registry was asked again");
    assert_eq!(
        fixture.store.held_version(),
        Some(2),
        "and its answer stored"
    );
}
