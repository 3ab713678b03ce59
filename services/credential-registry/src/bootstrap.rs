//! `credential-registry bootstrap-admin`: the first platform admin.
//!
//! Management calls need a token with `registry:admin`, which needs an admin
//! credential, which needs a management call: this command breaks the
//! circle by writing the first admin credential straight to the database.

use std::sync::Arc;

use latchkey_registry::{
    ADMIN_SCOPE, Caller, CreateCredential, CreateProject, CreatedCredential, INTROSPECT_SCOPE,
    NoTokenSync, OnTokenLimit, PolicyOverrides, Registry, RegistryError,
};

use crate::{RegistryConfig, ServeError};

/// What `bootstrap-admin` did.
#[derive(Debug)]
pub enum BootstrapOutcome {
    /// A new admin credential; its secret is shown here only.
    Created(Box<CreatedCredential>),
    /// Admins exist already (their credential IDs); nothing was created.
    AdminsExist(Vec<String>),
}

/// Creates a platform-admin credential in `project_id` (created too when
/// missing) unless an admin exists already and `force` is false.
pub async fn bootstrap_admin(
    config: &RegistryConfig,
    project_id: &str,
    force: bool,
) -> Result<BootstrapOutcome, ServeError> {
    let hash_keys = config.hash_key_source().resolve()?;
    let store = latchkey_registry_store::connect(&config.database, config.policy_defaults)
        .await
        .map_err(ServeError::Store)?;
    crate::hash_keys::check_hash_keys(&store, &hash_keys).await?;
    let store = Arc::new(store);
    // A new credential has no tokens to keep in step.
    let registry = Registry::new(store.clone(), hash_keys, Arc::new(NoTokenSync));
    let caller = Caller::bootstrap();
    let outcome = create(&registry, &caller, project_id, force).await;
    store.close().await;
    outcome.map_err(ServeError::Store)
}

async fn create(
    registry: &Registry,
    caller: &Caller,
    project_id: &str,
    force: bool,
) -> Result<BootstrapOutcome, RegistryError> {
    let admins = registry.credentials_with_api(caller, ADMIN_SCOPE).await?;
    if !admins.is_empty() && !force {
        return Ok(BootstrapOutcome::AdminsExist(
            admins.into_iter().map(|admin| admin.id).collect(),
        ));
    }
    match registry.get_project(caller, project_id).await {
        Ok(_) => {}
        Err(RegistryError::NotFound { .. }) => {
            registry
                .create_project(
                    caller,
                    CreateProject {
                        project_id: project_id.to_owned(),
                        display_name: "Platform administration".to_owned(),
                        // An admin fetching a token per shell must never be
                        // locked out by its own live tokens: the oldest goes.
                        policy: PolicyOverrides {
                            on_token_limit: Some(OnTokenLimit::EvictOldest),
                            ..PolicyOverrides::default()
                        },
                        ..CreateProject::default()
                    },
                )
                .await?;
        }
        Err(error) => return Err(error),
    }
    let created = registry
        .create_credential(
            caller,
            CreateCredential {
                project_id: project_id.to_owned(),
                owner: "admin".to_owned(),
                description: "Platform administrator (bootstrap-admin)".to_owned(),
                allowed_apis: vec![ADMIN_SCOPE.to_owned(), INTROSPECT_SCOPE.to_owned()],
                ..CreateCredential::default()
            },
        )
        .await?;
    tracing::info!(credential_id = %created.credential.id, project_id, "platform admin credential created");
    Ok(BootstrapOutcome::Created(Box::new(created)))
}
