//! Settling a credential whose token-side policy got ahead of the registry.
//!
//! Every change tokens must follow is applied on the token side *before* it
//! commits (see [`crate::sync`]). When the commit is then lost — the issuer
//! applied the change but was killed before it answered, the call timed out,
//! the database failed at commit, the registry was stopped mid-change — the
//! token side holds a policy the registry never committed: a newer version
//! (issuance refuses the credential until its keys expire: hours of 503), and
//! perhaps a wider one (an enable, more APIs or addresses: tokens wider than
//! the credential's record, DESIGN.md rule 3).
//!
//! Three paths converge it within seconds, all through
//! [`crate::CredentialStore::reassert_policy`], which waits for a change in
//! flight and applies the committed state again above the held version:
//! - before a change is sent, the registry writes a **durable note** for
//!   the credential, committed on its own ([`SyncIntent`]); the change's
//!   success removes it. A note left behind (the change failed after it
//!   may have been applied, or the process died) is settled by the repair
//!   loop of any replica, this one after a restart included
//!   ([`Registry::repair_pending`]), one second after it was made;
//! - a change that finds an earlier note for its credential settles it
//!   first, so it never sends a version a lost change already used;
//! - an issuer that finds its store ahead of the registry's answer asks
//!   for it ([`Registry::reconcile_credential`], over the internal
//!   `ClientAuthentication.ReconcileCredential`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::Duration;

use crate::error::RegistryError;
use crate::model::{Credential, now};
use crate::service::Registry;
use crate::sync::{PolicyChange, SyncNote, TokenSync};
use crate::validate;

/// Highest policy version the token side can hold (versions cross into
/// Redis scripts as doubles).
pub const MAX_POLICY_VERSION: i64 = (1 << 53) - 1;

/// How old a note must be before the repair loop settles it: a change
/// normally commits within milliseconds of being noted (the row lock makes
/// an earlier repair correct anyway, only wasteful).
const REPAIR_AFTER: Duration = Duration::seconds(1);

/// Most notes one repair round settles.
const REPAIR_BATCH: u32 = 100;

/// One change on its way to the token side (of one credential, or of every
/// credential of a member): the durable notes, and the sync the store calls,
/// which records whether anything was sent.
#[derive(Debug)]
pub(crate) struct SyncIntent {
    inner: Arc<dyn TokenSync>,
    notes: Vec<SyncNote>,
    sent: AtomicBool,
}

#[async_trait]
impl TokenSync for SyncIntent {
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError> {
        // Nothing reaches the token side without a durable note: a
        // credential the change found but nobody noted (created for a
        // member between the listing and the change) aborts the change,
        // which the caller retries with a fresh listing.
        let noted = self
            .notes
            .iter()
            .any(|note| note.credential_id == change.credential.id);
        if !noted {
            return Err(RegistryError::Aborted(UNNOTED_CREDENTIAL.to_owned()));
        }
        // Recorded before sending: an answer lost on the way back leaves
        // the outcome unknown, as a failure does.
        self.sent.store(true, Ordering::SeqCst);
        self.inner.apply(change).await
    }
}

/// Why a change that met a credential without a note was aborted.
pub(crate) const UNNOTED_CREDENTIAL: &str =
    "a credential was created during the change; nothing was changed. Retry the call";

impl Registry {
    /// Notes durably that a change of `credential_id` is about to be sent
    /// to the token side, and settles first what an unfinished earlier
    /// change of it left. Pass the intent to the store as its sync, then
    /// to [`Registry::end_sync`].
    pub(crate) async fn begin_sync(
        &self,
        credential_id: &str,
    ) -> Result<SyncIntent, RegistryError> {
        self.begin_sync_all([credential_id]).await
    }

    /// [`Registry::begin_sync`] for a change reaching several credentials.
    pub(crate) async fn begin_sync_all<'a>(
        &self,
        credential_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<SyncIntent, RegistryError> {
        let noted_at = now();
        let mut intent = SyncIntent {
            inner: self.shared_token_sync(),
            notes: Vec::new(),
            sent: AtomicBool::new(false),
        };
        for credential_id in credential_ids {
            let earlier = self
                .store()
                .note_sync_intent(credential_id, noted_at)
                .await?;
            intent.notes.push(SyncNote {
                credential_id: credential_id.to_owned(),
                noted_at,
            });
            if earlier {
                // A change that never finished may have sent the version
                // this one is about to send; settle it so the two cannot
                // collide. (A change in flight elsewhere just finishes
                // first.)
                self.store()
                    .reassert_policy(credential_id, None, self.token_sync())
                    .await?;
            }
        }
        Ok(intent)
    }

    /// Ends a change begun with [`Registry::begin_sync`]: its notes go
    /// unless the change failed after something was sent (then the token
    /// side may hold it uncommitted, and the repair settles it).
    pub(crate) async fn end_sync<T>(&self, intent: SyncIntent, result: &Result<T, RegistryError>) {
        if result.is_err() && intent.sent.load(Ordering::SeqCst) {
            return;
        }
        for note in &intent.notes {
            if let Err(error) = self.store().clear_sync_intent(note).await {
                // Left for the repair loop: one redundant settling, no harm.
                tracing::debug!(credential_id = %note.credential_id, %error, "cannot clear a sync note");
            }
        }
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
            .reassert_policy(credential_id, Some(held_version), self.token_sync())
            .await?;
        if let Some(credential) = &credential
            && credential.policy_version > held_version
        {
            tracing::info!(
                %credential_id,
                held_version,
                version = credential.policy_version,
                "credential policy reconciled with the token side"
            );
        }
        Ok(Reconciled { credential })
    }

    /// Settles the notes of changes that did not finish within a second
    /// (see the module documentation); those that cannot be settled yet
    /// (the issuer is unreachable) stay for the next round. Returns how
    /// many were left.
    pub async fn repair_pending(&self) -> usize {
        let notes = match self
            .store()
            .sync_intents_before(now() - REPAIR_AFTER, REPAIR_BATCH)
            .await
        {
            Ok(notes) => notes,
            Err(error) => {
                tracing::debug!(%error, "cannot read the sync notes; retrying");
                return 0;
            }
        };
        let mut left = 0;
        for note in notes {
            match self
                .store()
                .reassert_policy(&note.credential_id, None, self.token_sync())
                .await
            {
                Ok(settled) => {
                    if let Some(credential) = settled {
                        tracing::info!(
                            credential_id = %credential.id,
                            version = credential.policy_version,
                            "an unfinished credential change was settled on the token side"
                        );
                    }
                    if let Err(error) = self.store().clear_sync_intent(&note).await {
                        tracing::debug!(credential_id = %note.credential_id, %error, "cannot clear a sync note");
                    }
                }
                Err(error) => {
                    tracing::debug!(credential_id = %note.credential_id, %error, "cannot settle a credential yet; retrying");
                    left += 1;
                }
            }
        }
        left
    }
}
