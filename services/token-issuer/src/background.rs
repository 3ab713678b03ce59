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
    let audit = tokio::spawn(flush_audit(
        tasks.audit,
        tasks.audit_reporter,
        tasks.flush_interval,
        tasks.shutdown.clone(),
    ));
    let rollups = tokio::spawn(flush_rollups(
        tasks.rollups,
        tasks.reporter.clone(),
        tasks.flush_interval,
        tasks.metrics.clone(),
        tasks.shutdown.clone(),
    ));
    let usage = tokio::spawn(flush_usage(
        tasks.usage,
        tasks.reporter,
        tasks.flush_interval,
        tasks.metrics,
        tasks.shutdown,
    ));
    tokio::spawn(async move {
        let _ = tokio::join!(audit, rollups, usage);
    })
}

/// Sends last uses to the registry every `interval`; a failed batch is put
/// back for the next round. One last flush runs at shutdown.
async fn flush_usage(
    usage: Arc<UsageTracker>,
    reporter: UsageReporter,
    interval: Duration,
    metrics: Arc<IssuerMetrics>,
    shutdown: Shutdown,
) {
    let mut last_success = std::time::Instant::now();
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            () = shutdown.wait() => true,
        };
        let batch = usage.drain();
        let delivered = if batch.is_empty() {
            true
        } else if let Err(status) = reporter.report(&batch).await {
            tracing::warn!(error = %status.message(), uses = batch.len(), "usage report failed; retrying next round");
            usage.restore(batch);
            false
        } else {
            true
        };
        if delivered {
            last_success = std::time::Instant::now();
        }
        metrics.set_usage_flush_lag(last_success.elapsed());
        if stopping {
            return;
        }
    }
}

/// Sends usage rollups to the registry every `interval`, batch by batch;
/// when one fails, it and the ones after it are put back whole, with their
/// batch IDs, for the next round (so a batch whose answer was lost counts
/// once). One last flush runs at shutdown.
async fn flush_rollups(
    rollups: Arc<UsageRollups>,
    reporter: UsageReporter,
    interval: Duration,
    metrics: Arc<IssuerMetrics>,
    shutdown: Shutdown,
) {
    let mut dropped_reported = 0;
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            () = shutdown.wait() => true,
        };
        let mut batches = rollups.drain().into_iter();
        while let Some(batch) = batches.next() {
            match reporter.report_rollups(&batch).await {
                Ok(RollupDelivery::Recorded) => {}
                Ok(RollupDelivery::Refused) => rollups.discard(batch),
                Err(status) => {
                    tracing::warn!(
                        error = %status.message(),
                        batches = 1 + batches.len(),
                        "usage rollup report failed; retrying next round"
                    );
                    rollups.restore(std::iter::once(batch).chain(batches).collect());
                    break;
                }
            }
        }
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
            return;
        }
    }
}

/// Sends queued audit events to the registry every `interval`, in batches
/// until the queue is empty; a failed batch goes back to the front of the
/// queue for the next round. One last flush runs at shutdown.
async fn flush_audit(
    queue: Arc<AuditQueue>,
    reporter: AuditReporter,
    interval: Duration,
    shutdown: Shutdown,
) {
    let mut dropped_reported = 0;
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            () = shutdown.wait() => true,
        };
        loop {
            let batch = queue.take(MAX_AUDIT_BATCH);
            if batch.is_empty() {
                break;
            }
            if let Err(status) = reporter.report(&batch).await {
                tracing::warn!(error = %status.message(), events = batch.len(), "audit report failed; retrying next round");
                queue.restore(batch);
                break;
            }
        }
        let dropped = queue.dropped();
        if dropped > dropped_reported {
            tracing::error!(
                dropped = dropped - dropped_reported,
                "audit events dropped: the registry has not taken them for too long"
            );
            dropped_reported = dropped;
        }
        if stopping {
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
