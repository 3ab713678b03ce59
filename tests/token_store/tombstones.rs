//! Issue 13: a revoked token answers "revoked" (not "unknown") until it
//! would have expired, whether its client revoked it, the limit evicted it,
//! or every token of its credential was revoked; tombstones cost no place
//! under the limit, and a credential keeps at most 1 000 of them.

use latchkey_token::{TokenHash, unix_now};

use crate::support::{
    Issue, Store, active, deleted, evict, holds, new_credential, new_hash, reject, wait_past,
};

/// Whether the store answers `hash` as a revoked token of `credential`.
async fn revoked(
    store: &Store,
    credential: latchkey_token::CredentialKey,
    hash: &TokenHash,
) -> bool {
    let lookup = store.lookup(credential, hash).await.unwrap();
    if lookup.revoked {
        assert_eq!(lookup.token, None, "a tombstone is not a token");
    }
    lookup.revoked
}

async fn a_revoked_token_is_told_from_an_unknown_one_until_it_would_have_expired(store: Store) {
    let credential = new_credential();
    let now = unix_now();
    let short = Issue {
        expires_at: now + 2,
        limit: reject(2),
        ..Issue::new(credential)
    };
    let hash = short.ok(&store).await;
    let other = Issue::new(credential).ok(&store).await;
    assert!(
        !revoked(&store, credential, &hash).await,
        "live, not revoked"
    );

    assert!(store.revoke(credential, &hash).await.unwrap());
    assert!(!holds(&store, credential, &hash).await);
    assert!(revoked(&store, credential, &hash).await);
    assert!(
        !revoked(&store, credential, &new_hash(credential)).await,
        "a token never issued is unknown, not revoked"
    );
    assert!(
        holds(&store, credential, &other).await,
        "the other token stays"
    );
    assert!(
        !store.revoke(credential, &hash).await.unwrap(),
        "a second revocation finds nothing live"
    );
    assert!(
        revoked(&store, credential, &hash).await,
        "and keeps the tombstone"
    );

    // The tombstone takes no place: beside the other token, one more fits
    // under a limit of two.
    Issue {
        limit: reject(2),
        ..Issue::new(credential)
    }
    .ok(&store)
    .await;

    wait_past(now + 2).await;
    assert!(
        !revoked(&store, credential, &hash).await,
        "past the token's own expiry it is merely unknown"
    );
    // The next issuance clears the ended tombstone without disturbing the rest.
    let next = Issue {
        limit: reject(3),
        ..Issue::new(credential)
    }
    .ok(&store)
    .await;
    assert!(holds(&store, credential, &next).await);
    assert!(holds(&store, credential, &other).await);
}

async fn an_evicted_token_answers_revoked(store: Store) {
    let credential = new_credential();
    let issue = Issue {
        limit: evict(1),
        ..Issue::new(credential)
    };
    let first = issue.ok(&store).await;
    let (second, evicted) = issue.run(&store).await;
    assert_eq!(evicted.unwrap(), 1);
    assert!(revoked(&store, credential, &first).await);
    assert!(holds(&store, credential, &second).await);
    // Again, with one tombstone already there.
    let (third, evicted) = issue.run(&store).await;
    assert_eq!(evicted.unwrap(), 1);
    assert!(revoked(&store, credential, &first).await);
    assert!(revoked(&store, credential, &second).await);
    assert!(holds(&store, credential, &third).await);
}

async fn revoking_every_token_leaves_tombstones_but_a_deletion_needs_none(store: Store) {
    let credential = new_credential();
    let issue = Issue {
        limit: reject(3),
        ..Issue::new(credential)
    };
    let mut hashes = Vec::new();
    for _ in 0..3 {
        hashes.push(issue.ok(&store).await);
    }
    // A rotation with revoke_tokens.
    assert_eq!(
        store
            .apply_policy(credential, &active(2), true)
            .await
            .unwrap(),
        3
    );
    for hash in &hashes {
        assert!(revoked(&store, credential, hash).await);
    }
    // Tokens issued afterwards are live, and fill the limit again.
    let later = Issue {
        policy: active(2),
        ..issue.clone()
    };
    for _ in 0..3 {
        later.ok(&store).await;
    }
    // A disable keeps tokens (an enable brings them back): no tombstone.
    let mut disabled = active(3);
    disabled.state = latchkey_token::PolicyState::Disabled;
    let live = Issue {
        policy: active(2),
        limit: reject(4),
        ..issue.clone()
    }
    .ok(&store)
    .await;
    store
        .apply_policy(credential, &disabled, false)
        .await
        .unwrap();
    assert!(!revoked(&store, credential, &live).await);
    assert!(holds(&store, credential, &live).await);

    // A deletion: the credential's own tombstone answers for every token.
    assert_eq!(
        store
            .apply_policy(credential, &deleted(4), true)
            .await
            .unwrap(),
        4
    );
    assert!(!holds(&store, credential, &live).await);
    let lookup = store.lookup(credential, &live).await.unwrap();
    assert_eq!(
        lookup.policy.map(|policy| policy.state),
        Some(latchkey_token::PolicyState::Deleted)
    );
}

async fn a_credential_keeps_at_most_a_thousand_tombstones(store: Store) {
    let credential = new_credential();
    let now = unix_now();
    // Each issuance evicts the one before; the first expires soonest.
    let mut hashes = Vec::new();
    for index in 0..1_002 {
        let issue = Issue {
            limit: evict(1),
            expires_at: now + 3_600 + index,
            ..Issue::new(credential)
        };
        hashes.push(issue.ok(&store).await);
    }
    // 1 001 evicted, 1 000 kept: the one closest to expiry went first.
    assert!(!revoked(&store, credential, &hashes[0]).await);
    assert!(revoked(&store, credential, &hashes[1]).await);
    assert!(revoked(&store, credential, &hashes[1_000]).await);
    assert!(holds(&store, credential, &hashes[1_001]).await);
}

on_both_stores!(
    a_revoked_token_is_told_from_an_unknown_one_until_it_would_have_expired,
    an_evicted_token_answers_revoked,
    revoking_every_token_leaves_tombstones_but_a_deletion_needs_none,
    a_credential_keeps_at_most_a_thousand_tombstones,
);
