//! The registry's member operations, the ceiling every member's credential
//! obeys, and acting on behalf of a member.

use crate::access::{Caller, OnBehalfOf, Role};
use crate::audit::{AuditAction, AuditEvent};
use crate::error::RegistryError;
use crate::member::{Member, MemberRole, MemberState, MemberUpdate};
use crate::model::now;
use crate::page::{ListOrder, MAX_PAGE_SIZE, PageRequest, PageToken};
use crate::reconcile::UNNOTED_CREDENTIAL;
use crate::service::{Registry, finish_page};
use crate::store::CredentialFilter;

/// How often a member change is tried when credentials keep appearing
/// for the member while it runs.
const MEMBER_CHANGE_ATTEMPTS: u32 = 3;
use crate::validate;

/// Input of [`Registry::create_member`].
#[derive(Debug, Clone, Default)]
pub struct CreateMember {
    /// The project.
    pub project_id: String,
    /// The user: the owner string of their credentials.
    pub user_id: String,
    /// Optional display name.
    pub display_name: String,
    /// The role; `Member` when not given.
    pub role: Option<MemberRole>,
    /// The APIs the user holds.
    pub api_ceiling: Vec<String>,
}

/// Input of [`Registry::list_members`].
#[derive(Debug, Clone, Default)]
pub struct ListMembers {
    /// The project.
    pub project_id: String,
    /// Whether removed members are listed too.
    pub include_removed: bool,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
    /// Requested page size (0 = default).
    pub page_size: i32,
    /// Token of a previous call.
    pub page_token: String,
}

/// Raw partial update of a member, as named by an update mask.
#[derive(Debug, Clone, Default)]
pub struct UpdateMember {
    /// New display name.
    pub display_name: Option<String>,
    /// New role.
    pub role: Option<MemberRole>,
    /// New ceiling.
    pub api_ceiling: Option<Vec<String>>,
    /// New state (`Active` or `Suspended`; removal is `RemoveMember`).
    pub state: Option<MemberState>,
}

fn member_not_found(user_id: &str) -> RegistryError {
    RegistryError::NotFound {
        kind: "member",
        id: user_id.to_owned(),
    }
}

impl Registry {
    /// Adds a member to a project.
    pub async fn create_member(
        &self,
        caller: &Caller,
        input: CreateMember,
    ) -> Result<Member, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::CreateMember);
        if validate::project_id("project_id", &input.project_id).is_ok() {
            audit.project_id.clone_from(&input.project_id);
        }
        audit.set_detail(format!("member {:?}", input.user_id));
        let result = async {
            validate::project_id("project_id", &input.project_id)?;
            caller.require_member_manager(&input.project_id)?;
            validate::owner("user_id", &input.user_id)?;
            validate::free_text(
                "display_name",
                &input.display_name,
                validate::MAX_DISPLAY_NAME_LEN,
            )?;
            let api_ceiling = validate::allowed_apis("api_ceiling", &input.api_ceiling)?;
            caller.check_grantable("api_ceiling", &api_ceiling)?;
            if let Some(existing) = self
                .store()
                .get_member(&input.project_id, &input.user_id)
                .await?
            {
                existing.ensure_not_removed()?;
                return Err(RegistryError::AlreadyExists(format!(
                    "member {:?} already exists in the project",
                    input.user_id
                )));
            }
            let at = now();
            let member = Member {
                project_id: input.project_id,
                user_id: input.user_id,
                display_name: input.display_name,
                role: input.role.unwrap_or(MemberRole::Member),
                api_ceiling,
                state: MemberState::Active,
                create_time: at,
                update_time: at,
            };
            self.store().create_member(&member, &audit).await?;
            Ok(member)
        }
        .await;
        self.finish(audit, result).await
    }

    /// Reads a member: the project's managers, or the member itself.
    /// Others are told `NOT_FOUND`, as for a user who is no member.
    pub async fn get_member(
        &self,
        caller: &Caller,
        project_id: &str,
        user_id: &str,
    ) -> Result<Member, RegistryError> {
        validate::project_id("project_id", project_id)?;
        validate::owner("user_id", user_id)?;
        if !caller.can_read_member(project_id, user_id)? {
            return Err(member_not_found(user_id));
        }
        self.store()
            .get_member(project_id, user_id)
            .await?
            .ok_or_else(|| member_not_found(user_id))
    }

    /// Lists a project's members.
    pub async fn list_members(
        &self,
        caller: &Caller,
        input: ListMembers,
    ) -> Result<(Vec<Member>, String), RegistryError> {
        validate::project_id("project_id", &input.project_id)?;
        caller.require_member_manager(&input.project_id)?;
        let filter = format!(
            "members\n{}\n{}\n{}",
            input.project_id, input.include_removed, input.newest_first
        );
        let request = PageToken::request(input.page_size, &input.page_token, &filter)?;
        let page = self
            .store()
            .list_members(
                &input.project_id,
                input.include_removed,
                input.newest_first,
                &request,
            )
            .await?;
        Ok(finish_page(page, &filter))
    }

    /// Changes the fields present in `input`. A lower ceiling or a
    /// suspension reaches the member's live tokens before it commits.
    pub async fn update_member(
        &self,
        caller: &Caller,
        project_id: &str,
        user_id: &str,
        input: UpdateMember,
    ) -> Result<Member, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::UpdateMember);
        if validate::project_id("member.project_id", project_id).is_ok() {
            audit.project_id = project_id.to_owned();
        }
        let result = async {
            validate::project_id("member.project_id", project_id)?;
            caller.require_member_manager(project_id)?;
            validate::owner("member.user_id", user_id)?;
            if let Some(name) = &input.display_name {
                validate::free_text("member.display_name", name, validate::MAX_DISPLAY_NAME_LEN)?;
            }
            if input.state == Some(MemberState::Removed) {
                return Err(RegistryError::invalid(
                    "member.state",
                    "must be ACTIVE or SUSPENDED (RemoveMember removes)",
                ));
            }
            let api_ceiling = match input.api_ceiling {
                Some(apis) => {
                    let apis = validate::allowed_apis("member.api_ceiling", &apis)?;
                    caller.check_grantable("member.api_ceiling", &apis)?;
                    Some(apis)
                }
                None => None,
            };
            let update = MemberUpdate {
                display_name: input.display_name,
                role: input.role,
                api_ceiling,
                state: input.state,
            };
            if update.is_empty() {
                return Err(RegistryError::invalid(
                    "update_mask",
                    "required: name at least one field",
                ));
            }
            audit.set_detail(format!(
                "member {user_id:?}, fields: {}",
                update.field_names().join(", ")
            ));
            self.change_member(project_id, user_id, &update, &audit)
                .await
        }
        .await;
        self.finish(audit, result).await
    }

    /// Removes a member for good: their credentials stay (listed, so the
    /// project sees them) but are refused from now on and their tokens end.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        project_id: &str,
        user_id: &str,
    ) -> Result<Member, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::RemoveMember);
        if validate::project_id("project_id", project_id).is_ok() {
            audit.project_id = project_id.to_owned();
        }
        audit.set_detail(format!("member {user_id:?}"));
        let result = async {
            validate::project_id("project_id", project_id)?;
            caller.require_member_manager(project_id)?;
            validate::owner("user_id", user_id)?;
            let update = MemberUpdate {
                state: Some(MemberState::Removed),
                ..MemberUpdate::default()
            };
            self.change_member(project_id, user_id, &update, &audit)
                .await
        }
        .await;
        self.finish(audit, result).await
    }

    async fn change_member(
        &self,
        project_id: &str,
        user_id: &str,
        update: &MemberUpdate,
        audit: &AuditEvent,
    ) -> Result<Member, RegistryError> {
        // Every credential of the member may be sent a new policy: each is
        // noted first. One created between the listing and the change has
        // no note, so the sync refuses it and the change is retried with a
        // fresh listing (see `SyncIntent`).
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let credential_ids = if update.reaches_tokens() {
                self.owned_credential_ids(project_id, user_id).await?
            } else {
                Vec::new()
            };
            let sync = self
                .begin_sync_all(credential_ids.iter().map(String::as_str))
                .await?;
            let result = self
                .store()
                .update_member(project_id, user_id, update, now(), &sync, audit)
                .await;
            self.end_sync(sync, &result).await;
            match result {
                Err(RegistryError::Aborted(reason))
                    if reason == UNNOTED_CREDENTIAL && attempts < MEMBER_CHANGE_ATTEMPTS => {}
                other => break other,
            }
        };
        let (member, _) = result.map_err(|error| match error {
            RegistryError::NotFound { kind: "member", .. } => member_not_found(user_id),
            other => other,
        })?;
        Ok(member)
    }

    /// The IDs of every credential `user_id` owns in `project_id`.
    async fn owned_credential_ids(
        &self,
        project_id: &str,
        user_id: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let mut ids = Vec::new();
        let mut page = PageRequest {
            size: MAX_PAGE_SIZE,
            after: None,
            order: ListOrder::OldestFirst,
        };
        let owner = CredentialFilter {
            owner: Some(user_id.to_owned()),
            kind: None,
        };
        loop {
            let found = self
                .store()
                .list_credentials(project_id, &owner, &page)
                .await?;
            ids.extend(found.items.into_iter().map(|credential| credential.id));
            match found.next {
                Some(next) => page.after = Some(next),
                None => return Ok(ids),
            }
        }
    }

    /// The member a new or widened credential of `owner` in `project_id`
    /// must stay within, checked for every caller (admins too): the APIs
    /// beyond the member's ceiling are refused by name. A new credential
    /// for a member who is not active is refused too. Owners who are no
    /// member are not bounded here.
    pub(crate) async fn check_member_ceiling(
        &self,
        project_id: &str,
        owner: &str,
        field: &str,
        apis: &[String],
        creating: bool,
    ) -> Result<(), RegistryError> {
        let Some(member) = self.store().get_member(project_id, owner).await? else {
            return Ok(());
        };
        if creating && member.state != MemberState::Active {
            return Err(RegistryError::FailedPrecondition(format!(
                "member {owner:?} is {}: no new credentials",
                member.state.as_str()
            )));
        }
        let beyond = member.beyond_ceiling(apis);
        if beyond.is_empty() {
            return Ok(());
        }
        Err(RegistryError::PermissionDenied(format!(
            "{field}: cannot grant {}, beyond the API ceiling of member {owner:?}",
            beyond
                .iter()
                .map(|api| format!("{api:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// `caller` with its own membership: a `credentials:own` caller whose
    /// owner is an active member of its project gets that member's
    /// ceiling as what it may grant ([`Caller::own_ceiling`]). Other
    /// callers are returned as they are.
    pub async fn with_own_membership(&self, caller: Caller) -> Result<Caller, RegistryError> {
        if caller.role() != Some(Role::Owner) || caller.on_behalf_of.is_some() {
            return Ok(caller);
        }
        let member = self
            .store()
            .get_member(&caller.project_id, &caller.owner)
            .await?;
        Ok(match member {
            Some(member) if member.state == MemberState::Active => Caller {
                own_ceiling: Some(member.api_ceiling),
                ..caller
            },
            Some(_) | None => caller,
        })
    }

    /// Confines `caller` to the member named by `requested` (`user_id`, or
    /// `project_id/user_id` for another project than the caller's, which
    /// only platform admins reach), read from the request's `field`.
    /// Only `credentials:manage` and `registry:admin` callers may act on
    /// behalf of a member, and only of an active one: anything else is
    /// `PERMISSION_DENIED`.
    pub async fn act_on_behalf(
        &self,
        caller: Caller,
        field: &str,
        requested: &str,
    ) -> Result<Caller, RegistryError> {
        match caller.require_role()? {
            Role::Admin | Role::Manager => {}
            Role::Owner => {
                return Err(RegistryError::PermissionDenied(
                    "credentials:own callers cannot act on behalf of anyone".to_owned(),
                ));
            }
        }
        let (project_id, user_id) = match requested.split_once('/') {
            Some((project_id, user_id)) => (project_id, user_id),
            None => (caller.project_id.as_str(), requested),
        };
        validate::project_id(field, project_id)?;
        validate::owner(field, user_id)?;
        caller.require_project(project_id)?;
        let member = self.store().get_member(project_id, user_id).await?;
        let member = match member {
            Some(member) if member.state == MemberState::Active => member,
            Some(member) if member.state == MemberState::Suspended => {
                return Err(RegistryError::PermissionDenied(format!(
                    "{field}: member {user_id:?} is suspended"
                )));
            }
            Some(_) | None => {
                return Err(RegistryError::PermissionDenied(format!(
                    "{field}: {user_id:?} is not a member of project {project_id:?}"
                )));
            }
        };
        Ok(Caller {
            project_id: member.project_id,
            owner: member.user_id.clone(),
            on_behalf_of: Some(OnBehalfOf {
                user_id: member.user_id,
                api_ceiling: member.api_ceiling,
            }),
            ..caller
        })
    }
}
