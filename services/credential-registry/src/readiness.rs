//! Health follows store reachability: NOT_SERVING while the database does
//! not answer, SERVING again when it does, so load balancers route around a
//! replica that cannot work.

use std::sync::Arc;
use std::time::Duration;

use latchkey_registry_store::SqlCredentialStore;
use latchkey_runtime::Shutdown;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

const PROBE_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) fn spawn(store: Arc<SqlCredentialStore>, reporter: HealthReporter, shutdown: Shutdown) {
    tokio::spawn(async move {
        // The whole server ("") is reported last, so a caller that waits
        // for it finds every named service already reported.
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
                        tracing::warn!(%error, "credential store unreachable: reporting NOT_SERVING");
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
    });
}
