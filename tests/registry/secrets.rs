//! Rule 1: a secret is shown once; no read API returns it or its hash, and
//! the store keeps only its keyed hash.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use prost::Message;
use prost_types::FieldMask;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::support::{create_credential, create_project, new_credential};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Asserts that no encoded answer carries the secret or its hash.
fn assert_hidden(answers: &[Vec<u8>], secret: &str, hash: &[u8]) {
    let hash_hex = hex_string(hash);
    for (index, answer) in answers.iter().enumerate() {
        assert!(
            !contains(answer, secret.as_bytes()),
            "answer {index} carries the secret"
        );
        assert!(!contains(answer, hash), "answer {index} carries the hash");
        assert!(
            !contains(answer, hash_hex.as_bytes()),
            "answer {index} carries the hash (hex)"
        );
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn open_database(registry: &latchkey_tests::RegistryFixture) -> DatabaseConnection {
    let mut options = ConnectOptions::new(registry.database().url.clone());
    if let Some(schema) = &registry.database().schema {
        options.set_schema_search_path(schema.clone());
    }
    Database::connect(options)
        .await
        .expect("open the registry's database")
}

async fn stored_hashes(database: &DatabaseConnection, credential_id: &str) -> Vec<Vec<u8>> {
    let backend = database.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT secret_hash FROM credential_secrets WHERE credential_id = $1 ORDER BY id"
        }
        _ => "SELECT secret_hash FROM credential_secrets WHERE credential_id = ? ORDER BY id",
    };
    let statement = Statement::from_sql_and_values(backend, sql, [credential_id.into()]);
    database
        .query_all(statement)
        .await
        .expect("read secrets")
        .iter()
        .map(|row| row.try_get_by_index::<Vec<u8>>(0).expect("hash column"))
        .collect()
}

async fn the_secret_is_shown_once_and_never_read_back(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (credential, secret) =
        create_credential(&mut client, new_credential("acme", "alice")).await;
    let hash = registry.hash_key().hash(&secret);
    let id = credential.id.clone();

    let answers = vec![
        client
            .get_credential(pb::GetCredentialRequest {
                credential_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec(),
        client
            .list_credentials(pb::ListCredentialsRequest {
                project_id: "acme".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec(),
        client
            .update_credential(pb::UpdateCredentialRequest {
                credential: Some(pb::Credential {
                    id: id.clone(),
                    description: "renamed".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec(),
        client
            .disable_credential(pb::DisableCredentialRequest {
                credential_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec(),
        client
            .enable_credential(pb::EnableCredentialRequest {
                credential_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec(),
        registry
            .authentication_client()
            .authenticate(pb::AuthenticateRequest {
                client_id: credential.client_id.clone(),
                client_secret: secret.clone(),
                client_ip: "127.0.0.1".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .encode_to_vec(),
    ];
    assert_hidden(&answers, &secret, hash.as_bytes());

    // A rotation shows the new secret once; reads afterwards show neither.
    let rotated = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: id.clone(),
            grace_period_seconds: 60,
            revoke_tokens: false,
        })
        .await
        .unwrap()
        .into_inner();
    let rotation_answer = rotated.encode_to_vec();
    assert!(
        !contains(&rotation_answer, secret.as_bytes()),
        "old secret not repeated"
    );
    let new_hash = registry.hash_key().hash(&rotated.client_secret);
    let after = client
        .get_credential(pb::GetCredentialRequest { credential_id: id })
        .await
        .unwrap()
        .into_inner()
        .encode_to_vec();
    assert_hidden(&[after], &rotated.client_secret, new_hash.as_bytes());
}

async fn the_store_keeps_only_the_keyed_hash(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (credential, secret) =
        create_credential(&mut client, new_credential("acme", "alice")).await;

    let database = open_database(registry).await;
    let hashes = stored_hashes(&database, &credential.id).await;
    assert_eq!(
        hashes,
        [registry.hash_key().hash(&secret).as_bytes().to_vec()]
    );
    // An unkeyed hash would let a stolen database test guesses offline.
    assert_ne!(
        hashes[0],
        blake3::hash(secret.as_bytes()).as_bytes().to_vec()
    );

    match backend {
        Backend::Postgres => {
            let statement = Statement::from_sql_and_values(
                database.get_database_backend(),
                "SELECT count(*) FROM credentials c WHERE row_to_json(c)::text LIKE $1",
                [format!("%{}%", &secret[4..]).into()],
            );
            let row = database.query_one(statement).await.unwrap().unwrap();
            assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 0);
        }
        Backend::Sqlite => {
            drop(database);
            let directory = registry.database().url.clone();
            let path = directory
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned();
            for file in [path.clone(), format!("{path}-wal")] {
                if let Ok(bytes) = std::fs::read(&file) {
                    assert!(
                        !contains(&bytes, &secret.as_bytes()[4..]),
                        "{file} holds the secret"
                    );
                }
            }
        }
    }
}

on_both_backends!(
    the_secret_is_shown_once_and_never_read_back,
    the_store_keeps_only_the_keyed_hash,
);
