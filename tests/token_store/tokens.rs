//! Storing, reading and revoking single tokens.

use std::sync::Arc;

use latchkey_net::IpAllowlist;
use latchkey_token::{
    CredentialPolicy, Lookup, PolicyState, StoreError, StoreIssueError, unix_now,
};

use crate::support::{Issue, Store, evict, holds, new_credential, new_hash, reject, wait_past};

async fn an_issued_token_is_read_back_with_its_policy(store: Store) {
    let credential = new_credential();
    let issue = Issue::new(credential);
    let hash = issue.ok(&store).await;

    let lookup = store.lookup(credential, &hash).await.unwrap();
    assert_eq!(
        lookup,
        Lookup {
            token: Some(Arc::new(issue.record())),
            policy: Some(Arc::new(issue.policy.clone())),
            revoked: false,
        }
    );
}

async fn an_unknown_token_is_not_found(store: Store) {
    let credential = new_credential();
    let unknown = store
        .lookup(credential, &new_hash(credential))
        .await
        .unwrap();
    assert_eq!(
        unknown,
        Lookup::default(),
        "nothing is known of the credential"
    );

    let issue = Issue::new(credential);
    issue.ok(&store).await;
    let lookup = store
        .lookup(credential, &new_hash(credential))
        .await
        .unwrap();
    assert_eq!(lookup.token, None);
    assert_eq!(
        lookup.policy.as_deref(),
        Some(&issue.policy),
        "the credential is known"
    );

    let other = new_credential();
    let hash = issue.ok(&store).await;
    assert_eq!(
        store.lookup(other, &hash).await.unwrap(),
        Lookup::default(),
        "a token is found only under its own credential"
    );
}

async fn every_policy_field_round_trips(store: Store) {
    let credential = new_credential();
    let policy = CredentialPolicy {
        version: 42,
        state: PolicyState::Disabled,
        client_id: "lkc_0123456789abcdefghijkl012345".to_owned(),
        project_id: "billing-eu".to_owned(),
        owner: "svc:reports+eu@example.com".to_owned(),
        allowed_apis: vec!["urn:api:orders/read".to_owned(), "ledger.write".to_owned()],
        allowed_ips: IpAllowlist::parse(&["192.0.2.7", "10.0.0.0/8", "2001:db8::/32"]).unwrap(),
        expire_time: Some(unix_now() + 86_400 * 30),
    };
    let issue = Issue {
        policy: policy.clone(),
        ..Issue::new(credential)
    };
    let hash = issue.ok(&store).await;
    let lookup = store.lookup(credential, &hash).await.unwrap();
    assert_eq!(lookup.policy.as_deref(), Some(&policy));
    assert_eq!(lookup.token.as_deref(), Some(&issue.record()));
}

async fn revoking_removes_that_token_only(store: Store) {
    let credential = new_credential();
    let issue = Issue {
        limit: reject(2),
        ..Issue::new(credential)
    };
    let first = issue.ok(&store).await;
    let second = issue.ok(&store).await;

    assert!(store.revoke(credential, &first).await.unwrap());
    assert!(!holds(&store, credential, &first).await);
    assert!(
        holds(&store, credential, &second).await,
        "the other token stays"
    );
    assert!(
        !store.revoke(credential, &first).await.unwrap(),
        "a second revocation finds nothing"
    );
    assert!(
        !store
            .revoke(credential, &new_hash(credential))
            .await
            .unwrap(),
        "an unknown token is not revoked"
    );

    let third = issue.ok(&store).await;
    assert!(
        holds(&store, credential, &third).await,
        "the revoked token freed its place"
    );
}

async fn expired_tokens_do_not_count_and_are_not_live(store: Store) {
    let credential = new_credential();
    let t0 = unix_now();
    let short = Issue {
        limit: reject(2),
        expires_at: t0 + 1,
        ..Issue::new(credential)
    };
    let expiring = short.ok(&store).await;
    let long = Issue {
        expires_at: t0 + 3600,
        ..short.clone()
    };
    let lasting = long.ok(&store).await;
    let full = long.run(&store).await.1;
    assert!(
        matches!(full, Err(StoreIssueError::LimitReached(2))),
        "two live tokens fill the limit: {full:?}"
    );

    // Told it is later, the store no longer counts the expired token.
    let later = Issue {
        now: t0 + 5,
        ..long.clone()
    };
    let replacement = later.ok(&store).await;
    let refused = later.run(&store).await.1;
    assert!(
        matches!(refused, Err(StoreIssueError::LimitReached(2))),
        "{refused:?}"
    );

    wait_past(t0 + 1).await;
    assert!(
        !holds(&store, credential, &expiring).await,
        "an expired token is not live"
    );
    assert!(holds(&store, credential, &lasting).await);
    assert!(holds(&store, credential, &replacement).await);

    // Under eviction, an expired token makes room without being evicted.
    let other = new_credential();
    let now = unix_now();
    let evicting = Issue {
        limit: evict(1),
        now,
        expires_at: now + 1,
        ..Issue::new(other)
    };
    evicting.ok(&store).await;
    wait_past(now + 1).await;
    let now = unix_now();
    let after = Issue {
        now,
        expires_at: now + 3600,
        ..evicting
    };
    let (hash, evicted) = after.run(&store).await;
    assert_eq!(
        evicted.unwrap(),
        0,
        "an expired token is dropped, not evicted"
    );
    assert!(holds(&store, other, &hash).await);
}

async fn an_already_expired_token_is_refused(store: Store) {
    let credential = new_credential();
    let issue = Issue::new(credential);
    let expired = Issue {
        expires_at: issue.now,
        ..issue
    };
    let (hash, result) = expired.run(&store).await;
    assert!(
        matches!(result, Err(StoreIssueError::Store(StoreError::Internal(_)))),
        "{result:?}"
    );
    assert!(!holds(&store, credential, &hash).await);
}

async fn the_store_answers_ping(store: Store) {
    store.ping().await.unwrap();
}

on_both_stores!(
    an_issued_token_is_read_back_with_its_policy,
    an_unknown_token_is_not_found,
    every_policy_field_round_trips,
    revoking_removes_that_token_only,
    expired_tokens_do_not_count_and_are_not_live,
    an_already_expired_token_is_refused,
    the_store_answers_ping,
);
