//! The issuer's background work: usage reports to the registry, health
//! following the token store, and the in-process store's sweep.

use std::sync::Arc;
use std::time::Duration;

use latchkey_runtime::Shutdown;
use latchkey_token::{TokenStore, UsageTracker, unix_now};
use latchkey_token_grpc::UsageReporter;
use latchkey_token_store::MemoryTokenStore;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) struct Tasks {
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) memory: Option<Arc<MemoryTokenStore>>,
    pub(crate) health: HealthReporter,
    pub(crate) usage: Arc<UsageTracker>,
    pub(crate) reporter: UsageReporter,
    pub(crate) flush_interval: Duration,
    pub(crate) shutdown: Shutdown,
}

/// Starts the tasks; the handle ends after the final usage flush.
pub(crate) fn spawn(tasks: Tasks) -> JoinHandle<()> {
    tokio::spawn(readiness(tasks.store, tasks.health, tasks.shutdown.clone()));
    if let Some(memory) = tasks.memory {
        tokio::spawn(sweep(memory, tasks.shutdown.clone()));
    }
    tokio::spawn(flush_usage(
        tasks.usage,
        tasks.reporter,
        tasks.flush_interval,
        tasks.shutdown,
    ))
}

/// Sends last uses to the registry every `interval`; a failed batch is put
/// back for the next round. One last flush runs at shutdown.
async fn flush_usage(
    usage: Arc<UsageTracker>,
    reporter: UsageReporter,
    interval: Duration,
    shutdown: Shutdown,
) {
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(interval) => false,
            () = shutdown.wait() => true,
        };
        let batch = usage.drain();
        if !batch.is_empty()
            && let Err(status) = reporter.report(&batch).await
        {
            tracing::warn!(error = %status.message(), uses = batch.len(), "usage report failed; retrying next round");
            usage.restore(batch);
        }
        if stopping {
            return;
        }
    }
}

/// Health follows the token store: NOT_SERVING while it does not answer.
async fn readiness(store: Arc<dyn TokenStore>, reporter: HealthReporter, shutdown: Shutdown) {
    // The whole server ("") is reported last, so a caller that waits for it
    // finds every named service already reported.
    let names = || {
        crate::SERVICE_NAMES
            .iter()
            .copied()
            .chain(std::iter::once(""))
    };
    let mut last = None;
    loop {
        let status = match store.ping().await {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                if last != Some(ServingStatus::NotServing) {
                    tracing::warn!(%error, "token store unreachable: reporting NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if last != Some(status) {
            for name in names() {
                reporter.set_service_status(name, status).await;
            }
            last = Some(status);
        }
        tokio::select! {
            () = tokio::time::sleep(PROBE_INTERVAL) => {}
            () = shutdown.wait() => {
                for name in names() {
                    reporter.set_service_status(name, ServingStatus::NotServing).await;
                }
                return;
            }
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
