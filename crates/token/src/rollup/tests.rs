//! The accumulator's rules: minutes, exact counts under concurrency, the
//! address cap, batches kept whole across failed deliveries, bounded
//! memory.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;

const CREDENTIAL: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

/// `seconds` (and `millis`) after the epoch.
fn at(seconds: u64, millis: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Every rollup of `batches`, sorted by credential, minute and kind.
fn rollups_of(batches: &[RollupBatch]) -> Vec<UsageRollup> {
    let mut rollups: Vec<UsageRollup> = batches
        .iter()
        .flat_map(|batch| batch.rollups.iter().cloned())
        .collect();
    rollups.sort_by_key(|rollup| {
        (
            rollup.credential_id.clone(),
            rollup.minute,
            rollup.kind == UsageKind::Revoked,
        )
    });
    rollups
}

#[test]
fn counts_per_credential_minute_and_kind_with_first_and_last_times() {
    let rollups = UsageRollups::default();
    let a = ip("10.0.0.1");
    // 1_700_000_040 is a whole minute.
    rollups.record(
        CREDENTIAL,
        "acme",
        UsageKind::Issued,
        at(1_700_000_041, 500),
        a,
    );
    rollups.record(
        CREDENTIAL,
        "acme",
        UsageKind::Issued,
        at(1_700_000_040, 0),
        a,
    );
    rollups.record(
        CREDENTIAL,
        "acme",
        UsageKind::Issued,
        at(1_700_000_099, 999),
        a,
    );
    // The next minute starts a new rollup, and so does another kind.
    rollups.record(
        CREDENTIAL,
        "acme",
        UsageKind::Issued,
        at(1_700_000_100, 0),
        a,
    );
    rollups.record(
        CREDENTIAL,
        "acme",
        UsageKind::Revoked,
        at(1_700_000_050, 0),
        a,
    );
    rollups.record(
        "other",
        "globex",
        UsageKind::Issued,
        at(1_700_000_050, 0),
        a,
    );
    assert_eq!(rollups.pending(), 4);

    let batches = rollups.drain();
    assert_eq!(batches.len(), 1);
    assert_eq!(rollups.pending(), 0);
    let found: Vec<_> = rollups_of(&batches)
        .into_iter()
        .map(|r| {
            (
                r.credential_id,
                r.project_id,
                r.minute,
                r.kind,
                r.count,
                r.first_time,
                r.last_time,
            )
        })
        .collect();
    let (credential, project) = (CREDENTIAL.to_owned(), "acme".to_owned());
    assert_eq!(
        found,
        [
            (
                credential.clone(),
                project.clone(),
                at(1_700_000_040, 0),
                UsageKind::Issued,
                3,
                at(1_700_000_040, 0),
                at(1_700_000_099, 999)
            ),
            (
                credential.clone(),
                project.clone(),
                at(1_700_000_040, 0),
                UsageKind::Revoked,
                1,
                at(1_700_000_050, 0),
                at(1_700_000_050, 0)
            ),
            (
                credential.clone(),
                project.clone(),
                at(1_700_000_100, 0),
                UsageKind::Issued,
                1,
                at(1_700_000_100, 0),
                at(1_700_000_100, 0)
            ),
            (
                "other".to_owned(),
                "globex".to_owned(),
                at(1_700_000_040, 0),
                UsageKind::Issued,
                1,
                at(1_700_000_050, 0),
                at(1_700_000_050, 0)
            ),
        ]
    );
    assert!(rollups.drain().is_empty(), "everything was handed out");
}

#[test]
fn lists_at_most_32_distinct_addresses_then_says_there_were_more() {
    let rollups = UsageRollups::default();
    let time = at(1_700_000_040, 0);
    let record = |address: IpAddr| {
        rollups.record(CREDENTIAL, "acme", UsageKind::Issued, time, address);
    };
    // The same address twice, and once more as IPv4-mapped IPv6: one entry.
    record(ip("10.0.0.0"));
    record(ip("10.0.0.0"));
    record(ip("::ffff:10.0.0.0"));
    for n in 1..MAX_ROLLUP_ADDRESSES as u8 {
        record(IpAddr::from([10, 0, 0, n]));
    }
    let full = rollups_of(&rollups.drain()).remove(0);
    assert_eq!(full.addresses.len(), MAX_ROLLUP_ADDRESSES);
    assert!(!full.more_addresses, "exactly 32 seen: none left out");
    assert_eq!(full.count, 3 + 31);
    assert_eq!(full.addresses[0], ip("10.0.0.0"));

    for n in 0..=MAX_ROLLUP_ADDRESSES as u8 {
        record(IpAddr::from([10, 0, 1, n]));
    }
    record(ip("2001:db8::1"));
    let over = rollups_of(&rollups.drain()).remove(0);
    assert_eq!(over.addresses.len(), MAX_ROLLUP_ADDRESSES);
    assert!(over.more_addresses);
    assert_eq!(over.count, 34);
    let distinct: HashSet<_> = over.addresses.iter().collect();
    assert_eq!(distinct.len(), MAX_ROLLUP_ADDRESSES, "no duplicates");
    assert!(!over.addresses.contains(&ip("2001:db8::1")));
}

#[test]
fn counts_exactly_with_many_threads_recording_while_batches_are_drained() {
    const THREADS: usize = 8;
    const PER_THREAD: u64 = 20_000;
    let rollups = Arc::new(UsageRollups::default());
    let credentials: Vec<String> = (0..50).map(|n| format!("credential-{n}")).collect();
    let recorders: Vec<_> = (0..THREADS)
        .map(|thread| {
            let rollups = rollups.clone();
            let credentials = credentials.clone();
            std::thread::spawn(move || {
                for n in 0..PER_THREAD {
                    let credential = &credentials[(n as usize + thread) % credentials.len()];
                    let kind = if n % 10 == 0 {
                        UsageKind::Revoked
                    } else {
                        UsageKind::Issued
                    };
                    // Spread over three minutes and a few addresses.
                    let time = at(1_700_000_040 + (n % 180), 0);
                    let address = IpAddr::from([10, 0, thread as u8, (n % 5) as u8]);
                    rollups.record(credential, "acme", kind, time, address);
                }
            })
        })
        .collect();
    let mut batches = Vec::new();
    while recorders.iter().any(|recorder| !recorder.is_finished()) {
        batches.extend(rollups.drain());
        std::thread::yield_now();
    }
    for recorder in recorders {
        recorder.join().unwrap();
    }
    batches.extend(rollups.drain());

    let total: u64 = batches.iter().map(RollupBatch::token_count).sum();
    assert_eq!(total, THREADS as u64 * PER_THREAD);
    let revoked: u64 = batches
        .iter()
        .flat_map(|batch| &batch.rollups)
        .filter(|rollup| rollup.kind == UsageKind::Revoked)
        .map(|rollup| rollup.count)
        .sum();
    assert_eq!(revoked, THREADS as u64 * PER_THREAD / 10);
    assert_eq!(rollups.dropped(), 0);
    assert_eq!(rollups.pending(), 0);
    // Within one batch, one rollup per credential, minute and kind.
    for batch in &batches {
        let keys: HashSet<_> = batch
            .rollups
            .iter()
            .map(|rollup| (&rollup.credential_id, rollup.minute, rollup.kind))
            .collect();
        assert_eq!(keys.len(), batch.rollups.len());
    }
}

#[test]
fn a_failed_batch_comes_back_unchanged_with_its_id_ahead_of_newer_ones() {
    let rollups = UsageRollups::with_limits(100, 2);
    for n in 0..5 {
        rollups.record(
            &format!("credential-{n}"),
            "acme",
            UsageKind::Issued,
            at(1_700_000_040, 0),
            ip("10.0.0.1"),
        );
    }
    let first = rollups.drain();
    // Split at the batch size, each batch with its own ID.
    assert_eq!(
        first.iter().map(|b| b.rollups.len()).collect::<Vec<_>>(),
        [2, 2, 1]
    );
    let ids: HashSet<_> = first.iter().map(|b| b.batch_id.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(first.iter().all(|b| {
        uuid::Uuid::parse_str(&b.batch_id)
            .unwrap()
            .get_version_num()
            == 7
    }));

    // The first batch went through; the other two failed and are put back.
    let failed = first[1..].to_vec();
    rollups.restore(failed.clone());
    assert_eq!(rollups.pending(), 3);
    // Meanwhile the same credential is used again in the same minute.
    rollups.record(
        "credential-4",
        "acme",
        UsageKind::Issued,
        at(1_700_000_041, 0),
        ip("10.0.0.1"),
    );
    let second = rollups.drain();
    assert_eq!(second.len(), 3);
    assert_eq!(
        second[..2],
        failed[..],
        "same batches, same IDs, same counts"
    );
    assert!(
        !ids.contains(&second[2].batch_id),
        "newer uses in a new batch"
    );
    assert_eq!(second[2].rollups[0].count, 1);
    assert_eq!(rollups.pending(), 0);
}

#[test]
fn memory_stays_bounded_while_nothing_is_delivered_and_drops_are_counted() {
    let rollups = UsageRollups::with_limits(3, MAX_ROLLUPS_PER_BATCH);
    let time = at(1_700_000_040, 0);
    let record = |credential: &str| {
        rollups.record(credential, "acme", UsageKind::Issued, time, ip("10.0.0.1"));
    };
    for credential in ["a", "b", "c", "d", "e"] {
        record(credential);
    }
    assert_eq!(rollups.pending(), 3);
    assert_eq!(rollups.dropped(), 2);
    // A rollup that exists keeps counting: it needs no more room.
    record("a");
    assert_eq!(rollups.dropped(), 2);

    // Undelivered batches hold their room; nothing new fits meanwhile.
    let batches = rollups.drain();
    assert_eq!(rollups_of(&batches)[0].count, 2);
    rollups.restore(batches);
    record("f");
    assert_eq!((rollups.pending(), rollups.dropped()), (3, 3));

    // A batch refused as invalid is given up, and its tokens counted.
    for batch in rollups.drain() {
        rollups.discard(batch);
    }
    assert_eq!(rollups.dropped(), 3 + 4);
    assert_eq!(rollups.pending(), 0);
    record("f");
    assert_eq!(rollups.pending(), 1);
}
