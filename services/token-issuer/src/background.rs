//! The issuer's background work: usage reports (last uses and rollups) and
//! audit events to the registry, health following the token store, and the
//! in-process store's sweep.

use std::sync::Arc;
use std::time::Duration;

use latchkey_runtime::{Shutdown, follow_readiness};
use latchkey_token::{AuditQueue, TokenStore, UsageRollups, UsageTracker, unix_now};
use latchkey_token_grpc::{AuditReporter, MAX_AUDIT_BATCH, RollupDelivery, UsageReporter};
use latchkey_token_store::MemoryTokenStore;

use crate::metrics::IssuerMetrics;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) struct Tasks {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) memory: Option<Arc<MemoryTokenStore>>,
    pub(crate) health: HealthReporter,
    pub(crate) usage: Arc<UsageTracker>,
    pub(crate) reporter: UsageReporter,
    pub(crate) rollups: Arc<UsageRollups>,
    pub(crate) audit: Arc<AuditQueue>,
    pub(crate) audit_reporter: AuditReporter,
    pub(crate) flush_interval: Duration,
    /// How long the last flush, at shutdown, is retried.
    pub(crate) final_flush: Duration,
    pub(crate) metrics: Arc<IssuerMetrics>,
    pub(crate) shutdown: Shutdown,
}

/// Starts the tasks; the handle ends after the final usage, rollup and
/// audit flushes.
pub(crate) fn spawn(tasks: Tasks) -> JoinHandle<()> {
    let store = tasks.store;
    tokio::spawn(follow_readiness(
        tasks.health,
        crate::SERVICE_NAMES,
        "token store",
        move || {
            let store = store.clone();
            async move { store.ping().await }
        },
        tasks.shutdown.clone(),
    ));
    if let Some(memory) = tasks.memory {
        tokio::spawn(sweep(memory, tasks.shutdown.clone()));
    }
    let schedule = Schedule {
        interval: tasks.flush_interval,
        final_flush: tasks.final_flush,
    };
    let audit = tokio::spawn(flush_audit(
        tasks.audit,
        tasks.audit_reporter,
        schedule,
        tasks.shutdown.clone(),
    ));
    let rollups = tokio::spawn(flush_rollups(
        tasks.rollups,
        tasks.reporter.clone(),
        schedule,
        tasks.metrics.clone(),
        tasks.shutdown.clone(),
    ));
    let usage = tokio::spawn(flush_usage(
        tasks.usage,
        tasks.reporter,
        schedule,
        tasks.metrics,
        tasks.shutdown,
    ));
    tokio::spawn(async move {
        let _ = tokio::join!(audit, rollups, usage);
    })
}

/// When the flush tasks run.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// Between rounds.
    interval: Duration,
    /// How long the last round, at shutdown, is retried.
    final_flush: Duration,
}

impl Schedule {
    /// Waits for the next round; `true` when it is the last one.
    async fn next_round(&self, shutdown: &Shutdown) -> bool {
        tokio::select! {
            () = tokio::time::sleep(self.interval) => false,
            () = shutdown.wait() => true,
        }
    }

    /// After a last round that left something undelivered: retries `round`
    /// (which says whether everything went) with a growing pause until it
    /// delivers or `final_flush` has passed. Whether everything went.
    async fn retry_last_round<F: Future<Output = bool>>(&self, round: impl Fn() -> F) -> bool {
        let deadline = tokio::time::Instant::now() + self.final_flush;
        let mut pause = Duration::from_millis(100);
        loop {
            if tokio::time::Instant::now() + pause > deadline {
                return false;
            }
            tokio::time::sleep(pause).await;
            if round().await {
                return true;
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

/// Sends last uses to the registry every `interval`; a failed batch is put
/// back for the next round. The last round, at shutdown, is retried for a
/// bounded time; what it could not deliver is logged as lost.
async fn flush_usage(
    usage: Arc<UsageTracker>,
    reporter: UsageReporter,
    schedule: Schedule,
    metrics: Arc<IssuerMetrics>,
    shutdown: Shutdown,
) {
    let mut last_success = std::time::Instant::now();
    let (usage, reporter) = (&usage, &reporter);
    let round = move || async move {
        let batch = usage.drain();
        if batch.is_empty() {
            return true;
        }
        if let Err(status) = reporter.report(&batch).await {
            tracing::warn!(error = %status.message(), uses = batch.len(), "usage report failed; retrying");
            usage.restore(batch);
            return false;
        }
        true
    };
    loop {
        let stopping = schedule.next_round(&shutdown).await;
        let delivered = round().await || (stopping && schedule.retry_last_round(round).await);
        if delivered {
            last_success = std::time::Instant::now();
        }
        metrics.set_usage_flush_lag(last_success.elapsed());
        if stopping {
            if !delivered {
                tracing::error!(
                    credentials = usage.drain().len(),
                    "last uses lost at shutdown: the registry did not take them in time"
                );
            }
            return;
        }
    }
}

/// Sends usage rollups to the registry every `interval`, batch by batch;
/// when one fails, it and the ones after it are put back whole, with their
/// batch IDs, for the next round (so a batch whose answer was lost counts
/// once). The last round, at shutdown, is retried for a bounded time; what
/// it could not deliver is logged as lost.
async fn flush_rollups(
    rollups: Arc<UsageRollups>,
    reporter: UsageReporter,
    schedule: Schedule,
    metrics: Arc<IssuerMetrics>,
    shutdown: Shutdown,
) {
    let mut dropped_reported = 0;
    let (rollups, reporter) = (&rollups, &reporter);
    let round = move || async move {
        let mut batches = rollups.drain().into_iter();
        while let Some(batch) = batches.next() {
            match reporter.report_rollups(&batch).await {
                Ok(RollupDelivery::Recorded) => {}
                Ok(RollupDelivery::Refused) => rollups.discard(batch),
                Err(status) => {
                    tracing::warn!(
                        error = %status.message(),
                        batches = 1 + batches.len(),
                        "usage rollup report failed; retrying"
                    );
                    rollups.restore(std::iter::once(batch).chain(batches).collect());
                    return false;
                }
            }
        }
        true
    };
    loop {
        let stopping = schedule.next_round(&shutdown).await;
        let delivered = round().await || (stopping && schedule.retry_last_round(round).await);
        let dropped = rollups.dropped();
        metrics.set_usage_rollups(dropped, rollups.pending());
        if dropped > dropped_reported {
            tracing::error!(
                dropped = dropped - dropped_reported,
                "token issues and revocations left out of usage rollups: too many rollups pending for the registry, or a batch refused"
            );
            dropped_reported = dropped;
        }
        if stopping {
            if !delivered {
                tracing::error!(
                    rollups = rollups.pending(),
                    "usage rollups lost at shutdown: the registry did not take them in time"
                );
            }
            return;
        }
    }
}

/// Sends queued audit events to the registry every `interval`, in batches
/// until the queue is empty; a failed batch goes back to the front of the
/// queue for the next round. The last round, at shutdown, is retried for a
/// bounded time; what it could not deliver is logged as lost.
async fn flush_audit(
    queue: Arc<AuditQueue>,
    reporter: AuditReporter,
    schedule: Schedule,
    shutdown: Shutdown,
) {
    let mut dropped_reported = 0;
    let (queue, reporter) = (&queue, &reporter);
    let round = move || async move {
        loop {
            let batch = queue.take(MAX_AUDIT_BATCH);
            if batch.is_empty() {
                return true;
            }
            if let Err(status) = reporter.report(&batch).await {
                tracing::warn!(error = %status.message(), events = batch.len(), "audit report failed; retrying");
                queue.restore(batch);
                return false;
            }
        }
    };
    loop {
        let stopping = schedule.next_round(&shutdown).await;
        let delivered = round().await || (stopping && schedule.retry_last_round(round).await);
        let dropped = queue.dropped();
        if dropped > dropped_reported {
            tracing::error!(
                dropped = dropped - dropped_reported,
                "audit events dropped: the registry has not taken them for too long"
            );
            dropped_reported = dropped;
        }
        if stopping {
            if !delivered {
                tracing::error!(
                    events = queue.len(),
                    "audit events lost at shutdown: the registry did not take them in time"
                );
            }
            return;
        }
    }
}

/// Drops expired tokens from the in-process store.
async fn sweep(memory: Arc<MemoryTokenStore>, shutdown: Shutdown) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(SWEEP_INTERVAL) => memory.sweep(unix_now()),
            () = shutdown.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests;
