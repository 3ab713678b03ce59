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
