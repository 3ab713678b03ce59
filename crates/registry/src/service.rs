//! The registry's operations: validate, generate, store.
//!
//! Each method takes an input type built by the transport from the wire
//! message, checks every field before touching the store (so bad input never
//! causes a partial write), and returns domain values.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use latchkey_secrets::{CLIENT_ID, CLIENT_SECRET, HashKeys, random_string};

use crate::access::Caller;
use crate::audit::{AuditAction, AuditEvent, AuditFilter};
use crate::error::RegistryError;
use crate::fields::UpdateCredential;
use crate::model::{
    Credential, CredentialKind, CredentialState, NewCredential, PolicyOverrides, Project,
    ProjectPolicy, ProjectUpdate, StoredSecret, now,
};
use crate::page::{ListOrder, Page, PageToken};
use crate::report;
use crate::store::{CredentialFilter, CredentialStore, SecretRotation};
use crate::sync::TokenSync;
use crate::validate;

/// How many generated names to try before giving up on a crowded project.
const GENERATED_NAME_ATTEMPTS: usize = 8;
const NAME_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Input of [`Registry::create_project`].
#[derive(Debug, Clone, Default)]
pub struct CreateProject {
    /// The new project's ID.
    pub project_id: String,
    /// Optional display name; the ID when empty.
    pub display_name: String,
    /// Optional platform API base URL shown with the credentials.
    pub api_endpoint: String,
    /// Policy values that differ from the defaults.
    pub policy: PolicyOverrides,
}

/// Input of [`Registry::update_project`]: the values of the fields an
/// update mask names (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct UpdateProject {
    /// New display name (empty: the project ID).
    pub display_name: Option<String>,
    /// New API endpoint (empty clears it).
    pub api_endpoint: Option<String>,
}

/// Input of [`Registry::create_credential`].
#[derive(Debug, Clone, Default)]
pub struct CreateCredential {
    /// The project.
    pub project_id: String,
    /// The owning user.
    pub owner: String,
    /// Optional name; generated when empty.
    pub name: String,
    /// Optional description.
    pub description: String,
    /// APIs its tokens may call.
    pub allowed_apis: Vec<String>,
    /// Addresses it may be used from.
    pub allowed_ips: Vec<String>,
    /// Optional expiry.
    pub expire_time: Option<DateTime<Utc>>,
}

/// A new credential and its secret, to be shown once.
#[derive(Debug, Clone)]
pub struct CreatedCredential {
    /// The credential.
    pub credential: Credential,
    /// The plaintext secret. Never stored, never logged.
    pub client_secret: String,
}

/// Input of [`Registry::list_credentials`].
#[derive(Debug, Clone, Default)]
pub struct ListCredentials {
    /// The project.
    pub project_id: String,
    /// Only this owner's credentials, when set.
    pub owner: Option<String>,
    /// Only this kind, when set.
    pub kind: Option<CredentialKind>,
    /// AIP-132 order: empty or `create_time` (oldest first), or
    /// `create_time desc` (newest first).
    pub order_by: String,
    /// Requested page size (0 = default).
    pub page_size: i32,
    /// Token of a previous call.
    pub page_token: String,
}

/// Input of [`Registry::rotate_secret`].
#[derive(Debug, Clone, Default)]
pub struct RotateSecret {
    /// The credential.
    pub credential_id: String,
    /// How long older secrets keep working.
    pub grace_period_seconds: u32,
    /// Whether live tokens are to be revoked too.
    pub revoke_tokens: bool,
}

/// A rotated credential and its new secret, to be shown once.
#[derive(Debug, Clone)]
pub struct RotatedSecret {
    /// The credential.
    pub credential: Credential,
    /// The new plaintext secret.
    pub client_secret: String,
    /// When older secrets stop working; `None` when they already have.
    pub previous_secret_expire_time: Option<DateTime<Utc>>,
}

/// Input of [`Registry::list_audit_events`].
#[derive(Debug, Clone, Default)]
pub struct ListAuditEvents {
    /// Only this project's events (required unless admin).
    pub project_id: String,
    /// Only this credential's events.
    pub credential_id: String,
    /// Only events at or after this time.
    pub start_time: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub end_time: Option<DateTime<Utc>>,
    /// Requested page size (0 = default).
    pub page_size: i32,
    /// Token of a previous call.
    pub page_token: String,
}

/// The credential registry: the operations behind the gRPC API.
#[derive(Debug, Clone)]
pub struct Registry {
    store: Arc<dyn CredentialStore>,
    hash_keys: HashKeys,
    token_sync: Arc<dyn TokenSync>,
}

impl Registry {
    /// A registry over `store`, hashing new secrets with the current key of
    /// `hash_keys` (a single [`latchkey_secrets::HashKey`] is key 1) and
    /// verifying stored ones with the key they name, and telling
    /// `token_sync` about every change tokens must follow (a change whose
    /// commit is lost after it was applied there is repaired: see
    /// [`Registry::repair_pending`]).
    pub fn new(
        store: Arc<dyn CredentialStore>,
        hash_keys: impl Into<HashKeys>,
        token_sync: Arc<dyn TokenSync>,
    ) -> Self {
        Self {
            store,
            hash_keys: hash_keys.into(),
            token_sync,
        }
    }

    pub(crate) fn store(&self) -> &dyn CredentialStore {
        self.store.as_ref()
    }

    pub(crate) fn token_sync(&self) -> &dyn TokenSync {
        self.token_sync.as_ref()
    }

    pub(crate) fn shared_token_sync(&self) -> Arc<dyn TokenSync> {
        self.token_sync.clone()
    }

    pub(crate) fn hash_keys(&self) -> &HashKeys {
        &self.hash_keys
    }

    /// A new secret's stored form: hashed with the current key, which it
    /// names.
    fn stored_secret(&self, client_secret: &str, at: DateTime<Utc>) -> StoredSecret {
        StoredSecret {
            hash: self.hash_keys.current().hash(client_secret),
            hash_key_id: self.hash_keys.current_id(),
            create_time: at,
            expire_time: None,
        }
    }

    /// The effective policy of `project`.
    pub fn effective_policy(&self, project: &Project) -> ProjectPolicy {
        project.overrides.resolve(self.store.policy_defaults())
    }

    /// Creates a project.
    pub async fn create_project(
        &self,
        caller: &Caller,
        input: CreateProject,
    ) -> Result<Project, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::CreateProject);
        if validate::project_id("project_id", &input.project_id).is_ok() {
            audit.project_id.clone_from(&input.project_id);
        }
        let result = self.create_project_audited(caller, input, &audit).await;
        self.finish(audit, result).await
    }

    async fn create_project_audited(
        &self,
        caller: &Caller,
        input: CreateProject,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError> {
        caller.require_admin()?;
        validate::project_id("project_id", &input.project_id)?;
        validate::free_text(
            "display_name",
            &input.display_name,
            validate::MAX_DISPLAY_NAME_LEN,
        )?;
        validate::api_endpoint("api_endpoint", &input.api_endpoint)?;
        validate::policy("policy", &input.policy)?;
        let at = now();
        let display_name = if input.display_name.is_empty() {
            input.project_id.clone()
        } else {
            input.display_name
        };
        let project = Project {
            id: input.project_id,
            display_name,
            api_endpoint: input.api_endpoint,
            overrides: input.policy,
            create_time: at,
            update_time: at,
        };
        self.store.create_project(&project, audit).await?;
        Ok(project)
    }

    /// Reads a project.
    pub async fn get_project(
        &self,
        caller: &Caller,
        project_id: &str,
    ) -> Result<Project, RegistryError> {
        validate::project_id("project_id", project_id)?;
        caller.require_project(project_id)?;
        self.store.get_project(project_id).await
    }

    /// Lists projects in the order `order_by` names (AIP-132).
    pub async fn list_projects(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
        order_by: &str,
    ) -> Result<(Vec<Project>, String), RegistryError> {
        caller.require_admin()?;
        let order = ListOrder::parse(order_by)?;
        let request = PageToken::ordered_request(page_size, page_token, "projects", order)?;
        let page = self.store.list_projects(&request).await?;
        Ok(finish_page(
            page,
            &PageToken::bound_filter("projects", order),
        ))
    }

    /// The API endpoint of `project_id` (empty when not set), shown with
    /// its credentials to callers who may see them.
    pub async fn api_endpoint(&self, project_id: &str) -> Result<String, RegistryError> {
        Ok(self.store.get_project(project_id).await?.api_endpoint)
    }

    /// Changes a project's display name or API endpoint (platform admins).
    pub async fn update_project(
        &self,
        caller: &Caller,
        project_id: &str,
        input: UpdateProject,
    ) -> Result<Project, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::UpdateProject);
        if validate::project_id("project_id", project_id).is_ok() {
            audit.project_id = project_id.to_owned();
        }
        let result = async {
            caller.require_admin()?;
            validate::project_id("project.id", project_id)?;
            if let Some(name) = &input.display_name {
                validate::free_text("project.display_name", name, validate::MAX_DISPLAY_NAME_LEN)?;
            }
            if let Some(url) = &input.api_endpoint {
                validate::api_endpoint("project.api_endpoint", url)?;
            }
            let update = ProjectUpdate {
                // Cleared, the display name falls back to the ID, as at create.
                display_name: input.display_name.map(|name| {
                    if name.is_empty() {
                        project_id.to_owned()
                    } else {
                        name
                    }
                }),
                api_endpoint: input.api_endpoint,
            };
            if update == ProjectUpdate::default() {
                return Err(RegistryError::invalid(
                    "update_mask",
                    "required: name at least one field",
                ));
            }
            audit.set_detail(format!("{update:?}"));
            self.store
                .update_project(project_id, &update, now(), &audit)
                .await
        }
        .await;
        self.finish(audit, result).await
    }

    /// Overrides parts of a project's policy.
    pub async fn update_project_policy(
        &self,
        caller: &Caller,
        project_id: &str,
        overrides: PolicyOverrides,
    ) -> Result<Project, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::UpdateProjectPolicy);
        if validate::project_id("project_id", project_id).is_ok() {
            audit.project_id = project_id.to_owned();
        }
        audit.set_detail(format!("{overrides:?}"));
        let result = self
            .update_project_policy_audited(caller, project_id, overrides, &audit)
            .await;
        self.finish(audit, result).await
    }

    async fn update_project_policy_audited(
        &self,
        caller: &Caller,
        project_id: &str,
        overrides: PolicyOverrides,
        audit: &AuditEvent,
    ) -> Result<Project, RegistryError> {
        caller.require_admin()?;
        validate::project_id("project_id", project_id)?;
        if overrides.is_empty() {
            return Err(RegistryError::invalid(
                "policy",
                "required: set at least one field",
            ));
        }
        validate::policy("policy", &overrides)?;
        self.store
            .update_project_policy(project_id, &overrides, now(), audit)
            .await
    }

    /// Creates a credential and its first secret.
    pub async fn create_credential(
        &self,
        caller: &Caller,
        input: CreateCredential,
    ) -> Result<CreatedCredential, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::CreateCredential);
        if validate::project_id("project_id", &input.project_id).is_ok() {
            audit.project_id.clone_from(&input.project_id);
        }
        let result = self
            .create_credential_audited(caller, input, &mut audit)
            .await;
        self.finish(audit, result).await
    }

    async fn create_credential_audited(
        &self,
        caller: &Caller,
        mut input: CreateCredential,
        audit: &mut AuditEvent,
    ) -> Result<CreatedCredential, RegistryError> {
        validate::project_id("project_id", &input.project_id)?;
        caller.require_project(&input.project_id)?;
        input.owner = caller.owner_for_new_credential(&input.owner)?;
        validate::owner("owner", &input.owner)?;
        let generate_name = input.name.is_empty();
        if !generate_name {
            validate::credential_name("name", &input.name)?;
        }
        validate::free_text(
            "description",
            &input.description,
            validate::MAX_DESCRIPTION_LEN,
        )?;
        let allowed_apis = validate::allowed_apis("allowed_apis", &input.allowed_apis)?;
        caller.check_grantable("allowed_apis", &allowed_apis)?;
        self.check_member_ceiling(
            &input.project_id,
            &input.owner,
            "allowed_apis",
            &allowed_apis,
            true,
        )
        .await?;
        let allowed_ips = validate::allowed_ips("allowed_ips", &input.allowed_ips)?;
        let at = now();
        let expire_time = validate::expire_time("expire_time", input.expire_time, at)?;

        let client_secret = CLIENT_SECRET.generate();
        let mut new = NewCredential {
            credential: Credential {
                id: uuid::Uuid::now_v7().to_string(),
                project_id: input.project_id,
                owner: input.owner,
                name: if generate_name {
                    generated_name()
                } else {
                    input.name
                },
                description: input.description,
                client_id: CLIENT_ID.generate(),
                allowed_apis,
                allowed_ips,
                state: CredentialState::Active,
                expire_time,
                create_time: at,
                update_time: at,
                last_use: None,
                policy_version: 1,
            },
            secret: self.stored_secret(&client_secret, at),
        };
        audit.credential_id.clone_from(&new.credential.id);
        let mut attempts = 1;
        loop {
            audit.set_detail(format!(
                "name {:?}, owner {:?}",
                new.credential.name, new.credential.owner
            ));
            match self.store.create_credential(&new, audit).await {
                Ok(credential) => {
                    return Ok(CreatedCredential {
                        credential,
                        client_secret,
                    });
                }
                // A generated name collided: draw another, the user asked for none.
                Err(RegistryError::AlreadyExists(_))
                    if generate_name && attempts < GENERATED_NAME_ATTEMPTS =>
                {
                    attempts += 1;
                    new.credential.name = generated_name();
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads a credential the caller may see; others are `NOT_FOUND`.
    pub async fn get_credential(
        &self,
        caller: &Caller,
        credential_id: &str,
    ) -> Result<Credential, RegistryError> {
        self.accessible("credential_id", caller, credential_id, None)
            .await
    }

    /// The credential, if it exists and `caller` may see it; `NOT_FOUND`
    /// otherwise, so other owners' credentials do not leak their existence.
    /// A change names the credential and its project in its `audit` event as
    /// soon as they are known, so a refused attempt on another owner's
    /// credential is recorded against that credential.
    async fn accessible(
        &self,
        field: &str,
        caller: &Caller,
        credential_id: &str,
        mut audit: Option<&mut AuditEvent>,
    ) -> Result<Credential, RegistryError> {
        validate::credential_id(field, credential_id)?;
        if let Some(audit) = audit.as_deref_mut() {
            audit.credential_id = credential_id.to_owned();
        }
        caller.require_role()?;
        let credential = self.store.get_credential(credential_id).await?;
        if let Some(audit) = audit {
            audit.project_id.clone_from(&credential.project_id);
        }
        if caller.can_access(&credential) {
            Ok(credential)
        } else {
            Err(RegistryError::credential_not_found(credential_id))
        }
    }

    /// Records `audit` as failed when `result` is an error. A successful
    /// change was recorded by the store in its own transaction.
    pub(crate) async fn finish<T>(
        &self,
        mut audit: AuditEvent,
        result: Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        if let Err(error) = &result {
            audit.fail(error);
            if let Err(store_error) = self.store.append_audit(std::slice::from_ref(&audit)).await {
                // The store is likely down, which is also why the change
                // failed: keep the record in the log rather than lose it.
                tracing::warn!(
                    error = %store_error,
                    action = %audit.action,
                    actor = %audit.actor,
                    project_id = %audit.project_id,
                    credential_id = %audit.credential_id,
                    detail = %audit.detail,
                    "cannot record a failed attempt in the audit trail"
                );
            }
        }
        result
    }

    /// Lists a project's credentials.
    pub async fn list_credentials(
        &self,
        caller: &Caller,
        input: ListCredentials,
    ) -> Result<(Vec<Credential>, String), RegistryError> {
        validate::project_id("project_id", &input.project_id)?;
        caller.require_project(&input.project_id)?;
        let owner = caller
            .owner_filter(input.owner)?
            .filter(|owner| !owner.is_empty());
        if let Some(owner) = &owner {
            validate::owner("owner", owner)?;
        }
        let order = ListOrder::parse(&input.order_by)?;
        let kind = match input.kind {
            None => "",
            Some(CredentialKind::Api) => "api",
            Some(CredentialKind::Management) => "management",
        };
        let filter = format!(
            "{}\n{}\n{kind}",
            input.project_id,
            owner.as_deref().unwrap_or("")
        );
        let request =
            PageToken::ordered_request(input.page_size, &input.page_token, &filter, order)?;
        let filter_values = CredentialFilter {
            owner,
            kind: input.kind,
        };
        let page = self
            .store
            .list_credentials(&input.project_id, &filter_values, &request)
            .await?;
        Ok(finish_page(page, &PageToken::bound_filter(&filter, order)))
    }

    /// Changes the fields present in `input`.
    pub async fn update_credential(
        &self,
        caller: &Caller,
        credential_id: &str,
        input: UpdateCredential,
    ) -> Result<Credential, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::UpdateCredential);
        let result = self
            .update_credential_audited(caller, credential_id, input, &mut audit)
            .await;
        self.finish(audit, result).await
    }

    async fn update_credential_audited(
        &self,
        caller: &Caller,
        credential_id: &str,
        input: UpdateCredential,
        audit: &mut AuditEvent,
    ) -> Result<Credential, RegistryError> {
        let credential = self
            .accessible("credential.id", caller, credential_id, Some(audit))
            .await?;
        let at = now();
        let update = input.validate(caller, at)?;
        if update.is_empty() {
            return Err(RegistryError::invalid(
                "update_mask",
                "required: name at least one field",
            ));
        }
        if let Some(apis) = &update.allowed_apis {
            let (project_id, owner) = (&credential.project_id, &credential.owner);
            self.check_member_ceiling(project_id, owner, "credential.allowed_apis", apis, false)
                .await?;
        }
        let fields: Vec<&str> = update.fields().iter().map(|field| field.path()).collect();
        audit.set_detail(format!("fields: {}", fields.join(", ")));
        let sync = self.begin_sync(credential_id).await?;
        let result = self
            .store
            .update_credential(credential_id, &update, at, &sync, audit)
            .await;
        self.end_sync(sync, &result).await;
        result
    }

    /// Deletes a credential if `confirm_name` is its name.
    pub async fn delete_credential(
        &self,
        caller: &Caller,
        credential_id: &str,
        confirm_name: &str,
    ) -> Result<(), RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::DeleteCredential);
        let result = self
            .delete_credential_audited(caller, credential_id, confirm_name, &mut audit)
            .await;
        self.finish(audit, result).await
    }

    async fn delete_credential_audited(
        &self,
        caller: &Caller,
        credential_id: &str,
        confirm_name: &str,
        audit: &mut AuditEvent,
    ) -> Result<(), RegistryError> {
        let credential = self
            .accessible("credential_id", caller, credential_id, Some(audit))
            .await?;
        audit.set_detail(format!("name {:?}", credential.name));
        if confirm_name.is_empty() {
            return Err(RegistryError::invalid(
                "confirm_name",
                "required: repeat the credential's name to confirm",
            ));
        }
        let sync = self.begin_sync(credential_id).await?;
        let result = self
            .store
            .delete_credential(credential_id, confirm_name, &sync, audit)
            .await;
        self.end_sync(sync, &result).await;
        result
    }

    /// Disables or enables a credential.
    pub async fn set_credential_state(
        &self,
        caller: &Caller,
        credential_id: &str,
        state: CredentialState,
    ) -> Result<Credential, RegistryError> {
        let action = match state {
            CredentialState::Active => AuditAction::EnableCredential,
            CredentialState::Disabled => AuditAction::DisableCredential,
        };
        let mut audit = AuditEvent::by(caller, action);
        let result = async {
            self.accessible("credential_id", caller, credential_id, Some(&mut audit))
                .await?;
            let sync = self.begin_sync(credential_id).await?;
            let result = self
                .store
                .set_credential_state(credential_id, state, now(), &sync, &audit)
                .await;
            self.end_sync(sync, &result).await;
            result
        }
        .await;
        self.finish(audit, result).await
    }

    /// Replaces a credential's secret, keeping older ones for a grace period.
    pub async fn rotate_secret(
        &self,
        caller: &Caller,
        input: RotateSecret,
    ) -> Result<RotatedSecret, RegistryError> {
        let mut audit = AuditEvent::by(caller, AuditAction::RotateCredentialSecret);
        audit.set_detail(format!(
            "grace_period_seconds {}, revoke_tokens {}",
            input.grace_period_seconds, input.revoke_tokens
        ));
        let result = self.rotate_secret_audited(caller, input, &mut audit).await;
        self.finish(audit, result).await
    }

    async fn rotate_secret_audited(
        &self,
        caller: &Caller,
        input: RotateSecret,
        audit: &mut AuditEvent,
    ) -> Result<RotatedSecret, RegistryError> {
        self.accessible("credential_id", caller, &input.credential_id, Some(audit))
            .await?;
        if input.grace_period_seconds > validate::MAX_GRACE_PERIOD_SECONDS {
            return Err(RegistryError::invalid(
                "grace_period_seconds",
                format!("at most {}", validate::MAX_GRACE_PERIOD_SECONDS),
            ));
        }
        let at = now();
        let client_secret = CLIENT_SECRET.generate();
        let secret = self.stored_secret(&client_secret, at);
        let previous_secret_expire_time = (input.grace_period_seconds > 0)
            .then(|| at + Duration::seconds(i64::from(input.grace_period_seconds)));
        let sync = self.begin_sync(&input.credential_id).await?;
        let result = self
            .store
            .rotate_secret(
                &input.credential_id,
                SecretRotation {
                    secret: &secret,
                    previous_expire_time: previous_secret_expire_time,
                    now: at,
                    revoke_tokens: input.revoke_tokens,
                },
                &sync,
                audit,
            )
            .await;
        self.end_sync(sync, &result).await;
        let credential = result?;
        Ok(RotatedSecret {
            credential,
            client_secret,
            previous_secret_expire_time,
        })
    }
}

impl Registry {
    /// Credentials holding `api` (e.g. every platform admin), oldest first.
    pub async fn credentials_with_api(
        &self,
        caller: &Caller,
        api: &str,
    ) -> Result<Vec<Credential>, RegistryError> {
        caller.require_admin()?;
        self.store.credentials_with_api(api, 100).await
    }

    /// Lists audit events, newest first. Platform admins may list every
    /// project's; `credentials:manage` callers only their own project's.
    pub async fn list_audit_events(
        &self,
        caller: &Caller,
        input: ListAuditEvents,
    ) -> Result<(Vec<AuditEvent>, String), RegistryError> {
        let filter = AuditFilter {
            project_id: Some(input.project_id).filter(|id| !id.is_empty()),
            credential_id: Some(input.credential_id).filter(|id| !id.is_empty()),
            start_time: input.start_time,
            end_time: input.end_time,
        };
        match &filter.project_id {
            Some(project_id) => {
                validate::project_id("project_id", project_id)?;
                if caller.require_project(project_id)? == crate::Role::Owner {
                    return Err(RegistryError::PermissionDenied(
                        "requires registry:admin or credentials:manage".into(),
                    ));
                }
            }
            None => caller.require_admin()?,
        }
        if let Some(credential_id) = &filter.credential_id {
            validate::credential_id("credential_id", credential_id)?;
        }
        if let (Some(start), Some(end)) = (filter.start_time, filter.end_time)
            && end <= start
        {
            return Err(RegistryError::invalid(
                "end_time",
                "must be after start_time",
            ));
        }
        let binding = filter.page_binding();
        let request = PageToken::request(input.page_size, &input.page_token, &binding)?;
        let page = self.store.list_audit(&filter, &request).await?;
        Ok(finish_page(page, &binding))
    }

    /// Records a batch of token events reported by a token issuer; a
    /// batch with a bad event is refused whole (see `report`).
    pub async fn record_audit_events(&self, events: Vec<AuditEvent>) -> Result<(), RegistryError> {
        report::check_token_events(&events, now())?;
        self.store.append_audit(&events).await
    }

    /// Deletes audit events older than `before` (retention).
    pub async fn purge_audit_events(&self, before: DateTime<Utc>) -> Result<u64, RegistryError> {
        self.store.purge_audit(before).await
    }
}

fn generated_name() -> String {
    format!("credential-{}", random_string(NAME_ALPHABET, 4))
}

pub(crate) fn finish_page<T>(page: Page<T>, filter: &str) -> (Vec<T>, String) {
    let token = page
        .next
        .map(|position| PageToken::encode(&position, filter))
        .unwrap_or_default();
    (page.items, token)
}
