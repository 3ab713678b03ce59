//! The registry's usage operations: recording what issuers report, listing
//! it by the callers allowed to see it, and retention.

use chrono::{DateTime, Duration, Utc};

use crate::access::{Caller, Role};
use crate::error::RegistryError;
use crate::model::now;
use crate::page::PageToken;
use crate::report;
use crate::service::{Registry, finish_page};
use crate::usage::{UsageBucket, UsageFilter, UsageGranularity, UsageReport};
use crate::validate;

/// Default page size of `ListUsage` (the general default is smaller; a
/// day of hourly buckets of a few credentials should fit one page).
const DEFAULT_USAGE_PAGE_SIZE: i32 = 100;

/// How far back `ListUsage` looks when no start time is given.
const DEFAULT_USAGE_WINDOW: Duration = Duration::hours(24);

/// Input of [`Registry::list_usage`].
#[derive(Debug, Clone, Default)]
pub struct ListUsage {
    /// The project (required).
    pub project_id: String,
    /// Only this credential's usage.
    pub credential_id: String,
    /// Usage at or after this time (rounded down to the granularity);
    /// default: 24 hours before `end_time`.
    pub start_time: Option<DateTime<Utc>>,
    /// Usage before this time; default: now.
    pub end_time: Option<DateTime<Utc>>,
    /// The bucket period; `None`: an hour.
    pub granularity: Option<UsageGranularity>,
    /// Requested page size (0 = 100, at most 1000).
    pub page_size: i32,
    /// Token of a previous call.
    pub page_token: String,
}

impl Registry {
    /// Records what a token issuer reports: checks the whole batch first (a
    /// batch with one bad entry is refused whole, naming the entry's
    /// field), then adds the rollups once per batch ID in one transaction,
    /// then the last uses. A batch resent after a lost answer adds no
    /// rollup twice, and its uses change nothing (older uses never replace
    /// newer ones).
    pub async fn record_usage_report(&self, report: UsageReport) -> Result<(), RegistryError> {
        let at = now();
        report::check_uses(&report.uses, at)?;
        report::check_rollups(&report.rollups, &report.batch_id, at)?;
        if !report.rollups.is_empty() {
            self.store()
                .record_rollups(&report.batch_id, &report.rollups, at)
                .await?;
        }
        if !report.uses.is_empty() {
            self.store().record_usage(&report.uses).await?;
        }
        Ok(())
    }

    /// Lists token usage per credential and period, newest period first,
    /// then by credential ID. Platform admins see any project's; the
    /// project's `credentials:manage` callers their project's; a
    /// `credentials:own` caller, or a call on behalf of a member, only the
    /// usage of credentials that caller or member owns (others' are simply
    /// absent; naming another's credential is `NOT_FOUND`).
    pub async fn list_usage(
        &self,
        caller: &Caller,
        input: ListUsage,
    ) -> Result<(Vec<UsageBucket>, String), RegistryError> {
        validate::project_id("project_id", &input.project_id)?;
        let role = caller.require_project(&input.project_id)?;
        let credential_id = Some(input.credential_id).filter(|id| !id.is_empty());
        if let Some(credential_id) = &credential_id {
            validate::credential_id("credential_id", credential_id)?;
        }
        let granularity = input.granularity.unwrap_or_default();
        let end_time = input.end_time.unwrap_or_else(now);
        let start_time =
            granularity.period_start(input.start_time.unwrap_or(end_time - DEFAULT_USAGE_WINDOW));
        if end_time <= start_time {
            return Err(RegistryError::invalid(
                "end_time",
                "must be after start_time",
            ));
        }
        let page_size = match input.page_size {
            0 => DEFAULT_USAGE_PAGE_SIZE,
            size => size,
        };
        // An admin's unknown project is NOT_FOUND; anyone else was already
        // refused for any project but their own, existing or not.
        self.store().get_project(&input.project_id).await?;
        if let Some(credential_id) = &credential_id {
            self.check_usage_credential(caller, role, &input.project_id, credential_id)
                .await?;
        }
        let owner = match role {
            Role::Owner => Some(caller.owner.clone()),
            Role::Manager | Role::Admin => None,
        };
        let filter = UsageFilter {
            project_id: input.project_id,
            credential_id,
            owner,
            start_time,
            end_time,
            granularity,
        };
        // Bound to the times as requested, not as resolved: a default
        // window ("the last 24 hours") moves between pages, and the keyset
        // (older periods only) keeps the pages from overlapping anyway.
        let requested = |time: Option<DateTime<Utc>>| {
            time.map(|time| time.timestamp_micros().to_string())
                .unwrap_or_default()
        };
        let binding = format!(
            "usage\n{}\n{}\n{}\n{}\n{}\n{}",
            filter.project_id,
            filter.credential_id.as_deref().unwrap_or(""),
            filter.owner.as_deref().unwrap_or(""),
            requested(input.start_time),
            requested(input.end_time),
            granularity.binding(),
        );
        let request = PageToken::request(page_size, &input.page_token, &binding)?;
        let page = self.store().list_usage(&filter, &request).await?;
        Ok(finish_page(page, &binding))
    }

    /// A named credential must be one the caller may see, as for
    /// `GetCredential`; managers and admins may also name a credential
    /// deleted since (its usage stays until retention ends it).
    async fn check_usage_credential(
        &self,
        caller: &Caller,
        role: Role,
        project_id: &str,
        credential_id: &str,
    ) -> Result<(), RegistryError> {
        match self.store().get_credential(credential_id).await {
            Ok(credential)
                if credential.project_id == project_id && caller.can_access(&credential) =>
            {
                Ok(())
            }
            Ok(_) => Err(RegistryError::credential_not_found(credential_id)),
            Err(RegistryError::NotFound { .. }) if role != Role::Owner => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Deletes usage rollups of minutes before `before` (retention).
    pub async fn purge_usage(&self, before: DateTime<Utc>) -> Result<u64, RegistryError> {
        self.store().purge_usage(before).await
    }
}
