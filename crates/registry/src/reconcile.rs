//! Settling a credential whose token-side policy got ahead of the registry.
//!
//! Every change tokens must follow is applied on the token side *before* it
//! commits (see [`crate::sync`]). When the commit is then lost — the issuer
//! applied the change but was killed before it answered, the call timed out,
//! the database failed at commit, the registry was stopped mid-change — the
//! token store holds a newer policy version than the registry committed.
//! Issuance would then refuse the credential (the store never accepts an
//! older version) until its keys expired: hours of 503.
//!
//! Two paths converge it within seconds, both through
//! [`crate::CredentialStore::reassert_policy`], which waits for a change in
//! flight and applies the committed state again above the held version:
//! - the registry itself remembers every change it sent until that change
//!   commits, and a background task ([`Registry::repair_pending`]) settles
//!   the ones that did not;
//! - an issuer that finds the store ahead of the registry's answer asks for
//!   it ([`Registry::reconcile_credential`], over the internal
//!   `ClientAuthentication.ReconcileCredential`), which covers a registry
//!   that was stopped before it could repair.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::RegistryError;
use crate::model::Credential;
use crate::service::Registry;
use crate::sync::{PolicyChange, TokenSync};
use crate::validate;

/// Highest policy version the token side can hold (versions cross into
/// Redis scripts as doubles).
pub const MAX_POLICY_VERSION: i64 = (1 << 53) - 1;

/// How long a change may stay uncommitted before the repair task settles it
/// (a change normally commits within milliseconds of being applied; the
/// row lock makes an earlier repair correct anyway, only wasteful).
const REPAIR_AFTER: Duration = Duration::from_secs(1);

/// Changes sent to the token side and not (yet) known to have committed:
/// credential ID → (highest version sent, when first sent).
#[derive(Debug, Default)]
pub(crate) struct PendingRepairs {
    changes: Mutex<HashMap<String, (i64, Instant)>>,
}

impl PendingRepairs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Instant)>> {
        self.changes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes that version `version` of `credential_id` was sent.
    fn sent(&self, credential_id: &str, version: i64) {
        let mut changes = self.lock();
        let entry = changes
            .entry(credential_id.to_owned())
            .or_insert((version, Instant::now()));
        entry.0 = entry.0.max(version);
    }

    /// Notes that `credential_id` committed at `version`: nothing sent up
    /// to that version needs repair.
    pub(crate) fn committed(&self, credential_id: &str, version: i64) {
        let mut changes = self.lock();
        if changes
            .get(credential_id)
            .is_some_and(|(sent, _)| *sent <= version)
        {
            changes.remove(credential_id);
        }
    }

    /// Takes the changes older than [`REPAIR_AFTER`].
    fn due(&self) -> Vec<(String, i64)> {
        let mut changes = self.lock();
        let now = Instant::now();
        let due: Vec<(String, i64)> = changes
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= REPAIR_AFTER)
            .map(|(id, (version, _))| (id.clone(), *version))
            .collect();
        for (id, _) in &due {
            changes.remove(id);
        }
        due
    }

    /// How many changes await their commit or repair.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The token sync every change goes through: notes each change it sends,
/// so one whose commit is lost is repaired.
#[derive(Debug)]
pub(crate) struct RepairingSync {
    pub(crate) inner: Arc<dyn TokenSync>,
    pub(crate) pending: Arc<PendingRepairs>,
}

#[async_trait]
impl TokenSync for RepairingSync {
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError> {
        // Noted before sending: an answer lost on the way back leaves the
        // outcome unknown, as a failure does.
        self.pending
            .sent(&change.credential.id, change.credential.policy_version);
        self.inner.apply(change).await
    }
}

/// What [`Registry::reconcile_credential`] settled.
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// The credential as committed (`None`: it does not exist).
    pub credential: Option<Credential>,
}

impl Registry {
    /// Settles `credential_id` for an issuer whose store holds
    /// `held_version` of its policy, newer than the registry's answer.
    pub async fn reconcile_credential(
        &self,
        credential_id: &str,
        held_version: i64,
    ) -> Result<Reconciled, RegistryError> {
        validate::credential_id("credential_id", credential_id)?;
        if !(1..MAX_POLICY_VERSION).contains(&held_version) {
            return Err(RegistryError::invalid(
                "held_version",
                format!("must be between 1 and {}", MAX_POLICY_VERSION - 1),
            ));
        }
        let credential = self
            .store()
            .reassert_policy(credential_id, held_version, self.token_sync())
            .await?;
        if let Some(credential) = &credential {
            self.repairs()
                .committed(&credential.id, credential.policy_version);
            if credential.policy_version > held_version {
                tracing::info!(
                    %credential_id,
                    held_version,
                    version = credential.policy_version,
                    "credential policy reconciled with the token side"
                );
            }
        }
        Ok(Reconciled { credential })
    }

    /// Settles the changes sent to the token side that did not commit
    /// within a second; those that still cannot be settled (the issuer is
    /// unreachable) are kept for the next round. Returns how many remain.
    pub async fn repair_pending(&self) -> usize {
        for (credential_id, version) in self.repairs().due() {
            match self
                .store()
                .reassert_policy(&credential_id, version, self.token_sync())
                .await
            {
                Ok(Some(credential)) => {
                    self.repairs()
                        .committed(&credential_id, credential.policy_version);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%credential_id, %error, "cannot settle a credential yet; retrying");
                    self.repairs().sent(&credential_id, version);
                }
            }
        }
        self.repairs().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_settles_only_what_it_covers() {
        let pending = PendingRepairs::default();
        pending.sent("c", 3);
        pending.sent("c", 2);
        pending.committed("c", 2);
        assert_eq!(pending.len(), 1, "version 3 was sent after the commit of 2");
        pending.committed("c", 3);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn only_changes_older_than_a_second_are_due() {
        let pending = PendingRepairs::default();
        pending.sent("c", 1);
        assert!(pending.due().is_empty());
        pending
            .lock()
            .insert("c".into(), (1, Instant::now() - REPAIR_AFTER));
        assert_eq!(pending.due(), [("c".to_owned(), 1)]);
        assert_eq!(pending.len(), 0, "taken for repair");
    }
}
