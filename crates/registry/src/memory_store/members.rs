//! [`MemberStore`] of the [`MemoryCredentialStore`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEvent;
use crate::error::RegistryError;
use crate::member::{Member, MemberState, MemberUpdate, effective_credential};
use crate::member_store::MemberStore;
use crate::model::Credential;
use crate::page::{ListOrder, Page, PageRequest};
use crate::sync::{PolicyChange, TokenSync};

use super::MemoryCredentialStore;
use super::state::{at_micros, credential_as_stored};

fn member_as_stored(member: &Member) -> Member {
    let mut stored = member.clone();
    stored.create_time = at_micros(stored.create_time);
    stored.update_time = at_micros(stored.update_time);
    stored
}

#[async_trait]
impl MemberStore for MemoryCredentialStore {
    async fn create_member(
        &self,
        member: &Member,
        audit: &AuditEvent,
    ) -> Result<(), RegistryError> {
        self.write(|state| {
            state.project(&member.project_id)?;
            if state.member(&member.project_id, &member.user_id).is_some() {
                return Err(RegistryError::AlreadyExists(format!(
                    "member {:?} already exists in the project",
                    member.user_id
                )));
            }
            // The user's existing credentials must already fit: a member's
            // ceiling is refused rather than silently narrowing their keys.
            let mut beyond: Vec<&str> = Vec::new();
            for credential in state.owned(&member.project_id, &member.user_id) {
                for api in member.beyond_ceiling(&credential.allowed_apis) {
                    if !beyond.contains(&api) {
                        beyond.push(api);
                    }
                }
            }
            if !beyond.is_empty() {
                return Err(RegistryError::FailedPrecondition(format!(
                    "credentials of {:?} already hold {} beyond api_ceiling: narrow them or include them",
                    member.user_id,
                    beyond
                        .iter()
                        .map(|api| format!("{api:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            state.check_audit(audit)?;
            state.members.insert(
                (member.project_id.clone(), member.user_id.clone()),
                member_as_stored(member),
            );
            state.record(audit);
            Ok(())
        })
        .await
    }

    async fn get_member(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Option<Member>, RegistryError> {
        Ok(self.read(|state| state.member(project_id, user_id).cloned()))
    }

    async fn list_members(
        &self,
        project_id: &str,
        include_removed: bool,
        newest_first: bool,
        page: &PageRequest,
    ) -> Result<Page<Member>, RegistryError> {
        let members = self.read(|state| {
            state.project(project_id)?;
            Ok::<_, RegistryError>(
                state
                    .members
                    .values()
                    .filter(|member| member.project_id == project_id)
                    .filter(|member| include_removed || member.state != MemberState::Removed)
                    .cloned()
                    .collect(),
            )
        })?;
        let order = if newest_first {
            ListOrder::NewestFirst
        } else {
            ListOrder::OldestFirst
        };
        Ok(super::state::page_of(
            members,
            |member| (member.create_time, member.user_id.as_str()),
            order,
            page,
        ))
    }

    async fn update_member(
        &self,
        project_id: &str,
        user_id: &str,
        update: &MemberUpdate,
        now: DateTime<Utc>,
        sync: &dyn TokenSync,
        audit: &AuditEvent,
    ) -> Result<(Member, Vec<Credential>), RegistryError> {
        let _writer = self.writer.lock().await;
        let (current, owned) = self.read(|state| {
            let mut current = state
                .member(project_id, user_id)
                .ok_or_else(|| RegistryError::NotFound {
                    kind: "member",
                    id: user_id.to_owned(),
                })?
                .clone();
            current.ensure_not_removed()?;
            update.apply_to(&mut current);
            current.update_time = now;
            state.check_audit(audit)?;
            let owned: Vec<Credential> = if update.reaches_tokens() {
                state
                    .owned(project_id, user_id)
                    .into_iter()
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            Ok::<_, RegistryError>((current, owned))
        })?;
        // Each credential of the member moves to a new version with its new
        // effective policy, in ID order; removal also purges its tokens. A
        // failure part way leaves nothing changed here (the token side may
        // be ahead for the credentials already sent: their notes settle it).
        let revoke_tokens = current.state == MemberState::Removed;
        let mut changed = Vec::with_capacity(owned.len());
        for mut credential in owned {
            credential.policy_version += 1;
            let effective = effective_credential(&credential, Some(&current));
            sync.apply(PolicyChange {
                credential: &effective,
                deleted: false,
                revoke_tokens,
            })
            .await?;
            changed.push(credential);
        }
        self.commit(|state| {
            state.members.insert(
                (project_id.to_owned(), user_id.to_owned()),
                member_as_stored(&current),
            );
            for credential in &changed {
                if let Some(stored) = state.credentials.get_mut(&credential.id) {
                    stored.credential = credential_as_stored(credential);
                }
            }
            state.record(audit);
        });
        Ok((current, changed))
    }
}
