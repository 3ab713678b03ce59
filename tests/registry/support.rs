//! Small helpers that keep the tests reading like the user's story.

use latchkey_proto::registry::v1 as pb;
use tonic::{Code, Status};

pub(crate) type Client = latchkey_tests::ManagementClient;

/// Creates a project with the configured default policy.
pub(crate) async fn create_project(client: &mut Client, project_id: &str) -> pb::Project {
    create_project_with(client, project_id, None).await
}

/// Creates a project with policy overrides.
pub(crate) async fn create_project_with(
    client: &mut Client,
    project_id: &str,
    policy: Option<pb::ProjectPolicy>,
) -> pb::Project {
    client
        .create_project(pb::CreateProjectRequest {
            project_id: project_id.to_owned(),
            display_name: String::new(),
            policy,
            ..Default::default()
        })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project in answer")
}

/// A create request for `owner` in `project_id` with nothing else set.
pub(crate) fn new_credential(project_id: &str, owner: &str) -> pb::CreateCredentialRequest {
    pb::CreateCredentialRequest {
        project_id: project_id.to_owned(),
        owner: owner.to_owned(),
        ..Default::default()
    }
}

/// Creates a credential and returns it with its secret.
pub(crate) async fn create_credential(
    client: &mut Client,
    request: pb::CreateCredentialRequest,
) -> (pb::Credential, String) {
    let response = client
        .create_credential(request)
        .await
        .expect("create credential")
        .into_inner();
    (
        response.credential.expect("credential in answer"),
        response.client_secret,
    )
}

/// All credentials of a project, following page tokens.
pub(crate) async fn list_all(client: &mut Client, project_id: &str) -> Vec<pb::Credential> {
    let mut credentials = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_credentials(pb::ListCredentialsRequest {
                project_id: project_id.to_owned(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list credentials")
            .into_inner();
        credentials.extend(page.credentials);
        if page.next_page_token.is_empty() {
            return credentials;
        }
        page_token = page.next_page_token;
    }
}

/// Asserts the call failed with `code` and a message containing `needle`.
#[track_caller]
pub(crate) fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    needle: &str,
) -> Status {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    assert!(
        status.message().contains(needle),
        "message {:?} should contain {needle:?}",
        status.message()
    );
    status
}

/// A timestamp as microseconds, for ordering comparisons.
pub(crate) fn micros(time: &Option<prost_types::Timestamp>) -> i64 {
    let time = time.as_ref().expect("timestamp set");
    time.seconds * 1_000_000 + i64::from(time.nanos / 1000)
}

/// Creates (as platform admin) a credential holding the Latchkey `scopes`
/// for `owner` in `project_id`, and returns it with a management client
/// presenting a fresh token of it, as a console or a user signed in with it.
pub(crate) async fn management_client(
    stack: &latchkey_tests::Stack,
    project_id: &str,
    owner: &str,
    scopes: &[&str],
) -> (pb::Credential, Client) {
    let (credential, secret) = create_credential(
        &mut stack.registry.client(),
        pb::CreateCredentialRequest {
            allowed_apis: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            ..new_credential(project_id, owner)
        },
    )
    .await;
    let token = stack
        .issuer
        .token_client()
        .issue_token(latchkey_proto::token::v1::IssueTokenRequest {
            client_id: credential.client_id.clone(),
            client_secret: secret,
            scopes: vec![],
        })
        .await
        .expect("a management token")
        .into_inner()
        .access_token;
    let client = stack.registry.client_with_token(Some(&token));
    (credential, client)
}

/// Reads a credential.
pub(crate) async fn get_credential(client: &mut Client, credential_id: &str) -> pb::Credential {
    client
        .get_credential(pb::GetCredentialRequest {
            credential_id: credential_id.to_owned(),
        })
        .await
        .expect("get credential")
        .into_inner()
        .credential
        .expect("credential in answer")
}

/// An update mask of `paths`.
pub(crate) fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|path| (*path).to_owned()).collect(),
    })
}

/// A registry over a database of its own (no server writes beside the
/// test), telling `sync` about every change, with project `acme` created by
/// the bootstrap caller. Keep the returned guard until the test ends.
pub(crate) async fn registry_with_sync(
    backend: latchkey_tests::Backend,
    sync: std::sync::Arc<dyn latchkey_registry::TokenSync>,
) -> (latchkey_registry::Registry, OwnDatabase) {
    use latchkey_registry::{Caller, CreateProject, ProjectPolicy, Registry};
    use latchkey_registry_store::DatabaseConfig;
    use latchkey_tests::{Backend, TestSchema, postgres_url};

    let directory = tempfile::tempdir().expect("a temporary directory");
    let schema = match backend {
        Backend::Postgres => Some(TestSchema::create().await),
        Backend::Sqlite => None,
    };
    let database = match &schema {
        Some(schema) => DatabaseConfig {
            url: postgres_url(),
            schema: Some(schema.name().to_owned()),
            ..DatabaseConfig::default()
        },
        None => DatabaseConfig {
            url: format!(
                "sqlite://{}/registry.db?mode=rwc",
                directory.path().display()
            ),
            ..DatabaseConfig::default()
        },
    };
    let store = latchkey_registry_store::connect(&database, ProjectPolicy::default())
        .await
        .expect("connect the store");
    let registry = Registry::new(
        std::sync::Arc::new(store),
        latchkey_secrets::HashKey::generate(),
        sync,
    );
    registry
        .create_project(
            &Caller::bootstrap(),
            CreateProject {
                project_id: "acme".into(),
                ..Default::default()
            },
        )
        .await
        .expect("create project acme");
    (
        registry,
        OwnDatabase {
            _directory: directory,
            _schema: schema,
        },
    )
}

/// What [`registry_with_sync`]'s database lives in.
pub(crate) struct OwnDatabase {
    _directory: tempfile::TempDir,
    _schema: Option<latchkey_tests::TestSchema>,
}
