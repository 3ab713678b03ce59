//! Credential policies beside the tokens: versions only move forward,
//! tombstones refuse late issuances, changes reach live tokens.

use latchkey_net::IpAllowlist;
use latchkey_token::{PolicyState, TokenStoreError};

use crate::support::{
    Issue, Store, active, count_held, deleted, holds, new_credential, reject, stored_version,
};

async fn revoking_on_apply_revokes_every_token_of_that_credential_only(store: Store) {
    let credential = new_credential();
    let bystander = new_credential();
    let issue = Issue::new(credential);
    let mut revoked = Vec::new();
    for _ in 0..3 {
        revoked.push(issue.ok(&store).await);
    }
    let bystander_issue = Issue::new(bystander);
    let kept = [
        bystander_issue.ok(&store).await,
        bystander_issue.ok(&store).await,
    ];

    assert_eq!(
        store
            .apply_policy(credential, &active(2), true)
            .await
            .unwrap(),
        3
    );
    assert_eq!(count_held(&store, credential, &revoked).await, 0);
    assert_eq!(stored_version(&store, credential).await, Some(2));
    assert_eq!(
        count_held(&store, bystander, &kept).await,
        2,
        "another credential keeps its tokens"
    );
    assert_eq!(stored_version(&store, bystander).await, Some(1));

    assert_eq!(
        store
            .apply_policy(credential, &active(2), true)
            .await
            .unwrap(),
        0,
        "nothing left to revoke"
    );
    let after = Issue {
        policy: active(2),
        limit: reject(3),
        ..issue
    };
    let fresh = after.ok(&store).await;
    assert!(
        holds(&store, credential, &fresh).await,
        "revoked tokens no longer count"
    );
}

async fn an_older_policy_never_overwrites_a_newer_one(store: Store) {
    let credential = new_credential();
    assert_eq!(
        store
            .apply_policy(credential, &active(3), false)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        stored_version(&store, credential).await,
        Some(3),
        "applied to an unknown credential"
    );

    store
        .apply_policy(credential, &active(2), false)
        .await
        .unwrap();
    assert_eq!(stored_version(&store, credential).await, Some(3));

    // Revocation applies whatever the versions; the policy still stays.
    let issue = Issue {
        policy: active(3),
        ..Issue::new(credential)
    };
    let hash = issue.ok(&store).await;
    assert_eq!(
        store
            .apply_policy(credential, &active(1), true)
            .await
            .unwrap(),
        1
    );
    assert!(!holds(&store, credential, &hash).await);
    assert_eq!(stored_version(&store, credential).await, Some(3));

    store
        .apply_policy(credential, &active(4), false)
        .await
        .unwrap();
    assert_eq!(stored_version(&store, credential).await, Some(4));
}

async fn issuing_under_an_older_policy_is_stale(store: Store) {
    let credential = new_credential();
    store
        .apply_policy(credential, &active(5), false)
        .await
        .unwrap();

    let stale = Issue {
        policy: active(4),
        ..Issue::new(credential)
    };
    let (hash, result) = stale.run(&store).await;
    assert!(
        matches!(result, Err(TokenStoreError::StalePolicy)),
        "{result:?}"
    );
    assert!(
        !holds(&store, credential, &hash).await,
        "nothing was stored"
    );
    assert_eq!(stored_version(&store, credential).await, Some(5));

    let current = Issue {
        policy: active(5),
        ..stale.clone()
    };
    current.ok(&store).await;
    let newer = Issue {
        policy: active(6),
        ..stale
    };
    newer.ok(&store).await;
    assert_eq!(
        stored_version(&store, credential).await,
        Some(6),
        "a newer policy presented at issuance is stored"
    );
}

async fn a_tombstone_refuses_its_version_but_not_the_next(store: Store) {
    let credential = new_credential();
    store
        .apply_policy(credential, &deleted(3), true)
        .await
        .unwrap();

    for version in [2, 3] {
        let late = Issue {
            policy: active(version),
            ..Issue::new(credential)
        };
        let (hash, result) = late.run(&store).await;
        assert!(
            matches!(result, Err(TokenStoreError::StalePolicy)),
            "version {version}: {result:?}"
        );
        assert!(!holds(&store, credential, &hash).await);
    }

    let recreated = Issue {
        policy: active(4),
        ..Issue::new(credential)
    };
    let hash = recreated.ok(&store).await;
    let lookup = store.lookup(credential, &hash).await.unwrap();
    assert!(lookup.token.is_some());
    let policy = lookup.policy.unwrap();
    assert_eq!((policy.version, policy.state), (4, PolicyState::Active));
}

async fn a_narrowed_policy_reaches_the_next_lookup(store: Store) {
    let credential = new_credential();
    let issue = Issue::new(credential);
    let hash = issue.ok(&store).await;

    let narrowed = latchkey_token::CredentialPolicy {
        version: 2,
        state: PolicyState::Disabled,
        allowed_apis: vec!["orders.read".to_owned()],
        allowed_ips: IpAllowlist::parse(&["192.0.2.0/24"]).unwrap(),
        expire_time: Some(issue.now + 60),
        ..active(1)
    };
    assert_eq!(
        store
            .apply_policy(credential, &narrowed, false)
            .await
            .unwrap(),
        0
    );

    let lookup = store.lookup(credential, &hash).await.unwrap();
    assert_eq!(
        lookup.token.as_deref(),
        Some(&issue.record()),
        "the token itself is unchanged"
    );
    assert_eq!(lookup.policy.as_deref(), Some(&narrowed));
}

on_both_stores!(
    revoking_on_apply_revokes_every_token_of_that_credential_only,
    an_older_policy_never_overwrites_a_newer_one,
    issuing_under_an_older_policy_is_stale,
    a_tombstone_refuses_its_version_but_not_the_next,
    a_narrowed_policy_reaches_the_next_lookup,
);
