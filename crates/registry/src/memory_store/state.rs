//! The data of a [`super::MemoryCredentialStore`] and the checks its
//! changes share (the SQL store's constraints and quota counts).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::error::{QuotaLimit, RegistryError};
use crate::member::{Member, effective_credential};
use crate::model::{Credential, CredentialKind, Project, ProjectPolicy, StoredSecret};
use crate::page::{ListOrder, Page, PageRequest, Position};

/// A credential with its secrets (the SQL store's two tables).
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) credential: Credential,
    pub(super) secrets: Vec<StoredSecret>,
}

/// Everything the store holds.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) projects: BTreeMap<String, Project>,
    /// By credential ID.
    pub(super) credentials: BTreeMap<String, Stored>,
    /// By (project, user).
    pub(super) members: BTreeMap<(String, String), Member>,
    /// By event ID.
    pub(super) audit: BTreeMap<String, AuditEvent>,
    /// Credential ID → when its note was made.
    pub(super) sync_notes: BTreeMap<String, DateTime<Utc>>,
    /// Usage rollups, their addresses and seen batch IDs.
    pub(super) usage: super::usage::UsageState,
}

/// `time` at the precision the SQL stores keep (microseconds), so what a
/// test reads back compares as it would on a database.
pub(super) fn at_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

/// `credential` as a database row would return it.
pub(super) fn credential_as_stored(credential: &Credential) -> Credential {
    let mut stored = credential.clone();
    stored.create_time = at_micros(stored.create_time);
    stored.update_time = at_micros(stored.update_time);
    stored.expire_time = stored.expire_time.map(at_micros);
    if let Some(last_use) = &mut stored.last_use {
        last_use.time = at_micros(last_use.time);
    }
    stored
}

/// `secret` as a database row would return it.
pub(super) fn secret_as_stored(secret: &StoredSecret) -> StoredSecret {
    StoredSecret {
        hash: secret.hash.clone(),
        hash_key_id: secret.hash_key_id,
        create_time: at_micros(secret.create_time),
        expire_time: secret.expire_time.map(at_micros),
    }
}

/// The SQL store's answer to a unique violation on a credential.
pub(super) fn name_taken(name: &str) -> RegistryError {
    RegistryError::AlreadyExists(format!(
        "a credential named {name:?} already exists in the project"
    ))
}

/// One page of `items` in (`key`) `order`, strictly after `page.after`:
/// the SQL stores' keyset pagination.
pub(super) fn page_of<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> (DateTime<Utc>, &str),
    order: ListOrder,
    page: &PageRequest,
) -> Page<T> {
    items.sort_by(|a, b| {
        let ascending = key(a).cmp(&key(b));
        match order {
            ListOrder::OldestFirst => ascending,
            ListOrder::NewestFirst => ascending.reverse(),
        }
    });
    if let Some(Position { create_time, id }) = &page.after {
        let position = (*create_time, id.as_str());
        items.retain(|item| match order {
            ListOrder::OldestFirst => key(item) > position,
            ListOrder::NewestFirst => key(item) < position,
        });
    }
    let size = page.size as usize;
    let next = if items.len() > size {
        items.truncate(size);
        items.last().map(|last| {
            let (create_time, id) = key(last);
            Position {
                create_time,
                id: id.to_owned(),
            }
        })
    } else {
        None
    };
    Page { items, next }
}

impl State {
    pub(super) fn project(&self, project_id: &str) -> Result<&Project, RegistryError> {
        self.projects
            .get(project_id)
            .ok_or_else(|| RegistryError::project_not_found(project_id))
    }

    pub(super) fn credential(&self, credential_id: &str) -> Result<&Stored, RegistryError> {
        self.credentials
            .get(credential_id)
            .ok_or_else(|| RegistryError::credential_not_found(credential_id))
    }

    pub(super) fn member(&self, project_id: &str, user_id: &str) -> Option<&Member> {
        self.members
            .get(&(project_id.to_owned(), user_id.to_owned()))
    }

    /// The member owning `credential`, if its owner is one.
    pub(super) fn member_of(&self, credential: &Credential) -> Option<&Member> {
        self.member(&credential.project_id, &credential.owner)
    }

    /// What the token side is told for `credential` under its member.
    pub(super) fn effective(&self, credential: &Credential) -> Credential {
        effective_credential(credential, self.member_of(credential))
    }

    /// The credentials `user_id` owns in `project_id`, in ID order (the
    /// order the SQL store locks and syncs them in).
    pub(super) fn owned(&self, project_id: &str, user_id: &str) -> Vec<&Credential> {
        // The map is ordered by ID already.
        self.credentials
            .values()
            .map(|stored| &stored.credential)
            .filter(|credential| credential.project_id == project_id && credential.owner == user_id)
            .collect()
    }

    pub(super) fn client_id_taken(&self, client_id: &str) -> bool {
        self.credentials
            .values()
            .any(|stored| stored.credential.client_id == client_id)
    }

    /// Whether another credential than `except` has `name` in the project.
    pub(super) fn name_taken(&self, project_id: &str, name: &str, except: Option<&str>) -> bool {
        self.credentials.values().any(|stored| {
            let credential = &stored.credential;
            credential.project_id == project_id
                && credential.name == name
                && except != Some(credential.id.as_str())
        })
    }

    /// Refuses one more API credential of `owner` in `project_id` past the
    /// project's quotas; only API credentials count.
    pub(super) fn check_room_for_api_credential(
        &self,
        defaults: &ProjectPolicy,
        project_id: &str,
        owner: &str,
    ) -> Result<(), RegistryError> {
        let policy = self.project(project_id)?.overrides.resolve(defaults);
        let count = |owner: Option<&str>| {
            self.credentials
                .values()
                .map(|stored| &stored.credential)
                .filter(|credential| {
                    credential.project_id == project_id
                        && credential.kind() == CredentialKind::Api
                        && owner.is_none_or(|owner| credential.owner == owner)
                })
                .count()
        };
        if policy.max_credentials > 0 && count(None) >= policy.max_credentials as usize {
            return Err(RegistryError::QuotaExceeded(QuotaLimit::Credentials(
                policy.max_credentials,
            )));
        }
        if policy.max_credentials_per_owner > 0
            && count(Some(owner)) >= policy.max_credentials_per_owner as usize
        {
            return Err(RegistryError::QuotaExceeded(
                QuotaLimit::CredentialsPerOwner(policy.max_credentials_per_owner),
            ));
        }
        Ok(())
    }

    /// Refuses a change whose audit event's ID is taken, as the SQL
    /// store's primary key does (the whole change fails).
    pub(super) fn check_audit(&self, event: &AuditEvent) -> Result<(), RegistryError> {
        if self.audit.contains_key(&event.id) {
            return Err(RegistryError::AlreadyExists("already exists".to_owned()));
        }
        Ok(())
    }

    /// Writes `event` (checked with [`State::check_audit`] first).
    pub(super) fn record(&mut self, event: &AuditEvent) {
        let mut stored = event.clone();
        stored.time = at_micros(stored.time);
        self.audit.insert(stored.id.clone(), stored);
    }
}
