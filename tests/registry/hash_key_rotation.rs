//! Hash key rotation, on both databases: a secret hashed with key 1 still
//! verifies after key 2 is added and made current, new and rotated secrets
//! use key 2, `hash-keys status` counts the secrets of each key, and a
//! start without a key that live secrets still use is refused.

use std::sync::Arc;

use credential_registry::{
    HashKeyStatus, HashKeyUse, RegistryConfig, ServeError, bootstrap_admin, hash_key_status,
};
use latchkey_registry::{
    AuthenticateError, Caller, CreateCredential, CreateProject, NoTokenSync, ProjectPolicy,
    Registry, RotateSecret,
};
use latchkey_registry_store::{DatabaseConfig, SqlCredentialStore};
use latchkey_runtime::{HashKeys, PreviousHashKey};
use latchkey_secrets::HashKey;
use latchkey_tests::{Backend, TestSchema, postgres_url};

/// A database of the test's own on `backend`.
struct Database {
    config: DatabaseConfig,
    _schema: Option<TestSchema>,
    directory: tempfile::TempDir,
}

impl Database {
    async fn create(backend: Backend) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let schema = match backend {
            Backend::Postgres => Some(TestSchema::create().await),
            Backend::Sqlite => None,
        };
        let config = DatabaseConfig {
            url: match &schema {
                Some(_) => postgres_url(),
                None => format!(
                    "sqlite://{}/registry.db?mode=rwc",
                    directory.path().display()
                ),
            },
            schema: schema.as_ref().map(|schema| schema.name().to_owned()),
            ..DatabaseConfig::default()
        };
        Self {
            config,
            _schema: schema,
            directory,
        }
    }

    async fn store(&self) -> SqlCredentialStore {
        latchkey_registry_store::connect(&self.config, ProjectPolicy::default())
            .await
            .unwrap()
    }

    /// The registry's configuration: `current` under `id`, `previous` keys.
    fn registry_config(
        &self,
        id: u32,
        current: &HashKey,
        previous: &[(u32, &HashKey)],
    ) -> RegistryConfig {
        RegistryConfig {
            data_dir: self.directory.path().to_path_buf(),
            database: self.config.clone(),
            hash_key: Some(current.to_hex()),
            hash_key_id: id,
            previous_hash_keys: previous
                .iter()
                .map(|(id, key)| PreviousHashKey {
                    id: *id,
                    key: Some(key.to_hex()),
                    key_file: None,
                })
                .collect(),
            internal_key: Some(HashKey::generate().to_hex()),
            ..RegistryConfig::default()
        }
    }
}

/// A registry over `store` with `keys`; its store, to count with.
fn registry(store: &Arc<SqlCredentialStore>, keys: HashKeys) -> Registry {
    Registry::new(store.clone(), keys, Arc::new(NoTokenSync))
}

async fn create_credential(registry: &Registry, owner: &str) -> (String, String, String) {
    let created = registry
        .create_credential(
            &Caller::bootstrap(),
            CreateCredential {
                project_id: "acme".to_owned(),
                owner: owner.to_owned(),
                allowed_apis: vec!["orders.read".to_owned()],
                ..CreateCredential::default()
            },
        )
        .await
        .unwrap();
    (
        created.credential.id,
        created.credential.client_id,
        created.client_secret,
    )
}

async fn authenticates(registry: &Registry, client_id: &str, secret: &str) -> bool {
    match registry.authenticate(client_id, secret, "10.0.0.1").await {
        Ok(_) => true,
        Err(AuthenticateError::Refused(_)) => false,
        Err(error) => panic!("authentication failed: {error}"),
    }
}

fn uses(current: u32, keys: &[(u32, bool, u64)]) -> HashKeyStatus {
    HashKeyStatus {
        current,
        keys: keys
            .iter()
            .map(|&(id, configured, live_secrets)| HashKeyUse {
                id,
                configured,
                live_secrets,
            })
            .collect(),
    }
}

async fn secrets_hashed_with_an_older_key_verify_until_rotated(backend: Backend) {
    let database = Database::create(backend).await;
    let first = HashKey::generate();
    let second = HashKey::generate();

    // Before rotation: one key, ID 1 (what a configuration without
    // hash_key_id means).
    let store = Arc::new(database.store().await);
    let before = registry(&store, HashKeys::from(first.clone()));
    before
        .create_project(
            &Caller::bootstrap(),
            CreateProject {
                project_id: "acme".to_owned(),
                ..CreateProject::default()
            },
        )
        .await
        .unwrap();
    let (old_id, old_client, old_secret) = create_credential(&before, "alice").await;
    let (_, kept_client, kept_secret) = create_credential(&before, "bob").await;
    let config = database.registry_config(1, &first, &[]);
    assert_eq!(
        hash_key_status(&config).await.unwrap(),
        uses(1, &[(1, true, 2)])
    );

    // Key 2 added and made current, key 1 kept as previous.
    let config = database.registry_config(2, &second, &[(1, &first)]);
    assert_eq!(
        hash_key_status(&config).await.unwrap(),
        uses(2, &[(1, true, 2), (2, true, 0)])
    );
    let keys = HashKeys::new(2, second.clone(), [(1, first.clone())]).unwrap();
    let after = registry(&store, keys);
    assert!(authenticates(&after, &old_client, &old_secret).await);
    assert!(!authenticates(&after, &old_client, &kept_secret).await);

    // New secrets use key 2; a rotated one moves to key 2.
    let (_, new_client, new_secret) = create_credential(&after, "carol").await;
    assert!(authenticates(&after, &new_client, &new_secret).await);
    let rotated = after
        .rotate_secret(
            &Caller::bootstrap(),
            RotateSecret {
                credential_id: old_id,
                grace_period_seconds: 0,
                revoke_tokens: false,
            },
        )
        .await
        .unwrap();
    assert!(authenticates(&after, &old_client, &rotated.client_secret).await);
    assert!(!authenticates(&after, &old_client, &old_secret).await);
    assert_eq!(
        hash_key_status(&config).await.unwrap(),
        uses(2, &[(1, true, 1), (2, true, 2)])
    );
    // Only key 2 would not know a key-1 hash: the old registry's view of
    // the new secret fails (what the start-up check prevents).
    let without_first = registry(&store, HashKeys::new(2, second.clone(), []).unwrap());
    assert!(!authenticates(&without_first, &kept_client, &kept_secret).await);
    store.close().await;

    // A start without key 1 while a live secret uses it is refused, naming
    // the key and how many secrets still use it.
    let without_first = database.registry_config(2, &second, &[]);
    match bootstrap_admin(&without_first, "ops", false).await {
        Err(ServeError::Config(error)) => {
            let message = error.to_string();
            assert!(message.contains("key 1 (1 secrets)"), "{message}");
            assert!(!message.contains(&first.to_hex()), "{message}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // The status command reports it instead of refusing.
    assert_eq!(
        hash_key_status(&without_first).await.unwrap(),
        uses(2, &[(1, false, 1), (2, true, 2)])
    );

    // Another key under a recorded ID is refused, for a previous key too.
    let other = HashKey::generate();
    for config in [
        database.registry_config(2, &other, &[(1, &first)]),
        database.registry_config(2, &second, &[(1, &other)]),
    ] {
        match hash_key_status(&config).await {
            Err(ServeError::Config(error)) => {
                assert!(error.to_string().contains("not the key"), "{error}");
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

async fn once_every_secret_is_rotated_the_old_key_can_go(backend: Backend) {
    let database = Database::create(backend).await;
    let first = HashKey::generate();
    let second = HashKey::generate();
    let store = Arc::new(database.store().await);
    let before = registry(&store, HashKeys::from(first.clone()));
    before
        .create_project(
            &Caller::bootstrap(),
            CreateProject {
                project_id: "acme".to_owned(),
                ..CreateProject::default()
            },
        )
        .await
        .unwrap();
    let (id, client, _) = create_credential(&before, "alice").await;
    let keys = HashKeys::new(2, second.clone(), [(1, first.clone())]).unwrap();
    // Rotated with a grace period: the old secret still counts until it
    // ends, so the old key stays needed meanwhile.
    let rotated = registry(&store, keys)
        .rotate_secret(
            &Caller::bootstrap(),
            RotateSecret {
                credential_id: id,
                grace_period_seconds: 3600,
                revoke_tokens: false,
            },
        )
        .await
        .unwrap();
    let config = database.registry_config(2, &second, &[(1, &first)]);
    assert_eq!(
        hash_key_status(&config).await.unwrap(),
        uses(2, &[(1, true, 1), (2, true, 1)])
    );
    store.close().await;

    // The old secret ended (a rotation without grace): key 1 may go, and a
    // start with key 2 alone goes ahead.
    let store = Arc::new(database.store().await);
    let keys = HashKeys::new(2, second.clone(), [(1, first.clone())]).unwrap();
    let again = registry(&store, keys)
        .rotate_secret(
            &Caller::bootstrap(),
            RotateSecret {
                credential_id: rotated.credential.id,
                grace_period_seconds: 0,
                revoke_tokens: false,
            },
        )
        .await
        .unwrap();
    store.close().await;
    let only_second = database.registry_config(2, &second, &[]);
    assert_eq!(
        hash_key_status(&only_second).await.unwrap(),
        uses(2, &[(2, true, 1)])
    );
    bootstrap_admin(&only_second, "ops", false).await.unwrap();
    let store = Arc::new(database.store().await);
    let after = registry(&store, HashKeys::new(2, second, []).unwrap());
    assert!(authenticates(&after, &client, &again.client_secret).await);
    store.close().await;
}

on_both_backends!(
    secrets_hashed_with_an_older_key_verify_until_rotated,
    once_every_secret_is_rotated_the_old_key_can_go,
);
