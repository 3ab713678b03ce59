//! Credential policies beside the tokens: versions only move forward,
//! tombstones refuse late issuances, changes reach live tokens.

use latchkey_net::IpAllowlist;
use latchkey_token::{PolicyState, StoreIssueError};

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
        matches!(result, Err(StoreIssueError::StalePolicy { held: Some(5) })),
        "the held version is reported: {result:?}"
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
            matches!(result, Err(StoreIssueError::StalePolicy { held: Some(3) })),
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

/// Finding 6: a verification the issuer remembers is honoured only while
/// the store holds exactly the version it was made under, active; the
/// store reports what it holds instead, and writes nothing.
async fn a_remembered_verification_needs_exactly_its_version_stored(store: Store) {
    let credential = new_credential();
    let remembered = |version: i64| {
        Issue {
            policy: active(version),
            ..Issue::new(credential)
        }
        .remembered()
    };
    let refused = |expected: Option<i64>| {
        move |result: Result<u32, StoreIssueError>| match result {
            Err(StoreIssueError::StalePolicy { held }) => assert_eq!(held, expected),
            other => panic!("expected StalePolicy {{ held: {expected:?} }}, got {other:?}"),
        }
    };

    // Nothing stored (a store that lost it, or never had it): refused, and
    // nothing written, not even the policy.
    let (hash, result) = remembered(1).run(&store).await;
    refused(None)(result);
    assert!(!holds(&store, credential, &hash).await);
    assert_eq!(stored_version(&store, credential).await, None);

    // The registry's answer writes it; then the remembered one is honoured.
    Issue::new(credential).ok(&store).await;
    let hash = remembered(1).ok(&store).await;
    assert!(holds(&store, credential, &hash).await);

    // A newer version stored (the credential changed).
    store
        .apply_policy(credential, &active(2), false)
        .await
        .unwrap();
    let (hash, result) = remembered(1).run(&store).await;
    refused(Some(2))(result);
    assert!(!holds(&store, credential, &hash).await);

    // An older version stored (a failover to a replica that missed a
    // write) does not confirm a newer verification; the registry's does.
    let (_, result) = remembered(3).run(&store).await;
    refused(Some(2))(result);
    Issue {
        policy: active(3),
        ..Issue::new(credential)
    }
    .ok(&store)
    .await;
    assert_eq!(stored_version(&store, credential).await, Some(3));

    // The same version, but not active.
    let disabled = latchkey_token::CredentialPolicy {
        state: PolicyState::Disabled,
        ..active(4)
    };
    store
        .apply_policy(credential, &disabled, false)
        .await
        .unwrap();
    let (_, result) = remembered(4).run(&store).await;
    refused(Some(4))(result);
    store
        .apply_policy(credential, &deleted(5), true)
        .await
        .unwrap();
    let (_, result) = remembered(5).run(&store).await;
    refused(Some(5))(result);
    assert_eq!(stored_version(&store, credential).await, Some(5));
}

/// A deletion is never undone under its own version, whoever writes.
async fn a_tombstone_is_never_overwritten_under_its_own_version(store: Store) {
    let credential = new_credential();
    store
        .apply_policy(credential, &deleted(3), true)
        .await
        .unwrap();
    store
        .apply_policy(credential, &active(3), false)
        .await
        .unwrap();
    let policy = store.policy(credential).await.unwrap().unwrap();
    assert_eq!((policy.version, policy.state), (3, PolicyState::Deleted));
    // The tombstone itself again, and a newer version, are applied.
    store
        .apply_policy(credential, &deleted(3), true)
        .await
        .unwrap();
    store
        .apply_policy(credential, &active(4), false)
        .await
        .unwrap();
    assert_eq!(stored_version(&store, credential).await, Some(4));
}

on_both_stores!(
    a_remembered_verification_needs_exactly_its_version_stored,
    a_tombstone_is_never_overwritten_under_its_own_version,
    revoking_on_apply_revokes_every_token_of_that_credential_only,
    an_older_policy_never_overwrites_a_newer_one,
    issuing_under_an_older_policy_is_stale,
    a_tombstone_refuses_its_version_but_not_the_next,
    a_narrowed_policy_reaches_the_next_lookup,
);
