//! Issue 13: a widening (an API, an address, an enable) applies to the next
//! issuance at once, though the issuer remembers a verification made under
//! the narrower policy; an unchanged policy still refuses without asking the
//! registry.

use std::sync::atomic::Ordering;

use crate::error::IssueError;
use crate::model::PolicyState;
use crate::testing::{Answer, Fixture, SECRET};

use super::{request, right};

fn asking(scope: &str) -> crate::issuer::IssueRequest {
    crate::issuer::IssueRequest {
        scopes: vec![scope.to_owned()],
        ..right()
    }
}

#[tokio::test]
async fn an_api_added_after_a_remembered_use_is_granted_at_once() {
    let fixture = Fixture::new();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    // A replica that did not apply the change still remembers version 1.
    fixture
        .registry
        .change(|client| client.policy.allowed_apis.push("refunds.write".to_owned()))
        .await;
    let issued = fixture
        .tokens
        .issuer()
        .issue(asking("refunds.write"))
        .await
        .unwrap();
    assert_eq!(issued.scopes, ["refunds.write"]);
    assert_eq!(
        fixture.registry.calls(),
        2,
        "the registry answered the new list"
    );
    // Remembered again under the new version.
    fixture
        .tokens
        .issuer()
        .issue(asking("refunds.write"))
        .await
        .unwrap();
    assert_eq!(fixture.registry.calls(), 2);
}

#[tokio::test]
async fn a_scope_never_allowed_is_refused_without_asking_the_registry_again() {
    let fixture = Fixture::new();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    let reads = fixture.store.policy_reads.load(Ordering::SeqCst);
    for _ in 0..3 {
        let refused = fixture.tokens.issuer().issue(asking("refunds.write")).await;
        assert!(
            matches!(&refused, Err(IssueError::InvalidScope(scope)) if scope == "refunds.write"),
            "{refused:?}"
        );
    }
    assert_eq!(
        fixture.registry.calls(),
        1,
        "the store confirmed the version"
    );
    assert_eq!(
        fixture.store.policy_reads.load(Ordering::SeqCst) - reads,
        3,
        "one policy read per refusal, none per issuance"
    );
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(fixture.store.policy_reads.load(Ordering::SeqCst) - reads, 3);
}

#[tokio::test]
async fn a_narrowing_after_a_remembered_use_refuses_at_once() {
    let fixture = Fixture::new();
    fixture
        .tokens
        .issuer()
        .issue(asking("orders.read"))
        .await
        .unwrap();
    fixture
        .registry
        .change(|client| {
            client
                .policy
                .allowed_apis
                .retain(|api| api != "orders.read")
        })
        .await;
    let refused = fixture.tokens.issuer().issue(asking("orders.read")).await;
    assert!(
        matches!(&refused, Err(IssueError::InvalidScope(scope)) if scope == "orders.read"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_widened_allowlist_and_an_enable_apply_at_once() {
    let fixture = Fixture::new();
    fixture
        .registry
        .change(|client| {
            client.policy.allowed_ips = latchkey_net::IpAllowlist::parse(&["10.0.0.0/8"]).unwrap();
        })
        .await;
    fixture.tokens.issuer().issue(right()).await.unwrap();
    let outside = || request(SECRET, "192.0.2.1");
    assert!(matches!(
        fixture.tokens.issuer().issue(outside()).await,
        Err(IssueError::InvalidClient(_))
    ));
    fixture
        .registry
        .change(|client| {
            client.policy.allowed_ips =
                latchkey_net::IpAllowlist::parse(&["10.0.0.0/8", "192.0.2.0/24"]).unwrap();
        })
        .await;
    fixture.tokens.issuer().issue(outside()).await.unwrap();

    // Disabled, then enabled: the next issuance works.
    fixture
        .registry
        .change(|client| client.policy.state = PolicyState::Disabled)
        .await;
    let answer = std::mem::replace(
        &mut *fixture.registry.answer.lock().unwrap(),
        Answer::Refused("disabled"),
    );
    assert!(matches!(
        fixture.tokens.issuer().issue(right()).await,
        Err(IssueError::InvalidClient(_))
    ));
    *fixture.registry.answer.lock().unwrap() = answer;
    fixture
        .registry
        .change(|client| client.policy.state = PolicyState::Active)
        .await;
    fixture.tokens.issuer().issue(right()).await.unwrap();
}
