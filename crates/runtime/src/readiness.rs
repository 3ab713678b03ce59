//! Health that follows a service's store.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::shutdown::Shutdown;

const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Reports SERVING for `services` and the whole server ("") while `probe`
/// succeeds, NOT_SERVING while it fails, checking every second, until
/// `shutdown` (then NOT_SERVING, so load balancers drain the replica). The
/// whole server is reported last, so a caller that waits for it finds every
/// named service already reported.
pub async fn follow_readiness<P, F, E>(
    reporter: HealthReporter,
    services: &'static [&'static str],
    what: &'static str,
    probe: P,
    shutdown: Shutdown,
) where
    P: Fn() -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let names = || services.iter().copied().chain(std::iter::once(""));
    let mut last = None;
    loop {
        let status = match probe().await {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                if last != Some(ServingStatus::NotServing) {
                    tracing::warn!(%error, what, "store unreachable: reporting NOT_SERVING");
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
