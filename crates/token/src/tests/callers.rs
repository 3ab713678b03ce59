//! Finding 9: introspection callers presenting client credentials are
//! verified like clients at issuance, so they keep introspecting while the
//! registry is down, and a changed credential is refused at once.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::caller_auth::{CallerCredentials, CallerError};
use crate::model::PolicyState;
use crate::testing::{CLIENT_ID, Fixture, SECRET};
use crate::verify::FailureLimits;

const TTL: Duration = Duration::from_millis(20);

fn fixture() -> Fixture {
    let mut fixture = Fixture::new();
    fixture.tokens = fixture.tokens.with_caller_ttl(TTL);
    fixture
}

fn gateway(secret: &str) -> CallerCredentials<'_> {
    CallerCredentials::Client {
        client_id: CLIENT_ID,
        client_secret: secret,
    }
}

fn ip() -> IpAddr {
    "10.0.0.7".parse().unwrap()
}

async fn authorize(fixture: &Fixture, secret: &str) -> Result<(), CallerError> {
    fixture
        .tokens
        .introspector()
        .authorize_introspection_caller(gateway(secret), ip())
        .await
}

async fn past_the_caller_ttl() {
    tokio::time::sleep(TTL * 2).await;
}

#[tokio::test]
async fn a_verified_caller_keeps_introspecting_while_the_registry_is_down() {
    let fixture = fixture();
    authorize(&fixture, SECRET).await.unwrap();
    assert_eq!(fixture.store.held_version(), Some(1), "bound to the store");
    fixture.registry.down.store(true, Ordering::SeqCst);
    let calls = fixture.registry.calls();
    for _ in 0..3 {
        past_the_caller_ttl().await;
        let reads = fixture.store.policy_reads.load(Ordering::SeqCst);
        authorize(&fixture, SECRET).await.unwrap();
        assert_eq!(fixture.store.policy_reads.load(Ordering::SeqCst), reads + 1);
    }
    assert_eq!(fixture.registry.calls(), calls, "no registry call");
    // Within the caller TTL not even the store is read.
    let reads = fixture.store.policy_reads.load(Ordering::SeqCst);
    authorize(&fixture, SECRET).await.unwrap();
    assert_eq!(fixture.store.policy_reads.load(Ordering::SeqCst), reads);
    // A wrong secret is not the remembered one: the registry must decide,
    // and it cannot.
    assert!(matches!(
        authorize(&fixture, "lks_wrong").await,
        Err(CallerError::Unavailable("credential registry"))
    ));
}

#[tokio::test]
async fn a_disabled_deleted_or_narrowed_caller_is_refused_at_once_registry_down() {
    type Change = fn(&mut crate::authenticator::AuthenticatedClient);
    type Expected = fn(&CallerError) -> bool;
    let changes: [(&str, Change, Expected); 3] = [
        (
            "disabled",
            |client| client.policy.state = PolicyState::Disabled,
            |error| matches!(error, CallerError::Unauthenticated),
        ),
        (
            "deleted",
            |client| client.policy.state = PolicyState::Deleted,
            |error| matches!(error, CallerError::Unauthenticated),
        ),
        (
            "narrowed",
            |client| {
                client
                    .policy
                    .allowed_apis
                    .retain(|api| api != "tokens:introspect")
            },
            |error| matches!(error, CallerError::NotAllowed),
        ),
    ];
    for (what, change, expected) in changes {
        let fixture = fixture();
        authorize(&fixture, SECRET).await.unwrap();
        fixture.registry.change(change).await;
        fixture.registry.down.store(true, Ordering::SeqCst);
        past_the_caller_ttl().await;
        let refused = authorize(&fixture, SECRET).await.unwrap_err();
        assert!(expected(&refused), "{what}: {refused:?}");
    }
}

#[tokio::test]
async fn a_store_that_lost_the_callers_policy_sends_it_back_to_the_registry() {
    let fixture = fixture();
    authorize(&fixture, SECRET).await.unwrap();
    fixture.store.wipe();
    fixture.registry.down.store(true, Ordering::SeqCst);
    past_the_caller_ttl().await;
    assert!(matches!(
        authorize(&fixture, SECRET).await,
        Err(CallerError::Unavailable("credential registry"))
    ));
    fixture.registry.down.store(false, Ordering::SeqCst);
    authorize(&fixture, SECRET).await.unwrap();
    assert_eq!(fixture.store.held_version(), Some(1), "bound again");
}

#[tokio::test]
async fn a_locked_out_caller_source_is_told_when_to_retry() {
    let mut fixture = fixture();
    fixture.tokens = fixture.tokens.with_failure_limits(FailureLimits {
        per_client_address: 2,
        per_address: 10,
        window_seconds: 60,
    });
    for _ in 0..2 {
        assert!(matches!(
            authorize(&fixture, "lks_wrong").await,
            Err(CallerError::Unauthenticated)
        ));
    }
    // The right secret, never verified: this source is refused for now.
    let refused = authorize(&fixture, SECRET).await;
    assert!(
        matches!(refused, Err(CallerError::TooManyFailures { retry_after }) if retry_after > 0),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_policy_change_applied_here_drops_the_callers_entry_at_once() {
    // The default caller TTL (30 s): only forgetting ends the entry in time.
    let fixture = Fixture::new();
    authorize(&fixture, SECRET).await.unwrap();
    fixture.registry.down.store(true, Ordering::SeqCst);
    // Another credential's change leaves this caller's entry alone: no
    // store read.
    let other =
        crate::key::CredentialKey::from_credential_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c")
            .unwrap();
    let mut policy = crate::testing::client(1, &[]).policy;
    fixture
        .tokens
        .apply_policy(other, &policy, false)
        .await
        .unwrap();
    let reads = fixture.store.policy_reads.load(Ordering::SeqCst);
    authorize(&fixture, SECRET).await.unwrap();
    assert_eq!(fixture.store.policy_reads.load(Ordering::SeqCst), reads);
    // Its own credential disabled: refused on the next call, from the
    // store, with the registry down.
    policy.version = 2;
    policy.state = PolicyState::Disabled;
    fixture
        .tokens
        .apply_policy(crate::testing::credential(), &policy, false)
        .await
        .unwrap();
    assert!(matches!(
        authorize(&fixture, SECRET).await,
        Err(CallerError::Unauthenticated)
    ));
}
