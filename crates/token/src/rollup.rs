//! Usage rollups: successful token issues and revocations counted per
//! credential, minute and kind, instead of an audit event per token. The
//! registry gets them in batches (like last uses), so the database grows
//! with the number of credentials in use, not with the number of tokens.
//!
//! Recording runs on every issuance (tens of thousands a second on two
//! cores): the counters are split into shards by credential, each behind
//! its own mutex held for a map lookup, so concurrent issuances rarely
//! wait on each other and never on a flush. Memory is bounded: past a cap
//! on pending rollups (for instance while the registry is unreachable), a
//! use that would need a new rollup is dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Most distinct caller addresses one rollup lists.
pub const MAX_ROLLUP_ADDRESSES: usize = 32;

/// Most rollups in one batch (the registry's limit per `UsageSink.Record`).
pub const MAX_ROLLUPS_PER_BATCH: usize = 10_000;

/// Rollups kept while the registry does not take them: at most a few tens
/// of MB even with every rollup listing 32 addresses.
pub const DEFAULT_MAX_PENDING_ROLLUPS: usize = 100_000;

/// Shards of the counters: enough that two cores' worth of issuing threads
/// seldom meet on one mutex.
const SHARDS: usize = 32;

/// What a rollup counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageKind {
    /// Tokens issued to the credential.
    Issued,
    /// Tokens the credential's client revoked itself.
    Revoked,
}

/// One credential's tokens of one kind within one minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRollup {
    /// The credential.
    pub credential_id: String,
    /// Its project.
    pub project_id: String,
    /// The start of the minute counted (whole seconds, a multiple of 60).
    pub minute: SystemTime,
    /// What was counted.
    pub kind: UsageKind,
    /// How many; at least 1.
    pub count: u64,
    /// The first of them, within the minute.
    pub first_time: SystemTime,
    /// The last of them, within the minute and not before `first_time`.
    pub last_time: SystemTime,
    /// Distinct caller addresses in the order first seen, at most
    /// [`MAX_ROLLUP_ADDRESSES`] (IPv4-mapped IPv6 addresses as IPv4).
    pub addresses: Vec<IpAddr>,
    /// Whether more addresses were seen than listed.
    pub more_addresses: bool,
}

/// Rollups sent together, named by a UUIDv7 so that a batch sent again
/// after a lost answer is counted once by the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupBatch {
    /// The batch's ID; the same on every retry of this batch.
    pub batch_id: String,
    /// At most [`MAX_ROLLUPS_PER_BATCH`] rollups, at most one per
    /// credential, minute and kind.
    pub rollups: Vec<UsageRollup>,
}

impl RollupBatch {
    /// How many issues and revocations the batch counts.
    pub fn token_count(&self) -> u64 {
        self.rollups.iter().map(|rollup| rollup.count).sum()
    }
}

/// The rollups of one minute and kind being counted.
#[derive(Debug)]
struct Bucket {
    minute: u64,
    kind: UsageKind,
    count: u64,
    first_time: SystemTime,
    last_time: SystemTime,
    addresses: Vec<IpAddr>,
    more_addresses: bool,
}

impl Bucket {
    fn new(minute: u64, kind: UsageKind, time: SystemTime, ip: IpAddr) -> Self {
        Self {
            minute,
            kind,
            count: 1,
            first_time: time,
            last_time: time,
            addresses: vec![ip],
            more_addresses: false,
        }
    }

    fn add(&mut self, time: SystemTime, ip: IpAddr) {
        self.count += 1;
        // Calls finish out of order: keep the extremes, not the latest.
        self.first_time = self.first_time.min(time);
        self.last_time = self.last_time.max(time);
        if self.more_addresses || self.addresses.contains(&ip) {
            return;
        }
        if self.addresses.len() < MAX_ROLLUP_ADDRESSES {
            self.addresses.push(ip);
        } else {
            self.more_addresses = true;
        }
    }

    fn into_rollup(self, credential_id: &str, project_id: &str) -> UsageRollup {
        UsageRollup {
            credential_id: credential_id.to_owned(),
            project_id: project_id.to_owned(),
            minute: SystemTime::UNIX_EPOCH + Duration::from_secs(self.minute),
            kind: self.kind,
            count: self.count,
            first_time: self.first_time,
            last_time: self.last_time,
            addresses: self.addresses,
            more_addresses: self.more_addresses,
        }
    }
}

/// One credential's buckets: between two flushes, usually one or two.
#[derive(Debug)]
struct CredentialUsage {
    project_id: String,
    buckets: Vec<Bucket>,
}

type Shard = HashMap<String, CredentialUsage>;

/// Counts token issues and revocations into rollups and hands them out in
/// batches.
#[derive(Debug)]
pub struct UsageRollups {
    shards: Box<[Mutex<Shard>]>,
    shard_hasher: RandomState,
    /// Batches handed out whose delivery failed, oldest first.
    unsent: Mutex<VecDeque<RollupBatch>>,
    /// Rollups held: being counted or unsent.
    pending: AtomicUsize,
    max_pending: usize,
    max_per_batch: usize,
    dropped: AtomicU64,
}

impl Default for UsageRollups {
    fn default() -> Self {
        Self::with_limits(DEFAULT_MAX_PENDING_ROLLUPS, MAX_ROLLUPS_PER_BATCH)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere leaves counters that are still consistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The start of `time`'s minute, in seconds since the epoch.
fn minute_of(time: SystemTime) -> u64 {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    seconds - seconds % 60
}

impl UsageRollups {
    /// Rollups holding at most `max_pending` rollups (counted and unsent),
    /// handed out in batches of at most `max_per_batch`.
    pub fn with_limits(max_pending: usize, max_per_batch: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            shard_hasher: RandomState::new(),
            unsent: Mutex::default(),
            pending: AtomicUsize::new(0),
            max_pending: max_pending.max(1),
            max_per_batch: max_per_batch.clamp(1, MAX_ROLLUPS_PER_BATCH),
            dropped: AtomicU64::new(0),
        }
    }

    /// Counts one token of `kind` for `credential_id` (of `project_id`) at
    /// `time` from `ip`.
    pub fn record(
        &self,
        credential_id: &str,
        project_id: &str,
        kind: UsageKind,
        time: SystemTime,
        ip: IpAddr,
    ) {
        let minute = minute_of(time);
        let ip = ip.to_canonical();
        let index = self.shard_hasher.hash_one(credential_id) as usize % self.shards.len();
        let mut shard = lock(&self.shards[index]);
        if let Some(usage) = shard.get_mut(credential_id) {
            if let Some(bucket) = usage
                .buckets
                .iter_mut()
                .find(|bucket| bucket.minute == minute && bucket.kind == kind)
            {
                bucket.add(time, ip);
            } else if self.reserve() {
                usage.buckets.push(Bucket::new(minute, kind, time, ip));
            }
        } else if self.reserve() {
            shard.insert(
                credential_id.to_owned(),
                CredentialUsage {
                    project_id: project_id.to_owned(),
                    buckets: vec![Bucket::new(minute, kind, time, ip)],
                },
            );
        }
    }

    /// Takes room for one more rollup, or counts the use as dropped.
    fn reserve(&self) -> bool {
        let reserved = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |pending| {
                (pending < self.max_pending).then_some(pending + 1)
            })
            .is_ok();
        if !reserved {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        reserved
    }

    /// Hands out everything held: first the batches put back by
    /// [`restore`](Self::restore) (unchanged, with their IDs), then the
    /// rollups counted since the last call, in new batches.
    pub fn drain(&self) -> Vec<RollupBatch> {
        let mut batches: Vec<RollupBatch> = lock(&self.unsent).drain(..).collect();
        let mut handed_out: usize = batches.iter().map(|batch| batch.rollups.len()).sum();
        let mut rollups = Vec::new();
        for shard in self.shards.iter() {
            let taken = std::mem::take(&mut *lock(shard));
            for (credential_id, usage) in taken {
                handed_out += usage.buckets.len();
                rollups.extend(
                    usage
                        .buckets
                        .into_iter()
                        .map(|bucket| bucket.into_rollup(&credential_id, &usage.project_id)),
                );
            }
        }
        self.pending.fetch_sub(handed_out, Ordering::Relaxed);
        while !rollups.is_empty() {
            let rest = rollups.split_off(rollups.len().min(self.max_per_batch));
            batches.push(RollupBatch {
                batch_id: uuid::Uuid::now_v7().to_string(),
                rollups: std::mem::replace(&mut rollups, rest),
            });
        }
        batches
    }

    /// Puts back batches whose delivery failed, unchanged and ahead of any
    /// newer ones, for the next [`drain`](Self::drain) to hand out again:
    /// a batch the registry did take after all (its answer was lost) is
    /// then recognised by its ID and counted once.
    pub fn restore(&self, batches: Vec<RollupBatch>) {
        let restored: usize = batches.iter().map(|batch| batch.rollups.len()).sum();
        // Counted as held, so newer uses find less room while these wait.
        self.pending.fetch_add(restored, Ordering::Relaxed);
        let mut unsent = lock(&self.unsent);
        for batch in batches.into_iter().rev() {
            unsent.push_front(batch);
        }
    }

    /// Gives up on a batch the registry will never take (it refused it as
    /// invalid): its tokens are counted as dropped.
    pub fn discard(&self, batch: RollupBatch) {
        self.dropped
            .fetch_add(batch.token_count(), Ordering::Relaxed);
    }

    /// How many rollups are held (being counted or unsent).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// How many issues and revocations no rollup counts since start:
    /// dropped at the cap on pending rollups, or in a discarded batch.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
