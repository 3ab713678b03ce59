//! Usage retention: token usage rollups of minutes older than the
//! configured number of days (with their addresses and the batch IDs
//! recorded as long ago) are deleted at start-up and then every hour.

use std::time::Duration;

use chrono::Utc;
use latchkey_registry::Registry;
use latchkey_runtime::Shutdown;

const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) async fn enforce_retention(registry: Registry, days: u32, shutdown: Shutdown) {
    loop {
        let before = Utc::now() - chrono::Duration::days(i64::from(days));
        match registry.purge_usage(before).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, days, "old usage rollups deleted"),
            // The store is down; readiness already says so. Try next round.
            Err(error) => tracing::warn!(%error, "usage retention: cannot delete old rollups"),
        }
        tokio::select! {
            () = tokio::time::sleep(PURGE_INTERVAL) => {}
            () = shutdown.wait() => return,
        }
    }
}
