//! [`MemoryCredentialStore`]: a [`CredentialStore`] in process memory, for
//! tests and experiments (never for production: nothing survives the
//! process).
//!
//! It behaves as the SQL store of `latchkey-registry-store` does, case for
//! case: the same errors for the same inputs, every change atomic with its
//! audit event, the token side told (the member's effective credential)
//! before a change becomes visible, quotas counting API credentials only,
//! the same page orders. So the registry's rules can be unit tested here,
//! in the domain crate, without a database.
//!
//! # Concurrency
//!
//! A change must call [`TokenSync::apply`] (async) between computing the new
//! state and committing it, and a failed sync must leave nothing changed.
//! Every write therefore takes one `tokio::sync::Mutex` (`writer`) for its
//! whole duration, across that await: changes serialise as they do under
//! the SQL store's row and project locks (only coarser: one slow sync
//! delays every change of the store, which a test store can afford). The
//! data itself sits behind a `std::sync::Mutex` held only for instants and
//! never across an await, so reads — from a test's sync double too — never
//! wait for a change in flight and see only committed state, as a reader
//! of the database does. A copy-on-write commit with retries was rejected:
//! a retried change would call the sync twice, sending a version that
//! never commits.

mod members;
mod state;
mod usage;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{AuditEvent, AuditFilter};
use crate::error::RegistryError;
use crate::model::{
    Credential, CredentialKind, CredentialState, CredentialUpdate, CredentialUse, NewCredential,
    PolicyOverrides, Project, ProjectPolicy, ProjectUpdate,
};
use crate::page::{ListOrder, Page, PageRequest};
use crate::store::{AuthenticationRecord, CredentialFilter, CredentialStore, SecretRotation};
use crate::sync::{PolicyChange, SyncNote, TokenSync};

use state::{State, Stored, at_micros, credential_as_stored, page_of, secret_as_stored};

/// A [`CredentialStore`] (and [`crate::MemberStore`]) in memory, for tests
/// and experiments, not for production. See the module documentation for
/// how it stays atomic under concurrent calls.
pub struct MemoryCredentialStore {
    policy_defaults: ProjectPolicy,
    state: std::sync::Mutex<State>,
    /// Held by every write for its whole duration (see the module
    /// documentation); only holders of it change `state`.
    writer: tokio::sync::Mutex<()>,
}

impl MemoryCredentialStore {
    /// An empty store resolving project policies against `policy_defaults`.
    pub fn new(policy_defaults: ProjectPolicy) -> Self {
        Self {
            policy_defaults,
            state: std::sync::Mutex::default(),
            writer: tokio::sync::Mutex::const_new(()),
        }
    }

    /// Reads the committed state.
    fn read<T>(&self, read: impl FnOnce(&State) -> T) -> T {
        // Nothing panics while holding the lock; a poisoned one is still
        // consistent (every commit is one infallible step).
        let guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read(&guard)
    }

    /// Commits a change; callers hold `writer`.
    fn commit<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut guard)
    }

    /// A write that needs no sync: checked and applied in one step.
    async fn write<T>(
        &self,
        change: impl FnOnce(&mut State) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let _writer = self.writer.lock().await;
        self.commit(change)
    }

    /// Applies the change of one credential computed under `writer`:
    /// tells `sync` (the effective credential), then commits `committed`
    /// with `audit` (when given).
    async fn sync_and_commit(
        &self,
        committed: Credential,
        sync: &dyn TokenSync,
        revoke_tokens: bool,
        audit: Option<&AuditEvent>,
        finish: impl FnOnce(&mut Stored),
    ) -> Result<Credential, RegistryError> {
        let effective = self.read(|state| state.effective(&committed));
        sync.apply(PolicyChange {
            credential: &effective,
            deleted: false,
            revoke_tokens,
        })
        .await?;
        self.commit(|state| {
            if let Some(stored) = state.credentials.get_mut(&committed.id) {
                stored.credential = credential_as_stored(&committed);
                finish(stored);
            }
            if let Some(audit) = audit {
                state.record(audit);
            }
        });
        Ok(committed)
    }
}

impl std::fmt::Debug for MemoryCredentialStore {
    /// Sizes only: a registry's `Debug` output should not dump its data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (projects, credentials, members) = self.read(|state| {
            (
                state.projects.len(),
                state.credentials.len(),
                state.members.len(),
            )
        });
        f.debug_struct("MemoryCredentialStore")
            .field("policy_defaults", &self.policy_defaults)
            .field("projects", &projects)
            .field("credentials", &credentials)
            .field("members", &members)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentialStore {
    fn policy_defaults(&self) -> &ProjectPolicy {
        &self.policy_defaults
    }

    async fn create_project(
        &self,
        project: &Project,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError> {
        self.write(|state| {
            if state.projects.contains_key(&project.id) {
                return Err(RegistryError::AlreadyExists(format!(
                    "project {:?} already exists",
                    project.id
                )));
            }
            state.check_audit(audit)?;
            let mut stored = project.clone();
            stored.create_time = at_micros(stored.create_time);
            stored.update_time = at_micros(stored.update_time);
            state.projects.insert(stored.id.clone(), stored);
            state.record(audit);
            Ok(())
        })
        .await
    }

    async fn get_project(&self, project_id: &str) -> Result<Project, RegistryError> {
        self.read(|state| state.project(project_id).cloned())
    }

    async fn update_project(
        &self,
        project_id: &str,
        update: &ProjectUpdate,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError> {
        self.write(|state| {
            let mut current = state.project(project_id)?.clone();
            state.check_audit(audit)?;
            let ProjectUpdate {
                display_name,
                api_endpoint,
            } = update;
            if let Some(name) = display_name {
                current.display_name.clone_from(name);
            }
            if let Some(url) = api_endpoint {
                current.api_endpoint.clone_from(url);
            }
            current.update_time = now;
            let mut stored = current.clone();
            stored.update_time = at_micros(now);
            state.projects.insert(stored.id.clone(), stored);
            state.record(audit);
            Ok(current)
        })
        .await
    }

    async fn list_projects(&self, page: &PageRequest) -> Result<Page<Project>, RegistryError> {
        let projects = self.read(|state| state.projects.values().cloned().collect());
        Ok(page_of(
            projects,
            |project| (project.create_time, project.id.as_str()),
            page.order,
            page,
        ))
    }

    async fn update_project_policy(
        &self,
        project_id: &str,
        overrides: &PolicyOverrides,
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError> {
        self.write(|state| {
            let mut current = state.project(project_id)?.clone();
            state.check_audit(audit)?;
            current.overrides = current.overrides.merged_with(overrides);
            current.update_time = now;
            let mut stored = current.clone();
            stored.update_time = at_micros(now);
            state.projects.insert(stored.id.clone(), stored);
            state.record(audit);
            Ok(current)
        })
        .await
    }

    async fn create_credential(
        &self,
        new: &NewCredential,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let value = &new.credential;
        let defaults = self.policy_defaults;
        self.write(|state| {
            match value.kind() {
                CredentialKind::Api => {
                    state.check_room_for_api_credential(
                        &defaults,
                        &value.project_id,
                        &value.owner,
                    )?;
                }
                CredentialKind::Management => {
                    state.project(&value.project_id)?;
                }
            }
            // Every unique key of the table (ID, client ID, name in the
            // project) answers as the SQL store's unique violation does.
            if state.credentials.contains_key(&value.id)
                || state.client_id_taken(&value.client_id)
                || state.name_taken(&value.project_id, &value.name, None)
            {
                return Err(state::name_taken(&value.name));
            }
            state.check_audit(audit)?;
            state.credentials.insert(
                value.id.clone(),
                Stored {
                    credential: credential_as_stored(value),
                    secrets: vec![secret_as_stored(&new.secret)],
                },
            );
            state.record(audit);
            Ok(value.clone())
        })
        .await
    }

    async fn get_credential(&self, credential_id: &str) -> Result<Credential, RegistryError> {
        self.read(|state| Ok(state.credential(credential_id)?.credential.clone()))
    }

    async fn list_credentials(
        &self,
        project_id: &str,
        filter: &CredentialFilter,
        page: &PageRequest,
    ) -> Result<Page<Credential>, RegistryError> {
        let credentials = self.read(|state| {
            state.project(project_id)?;
            Ok::<_, RegistryError>(
                state
                    .credentials
                    .values()
                    .map(|stored| &stored.credential)
                    .filter(|credential| credential.project_id == project_id)
                    .filter(|credential| {
                        filter
                            .owner
                            .as_ref()
                            .is_none_or(|owner| &credential.owner == owner)
                    })
                    .filter(|credential| filter.kind.is_none_or(|kind| credential.kind() == kind))
                    .cloned()
                    .collect(),
            )
        })?;
        Ok(page_of(
            credentials,
            |credential| (credential.create_time, credential.id.as_str()),
            page.order,
            page,
        ))
    }

    async fn update_credential(
        &self,
        credential_id: &str,
        update: &CredentialUpdate,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let _writer = self.writer.lock().await;
        let defaults = self.policy_defaults;
        let current = self.read(|state| {
            let mut current = state.credential(credential_id)?.credential.clone();
            if update
                .expected_version
                .is_some_and(|expected| expected != current.policy_version)
            {
                return Err(RegistryError::stale_etag());
            }
            let kind_before = current.kind();
            update.apply_to(&mut current);
            // A management credential becoming an API key needs a place in
            // the quotas, as a create would; the other way round frees one.
            if kind_before == CredentialKind::Management && current.kind() == CredentialKind::Api {
                state.check_room_for_api_credential(
                    &defaults,
                    &current.project_id,
                    &current.owner,
                )?;
            }
            current.update_time = now;
            current.policy_version += 1;
            if state.name_taken(&current.project_id, &current.name, Some(credential_id)) {
                return Err(state::name_taken(&current.name));
            }
            state.check_audit(audit)?;
            Ok(current)
        })?;
        self.sync_and_commit(current, sync, false, Some(audit), |_| {})
            .await
    }

    async fn set_credential_state(
        &self,
        credential_id: &str,
        state: CredentialState,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let _writer = self.writer.lock().await;
        let current = self.read(|stored| {
            let mut current = stored.credential(credential_id)?.credential.clone();
            current.state = state;
            current.update_time = now;
            current.policy_version += 1;
            stored.check_audit(audit)?;
            Ok::<_, RegistryError>(current)
        })?;
        self.sync_and_commit(current, sync, false, Some(audit), |_| {})
            .await
    }

    async fn delete_credential(
        &self,
        credential_id: &str,
        confirm_name: &str,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError> {
        let _writer = self.writer.lock().await;
        let deleted = self.read(|state| {
            let mut deleted = state.credential(credential_id)?.credential.clone();
            if deleted.name != confirm_name {
                return Err(RegistryError::FailedPrecondition(
                    "confirm_name does not match the credential's name; nothing was deleted"
                        .to_owned(),
                ));
            }
            deleted.policy_version += 1;
            state.check_audit(audit)?;
            Ok(deleted)
        })?;
        // As the SQL store: the deleted credential itself (its tokens all
        // go), not its effective form under a member.
        sync.apply(PolicyChange {
            credential: &deleted,
            deleted: true,
            revoke_tokens: true,
        })
        .await?;
        self.commit(|state| {
            state.credentials.remove(credential_id);
            state.record(audit);
        });
        Ok(())
    }

    async fn rotate_secret(
        &self,
        credential_id: &str,
        rotation: SecretRotation<'_>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let SecretRotation {
            secret,
            previous_expire_time,
            now,
            revoke_tokens,
        } = rotation;
        let _writer = self.writer.lock().await;
        let current = self.read(|state| {
            let mut current = state.credential(credential_id)?.credential.clone();
            current.update_time = now;
            // Always a new version, told to the token side (as the SQL
            // store does: it ends cached authentications of the old secret).
            current.policy_version += 1;
            state.check_audit(audit)?;
            Ok::<_, RegistryError>(current)
        })?;
        let now_micros = at_micros(now);
        self.sync_and_commit(current, sync, revoke_tokens, Some(audit), |stored| {
            match previous_expire_time.map(at_micros) {
                None => stored.secrets.clear(),
                Some(expiry) => {
                    // Expired secrets go; live ones end at the grace
                    // period's end unless they already end sooner.
                    stored
                        .secrets
                        .retain(|old| old.expire_time.is_none_or(|end| end > now_micros));
                    for old in &mut stored.secrets {
                        if old.expire_time.is_none_or(|end| end > expiry) {
                            old.expire_time = Some(expiry);
                        }
                    }
                }
            }
            stored.secrets.push(secret_as_stored(secret));
        })
        .await
    }

    async fn record_usage(&self, uses: &[CredentialUse]) -> Result<(), RegistryError> {
        self.write(|state| {
            for credential_use in uses {
                let Some(stored) = state.credentials.get_mut(&credential_use.credential_id) else {
                    continue;
                };
                let mut last_use = credential_use.last_use;
                last_use.time = at_micros(last_use.time);
                let credential = &mut stored.credential;
                if credential
                    .last_use
                    .is_none_or(|stored| stored.time < last_use.time)
                {
                    credential.last_use = Some(last_use);
                }
            }
            Ok(())
        })
        .await
    }

    async fn credentials_with_api(
        &self,
        api: &str,
        limit: u32,
    ) -> Result<Vec<Credential>, RegistryError> {
        let mut found: Vec<Credential> = self.read(|state| {
            state
                .credentials
                .values()
                .map(|stored| &stored.credential)
                .filter(|credential| credential.allowed_apis.iter().any(|held| held == api))
                .cloned()
                .collect()
        });
        found.sort_by(|a, b| (a.create_time, &a.id).cmp(&(b.create_time, &b.id)));
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), RegistryError> {
        if events.is_empty() {
            return Ok(());
        }
        self.write(|state| {
            for event in events {
                if !state.audit.contains_key(&event.id) {
                    state.record(event);
                }
            }
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, RegistryError> {
        let events = self.read(|state| {
            state
                .audit
                .values()
                .filter(|event| {
                    filter
                        .project_id
                        .as_ref()
                        .is_none_or(|id| &event.project_id == id)
                })
                .filter(|event| {
                    filter
                        .credential_id
                        .as_ref()
                        .is_none_or(|id| &event.credential_id == id)
                })
                .filter(|event| filter.start_time.is_none_or(|start| event.time >= start))
                .filter(|event| filter.end_time.is_none_or(|end| event.time < end))
                .cloned()
                .collect()
        });
        // Newest first, always.
        Ok(page_of(
            events,
            |event| (event.time, event.id.as_str()),
            ListOrder::NewestFirst,
            page,
        ))
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, RegistryError> {
        self.write(|state| {
            let count = state.audit.len();
            state.audit.retain(|_, event| event.time >= before);
            Ok((count - state.audit.len()) as u64)
        })
        .await
    }

    async fn reassert_policy(
        &self,
        credential_id: &str,
        held_version: Option<i64>,
        sync: &dyn TokenSync,
    ) -> Result<Option<Credential>, RegistryError> {
        // The writer lock plays the row lock: a change in flight commits or
        // fails first.
        let _writer = self.writer.lock().await;
        let Some(mut current) = self.read(|state| {
            state
                .credentials
                .get(credential_id)
                .map(|stored| stored.credential.clone())
        }) else {
            return Ok(None);
        };
        let held_version = held_version.unwrap_or(current.policy_version + 1);
        if current.policy_version >= held_version {
            // The change in flight committed, or the token side is behind
            // (it catches up at the next issuance): nothing to settle.
            return Ok(Some(current));
        }
        current.policy_version = held_version + 1;
        self.sync_and_commit(current, sync, false, None, |_| {})
            .await
            .map(Some)
    }

    async fn note_sync_intent(
        &self,
        credential_id: &str,
        noted_at: DateTime<Utc>,
    ) -> Result<bool, RegistryError> {
        self.write(|state| {
            Ok(state
                .sync_notes
                .insert(credential_id.to_owned(), at_micros(noted_at))
                .is_some())
        })
        .await
    }

    async fn clear_sync_intent(&self, note: &SyncNote) -> Result<(), RegistryError> {
        self.write(|state| {
            if state.sync_notes.get(&note.credential_id) == Some(&at_micros(note.noted_at)) {
                state.sync_notes.remove(&note.credential_id);
            }
            Ok(())
        })
        .await
    }

    async fn sync_intents_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SyncNote>, RegistryError> {
        let before = at_micros(before);
        let mut notes: Vec<SyncNote> = self.read(|state| {
            state
                .sync_notes
                .iter()
                .filter(|(_, noted_at)| **noted_at < before)
                .map(|(credential_id, noted_at)| SyncNote {
                    credential_id: credential_id.clone(),
                    noted_at: *noted_at,
                })
                .collect()
        });
        notes.sort_by(|a, b| (a.noted_at, &a.credential_id).cmp(&(b.noted_at, &b.credential_id)));
        notes.truncate(limit as usize);
        Ok(notes)
    }

    async fn authentication_record(
        &self,
        client_id: &str,
    ) -> Result<Option<AuthenticationRecord>, RegistryError> {
        self.read(|state| {
            let Some(stored) = state
                .credentials
                .values()
                .find(|stored| stored.credential.client_id == client_id)
            else {
                return Ok(None);
            };
            let credential = stored.credential.clone();
            let project = state
                .projects
                .get(&credential.project_id)
                .ok_or_else(|| RegistryError::Internal("credential without project".into()))?;
            Ok(Some(AuthenticationRecord {
                member: state.member_of(&credential).cloned(),
                secrets: stored.secrets.clone(),
                policy: project.overrides.resolve(&self.policy_defaults),
                credential,
            }))
        })
    }
}
