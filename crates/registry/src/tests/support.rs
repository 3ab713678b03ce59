//! A registry over the in-memory store, with a recording stand-in for the
//! token issuer, and the callers the tests act as.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use latchkey_secrets::HashKey;

use crate::{
    ADMIN_SCOPE, AuditEvent, AuditFilter, Caller, CreateCredential, CreateMember, CreateProject,
    CreatedCredential, Credential, CredentialStore, ListOrder, MANAGE_SCOPE, MemoryCredentialStore,
    OWN_SCOPE, PageRequest, PolicyChange, PolicyOverrides, ProjectPolicy, Registry, RegistryError,
    TokenSync,
};

/// The project every test works in.
pub(super) const PROJECT: &str = "acme";

/// One change the token side applied.
#[derive(Debug, Clone)]
pub(super) struct Applied {
    /// What it was told (the effective credential).
    pub(super) credential: Credential,
    pub(super) deleted: bool,
    pub(super) revoke_tokens: bool,
    /// The credential's policy version a reader of the store saw while the
    /// token side was being told (`None`: not in the store).
    pub(super) visible_version: Option<i64>,
}

/// A token issuer that records what it is told, or refuses while `down`.
#[derive(Debug)]
pub(super) struct RecordingIssuer {
    store: Arc<MemoryCredentialStore>,
    applied: Mutex<Vec<Applied>>,
    down: AtomicBool,
}

impl RecordingIssuer {
    pub(super) fn applied(&self) -> Vec<Applied> {
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What was applied for `credential_id`, in order.
    pub(super) fn applied_to(&self, credential_id: &str) -> Vec<Applied> {
        self.applied()
            .into_iter()
            .filter(|change| change.credential.id == credential_id)
            .collect()
    }

    pub(super) fn last_for(&self, credential_id: &str) -> Applied {
        self.applied_to(credential_id)
            .pop()
            .expect("the token side was told about the credential")
    }

    pub(super) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl TokenSync for RecordingIssuer {
    async fn apply(&self, change: PolicyChange<'_>) -> Result<(), RegistryError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(RegistryError::TokenIssuerUnavailable(
                "the test issuer is down".into(),
            ));
        }
        let visible_version = self
            .store
            .get_credential(&change.credential.id)
            .await
            .ok()
            .map(|credential| credential.policy_version);
        self.applied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Applied {
                credential: change.credential.clone(),
                deleted: change.deleted,
                revoke_tokens: change.revoke_tokens,
                visible_version,
            });
        Ok(())
    }
}

/// A registry on a fresh memory store with project [`PROJECT`].
#[derive(Debug, Clone)]
pub(super) struct Fixture {
    pub(super) registry: Registry,
    pub(super) store: Arc<MemoryCredentialStore>,
    pub(super) issuer: Arc<RecordingIssuer>,
}

impl Fixture {
    /// With the project's own `policy` overrides.
    pub(super) async fn with_policy(policy: PolicyOverrides) -> Self {
        let store = Arc::new(MemoryCredentialStore::new(ProjectPolicy::default()));
        let issuer = Arc::new(RecordingIssuer {
            store: store.clone(),
            applied: Mutex::default(),
            down: AtomicBool::new(false),
        });
        let registry = Registry::new(store.clone(), HashKey::generate(), issuer.clone());
        let fixture = Self {
            registry,
            store,
            issuer,
        };
        fixture
            .registry
            .create_project(
                &admin(),
                CreateProject {
                    project_id: PROJECT.into(),
                    policy,
                    ..CreateProject::default()
                },
            )
            .await
            .expect("create the project");
        fixture
    }

    pub(super) async fn new() -> Self {
        Self::with_policy(PolicyOverrides::default()).await
    }

    /// Adds `user` as a member holding `ceiling`.
    pub(super) async fn member(&self, user: &str, ceiling: &[&str]) {
        self.registry
            .create_member(
                &manager(),
                CreateMember {
                    project_id: PROJECT.into(),
                    user_id: user.into(),
                    api_ceiling: strings(ceiling),
                    ..CreateMember::default()
                },
            )
            .await
            .expect("create the member");
    }

    /// Creates a credential of `owner` named `name` as `caller`.
    pub(super) async fn create(
        &self,
        caller: &Caller,
        owner: &str,
        name: &str,
        apis: &[&str],
    ) -> Result<CreatedCredential, RegistryError> {
        self.registry
            .create_credential(
                caller,
                CreateCredential {
                    project_id: PROJECT.into(),
                    owner: owner.into(),
                    name: name.into(),
                    allowed_apis: strings(apis),
                    ..CreateCredential::default()
                },
            )
            .await
    }

    /// The project's audit trail, oldest first.
    pub(super) async fn audit(&self) -> Vec<AuditEvent> {
        let page = self
            .store
            .list_audit(
                &AuditFilter {
                    project_id: Some(PROJECT.into()),
                    ..AuditFilter::default()
                },
                &everything(),
            )
            .await
            .expect("list the audit trail");
        page.items.into_iter().rev().collect()
    }

    /// The stored credential.
    pub(super) async fn stored(&self, credential_id: &str) -> Credential {
        self.store
            .get_credential(credential_id)
            .await
            .expect("the credential is stored")
    }

    /// Removes every sync note, as if each had been settled.
    pub(super) async fn forget_notes(&self) {
        let notes = self
            .store
            .sync_intents_before(crate::now() + chrono::Duration::days(1), 1000)
            .await
            .expect("read the notes");
        for note in notes {
            self.store
                .clear_sync_intent(&note)
                .await
                .expect("clear a note");
        }
    }

    /// How many credentials the project holds.
    pub(super) async fn count(&self) -> usize {
        self.store
            .list_credentials(PROJECT, &crate::CredentialFilter::default(), &everything())
            .await
            .expect("list")
            .items
            .len()
    }
}

/// One page holding everything.
pub(super) fn everything() -> PageRequest {
    PageRequest {
        size: crate::MAX_PAGE_SIZE,
        after: None,
        order: ListOrder::OldestFirst,
    }
}

pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn caller(credential_id: &str, project: &str, owner: &str, scopes: &[&str]) -> Caller {
    Caller {
        credential_id: credential_id.into(),
        project_id: project.into(),
        owner: owner.into(),
        scopes: strings(scopes),
        address: None,
        on_behalf_of: None,
        own_ceiling: None,
    }
}

/// The platform admin (of another project, `ops`).
pub(super) fn admin() -> Caller {
    caller("admin-credential", "ops", "admin", &[ADMIN_SCOPE])
}

/// A platform backend or console managing [`PROJECT`].
pub(super) fn manager() -> Caller {
    caller("backend-credential", PROJECT, "backend", &[MANAGE_SCOPE])
}

/// A user holding `credentials:own` and `apis` in [`PROJECT`].
pub(super) fn owner(user: &str, apis: &[&str]) -> Caller {
    let mut scopes = vec![OWN_SCOPE];
    scopes.extend_from_slice(apis);
    caller(&format!("{user}-login"), PROJECT, user, &scopes)
}

/// The code name of `result`'s error.
pub(super) fn code<T: std::fmt::Debug>(result: Result<T, RegistryError>) -> &'static str {
    result.expect_err("the call fails").code_name()
}
