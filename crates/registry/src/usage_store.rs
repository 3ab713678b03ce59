//! The storage of token usage rollups, a part of every
//! [`crate::CredentialStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::RegistryError;
use crate::page::{Page, PageRequest};
use crate::usage::{UsageBucket, UsageFilter, UsageRollup};

/// Persistent storage of usage rollups.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Adds a checked batch of rollups in one transaction, unless
    /// `batch_id` was recorded before (then nothing is written and the
    /// answer is `false`). Rollups of the same (credential, minute, kind)
    /// add up exactly under concurrent batches: counts summed, the
    /// earliest first time and the latest last time kept, addresses
    /// united. A rollup whose credential is unknown (deleted since) or
    /// belongs to another project than it names is skipped.
    async fn record_rollups(
        &self,
        batch_id: &str,
        rollups: &[UsageRollup],
        now: DateTime<Utc>,
    ) -> Result<bool, RegistryError>;

    /// Lists buckets matching `filter`, newest period first, then by
    /// credential ID (`Position`: the period start and the credential ID).
    async fn list_usage(
        &self,
        filter: &UsageFilter,
        page: &PageRequest,
    ) -> Result<Page<UsageBucket>, RegistryError>;

    /// Deletes rollups (and their addresses) of minutes before `before`,
    /// and batch IDs recorded before it; returns how many rollups.
    async fn purge_usage(&self, before: DateTime<Utc>) -> Result<u64, RegistryError>;
}
