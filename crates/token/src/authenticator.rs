//! How the issuer checks client credentials: by asking the registry.

use std::fmt::Debug;
use std::net::IpAddr;

use async_trait::async_trait;

use crate::error::IssueError;
use crate::model::{CredentialPolicy, LimitPolicy};

/// A client the registry vouched for.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The credential's ID.
    pub credential_id: String,
    /// Its policy now (state active).
    pub policy: CredentialPolicy,
    /// Its project's token limit.
    pub limit: LimitPolicy,
    /// Its project's token lifetime.
    pub token_ttl_seconds: u32,
    /// When the presented secret stops working (Unix seconds); `None` while
    /// it has no end.
    pub secret_expires_at: Option<i64>,
}

/// Checks a client ID and secret presented from an address.
#[async_trait]
pub trait ClientAuthenticator: Debug + Send + Sync + 'static {
    /// `InvalidClient` for any refusal; `Unavailable` when the registry
    /// cannot be asked.
    async fn authenticate(
        &self,
        client_id: &str,
        client_secret: &str,
        client_ip: IpAddr,
    ) -> Result<AuthenticatedClient, IssueError>;

    /// Asks the registry to settle a credential whose stored policy
    /// (`held_version`) is newer than the version the registry answered
    /// with: a change applied on the token side whose commit was lost. The
    /// registry applies its committed state again under a version above
    /// `held_version`, so the two converge. The default does nothing (for
    /// authenticators with no registry behind them).
    async fn reconcile(&self, credential_id: &str, held_version: i64) -> Result<(), IssueError> {
        let _ = (credential_id, held_version);
        Ok(())
    }
}
