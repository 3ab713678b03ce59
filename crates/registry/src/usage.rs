//! Token usage: per-credential rollups reported by the token issuers (one
//! per credential, minute and kind) and the buckets `ListUsage` answers
//! with (rollups summed per credential and period).

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};

use crate::model::CredentialUse;

/// Most distinct addresses a rollup lists, and a bucket answers with.
pub const MAX_USAGE_ADDRESSES: usize = 32;

/// Most rollups in one `UsageSink.Record` batch.
pub const MAX_ROLLUPS_PER_BATCH: usize = 10_000;

/// The largest count one rollup may carry: a million tokens a second for a
/// minute is far beyond any issuer, and the bound keeps sums of a year of
/// minutes well inside `i64`.
pub const MAX_ROLLUP_COUNT: i64 = 60_000_000;

/// What a rollup counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UsageKind {
    /// Tokens issued to the credential.
    TokenIssued,
    /// Tokens the credential's client revoked itself.
    TokenRevoked,
}

/// One credential's tokens of one kind within one minute, as one issuer saw
/// them; rollups of the same key add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRollup {
    /// The credential.
    pub credential_id: String,
    /// Its project.
    pub project_id: String,
    /// The whole minute counted.
    pub minute: DateTime<Utc>,
    /// What was counted.
    pub kind: UsageKind,
    /// How many (at least 1).
    pub count: i64,
    /// The first of them, within the minute.
    pub first_time: DateTime<Utc>,
    /// The last of them, within the minute, not before `first_time`.
    pub last_time: DateTime<Utc>,
    /// Distinct caller addresses, at most [`MAX_USAGE_ADDRESSES`].
    pub addresses: Vec<IpAddr>,
    /// Whether more addresses were seen than listed.
    pub more_addresses: bool,
}

/// One `UsageSink.Record` batch: last uses and rollups.
#[derive(Debug, Clone, Default)]
pub struct UsageReport {
    /// Latest uses.
    pub uses: Vec<CredentialUse>,
    /// Rollups, at most one per (credential, minute, kind).
    pub rollups: Vec<UsageRollup>,
    /// Names the batch (a UUID; required with rollups) so a resent batch
    /// counts once.
    pub batch_id: String,
}

/// The period of a usage bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageGranularity {
    /// One minute.
    Minute,
    /// One hour (UTC).
    #[default]
    Hour,
    /// One day (UTC).
    Day,
}

impl UsageGranularity {
    /// The period's length.
    pub fn length(self) -> Duration {
        match self {
            Self::Minute => Duration::minutes(1),
            Self::Hour => Duration::hours(1),
            Self::Day => Duration::days(1),
        }
    }

    /// The period's length in microseconds (the stores' time unit).
    pub fn micros(self) -> i64 {
        match self {
            Self::Minute => 60_000_000,
            Self::Hour => 3_600_000_000,
            Self::Day => 86_400_000_000,
        }
    }

    /// The start of the period holding `time`. UTC hours and days start at
    /// multiples of their length since the epoch.
    pub fn period_start(self, time: DateTime<Utc>) -> DateTime<Utc> {
        let micros = time.timestamp_micros();
        DateTime::from_timestamp_micros(micros - micros.rem_euclid(self.micros())).unwrap_or(time)
    }

    /// Its name in page-token bindings.
    pub(crate) fn binding(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// One credential's token usage in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBucket {
    /// The credential.
    pub credential_id: String,
    /// The period's start.
    pub start_time: DateTime<Utc>,
    /// The period's length.
    pub granularity: UsageGranularity,
    /// Tokens issued in the period.
    pub tokens_issued: i64,
    /// Tokens revoked in the period.
    pub tokens_revoked: i64,
    /// Distinct addresses, at most [`MAX_USAGE_ADDRESSES`], ascending.
    pub addresses: Vec<IpAddr>,
    /// Whether more addresses were seen than listed.
    pub more_addresses: bool,
    /// The first token event in the period.
    pub first_time: DateTime<Utc>,
    /// The last token event in the period.
    pub last_time: DateTime<Utc>,
}

impl UsageBucket {
    /// Sets the bucket's addresses from the union of its minutes': sorted,
    /// deduplicated, cut at [`MAX_USAGE_ADDRESSES`] (then `more_addresses`).
    pub fn set_addresses(&mut self, mut union: Vec<IpAddr>) {
        union.sort_unstable();
        union.dedup();
        if union.len() > MAX_USAGE_ADDRESSES {
            union.truncate(MAX_USAGE_ADDRESSES);
            self.more_addresses = true;
        }
        self.addresses = union;
    }
}

/// Which usage a store lists: checked and resolved by the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageFilter {
    /// The project.
    pub project_id: String,
    /// Only this credential's, when set.
    pub credential_id: Option<String>,
    /// Only credentials of this owner (that still exist), when set.
    pub owner: Option<String>,
    /// Minutes at or after this time (a period start).
    pub start_time: DateTime<Utc>,
    /// Minutes before this time.
    pub end_time: DateTime<Utc>,
    /// The bucket period.
    pub granularity: UsageGranularity,
}
