//! The per-credential token limit: refusing, evicting, and holding under
//! concurrency.

use latchkey_token::{StoreIssueError, unix_now};
use tokio::task::JoinSet;

use crate::support::{
    Issue, Store, active, count_held, evict, holds, new_credential, reject, stored_version,
};

async fn past_the_limit_a_new_token_is_refused_and_nothing_is_written(store: Store) {
    let credential = new_credential();
    let issue = Issue {
        limit: reject(3),
        ..Issue::new(credential)
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(issue.ok(&store).await);
    }

    // Even a newer policy is not written by a refused issuance.
    let refused = Issue {
        policy: active(2),
        ..issue.clone()
    };
    let (hash, result) = refused.run(&store).await;
    assert!(
        matches!(result, Err(StoreIssueError::LimitReached(3))),
        "{result:?}"
    );
    assert!(!holds(&store, credential, &hash).await);
    assert_eq!(count_held(&store, credential, &held).await, 3);
    assert_eq!(stored_version(&store, credential).await, Some(1));
}

async fn past_the_limit_the_token_closest_to_expiry_is_evicted(store: Store) {
    let credential = new_credential();
    let now = unix_now();
    let issue_expiring_in = |seconds: i64| Issue {
        limit: evict(3),
        expires_at: now + seconds,
        ..Issue::new(credential)
    };
    // Issued out of expiry order: eviction follows expiry, not issuance.
    let middle = issue_expiring_in(200).ok(&store).await;
    let oldest = issue_expiring_in(100).ok(&store).await;
    let newest = issue_expiring_in(300).ok(&store).await;

    let (fourth, evicted) = issue_expiring_in(400).run(&store).await;
    assert_eq!(evicted.unwrap(), 1);
    assert!(
        !holds(&store, credential, &oldest).await,
        "the oldest token was evicted"
    );
    assert_eq!(
        count_held(&store, credential, &[middle, newest, fourth]).await,
        3
    );

    let (fifth, evicted) = issue_expiring_in(500).run(&store).await;
    assert_eq!(evicted.unwrap(), 1);
    assert!(!holds(&store, credential, &middle).await);
    assert_eq!(
        count_held(&store, credential, &[newest, fourth, fifth]).await,
        3,
        "the count stays at the limit"
    );
}

async fn a_lowered_limit_evicts_down_to_it(store: Store) {
    let credential = new_credential();
    let issue = Issue {
        limit: evict(5),
        ..Issue::new(credential)
    };
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(issue.ok(&store).await);
    }
    let lowered = Issue {
        limit: evict(2),
        ..issue
    };
    let (hash, evicted) = lowered.run(&store).await;
    assert_eq!(
        evicted.unwrap(),
        4,
        "down to one below the limit, then the new token"
    );
    held.push(hash);
    assert_eq!(count_held(&store, credential, &held).await, 2);
}

/// Issues `attempts` tokens at once (limit 10, `evict_oldest` as given) and
/// returns the hashes with each answer.
async fn issue_concurrently(
    store: &Store,
    issue: &Issue,
    attempts: usize,
) -> Vec<(latchkey_token::TokenHash, Result<u32, StoreIssueError>)> {
    let mut tasks = JoinSet::new();
    for _ in 0..attempts {
        let store = store.clone();
        let issue = issue.clone();
        tasks.spawn(async move { issue.run(&store).await });
    }
    let mut answers = Vec::with_capacity(attempts);
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    answers
}

async fn concurrent_issuances_never_exceed_the_limit(store: Store) {
    let credential = new_credential();
    let refusing = Issue {
        limit: reject(10),
        ..Issue::new(credential)
    };
    let answers = issue_concurrently(&store, &refusing, 50).await;
    let accepted: Vec<_> = answers
        .iter()
        .filter(|(_, result)| result.is_ok())
        .map(|(hash, _)| *hash)
        .collect();
    let refused = answers
        .iter()
        .filter(|(_, result)| matches!(result, Err(StoreIssueError::LimitReached(10))))
        .count();
    assert_eq!(accepted.len(), 10);
    assert_eq!(refused, 40);
    let all: Vec<_> = answers.iter().map(|(hash, _)| *hash).collect();
    assert_eq!(count_held(&store, credential, &all).await, 10);
    assert_eq!(count_held(&store, credential, &accepted).await, 10);

    let other = new_credential();
    let evicting = Issue {
        limit: evict(10),
        ..Issue::new(other)
    };
    let answers = issue_concurrently(&store, &evicting, 50).await;
    let evicted: u32 = answers
        .iter()
        .map(|(_, result)| *result.as_ref().unwrap())
        .sum();
    assert_eq!(evicted, 40);
    let all: Vec<_> = answers.iter().map(|(hash, _)| *hash).collect();
    assert_eq!(count_held(&store, other, &all).await, 10);
}

on_both_stores!(
    past_the_limit_a_new_token_is_refused_and_nothing_is_written,
    past_the_limit_the_token_closest_to_expiry_is_evicted,
    a_lowered_limit_evicts_down_to_it,
    concurrent_issuances_never_exceed_the_limit,
);
