//! Token usage rollups (issue 14) through a real registry: issuers'
//! `UsageSink.Record` batches add up exactly under concurrency, a resent
//! batch counts once, a refused batch writes nothing, retention purges old
//! minutes, and `ListUsage` answers each caller with what it may see.

use chrono::{DateTime, Duration, Utc};
use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::usage_sink_client::UsageSinkClient;
use latchkey_registry::{
    Caller, CreateCredential, ListUsage, NoTokenSync, UsageGranularity, UsageKind, UsageReport,
    UsageRollup,
};
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{
    Client, assert_refused, create_credential, create_project, management_client, new_credential,
    registry_with_sync,
};

fn timestamp(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap(),
    })
}

/// A whole minute `minutes_ago` minutes back.
fn minute(minutes_ago: i64) -> DateTime<Utc> {
    UsageGranularity::Minute.period_start(Utc::now() - Duration::minutes(minutes_ago))
}

fn rollup(
    credential: &pb::Credential,
    at: DateTime<Utc>,
    count: i64,
    addresses: &[&str],
) -> pb::UsageRollup {
    pb::UsageRollup {
        credential_id: credential.id.clone(),
        project_id: credential.project_id.clone(),
        minute: timestamp(at),
        kind: pb::UsageKind::TokenIssued.into(),
        count,
        first_time: timestamp(at + Duration::seconds(1)),
        last_time: timestamp(at + Duration::seconds(58)),
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
        more_addresses: false,
    }
}

fn batch(rollups: Vec<pb::UsageRollup>) -> pb::RecordRequest {
    pb::RecordRequest {
        uses: Vec::new(),
        rollups,
        batch_id: uuid::Uuid::now_v7().to_string(),
    }
}

async fn usage(client: &mut Client, request: pb::ListUsageRequest) -> Vec<pb::UsageBucket> {
    client
        .list_usage(request)
        .await
        .expect("list usage")
        .into_inner()
        .buckets
}

fn by_minute(project_id: &str) -> pb::ListUsageRequest {
    pb::ListUsageRequest {
        project_id: project_id.to_owned(),
        granularity: pb::UsageGranularity::Minute.into(),
        ..Default::default()
    }
}

async fn concurrent_rollups_add_up_exactly_and_count_once(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project(&mut admin, "acme").await;
    let (credential, secret) = create_credential(&mut admin, new_credential("acme", "alice")).await;
    let (busy, shared) = (minute(3), minute(2));

    // Eight issuers report the same credential and minute at once, and
    // all of them another minute too.
    let mut sends = tokio::task::JoinSet::new();
    for issuer in 0..8_i64 {
        let mut sink = UsageSinkClient::new(stack.registry.internal_channel());
        let address = format!("10.0.0.{issuer}");
        let request = batch(vec![
            rollup(&credential, busy, 1000 + issuer, &[&address]),
            rollup(&credential, shared, 1, &[]),
        ]);
        sends.spawn(async move { sink.record(request).await });
    }
    for answer in sends.join_all().await {
        answer.expect("every batch recorded");
    }
    // A batch resent after a lost answer counts once.
    let mut sink = UsageSinkClient::new(stack.registry.internal_channel());
    let resent = batch(vec![rollup(&credential, busy, 5, &["10.0.0.99"])]);
    sink.record(resent.clone()).await.unwrap();
    sink.record(resent).await.unwrap();

    let buckets = usage(&mut admin, by_minute("acme")).await;
    let counts: Vec<_> = buckets
        .iter()
        .map(|b| (b.start_time, b.tokens_issued))
        .collect();
    assert_eq!(
        counts,
        [
            (timestamp(shared), 8),
            (timestamp(busy), 8 * 1000 + (0..8).sum::<i64>() + 5),
        ]
    );
    let busy_bucket = &buckets[1];
    assert_eq!(
        busy_bucket.addresses.len(),
        9,
        "{:?}",
        busy_bucket.addresses
    );
    assert!(!busy_bucket.more_addresses);
    assert_eq!(
        busy_bucket.first_time,
        timestamp(busy + Duration::seconds(1))
    );
    assert_eq!(
        busy_bucket.last_time,
        timestamp(busy + Duration::seconds(58))
    );
    // Nothing secret in the answer.
    let answer = format!("{buckets:?}");
    assert!(!answer.contains(&secret), "{answer}");
    assert!(!answer.contains(&credential.client_id), "{answer}");

    let hourly = usage(
        &mut admin,
        pb::ListUsageRequest {
            project_id: "acme".into(),
            credential_id: credential.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        hourly.iter().map(|b| b.tokens_issued).sum::<i64>(),
        8 * 1000 + 28 + 5 + 8,
        "the hours (one, or two across the hour) hold every minute"
    );
    assert!(
        hourly
            .iter()
            .all(|b| b.granularity == i32::from(pb::UsageGranularity::Hour))
    );
}

async fn a_refused_batch_writes_nothing(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project(&mut admin, "acme").await;
    let (credential, _) = create_credential(&mut admin, new_credential("acme", "alice")).await;
    let mut sink = UsageSinkClient::new(stack.registry.internal_channel());
    let good = rollup(&credential, minute(2), 4, &["10.0.0.1"]);
    let bad = |change: fn(&mut pb::UsageRollup), field: &str| {
        let mut second = rollup(&credential, minute(3), 1, &[]);
        change(&mut second);
        (batch(vec![good.clone(), second]), field.to_owned())
    };
    let cases = [
        bad(|r| r.count = 0, "rollups[1].count"),
        bad(|r| r.minute = None, "rollups[1].minute"),
        bad(
            |r| r.minute.as_mut().unwrap().seconds += 7,
            "rollups[1].minute",
        ),
        bad(
            |r| r.minute.as_mut().unwrap().seconds += 3600,
            "rollups[1].minute",
        ),
        bad(|r| r.kind = 0, "rollups[1].kind"),
        bad(
            |r| r.addresses = vec!["10.0.0.300".into()],
            "rollups[1].addresses[0]",
        ),
        bad(
            |r| r.addresses = (0..33).map(|n| format!("10.0.1.{n}")).collect(),
            "rollups[1].addresses",
        ),
        bad(
            |r| r.project_id = "Not Valid".into(),
            "rollups[1].project_id",
        ),
        bad(
            |r| r.last_time.as_mut().unwrap().seconds += 60,
            "rollups[1].last_time",
        ),
    ];
    for (request, field) in cases {
        assert_refused(sink.record(request).await, Code::InvalidArgument, &field);
    }
    let mut no_batch_id = batch(vec![good.clone()]);
    no_batch_id.batch_id = String::new();
    assert_refused(
        sink.record(no_batch_id).await,
        Code::InvalidArgument,
        "batch_id",
    );
    let mut twice = batch(vec![good.clone(), good.clone()]);
    twice.uses = vec![pb::CredentialUse {
        credential_id: credential.id.clone(),
        time: timestamp(Utc::now()),
        ip: "10.0.0.1".into(),
    }];
    assert_refused(
        sink.record(twice).await,
        Code::InvalidArgument,
        "rollups[1]",
    );
    assert!(
        usage(&mut admin, by_minute("acme")).await.is_empty(),
        "nothing of a refused batch is written"
    );
    let stored = crate::support::get_credential(&mut admin, &credential.id).await;
    assert_eq!(stored.last_used_time, None, "not even its uses");
}

async fn usage_is_listed_for_the_right_callers_only(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut admin = stack.registry.client();
    create_project(&mut admin, "acme").await;
    create_project(&mut admin, "globex").await;
    let (alices, _) = create_credential(&mut admin, new_credential("acme", "alice")).await;
    let (bobs, _) = create_credential(&mut admin, new_credential("acme", "bob")).await;
    let (_, mut manager) =
        management_client(&stack, "acme", "console", &["credentials:manage"]).await;
    let (_, mut alice) = management_client(&stack, "acme", "alice", &["credentials:own"]).await;
    let (_, mut stranger) =
        management_client(&stack, "globex", "console", &["credentials:manage"]).await;
    let mut sink = UsageSinkClient::new(stack.registry.internal_channel());
    sink.record(batch(vec![
        rollup(&alices, minute(2), 1, &["10.0.0.1"]),
        rollup(&bobs, minute(2), 2, &["10.0.0.2"]),
    ]))
    .await
    .unwrap();

    // Only the two API keys whose usage was recorded above: the management
    // credentials' own tokens (issued through the real issuer) are usage
    // too, reported whenever the issuer's flush runs.
    let recorded = [alices.id.clone(), bobs.id.clone()];
    let credentials = |buckets: Vec<pb::UsageBucket>| {
        let mut ids: Vec<_> = buckets
            .into_iter()
            .map(|b| b.credential_id)
            .filter(|id| recorded.contains(id))
            .collect();
        ids.sort();
        ids
    };
    let mut everyone = vec![alices.id.clone(), bobs.id.clone()];
    everyone.sort();
    assert_eq!(
        credentials(usage(&mut manager, by_minute("acme")).await),
        everyone
    );
    assert_eq!(
        credentials(usage(&mut alice, by_minute("acme")).await),
        std::slice::from_ref(&alices.id),
        "an owner sees their own credentials' usage only"
    );
    assert_refused(
        alice
            .list_usage(pb::ListUsageRequest {
                credential_id: bobs.id.clone(),
                ..by_minute("acme")
            })
            .await,
        Code::NotFound,
        "not found",
    );
    let elsewhere = assert_refused(
        stranger.list_usage(by_minute("acme")).await,
        Code::PermissionDenied,
        "",
    );
    let nowhere = assert_refused(
        stranger.list_usage(by_minute("nowhere")).await,
        Code::PermissionDenied,
        "",
    );
    assert_eq!(
        elsewhere.message(),
        nowhere.message(),
        "another project looks like one that does not exist"
    );
    assert!(
        credentials(usage(&mut stranger, by_minute("globex")).await).is_empty(),
        "another project's usage never shows in this one"
    );
    assert_refused(
        admin
            .list_usage(pb::ListUsageRequest {
                granularity: 9,
                ..by_minute("acme")
            })
            .await,
        Code::InvalidArgument,
        "granularity",
    );
}

async fn retention_purges_old_minutes_and_keeps_recent_ones(backend: Backend) {
    let (registry, _database) = registry_with_sync(backend, std::sync::Arc::new(NoTokenSync)).await;
    let created = registry
        .create_credential(
            &Caller::bootstrap(),
            CreateCredential {
                project_id: "acme".into(),
                owner: "alice".into(),
                ..CreateCredential::default()
            },
        )
        .await
        .unwrap();
    let id = created.credential.id;
    let rollup_at = |at: DateTime<Utc>| UsageRollup {
        credential_id: id.clone(),
        project_id: "acme".into(),
        minute: at,
        kind: UsageKind::TokenIssued,
        count: 1,
        first_time: at,
        last_time: at,
        addresses: vec!["10.0.0.1".parse().unwrap()],
        more_addresses: false,
    };
    let old = minute(3 * 24 * 60);
    let recent = minute(2);
    registry
        .record_usage_report(UsageReport {
            uses: Vec::new(),
            rollups: vec![rollup_at(old), rollup_at(recent)],
            batch_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap();
    let deleted = registry
        .purge_usage(Utc::now() - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let (buckets, _) = registry
        .list_usage(
            &Caller::bootstrap(),
            ListUsage {
                project_id: "acme".into(),
                start_time: Some(Utc::now() - Duration::days(5)),
                granularity: Some(UsageGranularity::Minute),
                ..ListUsage::default()
            },
        )
        .await
        .unwrap();
    let kept: Vec<_> = buckets.iter().map(|b| b.start_time).collect();
    assert_eq!(kept, [recent]);
    assert_eq!(buckets[0].addresses.len(), 1, "its addresses kept too");
}

on_both_backends!(
    concurrent_rollups_add_up_exactly_and_count_once,
    a_refused_batch_writes_nothing,
    usage_is_listed_for_the_right_callers_only,
    retention_purges_old_minutes_and_keeps_recent_ones,
);
