//! Finding 7 and rule 11: failures are counted per (client ID, source
//! address) and per source address; they refuse the failing source, never
//! the client elsewhere, and never a secret the issuer has verified.

use crate::error::IssueError;
use crate::model::unix_now;
use crate::testing::{Answer, CLIENT_ID, Fixture, SECRET, client};
use crate::verify::FailureLimits;

use super::{request, right};

const STRANGER: &str = "192.0.2.9";

fn limited() -> Fixture {
    let mut fixture = Fixture::new();
    fixture.tokens = fixture.tokens.with_failure_limits(FailureLimits {
        per_client_address: 3,
        per_address: 5,
        window_seconds: 60,
    });
    fixture
}

fn wrong(ip: &str) -> crate::issuer::IssueRequest {
    request("lks_a-wrong-guess", ip)
}

async fn fail_three_times(fixture: &Fixture, ip: &str) {
    for _ in 0..3 {
        let refused = fixture.tokens.issuer().issue(wrong(ip)).await;
        assert!(
            matches!(refused, Err(IssueError::InvalidClient(_))),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn a_strangers_failures_refuse_the_stranger_not_the_client() {
    let fixture = limited();
    fail_three_times(&fixture, STRANGER).await;
    let calls = fixture.registry.calls();
    let refused = fixture.tokens.issuer().issue(wrong(STRANGER)).await;
    assert!(
        matches!(refused, Err(IssueError::TooManyFailures { retry_after }) if (1..=60).contains(&retry_after)),
        "{refused:?}"
    );
    assert_eq!(
        fixture.registry.calls(),
        calls,
        "refused before the registry"
    );
    // The client, never verified before, from its own address: fine.
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(
        fixture
            .store
            .failures_under(&format!("pair:{STRANGER}:{CLIENT_ID}")),
        3
    );
    assert_eq!(fixture.store.failures_under("pair:10.0.0.1:lkc_x"), 0);
}

#[tokio::test]
async fn a_known_good_secret_passes_a_source_at_its_limit() {
    let fixture = limited();
    let shared = "10.0.0.1";
    fixture.tokens.issuer().issue(right()).await.unwrap();
    // Someone behind the same address guesses at the client.
    fail_three_times(&fixture, shared).await;
    assert!(matches!(
        fixture.tokens.issuer().issue(wrong(shared)).await,
        Err(IssueError::TooManyFailures { .. })
    ));
    // The right secret: remembered (fresh) ...
    fixture.tokens.issuer().issue(right()).await.unwrap();
    // ... and past the fresh age, when the registry is asked again.
    fixture.tokens.issuer().core.verifier.authentications.put(
        CLIENT_ID,
        SECRET,
        &client(1, &[]),
        unix_now() - 120,
    );
    let calls = fixture.registry.calls();
    fixture.tokens.issuer().issue(right()).await.unwrap();
    assert_eq!(
        fixture.registry.calls(),
        calls + 1,
        "verified at the registry"
    );
}

#[tokio::test]
async fn a_secret_the_registry_refuses_is_no_longer_known_good() {
    let fixture = limited();
    let shared = "10.0.0.1";
    fixture.tokens.issuer().issue(right()).await.unwrap();
    fail_three_times(&fixture, shared).await;
    // Rotated away: the registry now refuses the remembered secret.
    fixture.registry.change(|_| {}).await;
    *fixture.registry.answer.lock().unwrap() = Answer::Refused("wrong_secret");
    assert!(matches!(
        fixture.tokens.issuer().issue(right()).await,
        Err(IssueError::InvalidClient(_))
    ));
    assert!(matches!(
        fixture.tokens.issuer().issue(right()).await,
        Err(IssueError::TooManyFailures { .. })
    ));
}

#[tokio::test]
async fn spraying_client_ids_refuses_that_address_only() {
    let fixture = limited();
    for n in 0..5 {
        let mut spray = wrong(STRANGER);
        spray.client_id = format!("lkc_sprayed{n}");
        let refused = fixture.tokens.issuer().issue(spray).await;
        assert!(matches!(refused, Err(IssueError::InvalidClient(_))));
    }
    let mut from_stranger = right();
    from_stranger.client_ip = STRANGER.parse().unwrap();
    assert!(matches!(
        fixture.tokens.issuer().issue(from_stranger).await,
        Err(IssueError::TooManyFailures { .. })
    ));
    fixture.tokens.issuer().issue(right()).await.unwrap();
}
