//! Hash key rotation on the token side: a token issued under key 1 stays
//! active (and revocable) where key 2 is current and key 1 previous, new
//! tokens use key 2, and without key 1 the old token is unknown.

use latchkey_secrets::{HashKey, HashKeys};

use crate::introspection::{InactiveReason, Introspection, IntrospectionRequest};
use crate::service::TokenService;
use crate::testing::{CLIENT_ID, Fixture, SECRET};

use super::right;

async fn introspect(tokens: &TokenService, token: &str) -> Introspection {
    tokens
        .introspector()
        .introspect(&IntrospectionRequest {
            token,
            client_ip: Some("10.0.0.1".parse().unwrap()),
            required_scopes: &[],
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_of_the_previous_key_lives_on_and_new_ones_use_the_current_key() {
    let first = HashKey::generate();
    let second = HashKey::generate();
    let fixture = Fixture::with_keys(first.clone().into());
    let old = fixture.tokens.issuer().issue(right()).await.unwrap();

    let rotated = fixture.replica(HashKeys::new(2, second.clone(), [(1, first.clone())]).unwrap());
    assert!(matches!(
        introspect(&rotated, &old.access_token).await,
        Introspection::Active(_)
    ));
    let new = rotated.issuer().issue(right()).await.unwrap();
    assert!(matches!(
        introspect(&rotated, &new.access_token).await,
        Introspection::Active(_)
    ));
    // The new token is stored under key 2: a service knowing key 1 only
    // does not find it, one knowing key 2 only does.
    assert!(matches!(
        introspect(&fixture.tokens, &new.access_token).await,
        Introspection::Inactive(InactiveReason::Unknown)
    ));
    let second_only = fixture.replica(HashKeys::new(2, second, []).unwrap());
    assert!(matches!(
        introspect(&second_only, &new.access_token).await,
        Introspection::Active(_)
    ));
    assert!(matches!(
        introspect(&second_only, &old.access_token).await,
        Introspection::Inactive(InactiveReason::Unknown)
    ));

    // The old token is revoked through the rotated service too.
    rotated
        .issuer()
        .revoke(
            &old.access_token,
            CLIENT_ID,
            SECRET,
            "10.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(
        introspect(&rotated, &old.access_token).await,
        Introspection::Inactive(_)
    ));
    assert!(matches!(
        introspect(&fixture.tokens, &old.access_token).await,
        Introspection::Inactive(_)
    ));
}
