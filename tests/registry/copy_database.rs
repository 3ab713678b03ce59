//! Moving a registry from SQLite to PostgreSQL (and back) with
//! `copy_database`: every project, member, credential, secret, audit event
//! and usage rollup arrives; the copied secrets verify with the same hash
//! key and a wrong one is refused; new secrets can be written on the
//! target; a target holding data, or a source with a table this version
//! does not know, is refused with the target left as it was.

use std::sync::Arc;

use chrono::{Duration, DurationRound, Utc};
use latchkey_registry::{
    AuthenticateError, Caller, CreateCredential, CreateMember, CreateProject, ListAuditEvents,
    ListCredentials, ListMembers, ListUsage, NoTokenSync, ProjectPolicy, Registry, RotateSecret,
    UsageGranularity, UsageKind, UsageReport, UsageRollup,
};
use latchkey_registry_store::{CopyError, DatabaseConfig, copy_database};
use latchkey_runtime::HashKeys;
use latchkey_secrets::HashKey;
use latchkey_tests::{TestSchema, postgres_url};
use sea_orm::{ConnectionTrait, Database};

const PROJECT: &str = "acme";

fn sqlite(directory: &tempfile::TempDir, name: &str) -> DatabaseConfig {
    DatabaseConfig {
        url: format!("sqlite://{}/{name}.db?mode=rwc", directory.path().display()),
        ..DatabaseConfig::default()
    }
}

fn postgres(schema: &TestSchema) -> DatabaseConfig {
    DatabaseConfig {
        url: postgres_url(),
        schema: Some(schema.name().to_owned()),
        ..DatabaseConfig::default()
    }
}

async fn registry(config: &DatabaseConfig, key: &HashKey) -> Registry {
    let store = latchkey_registry_store::connect(config, ProjectPolicy::default())
        .await
        .unwrap();
    Registry::new(
        Arc::new(store),
        HashKeys::from(key.clone()),
        Arc::new(NoTokenSync),
    )
}

/// What a platform's registry holds after some use: a member and their
/// credentials, one rotated with a grace period (two live secrets), one
/// deleted, audit events for each change and a refused attempt, usage
/// rollups with addresses.
struct Populated {
    client_id: String,
    old_secret: String,
    new_secret: String,
    credential_id: String,
}

async fn populate(registry: &Registry) -> Populated {
    let admin = Caller::bootstrap();
    registry
        .create_project(
            &admin,
            CreateProject {
                project_id: PROJECT.to_owned(),
                display_name: "Acme".to_owned(),
                ..CreateProject::default()
            },
        )
        .await
        .unwrap();
    registry
        .create_member(
            &admin,
            CreateMember {
                project_id: PROJECT.to_owned(),
                user_id: "alice".to_owned(),
                display_name: "Alice".to_owned(),
                role: None,
                api_ceiling: vec!["orders.read".to_owned(), "orders.write".to_owned()],
            },
        )
        .await
        .unwrap();
    let create = |name: &str| CreateCredential {
        project_id: PROJECT.to_owned(),
        owner: "alice".to_owned(),
        name: name.to_owned(),
        allowed_apis: vec!["orders.read".to_owned()],
        allowed_ips: vec!["10.0.0.0/8".to_owned()],
        ..CreateCredential::default()
    };
    let kept = registry
        .create_credential(&admin, create("billing-sync"))
        .await
        .unwrap();
    let rotated = registry
        .rotate_secret(
            &admin,
            RotateSecret {
                credential_id: kept.credential.id.clone(),
                grace_period_seconds: 3600,
                revoke_tokens: false,
            },
        )
        .await
        .unwrap();
    let deleted = registry
        .create_credential(&admin, create("old-job"))
        .await
        .unwrap();
    registry
        .delete_credential(&admin, &deleted.credential.id, "old-job")
        .await
        .unwrap();
    // A refused attempt: an audit event of its own.
    assert!(matches!(
        registry
            .authenticate(&kept.credential.client_id, "lk_sk_wrong", "10.0.0.1")
            .await,
        Err(AuthenticateError::Refused(_))
    ));
    let minute = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(5);
    registry
        .record_usage_report(UsageReport {
            uses: Vec::new(),
            rollups: vec![UsageRollup {
                credential_id: kept.credential.id.clone(),
                project_id: PROJECT.to_owned(),
                minute,
                kind: UsageKind::TokenIssued,
                count: 1204,
                first_time: minute,
                last_time: minute + Duration::seconds(59),
                addresses: vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()],
                more_addresses: false,
            }],
            batch_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap();
    Populated {
        client_id: kept.credential.client_id,
        old_secret: kept.client_secret,
        new_secret: rotated.client_secret,
        credential_id: kept.credential.id,
    }
}

/// Everything a user of the registry can list, as text, to compare one
/// database with another.
async fn listing(registry: &Registry) -> String {
    let admin = Caller::bootstrap();
    let projects = registry.list_projects(&admin, 0, "", "").await.unwrap();
    let (credentials, _) = registry
        .list_credentials(
            &admin,
            ListCredentials {
                project_id: PROJECT.to_owned(),
                ..ListCredentials::default()
            },
        )
        .await
        .unwrap();
    let (members, _) = registry
        .list_members(
            &admin,
            ListMembers {
                project_id: PROJECT.to_owned(),
                include_removed: true,
                ..ListMembers::default()
            },
        )
        .await
        .unwrap();
    let (events, _) = registry
        .list_audit_events(
            &admin,
            ListAuditEvents {
                project_id: PROJECT.to_owned(),
                page_size: 100,
                ..ListAuditEvents::default()
            },
        )
        .await
        .unwrap();
    let (usage, _) = registry
        .list_usage(
            &admin,
            ListUsage {
                project_id: PROJECT.to_owned(),
                granularity: Some(UsageGranularity::Minute),
                ..ListUsage::default()
            },
        )
        .await
        .unwrap();
    assert!(!credentials.is_empty() && !members.is_empty() && !usage.is_empty());
    assert!(events.len() >= 5, "creates, rotation, delete, refusal");
    format!("{projects:?}\n{credentials:?}\n{members:?}\n{events:?}\n{usage:?}")
}

async fn authenticates(registry: &Registry, client_id: &str, secret: &str) -> bool {
    match registry.authenticate(client_id, secret, "10.0.0.1").await {
        Ok(_) => true,
        Err(AuthenticateError::Refused(_)) => false,
        Err(error) => panic!("authentication failed: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back_keeps_everything() {
    let directory = tempfile::tempdir().unwrap();
    let key = HashKey::generate();
    let embedded = sqlite(&directory, "registry");
    let before = registry(&embedded, &key).await;
    let populated = populate(&before).await;
    let listed = listing(&before).await;
    drop(before);

    let schema = TestSchema::create().await;
    let production = postgres(&schema);
    let report = copy_database(&embedded, &production).await.unwrap();
    assert_eq!(
        (report.source_backend, report.target_backend),
        ("sqlite", "postgres")
    );
    let copied = |table: &str| {
        report
            .tables
            .iter()
            .find(|copied| copied.table == table)
            .unwrap_or_else(|| panic!("{table} copied"))
            .rows
    };
    assert_eq!(copied("projects"), 1);
    assert_eq!(copied("members"), 1);
    assert_eq!(copied("credentials"), 1, "the deleted one is gone");
    assert!(copied("credential_secrets") >= 2, "both live secrets");
    assert_eq!(copied("usage_rollups"), 1);
    assert_eq!(copied("usage_addresses"), 2);

    // Everything a user lists is the same on PostgreSQL, and both live
    // secrets verify there with the same hash key.
    let after = registry(&production, &key).await;
    assert_eq!(listing(&after).await, listed);
    assert!(authenticates(&after, &populated.client_id, &populated.old_secret).await);
    assert!(authenticates(&after, &populated.client_id, &populated.new_secret).await);
    assert!(!authenticates(&after, &populated.client_id, "lk_sk_wrong").await);
    // With another hash key the copied secrets are refused: the key goes
    // with the database.
    let wrong_key = registry(&production, &HashKey::generate()).await;
    assert!(!authenticates(&wrong_key, &populated.client_id, &populated.new_secret).await);

    // And back to a second SQLite file before anything changes: the same.
    let back = sqlite(&directory, "back");
    let report = copy_database(&production, &back).await.unwrap();
    assert_eq!(
        (report.source_backend, report.target_backend),
        ("postgres", "sqlite")
    );
    assert_eq!(listing(&registry(&back, &key).await).await, listed);

    // The target takes new writes while the copied secrets are still there
    // (PostgreSQL's sequence of secret IDs continues after the copied
    // ones): a rotation that keeps the old secrets, a new credential.
    let rotated = after
        .rotate_secret(
            &Caller::bootstrap(),
            RotateSecret {
                credential_id: populated.credential_id.clone(),
                grace_period_seconds: 3600,
                revoke_tokens: false,
            },
        )
        .await
        .unwrap();
    for secret in [
        &populated.old_secret,
        &populated.new_secret,
        &rotated.client_secret,
    ] {
        assert!(authenticates(&after, &populated.client_id, secret).await);
    }
    let created = after
        .create_credential(
            &Caller::bootstrap(),
            CreateCredential {
                project_id: PROJECT.to_owned(),
                owner: "alice".to_owned(),
                ..CreateCredential::default()
            },
        )
        .await
        .unwrap();
    assert!(
        authenticates(
            &after,
            &created.credential.client_id,
            &created.client_secret
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_data_is_refused_and_left_as_it_was() {
    let directory = tempfile::tempdir().unwrap();
    let key = HashKey::generate();
    let embedded = sqlite(&directory, "registry");
    populate(&registry(&embedded, &key).await).await;
    let schema = TestSchema::create().await;
    let production = postgres(&schema);
    copy_database(&embedded, &production).await.unwrap();
    let target = registry(&production, &key).await;
    let listed = listing(&target).await;

    let refused = copy_database(&embedded, &production).await.unwrap_err();
    assert!(
        matches!(
            &refused,
            CopyError::TargetNotEmpty { table, rows: 1 } if table == "projects"
        ),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("not empty"), "{refused}");
    assert_eq!(listing(&target).await, listed, "nothing added twice");

    let itself = copy_database(&embedded, &embedded).await.unwrap_err();
    assert!(matches!(itself, CopyError::SameDatabase), "{itself:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_table_this_version_does_not_know_stops_the_copy_whole() {
    let directory = tempfile::tempdir().unwrap();
    let key = HashKey::generate();
    let embedded = sqlite(&directory, "registry");
    populate(&registry(&embedded, &key).await).await;
    // A table a newer version would have added.
    let connection = Database::connect(embedded.url.as_str()).await.unwrap();
    connection
        .execute_unprepared("CREATE TABLE signing_keys (id TEXT PRIMARY KEY)")
        .await
        .unwrap();
    connection.close().await.unwrap();

    let schema = TestSchema::create().await;
    let production = postgres(&schema);
    let refused = copy_database(&embedded, &production).await.unwrap_err();
    match &refused {
        CopyError::UnknownTables(tables) => assert_eq!(tables, &["signing_keys"]),
        other => panic!("{other:?}"),
    }
    // Every known table had been copied when the check ran; none of it
    // was committed.
    let target = registry(&production, &key).await;
    let (projects, _) = target
        .list_projects(&Caller::bootstrap(), 0, "", "")
        .await
        .unwrap();
    assert!(projects.is_empty(), "{projects:?}");
}

/// The operator's recipe with the real binary: an embedded registry's
/// admin, `credential-registry copy-database` into a PostgreSQL schema,
/// then the registry on PostgreSQL with the embedded hash key file sees the
/// admin's secret; with another key it refuses to start; a second copy is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_database_command_moves_an_embedded_registry_to_postgres() {
    use latchkey_tests::binaries::{bootstrap, command, log_path};

    let directory = tempfile::tempdir().unwrap();
    let (admin_id, admin_secret) = bootstrap(directory.path(), "ops", |_| {});
    let schema = TestSchema::create().await;
    let copy = || {
        command("credential-registry", directory.path())
            .args(["copy-database", "--to-schema", schema.name()])
            .env("TARGET_DATABASE_URL", postgres_url())
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap()
    };
    let copied = copy();
    assert!(copied.status.success(), "{copied:?}");
    let report = String::from_utf8(copied.stdout).unwrap();
    assert!(report.contains("from sqlite to postgres"), "{report}");
    assert!(
        report
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["credentials", "1", "rows"]),
        "{report}"
    );
    assert!(!report.contains(&admin_secret), "{report}");
    assert!(
        !report.contains(&postgres_url()),
        "no URL printed: {report}"
    );

    let again = copy();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let log = std::fs::read_to_string(log_path("credential-registry", directory.path())).unwrap();
    assert!(
        log.contains("nothing copied: the target database is not empty (projects holds 1 rows)"),
        "{log}"
    );

    // The registry on PostgreSQL, with the embedded default's hash key.
    let on_postgres = |key: Option<&str>| {
        let mut status = command("credential-registry", directory.path());
        status
            .args(["hash-keys", "status"])
            .env("DATABASE_URL", postgres_url())
            .env("LATCHKEY_DATABASE__SCHEMA", schema.name())
            .env("LATCHKEY_INTERNAL_KEY", "ab".repeat(32))
            .stdout(std::process::Stdio::piped());
        match key {
            Some(key) => status.env("LATCHKEY_HASH_KEY", key),
            None => status.env("LATCHKEY_HASH_KEY_FILE", "latchkey-data/hash.key"),
        };
        status.output().unwrap()
    };
    let status = on_postgres(None);
    assert!(status.status.success(), "{status:?}");
    let status = String::from_utf8(status.stdout).unwrap();
    assert!(
        status.contains("hash key 1: 1 live secrets, current"),
        "the admin's secret, under the embedded key: {status}"
    );
    let wrong = on_postgres(Some(&"cd".repeat(32)));
    assert_eq!(wrong.status.code(), Some(64), "{wrong:?}");

    // And the admin's secret itself verifies on the copy.
    let key_hex = std::fs::read_to_string(directory.path().join("latchkey-data/hash.key")).unwrap();
    let key = HashKey::from_hex(key_hex.trim()).unwrap();
    let target = registry(&postgres(&schema), &key).await;
    assert!(authenticates(&target, &admin_id, &admin_secret).await);
}
