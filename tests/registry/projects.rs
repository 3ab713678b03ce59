//! Projects and their policies.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack, TokenBackend};
use tonic::Code;

use crate::support::{assert_refused, create_project, create_project_with, micros};

fn defaults() -> pb::ProjectPolicy {
    pb::ProjectPolicy {
        max_credentials: Some(10),
        max_credentials_per_owner: Some(0),
        max_tokens_per_credential: Some(10),
        token_ttl_seconds: Some(3600),
        on_token_limit: Some(pb::OnTokenLimit::Reject.into()),
    }
}

async fn create_get_and_list_projects(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();

    let acme = create_project(&mut client, "acme").await;
    assert_eq!(acme.id, "acme");
    assert_eq!(acme.display_name, "acme", "display name defaults to the ID");
    assert_eq!(acme.policy, Some(defaults()), "design defaults apply");

    let intel = create_project_with(
        &mut client,
        "intel-cloud",
        Some(pb::ProjectPolicy {
            max_credentials_per_owner: Some(2),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(
        intel.policy,
        Some(pb::ProjectPolicy {
            max_credentials_per_owner: Some(2),
            ..defaults()
        })
    );

    let fetched = client
        .get_project(pb::GetProjectRequest {
            project_id: "intel-cloud".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .project;
    assert_eq!(fetched, Some(intel.clone()));

    // The bootstrap created the admins' project first.
    let mut listed = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_projects(pb::ListProjectsRequest {
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.projects.len() <= 1);
        listed.extend(page.projects.into_iter().map(|p| p.id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        listed,
        ["admin", "acme", "intel-cloud"],
        "creation order, one per page"
    );
    let _ = (acme, intel);

    let duplicate = client
        .create_project(pb::CreateProjectRequest {
            project_id: "acme".into(),
            ..Default::default()
        })
        .await;
    assert_refused(duplicate, Code::AlreadyExists, "acme");
    let unknown = client
        .get_project(pb::GetProjectRequest {
            project_id: "nope".into(),
        })
        .await;
    assert_refused(unknown, Code::NotFound, "nope");
}

async fn update_project_policy_merges_overrides(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "ops").await;

    let updated = client
        .update_project_policy(pb::UpdateProjectPolicyRequest {
            project_id: "ops".into(),
            policy: Some(pb::ProjectPolicy {
                max_credentials: Some(0),
                on_token_limit: Some(pb::OnTokenLimit::EvictOldest.into()),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(
        updated.policy,
        Some(pb::ProjectPolicy {
            max_credentials: Some(0),
            on_token_limit: Some(pb::OnTokenLimit::EvictOldest.into()),
            ..defaults()
        })
    );
    assert!(micros(&updated.update_time) > micros(&updated.create_time));

    // A second update keeps what the first set.
    let again = client
        .update_project_policy(pb::UpdateProjectPolicyRequest {
            project_id: "ops".into(),
            policy: Some(pb::ProjectPolicy {
                token_ttl_seconds: Some(600),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    let policy = again.policy.unwrap();
    assert_eq!(policy.max_credentials, Some(0));
    assert_eq!(policy.token_ttl_seconds, Some(600));

    let bad = client
        .update_project_policy(pb::UpdateProjectPolicyRequest {
            project_id: "ops".into(),
            policy: Some(pb::ProjectPolicy {
                max_credentials: Some(5),
                token_ttl_seconds: Some(86_401),
                ..Default::default()
            }),
        })
        .await;
    assert_refused(bad, Code::InvalidArgument, "policy.token_ttl_seconds");
    let empty = client
        .update_project_policy(pb::UpdateProjectPolicyRequest {
            project_id: "ops".into(),
            policy: None,
        })
        .await;
    assert_refused(empty, Code::InvalidArgument, "policy");
    let unknown = client
        .update_project_policy(pb::UpdateProjectPolicyRequest {
            project_id: "ghost".into(),
            policy: Some(pb::ProjectPolicy {
                max_credentials: Some(1),
                ..Default::default()
            }),
        })
        .await;
    assert_refused(unknown, Code::NotFound, "ghost");

    let unchanged = client
        .get_project(pb::GetProjectRequest {
            project_id: "ops".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(unchanged, again, "refused updates changed nothing");
}

async fn configured_defaults_reach_projects_without_overrides(backend: Backend) {
    let stack = Stack::start_with(
        backend,
        TokenBackend::Memory,
        |config| {
            config.policy_defaults.max_credentials = 3;
            config.policy_defaults.token_ttl_seconds = 900;
        },
        |_| {},
    )
    .await;
    let mut client = stack.registry.client();
    let project = create_project(&mut client, "tenant").await;
    let policy = project.policy.unwrap();
    assert_eq!(policy.max_credentials, Some(3));
    assert_eq!(policy.token_ttl_seconds, Some(900));
}

on_both_backends!(
    create_get_and_list_projects,
    update_project_policy_merges_overrides,
    configured_defaults_reach_projects_without_overrides,
);
