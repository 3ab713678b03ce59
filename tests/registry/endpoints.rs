//! A project's `api_endpoint`: the platform's API base URL, set at create,
//! changed by `UpdateProject`, and shown beside `token_endpoint` on every
//! credential answer, as the consoles show "the URL of the API endpoint"
//! with the keys.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{
    Client, assert_refused, create_credential, get_credential, management_client, mask,
    new_credential,
};

async fn create_project_at(
    client: &mut Client,
    project_id: &str,
    api_endpoint: &str,
) -> pb::Project {
    client
        .create_project(pb::CreateProjectRequest {
            project_id: project_id.to_owned(),
            api_endpoint: api_endpoint.to_owned(),
            ..Default::default()
        })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project in answer")
}

async fn get_project(client: &mut Client, project_id: &str) -> pb::Project {
    client
        .get_project(pb::GetProjectRequest {
            project_id: project_id.to_owned(),
        })
        .await
        .expect("get project")
        .into_inner()
        .project
        .expect("project in answer")
}

fn update_project(project: pb::Project, paths: &[&str]) -> pb::UpdateProjectRequest {
    pb::UpdateProjectRequest {
        project: Some(project),
        update_mask: mask(paths),
    }
}

async fn every_credential_answer_shows_the_projects_api_endpoint(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    let project =
        create_project_at(&mut client, "cloudops", "https://api.cloudops.example/v2").await;
    assert_eq!(project.api_endpoint, "https://api.cloudops.example/v2");
    assert_eq!(get_project(&mut client, "cloudops").await, project);

    let (created, _) = create_credential(&mut client, new_credential("cloudops", "alice")).await;
    assert_eq!(created.api_endpoint, "https://api.cloudops.example/v2");
    assert!(
        created.token_endpoint.ends_with("/oauth2/token"),
        "beside the token endpoint"
    );
    assert_eq!(
        get_credential(&mut client, &created.id).await.api_endpoint,
        created.api_endpoint
    );

    // Changed: every answer from now on shows the new one.
    let updated = client
        .update_project(update_project(
            pb::Project {
                id: "cloudops".into(),
                api_endpoint: "https://api.cloudops.example/v3".into(),
                display_name: "ignored: not in the mask".into(),
                ..Default::default()
            },
            &["apiEndpoint"],
        ))
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(updated.api_endpoint, "https://api.cloudops.example/v3");
    assert_eq!(updated.display_name, "cloudops");
    assert_eq!(get_project(&mut client, "cloudops").await, updated);
    let v3 = "https://api.cloudops.example/v3";

    let listed = client
        .list_credentials(pb::ListCredentialsRequest {
            project_id: "cloudops".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credentials;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].api_endpoint, v3);
    let disabled = client
        .disable_credential(pb::DisableCredentialRequest {
            credential_id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(disabled.api_endpoint, v3);
    let rotated = client
        .rotate_credential_secret(pb::RotateCredentialSecretRequest {
            credential_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(rotated.api_endpoint, v3);
    let renamed = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: created.id.clone(),
                name: "renamed".into(),
                ..Default::default()
            }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(renamed.api_endpoint, v3);

    // A user signed in with their own credential sees it too.
    let (_, mut alice) = management_client(&stack, "cloudops", "alice", &["credentials:own"]).await;
    assert_eq!(
        get_credential(&mut alice, &created.id).await.api_endpoint,
        v3
    );

    // Cleared, and the display name set (snake_case paths), in one update.
    let cleared = client
        .update_project(update_project(
            pb::Project {
                id: "cloudops".into(),
                display_name: "CloudOps".into(),
                ..Default::default()
            },
            &["api_endpoint", "display_name"],
        ))
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(cleared.api_endpoint, "");
    assert_eq!(cleared.display_name, "CloudOps");
    assert_eq!(
        get_credential(&mut client, &created.id).await.api_endpoint,
        ""
    );
}

async fn bad_api_endpoints_and_updates_are_refused_and_change_nothing(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let mut client = stack.registry.client();
    for (bad, reason) in [
        ("api.example.com", "https:// or http://"),
        ("ftp://api.example.com", "https:// or http://"),
        ("https://user:secret@api.example.com", "user information"),
        ("https://api.example.com/#x", "fragment"),
    ] {
        let refused = client
            .create_project(pb::CreateProjectRequest {
                project_id: "acme".into(),
                api_endpoint: bad.into(),
                ..Default::default()
            })
            .await;
        let status = assert_refused(refused, Code::InvalidArgument, "api_endpoint: ");
        assert!(status.message().contains(reason), "{bad:?}: {status:?}");
    }
    let too_long = format!("https://api.example.com/{}", "a".repeat(600));
    let refused = client
        .create_project(pb::CreateProjectRequest {
            project_id: "acme".into(),
            api_endpoint: too_long,
            ..Default::default()
        })
        .await;
    assert_refused(
        refused,
        Code::InvalidArgument,
        "api_endpoint: longer than 512",
    );
    assert_refused(
        client
            .get_project(pb::GetProjectRequest {
                project_id: "acme".into(),
            })
            .await,
        Code::NotFound,
        "acme",
    );

    let project = create_project_at(&mut client, "acme", "http://localhost:9000").await;
    let refused = client
        .update_project(update_project(
            pb::Project {
                id: "acme".into(),
                api_endpoint: "localhost:9000".into(),
                display_name: "Acme".into(),
                ..Default::default()
            },
            &["api_endpoint", "display_name"],
        ))
        .await;
    assert_refused(refused, Code::InvalidArgument, "project.api_endpoint: ");
    for (paths, needle) in [
        (&[][..], "update_mask: required"),
        (&["policy"][..], "\"policy\" cannot be updated"),
    ] {
        let refused = client
            .update_project(update_project(
                pb::Project {
                    id: "acme".into(),
                    ..Default::default()
                },
                paths,
            ))
            .await;
        assert_refused(refused, Code::InvalidArgument, needle);
    }
    let unknown = client
        .update_project(update_project(
            pb::Project {
                id: "nowhere".into(),
                ..Default::default()
            },
            &["display_name"],
        ))
        .await;
    assert_refused(unknown, Code::NotFound, "nowhere");
    assert_eq!(get_project(&mut client, "acme").await, project);

    // Only platform admins change a project.
    let (_, mut console) =
        management_client(&stack, "acme", "console", &["credentials:manage"]).await;
    let denied = console
        .update_project(update_project(
            pb::Project {
                id: "acme".into(),
                api_endpoint: "https://evil.example".into(),
                ..Default::default()
            },
            &["api_endpoint"],
        ))
        .await;
    assert_refused(denied, Code::PermissionDenied, "registry:admin");
    assert_eq!(get_project(&mut client, "acme").await, project);
}

/// The bootstrap admin's project evicts the oldest token: an admin who
/// fetches a token per shell is never locked out by its own token count.
async fn the_bootstrap_admin_is_never_locked_out_by_its_own_tokens(backend: Backend) {
    let mut stack = Stack::for_registry(backend).await;
    let admin_project = get_project(&mut stack.registry.client(), "admin").await;
    let policy = admin_project.policy.unwrap();
    assert_eq!(policy.max_tokens_per_credential, Some(10));
    assert_eq!(policy.on_token_limit(), pb::OnTokenLimit::EvictOldest);

    // The stack holds one token already; eleven more make twelve requests.
    for request in 2..=12 {
        stack.renew_admin_token().await;
        let listed = stack
            .registry
            .client()
            .list_projects(pb::ListProjectsRequest::default())
            .await;
        assert!(listed.is_ok(), "token request {request}: {listed:?}");
    }
}

on_both_backends!(
    every_credential_answer_shows_the_projects_api_endpoint,
    bad_api_endpoints_and_updates_are_refused_and_change_nothing,
    the_bootstrap_admin_is_never_locked_out_by_its_own_tokens,
);
