//! SIGTERM/SIGINT handling.

use tokio::sync::watch;

/// A shutdown trigger shared by every part of a process.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Self {
            sender: watch::channel(false).0,
        }
    }

    /// Fires the trigger.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Resolves once the trigger has fired.
    pub async fn wait(&self) {
        let mut receiver = self.sender.subscribe();
        // An error means the sender is gone, which cannot happen while
        // `self` lives; either way the wait is over.
        let _ = receiver.wait_for(|fired| *fired).await;
    }
}

/// Fires `shutdown` on the first SIGTERM or SIGINT; a second signal exits
/// the process at once, for an operator who does not want to wait for the
/// drain.
pub fn shutdown_on_signals(shutdown: Shutdown) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "shutdown requested: draining in-flight calls (signal again to exit at once)"
        );
        shutdown.trigger();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
