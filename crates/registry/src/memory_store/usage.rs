//! [`UsageStore`] of the [`MemoryCredentialStore`]: the SQL store's three
//! tables (rollups, their addresses, seen batch IDs) as maps, summed the
//! same way.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::RegistryError;
use crate::page::{Page, PageRequest, Position};
use crate::usage::{UsageBucket, UsageFilter, UsageKind, UsageRollup};
use crate::usage_store::UsageStore;

use super::MemoryCredentialStore;
use super::state::at_micros;

/// What a stored rollup holds beside its key.
#[derive(Debug, Clone)]
pub(super) struct StoredRollup {
    project_id: String,
    count: i64,
    first_time: DateTime<Utc>,
    last_time: DateTime<Utc>,
    more_addresses: bool,
}

/// The usage part of the store's state.
#[derive(Debug, Default)]
pub(super) struct UsageState {
    /// By (credential, minute, kind).
    rollups: BTreeMap<(String, DateTime<Utc>, UsageKind), StoredRollup>,
    /// By (credential, minute): the distinct addresses.
    addresses: BTreeMap<(String, DateTime<Utc>), BTreeSet<IpAddr>>,
    /// Batch ID → when it was recorded.
    batches: BTreeMap<String, DateTime<Utc>>,
}

impl UsageState {
    fn add(&mut self, rollup: &UsageRollup) {
        let minute = at_micros(rollup.minute);
        let key = (rollup.credential_id.clone(), minute, rollup.kind);
        let first_time = at_micros(rollup.first_time);
        let last_time = at_micros(rollup.last_time);
        self.rollups
            .entry(key)
            .and_modify(|stored| {
                stored.count += rollup.count;
                stored.first_time = stored.first_time.min(first_time);
                stored.last_time = stored.last_time.max(last_time);
                stored.more_addresses |= rollup.more_addresses;
            })
            .or_insert_with(|| StoredRollup {
                project_id: rollup.project_id.clone(),
                count: rollup.count,
                first_time,
                last_time,
                more_addresses: rollup.more_addresses,
            });
        self.addresses
            .entry((rollup.credential_id.clone(), minute))
            .or_default()
            .extend(rollup.addresses.iter().copied());
    }
}

#[async_trait]
impl UsageStore for MemoryCredentialStore {
    async fn record_rollups(
        &self,
        batch_id: &str,
        rollups: &[UsageRollup],
        now: DateTime<Utc>,
    ) -> Result<bool, RegistryError> {
        self.write(|state| {
            if state.usage.batches.contains_key(batch_id) {
                return Ok(false);
            }
            state
                .usage
                .batches
                .insert(batch_id.to_owned(), at_micros(now));
            for rollup in rollups {
                let known = state
                    .credentials
                    .get(&rollup.credential_id)
                    .is_some_and(|stored| stored.credential.project_id == rollup.project_id);
                if known {
                    state.usage.add(rollup);
                }
            }
            Ok(true)
        })
        .await
    }

    async fn list_usage(
        &self,
        filter: &UsageFilter,
        page: &PageRequest,
    ) -> Result<Page<UsageBucket>, RegistryError> {
        let mut buckets = self.read(|state| {
            let mut buckets: BTreeMap<(Reverse<DateTime<Utc>>, String), UsageBucket> =
                BTreeMap::new();
            for ((credential_id, minute, kind), stored) in &state.usage.rollups {
                let owner_matches = filter.owner.as_ref().is_none_or(|owner| {
                    state
                        .credentials
                        .get(credential_id)
                        .is_some_and(|stored| &stored.credential.owner == owner)
                });
                if stored.project_id != filter.project_id
                    || filter
                        .credential_id
                        .as_ref()
                        .is_some_and(|id| id != credential_id)
                    || !owner_matches
                    || *minute < filter.start_time
                    || *minute >= filter.end_time
                {
                    continue;
                }
                let start_time = filter.granularity.period_start(*minute);
                let bucket = buckets
                    .entry((Reverse(start_time), credential_id.clone()))
                    .or_insert_with(|| UsageBucket {
                        credential_id: credential_id.clone(),
                        start_time,
                        granularity: filter.granularity,
                        tokens_issued: 0,
                        tokens_revoked: 0,
                        addresses: Vec::new(),
                        more_addresses: false,
                        first_time: stored.first_time,
                        last_time: stored.last_time,
                    });
                match kind {
                    UsageKind::TokenIssued => bucket.tokens_issued += stored.count,
                    UsageKind::TokenRevoked => bucket.tokens_revoked += stored.count,
                }
                bucket.first_time = bucket.first_time.min(stored.first_time);
                bucket.last_time = bucket.last_time.max(stored.last_time);
                bucket.more_addresses |= stored.more_addresses;
                if let Some(addresses) =
                    state.usage.addresses.get(&(credential_id.clone(), *minute))
                {
                    bucket.addresses.extend(addresses.iter().copied());
                }
            }
            buckets
        });
        let after = page
            .after
            .as_ref()
            .map(|position| (Reverse(position.create_time), position.id.clone()));
        if let Some(after) = after {
            buckets = buckets.split_off(&after);
            buckets.remove(&after);
        }
        let size = page.size as usize;
        let mut items: Vec<UsageBucket> = buckets.into_values().take(size + 1).collect();
        for bucket in &mut items {
            let union = std::mem::take(&mut bucket.addresses);
            bucket.set_addresses(union);
        }
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(|bucket| Position {
                create_time: bucket.start_time,
                id: bucket.credential_id.clone(),
            })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn purge_usage(&self, before: DateTime<Utc>) -> Result<u64, RegistryError> {
        self.write(|state| {
            let usage = &mut state.usage;
            let count = usage.rollups.len();
            usage.rollups.retain(|(_, minute, _), _| *minute >= before);
            usage.addresses.retain(|(_, minute), _| *minute >= before);
            usage.batches.retain(|_, recorded| *recorded >= before);
            Ok((count - usage.rollups.len()) as u64)
        })
        .await
    }
}
