//! Counting failed authentications, the brute-force limit's memory.

use latchkey_token::{FailureGuard, GuardCheck};

use crate::support::Store;

async fn failures_count_up_within_their_window(store: Store) {
    let key = format!("client:lkc_{}", uuid::Uuid::now_v7().simple());
    assert_eq!(
        store.failures(&key).await.unwrap().count,
        0,
        "nothing counted yet"
    );
    for expected in 1..=3 {
        let counted = store.record_failure(&key, 60).await.unwrap();
        assert_eq!(counted.count, expected);
        assert!((1..=60).contains(&counted.resets_in), "{counted:?}");
    }
    let read = store.failures(&key).await.unwrap();
    assert_eq!(read.count, 3);
    assert!((1..=60).contains(&read.resets_in));
}

async fn keys_are_counted_apart(store: Store) {
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let (first, second) = (
        format!("ip:10.0.0.1:{suffix}"),
        format!("ip:10.0.0.2:{suffix}"),
    );
    store.record_failure(&first, 60).await.unwrap();
    store.record_failure(&first, 60).await.unwrap();
    assert_eq!(store.failures(&first).await.unwrap().count, 2);
    assert_eq!(store.failures(&second).await.unwrap().count, 0);

    // Read together (as every token request does), each in its place.
    let third = format!("client:lkc_{suffix}");
    store.record_failure(&third, 60).await.unwrap();
    let together = store.failures_of(&[&second, &first, &third]).await.unwrap();
    let counts: Vec<u32> = together.iter().map(|counted| counted.count).collect();
    assert_eq!(counts, [0, 2, 1]);
    assert_eq!(together[0].resets_in, 0, "nothing counted, no window");
    assert!(
        together[1..]
            .iter()
            .all(|counted| (1..=60).contains(&counted.resets_in)),
        "{together:?}"
    );
}

async fn a_window_ends_and_counting_starts_over(store: Store) {
    let key = format!("client:{}", uuid::Uuid::now_v7().simple());
    store.record_failure(&key, 1).await.unwrap();
    // A window is a point in time; the honest test waits for its end.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(store.failures(&key).await.unwrap().count, 0);
    assert_eq!(store.record_failure(&key, 1).await.unwrap().count, 1);
}

/// A counter at its limit refuses the verification that names it as a
/// guard, with the seconds left in its window; under the limit it passes.
async fn a_guard_at_its_limit_refuses(store: Store) {
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let (pair, address) = (
        format!("pair:10.0.0.1:lkc_{suffix}"),
        format!("ip:{suffix}"),
    );
    for _ in 0..3 {
        store.record_failure(&address, 60).await.unwrap();
    }
    let guards = |address_limit: u32| {
        [
            FailureGuard {
                key: &pair,
                limit: 5,
            },
            FailureGuard {
                key: &address,
                limit: address_limit,
            },
        ]
    };
    match store.check_guards(&guards(3)).await {
        Ok(GuardCheck::AtLimit { retry_after }) => {
            assert!((1..=60).contains(&retry_after), "{retry_after}");
        }
        other => panic!("expected AtLimit, got {other:?}"),
    }
    assert_eq!(
        store.check_guards(&guards(4)).await.unwrap(),
        GuardCheck::Clear
    );
}

on_both_stores!(
    a_guard_at_its_limit_refuses,
    failures_count_up_within_their_window,
    keys_are_counted_apart,
    a_window_ends_and_counting_starts_over,
);
