//! Rule 9: bad input gets INVALID_ARGUMENT naming the field, and writes
//! nothing.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use prost_types::{FieldMask, Timestamp};
use tonic::Code;

use crate::support::{assert_refused, create_credential, create_project, list_all, new_credential};

async fn bad_creates_name_the_field_and_write_nothing(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let valid = new_credential("acme", "alice");

    let cases: Vec<(&str, pb::CreateCredentialRequest)> = vec![
        (
            "project_id",
            pb::CreateCredentialRequest {
                project_id: String::new(),
                ..valid.clone()
            },
        ),
        (
            "project_id",
            pb::CreateCredentialRequest {
                project_id: "Bad!".into(),
                ..valid.clone()
            },
        ),
        (
            "owner",
            pb::CreateCredentialRequest {
                owner: String::new(),
                ..valid.clone()
            },
        ),
        (
            "owner",
            pb::CreateCredentialRequest {
                owner: "has space".into(),
                ..valid.clone()
            },
        ),
        (
            "name",
            pb::CreateCredentialRequest {
                name: " padded".into(),
                ..valid.clone()
            },
        ),
        (
            "name",
            pb::CreateCredentialRequest {
                name: "x".repeat(65),
                ..valid.clone()
            },
        ),
        (
            "name",
            pb::CreateCredentialRequest {
                name: "semi;colon".into(),
                ..valid.clone()
            },
        ),
        (
            "description",
            pb::CreateCredentialRequest {
                description: "é".repeat(257),
                ..valid.clone()
            },
        ),
        (
            "description",
            pb::CreateCredentialRequest {
                description: "bell\u{7}".into(),
                ..valid.clone()
            },
        ),
        (
            "allowed_apis[1]",
            pb::CreateCredentialRequest {
                allowed_apis: vec!["orders.read".into(), "drop table".into()],
                ..valid.clone()
            },
        ),
        (
            "allowed_apis",
            pb::CreateCredentialRequest {
                allowed_apis: (0..65).map(|i| format!("api{i}")).collect(),
                ..valid.clone()
            },
        ),
        (
            "allowed_ips[0]",
            pb::CreateCredentialRequest {
                allowed_ips: vec!["10.0.0.0/33".into()],
                ..valid.clone()
            },
        ),
        (
            "allowed_ips[2]",
            pb::CreateCredentialRequest {
                allowed_ips: vec![
                    "10.0.0.1".into(),
                    "2001:db8::/32".into(),
                    "localhost".into(),
                ],
                ..valid.clone()
            },
        ),
        (
            "expire_time",
            pb::CreateCredentialRequest {
                expire_time: Some(Timestamp {
                    seconds: 1_000_000_000,
                    nanos: 0,
                }),
                ..valid.clone()
            },
        ),
        (
            "expire_time",
            pb::CreateCredentialRequest {
                expire_time: Some(Timestamp {
                    seconds: 4_000_000_000,
                    nanos: -1,
                }),
                ..valid.clone()
            },
        ),
    ];
    for (field, request) in cases {
        let refused = client.create_credential(request).await;
        let status = assert_refused(refused, Code::InvalidArgument, field);
        assert!(
            status.message().starts_with(&format!("{field}:")),
            "message {:?} should start with the field {field}",
            status.message()
        );
    }
    assert!(
        list_all(&mut client, "acme").await.is_empty(),
        "nothing was written"
    );

    let unknown_project = client
        .create_credential(new_credential("nowhere", "alice"))
        .await;
    assert_refused(unknown_project, Code::NotFound, "nowhere");
}

async fn a_bad_field_in_an_update_changes_nothing(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    create_project(&mut client, "acme").await;
    let (credential, _) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "stable".into(),
            allowed_ips: vec!["10.0.0.0/8".into()],
            ..new_credential("acme", "alice")
        },
    )
    .await;

    let refused = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: credential.id.clone(),
                name: "renamed".into(),
                allowed_ips: vec!["10.0.0.1".into(), "nonsense".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into(), "allowed_ips".into()],
            }),
        })
        .await;
    assert_refused(refused, Code::InvalidArgument, "credential.allowed_ips[1]");
    let cleared_name = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: Some(pb::Credential {
                id: credential.id.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await;
    assert_refused(cleared_name, Code::InvalidArgument, "credential.name");
    let missing = client
        .update_credential(pb::UpdateCredentialRequest {
            credential: None,
            update_mask: None,
        })
        .await;
    assert_refused(missing, Code::InvalidArgument, "credential");

    assert_eq!(list_all(&mut client, "acme").await, [credential]);
}

async fn bad_project_requests_name_the_field(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let cases: Vec<(&str, pb::CreateProjectRequest)> = vec![
        (
            "project_id",
            pb::CreateProjectRequest {
                project_id: "ab".into(),
                ..Default::default()
            },
        ),
        (
            "project_id",
            pb::CreateProjectRequest {
                project_id: "UPPER".into(),
                ..Default::default()
            },
        ),
        (
            "display_name",
            pb::CreateProjectRequest {
                project_id: "fine".into(),
                display_name: "x".repeat(129),
                ..Default::default()
            },
        ),
        (
            "policy.max_tokens_per_credential",
            pb::CreateProjectRequest {
                project_id: "fine".into(),
                policy: Some(pb::ProjectPolicy {
                    max_tokens_per_credential: Some(0),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
        (
            "policy.on_token_limit",
            pb::CreateProjectRequest {
                project_id: "fine".into(),
                policy: Some(pb::ProjectPolicy {
                    on_token_limit: Some(42),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ),
    ];
    for (field, request) in cases {
        let refused = client.create_project(request).await;
        assert_refused(refused, Code::InvalidArgument, field);
    }
    let projects = client
        .list_projects(pb::ListProjectsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> = projects.projects.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        ["admin"],
        "nothing was written beside the admins' project"
    );

    let negative = client
        .list_projects(pb::ListProjectsRequest {
            page_size: -1,
            page_token: String::new(),
            ..Default::default()
        })
        .await;
    assert_refused(negative, Code::InvalidArgument, "page_size");
    let garbage = client
        .list_projects(pb::ListProjectsRequest {
            page_size: 1,
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await;
    assert_refused(garbage, Code::InvalidArgument, "page_token");
}

on_both_backends!(
    bad_creates_name_the_field_and_write_nothing,
    a_bad_field_in_an_update_changes_nothing,
    bad_project_requests_name_the_field,
);
