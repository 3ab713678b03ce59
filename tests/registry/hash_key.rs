//! The hash key's fingerprint in the database: recorded at the first start,
//! matched at every later one, another key told apart, on both databases.

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

on_both_backends!(a_database_remembers_its_hash_key);
