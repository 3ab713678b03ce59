//! Usage rollups (issue 14): what issuers report adds up per credential,
//! minute and kind, a resent batch counts once, a bad batch writes
//! nothing, and `ListUsage` sums minutes into buckets for exactly the
//! callers allowed to see them.

use chrono::{DateTime, Duration, Utc};

use super::support::{Fixture, PROJECT, admin, code, manager, owner};
use crate::{
    Caller, ListUsage, MANAGE_SCOPE, RegistryError, UsageBucket, UsageGranularity, UsageKind,
    UsageReport, UsageRollup, now,
};

/// The start of the hour two hours ago: every minute used lies within the
/// last seven days and not in the future.
fn base() -> DateTime<Utc> {
    UsageGranularity::Hour.period_start(now()) - Duration::hours(2)
}

fn rollup(credential_id: &str, minute: DateTime<Utc>, kind: UsageKind, count: i64) -> UsageRollup {
    UsageRollup {
        credential_id: credential_id.into(),
        project_id: PROJECT.into(),
        minute,
        kind,
        count,
        first_time: minute + Duration::seconds(10),
        last_time: minute + Duration::seconds(50),
        addresses: vec!["10.0.0.1".parse().unwrap()],
        more_addresses: false,
    }
}

fn batch(rollups: Vec<UsageRollup>) -> UsageReport {
    UsageReport {
        uses: Vec::new(),
        rollups,
        batch_id: uuid::Uuid::now_v7().to_string(),
    }
}

async fn record(fixture: &Fixture, rollups: Vec<UsageRollup>) {
    fixture
        .registry
        .record_usage_report(batch(rollups))
        .await
        .expect("record the batch");
}

async fn list(
    fixture: &Fixture,
    caller: &Caller,
    input: ListUsage,
) -> Result<Vec<UsageBucket>, RegistryError> {
    let input = ListUsage {
        project_id: if input.project_id.is_empty() {
            PROJECT.into()
        } else {
            input.project_id
        },
        start_time: input.start_time.or(Some(base())),
        ..input
    };
    let (buckets, next) = fixture.registry.list_usage(caller, input).await?;
    assert!(next.is_empty(), "one page");
    Ok(buckets)
}

/// Alice's and Bob's credentials (Bob a member, so a backend can act for
/// him).
async fn two_credentials(fixture: &Fixture) -> (String, String) {
    fixture.member("bob", &[]).await;
    let alices = fixture.create(&manager(), "alice", "a", &[]).await.unwrap();
    let bobs = fixture.create(&manager(), "bob", "b", &[]).await.unwrap();
    (alices.credential.id, bobs.credential.id)
}

#[tokio::test]
async fn minutes_sum_into_buckets_newest_first_then_by_credential() {
    let fixture = Fixture::new().await;
    let (alice, bob) = two_credentials(&fixture).await;
    let hour = base();
    let next_hour = hour + Duration::hours(1);
    record(
        &fixture,
        vec![
            rollup(&alice, hour, UsageKind::TokenIssued, 3),
            rollup(
                &alice,
                hour + Duration::minutes(5),
                UsageKind::TokenIssued,
                4,
            ),
            rollup(
                &alice,
                hour + Duration::minutes(5),
                UsageKind::TokenRevoked,
                1,
            ),
            rollup(
                &bob,
                hour + Duration::minutes(59),
                UsageKind::TokenIssued,
                2,
            ),
            rollup(&alice, next_hour, UsageKind::TokenIssued, 7),
        ],
    )
    .await;
    // Another issuer's rollup of the same minute adds up.
    record(
        &fixture,
        vec![rollup(&alice, hour, UsageKind::TokenIssued, 10)],
    )
    .await;

    let buckets = list(&fixture, &manager(), ListUsage::default())
        .await
        .unwrap();
    let summary: Vec<_> = buckets
        .iter()
        .map(|b| {
            (
                b.start_time,
                b.credential_id.as_str(),
                b.tokens_issued,
                b.tokens_revoked,
            )
        })
        .collect();
    let mut expected = vec![(hour, alice.as_str(), 17, 1), (hour, bob.as_str(), 2, 0)];
    expected.sort_by_key(|(_, id, _, _)| *id);
    expected.insert(0, (next_hour, alice.as_str(), 7, 0));
    assert_eq!(summary, expected);
    let alices_hour = buckets
        .iter()
        .find(|b| b.start_time == hour && b.credential_id == alice)
        .unwrap();
    assert_eq!(
        alices_hour.granularity,
        UsageGranularity::Hour,
        "the default"
    );
    assert_eq!(alices_hour.first_time, hour + Duration::seconds(10));
    assert_eq!(
        alices_hour.last_time,
        hour + Duration::minutes(5) + Duration::seconds(50)
    );
    assert_eq!(
        alices_hour.addresses,
        ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );

    let by_minute = list(
        &fixture,
        &manager(),
        ListUsage {
            credential_id: alice.clone(),
            granularity: Some(UsageGranularity::Minute),
            ..ListUsage::default()
        },
    )
    .await
    .unwrap();
    let counts: Vec<_> = by_minute
        .iter()
        .map(|b| (b.start_time, b.tokens_issued))
        .collect();
    assert_eq!(
        counts,
        [(next_hour, 7), (hour + Duration::minutes(5), 4), (hour, 13)]
    );
    let by_day = list(
        &fixture,
        &manager(),
        ListUsage {
            start_time: Some(base() - Duration::days(1)),
            granularity: Some(UsageGranularity::Day),
            credential_id: alice.clone(),
            ..ListUsage::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        by_day.iter().map(|b| b.tokens_issued).sum::<i64>(),
        24,
        "a day (or two, across midnight) holds every minute"
    );
}

#[tokio::test]
async fn addresses_unite_across_minutes_up_to_the_cap() {
    let fixture = Fixture::new().await;
    let (alice, bob) = two_credentials(&fixture).await;
    let hour = base();
    let addresses = |range: std::ops::Range<u8>| {
        range
            .map(|n| std::net::IpAddr::from([10, 0, 1, n]))
            .collect::<Vec<_>>()
    };
    let mut first = rollup(&alice, hour, UsageKind::TokenIssued, 1);
    first.addresses = addresses(0..20);
    let mut second = rollup(
        &alice,
        hour + Duration::minutes(1),
        UsageKind::TokenIssued,
        1,
    );
    second.addresses = addresses(15..32);
    let mut flagged = rollup(&bob, hour, UsageKind::TokenIssued, 1);
    flagged.more_addresses = true;
    record(&fixture, vec![first, second, flagged]).await;

    let of = |buckets: &[UsageBucket], id: &str| {
        buckets
            .iter()
            .find(|b| b.credential_id == id)
            .cloned()
            .unwrap()
    };
    let buckets = list(&fixture, &manager(), ListUsage::default())
        .await
        .unwrap();
    let alices = of(&buckets, &alice);
    assert_eq!(
        alices.addresses,
        addresses(0..32),
        "32 distinct: all of them"
    );
    assert!(!alices.more_addresses);
    assert!(
        of(&buckets, &bob).more_addresses,
        "an issuer's flag carries over"
    );

    let mut third = rollup(
        &alice,
        hour + Duration::minutes(2),
        UsageKind::TokenRevoked,
        1,
    );
    third.addresses = addresses(30..40);
    record(&fixture, vec![third]).await;
    let buckets = list(&fixture, &manager(), ListUsage::default())
        .await
        .unwrap();
    let alices = of(&buckets, &alice);
    assert_eq!(
        alices.addresses,
        addresses(0..32),
        "cut at 32, lowest first"
    );
    assert!(alices.more_addresses, "40 seen, 32 listed");
}

#[tokio::test]
async fn a_resent_batch_counts_once_and_a_bad_batch_writes_nothing() {
    let fixture = Fixture::new().await;
    let (alice, _) = two_credentials(&fixture).await;
    let hour = base();
    let sent = batch(vec![rollup(&alice, hour, UsageKind::TokenIssued, 5)]);
    for _ in 0..2 {
        fixture
            .registry
            .record_usage_report(sent.clone())
            .await
            .unwrap();
    }
    let mut bad = rollup(
        &alice,
        hour + Duration::minutes(1),
        UsageKind::TokenIssued,
        1,
    );
    bad.count = 0;
    let refused = fixture
        .registry
        .record_usage_report(batch(vec![
            rollup(&alice, hour, UsageKind::TokenIssued, 100),
            bad,
        ]))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().starts_with("rollups[1].count:"),
        "{refused}"
    );
    // A rollup of a credential deleted since (or never known) is skipped.
    record(
        &fixture,
        vec![rollup(
            &uuid::Uuid::now_v7().to_string(),
            hour,
            UsageKind::TokenIssued,
            9,
        )],
    )
    .await;
    let buckets = list(&fixture, &manager(), ListUsage::default())
        .await
        .unwrap();
    assert_eq!(buckets.len(), 1);
    assert_eq!(
        buckets[0].tokens_issued, 5,
        "counted once, the bad batch not at all"
    );
}

#[tokio::test]
async fn pages_follow_the_order_and_bind_the_filter() {
    let fixture = Fixture::new().await;
    let (alice, bob) = two_credentials(&fixture).await;
    let hour = base();
    record(
        &fixture,
        vec![
            rollup(&alice, hour, UsageKind::TokenIssued, 1),
            rollup(&bob, hour, UsageKind::TokenIssued, 2),
            rollup(&alice, hour + Duration::hours(1), UsageKind::TokenIssued, 3),
        ],
    )
    .await;
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let (buckets, next) = fixture
            .registry
            .list_usage(
                &manager(),
                ListUsage {
                    project_id: PROJECT.into(),
                    start_time: Some(base()),
                    page_size: 1,
                    page_token: page_token.clone(),
                    ..ListUsage::default()
                },
            )
            .await
            .unwrap();
        assert!(buckets.len() <= 1);
        seen.extend(buckets.into_iter().map(|b| b.tokens_issued));
        if next.is_empty() {
            break;
        }
        page_token = next;
        let other_filter = fixture
            .registry
            .list_usage(
                &manager(),
                ListUsage {
                    project_id: PROJECT.into(),
                    granularity: Some(UsageGranularity::Minute),
                    start_time: Some(base()),
                    page_size: 1,
                    page_token: page_token.clone(),
                    ..ListUsage::default()
                },
            )
            .await;
        assert_eq!(code(other_filter), "INVALID_ARGUMENT");
    }
    let hour_counts = if alice < bob { [1, 2] } else { [2, 1] };
    assert_eq!(seen, [3, hour_counts[0], hour_counts[1]]);
    let backwards = fixture
        .registry
        .list_usage(
            &manager(),
            ListUsage {
                project_id: PROJECT.into(),
                start_time: Some(now()),
                end_time: Some(now() - Duration::hours(2)),
                ..ListUsage::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        backwards.to_string().starts_with("end_time:"),
        "{backwards}"
    );
}

#[tokio::test]
async fn each_caller_sees_only_the_usage_it_may() {
    let fixture = Fixture::new().await;
    let (alice, bob) = two_credentials(&fixture).await;
    let hour = base();
    record(
        &fixture,
        vec![
            rollup(&alice, hour, UsageKind::TokenIssued, 1),
            rollup(&bob, hour, UsageKind::TokenIssued, 2),
        ],
    )
    .await;
    let credentials = |buckets: Vec<UsageBucket>| {
        buckets
            .into_iter()
            .map(|bucket| bucket.credential_id)
            .collect::<Vec<_>>()
    };
    let mut everyone = vec![alice.clone(), bob.clone()];
    everyone.sort();
    assert_eq!(
        credentials(
            list(&fixture, &admin(), ListUsage::default())
                .await
                .unwrap()
        ),
        everyone
    );
    assert_eq!(
        credentials(
            list(&fixture, &manager(), ListUsage::default())
                .await
                .unwrap()
        ),
        everyone
    );
    let alice_login = owner("alice", &[]);
    assert_eq!(
        credentials(
            list(&fixture, &alice_login, ListUsage::default())
                .await
                .unwrap()
        ),
        std::slice::from_ref(&alice)
    );
    let for_bob = fixture
        .registry
        .act_on_behalf(manager(), "on_behalf_of", "bob")
        .await
        .unwrap();
    assert_eq!(
        credentials(
            list(&fixture, &for_bob, ListUsage::default())
                .await
                .unwrap()
        ),
        std::slice::from_ref(&bob)
    );
    let naming_bobs = ListUsage {
        credential_id: bob.clone(),
        ..ListUsage::default()
    };
    assert_eq!(
        code(list(&fixture, &alice_login, naming_bobs.clone()).await),
        "NOT_FOUND"
    );
    assert_eq!(
        credentials(list(&fixture, &manager(), naming_bobs).await.unwrap()),
        std::slice::from_ref(&bob)
    );

    // Another project's manager gets the answer of a project that does
    // not exist; an admin asking for a missing project gets NOT_FOUND.
    let stranger = Caller {
        project_id: "globex".into(),
        ..manager()
    };
    let acme = list(&fixture, &stranger, ListUsage::default()).await;
    let missing = list(
        &fixture,
        &stranger,
        ListUsage {
            project_id: "nowhere".into(),
            ..ListUsage::default()
        },
    )
    .await;
    assert_eq!(code(acme), "PERMISSION_DENIED");
    assert_eq!(code(missing), "PERMISSION_DENIED");
    let admin_missing = list(
        &fixture,
        &admin(),
        ListUsage {
            project_id: "nowhere".into(),
            ..ListUsage::default()
        },
    )
    .await;
    assert_eq!(code(admin_missing), "NOT_FOUND");
    let no_scope = Caller {
        scopes: vec!["compute.read".into()],
        ..manager()
    };
    assert_eq!(
        code(list(&fixture, &no_scope, ListUsage::default()).await),
        "PERMISSION_DENIED"
    );
    assert!(manager().scopes.contains(&MANAGE_SCOPE.to_owned()));
}

#[tokio::test]
async fn retention_removes_old_minutes_and_keeps_recent_ones() {
    let fixture = Fixture::new().await;
    let (alice, _) = two_credentials(&fixture).await;
    let old = UsageGranularity::Minute.period_start(now() - Duration::days(3));
    let recent = UsageGranularity::Minute.period_start(now() - Duration::minutes(2));
    record(
        &fixture,
        vec![
            rollup(&alice, old, UsageKind::TokenIssued, 1),
            rollup(&alice, recent, UsageKind::TokenIssued, 2),
        ],
    )
    .await;
    let deleted = fixture
        .registry
        .purge_usage(now() - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let buckets = list(
        &fixture,
        &manager(),
        ListUsage {
            start_time: Some(now() - Duration::days(4)),
            granularity: Some(UsageGranularity::Minute),
            ..ListUsage::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        buckets.iter().map(|b| b.start_time).collect::<Vec<_>>(),
        [recent]
    );
}
