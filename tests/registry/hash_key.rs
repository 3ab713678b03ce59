//! The hash key's fingerprint in the database: recorded at the first start,
//! matched at every later one, another key told apart, and a database from
//! before key IDs upgraded to key 1, on both databases.

use latchkey_registry::{HashKeyCheck, HashKeyFingerprint, ProjectPolicy};
use latchkey_registry_store::{DatabaseConfig, SqlCredentialStore};
use latchkey_secrets::HashKey;
use latchkey_tests::{Backend, TestSchema, postgres_url};
use sea_orm::{ConnectionTrait, Database, Statement};

async fn open(database: &DatabaseConfig) -> SqlCredentialStore {
    latchkey_registry_store::connect(database, ProjectPolicy::default())
        .await
        .unwrap()
}

async fn a_database_remembers_its_hash_key(backend: Backend) {
    let directory = tempfile::tempdir().unwrap();
    let schema = match backend {
        Backend::Postgres => Some(TestSchema::create().await),
        Backend::Sqlite => None,
    };
    let database = DatabaseConfig {
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
    let key = HashKey::generate();
    let other = HashKey::generate();
    let fingerprint = HashKeyFingerprint::of(&key);

    let store = open(&database).await;
    assert_eq!(
        store.check_hash_key(1, &fingerprint).await.unwrap(),
        HashKeyCheck::Recorded
    );
    assert_eq!(
        store.check_hash_key(1, &fingerprint).await.unwrap(),
        HashKeyCheck::Matches
    );
    store.close().await;

    // A later start, on a new connection: the same key matches, another
    // differs and does not replace the recorded one.
    let store = open(&database).await;
    assert_eq!(
        store
            .check_hash_key(1, &HashKeyFingerprint::of(&other))
            .await
            .unwrap(),
        HashKeyCheck::Differs
    );
    let same_key_again = HashKey::from_hex(&key.to_hex()).unwrap();
    assert_eq!(
        store
            .check_hash_key(1, &HashKeyFingerprint::of(&same_key_again))
            .await
            .unwrap(),
        HashKeyCheck::Matches
    );
    store.close().await;

    // What the database holds is 32 bytes that are not the key.
    let mut options = sea_orm::ConnectOptions::new(database.url.clone());
    if let Some(schema) = &database.schema {
        options.set_schema_search_path(schema.clone());
    }
    let connection = Database::connect(options).await.unwrap();
    let rows = connection
        .query_all(Statement::from_string(
            connection.get_database_backend(),
            "SELECT name, value FROM registry_settings",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].try_get_by_index::<String>(0).unwrap(),
        "hash_key_fingerprint:1"
    );
    let stored: Vec<u8> = rows[0].try_get_by_index(1).unwrap();
    assert_eq!(stored, fingerprint.as_bytes());
    let key_bytes: Vec<u8> = (0..32)
        .map(|index| u8::from_str_radix(&key.to_hex()[2 * index..2 * index + 2], 16).unwrap())
        .collect();
    assert_ne!(stored, key_bytes);
}

/// A database written before key IDs existed: the migration makes its
/// fingerprint key 1's and its secrets key 1's, which still verify.
async fn a_database_from_before_key_ids_keeps_its_key_as_key_1(backend: Backend) {
    use std::sync::Arc;

    use latchkey_registry::{Caller, CreateCredential, CreateProject, NoTokenSync, Registry};

    let directory = tempfile::tempdir().unwrap();
    let schema = match backend {
        Backend::Postgres => Some(TestSchema::create().await),
        Backend::Sqlite => None,
    };
    let database = DatabaseConfig {
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
    let key = HashKey::generate();
    let fingerprint = HashKeyFingerprint::of(&key);
    let store = Arc::new(open(&database).await);
    store.check_hash_key(1, &fingerprint).await.unwrap();
    let registry = Registry::new(store.clone(), key.clone(), Arc::new(NoTokenSync));
    registry
        .create_project(
            &Caller::bootstrap(),
            CreateProject {
                project_id: "acme".to_owned(),
                ..CreateProject::default()
            },
        )
        .await
        .unwrap();
    let created = registry
        .create_credential(
            &Caller::bootstrap(),
            CreateCredential {
                project_id: "acme".to_owned(),
                owner: "alice".to_owned(),
                ..CreateCredential::default()
            },
        )
        .await
        .unwrap();
    store.close().await;

    // Back to the layout before migration 9.
    let mut options = sea_orm::ConnectOptions::new(database.url.clone());
    if let Some(schema) = &database.schema {
        options.set_schema_search_path(schema.clone());
    }
    let connection = Database::connect(options).await.unwrap();
    for statement in [
        "UPDATE registry_settings SET name = 'hash_key_fingerprint' \
         WHERE name = 'hash_key_fingerprint:1'",
        "ALTER TABLE credential_secrets DROP COLUMN hash_key_id",
        "DELETE FROM seaql_migrations WHERE version = 'm20261129_000009_secret_hash_key_ids'",
    ] {
        connection
            .execute(Statement::from_string(
                connection.get_database_backend(),
                statement,
            ))
            .await
            .unwrap();
    }
    connection.close().await.unwrap();

    // The upgrade: the same key is key 1, another is refused, the secret
    // verifies and counts as key 1's.
    let store = Arc::new(open(&database).await);
    assert_eq!(
        store.check_hash_key(1, &fingerprint).await.unwrap(),
        HashKeyCheck::Matches
    );
    assert_eq!(
        store
            .check_hash_key(1, &HashKeyFingerprint::of(&HashKey::generate()))
            .await
            .unwrap(),
        HashKeyCheck::Differs
    );
    let counts = store
        .live_secrets_by_hash_key(latchkey_registry::now())
        .await
        .unwrap();
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), [(1, 1)]);
    let registry = Registry::new(store.clone(), key, Arc::new(NoTokenSync));
    registry
        .authenticate(
            &created.credential.client_id,
            &created.client_secret,
            "10.0.0.1",
        )
        .await
        .unwrap();
    store.close().await;
}

on_both_backends!(
    a_database_remembers_its_hash_key,
    a_database_from_before_key_ids_keeps_its_key_as_key_1,
);
