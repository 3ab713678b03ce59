//! The audit trail: "who changed this credential, from where, and did it
//! work?" Every change and every refusal is listed by `ListAuditEvents`,
//! with no secret or token anywhere in it, and only to those allowed to see
//! it. Issued and revoked tokens are usage (rollups), not audit events.

use std::time::Duration;

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1 as token_pb;
use latchkey_tests::{ManagementClient, Stack, StackBackend};
use registry_pb::{AuditAction, AuditOutcome};
use tonic::Code;

use crate::support::{Client, assert_code, create_client, credential, issue, project_with_client};

/// Every event matching `request`, newest first, following page tokens
/// (pages of 2, so paging is exercised).
async fn all_events(
    client: &mut ManagementClient,
    request: registry_pb::ListAuditEventsRequest,
) -> Vec<registry_pb::AuditEvent> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_audit_events(registry_pb::ListAuditEventsRequest {
                page_size: 2,
                page_token,
                ..request.clone()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.events.len() <= 2);
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        page_token = page.next_page_token;
    }
}

fn of_credential(id: &str) -> registry_pb::ListAuditEventsRequest {
    registry_pb::ListAuditEventsRequest {
        credential_id: id.to_owned(),
        ..Default::default()
    }
}

/// The actions of `events`, oldest first.
fn actions(events: &[registry_pb::AuditEvent]) -> Vec<(AuditAction, AuditOutcome)> {
    events
        .iter()
        .rev()
        .map(|event| (event.action(), event.outcome()))
        .collect()
}

/// Asserts no field of any event holds one of `secrets`.
#[track_caller]
fn assert_no_secret(events: &[registry_pb::AuditEvent], secrets: &[&str]) {
    for event in events {
        let text = format!("{event:?}");
        for secret in secrets {
            assert!(!text.contains(secret), "secret material in {text}");
        }
    }
}

async fn admin_credential_id(stack: &Stack) -> String {
    let listed = stack
        .registry
        .client()
        .list_credentials(registry_pb::ListCredentialsRequest {
            project_id: stack.admin.project_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    listed
        .credentials
        .into_iter()
        .find(|c| c.client_id == stack.admin.client_id)
        .unwrap()
        .id
}

async fn a_credentials_life_is_on_record_without_its_secrets(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let admin_id = admin_credential_id(&stack).await;
    let client = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let id = client.credential.id.clone();
    let mut registry = stack.registry.client();

    registry
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: id.clone(),
                allowed_ips: vec!["127.0.0.0/8".into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["allowed_ips".into()],
            }),
        })
        .await
        .unwrap();
    let rotated = registry
        .rotate_credential_secret(registry_pb::RotateCredentialSecretRequest {
            credential_id: id.clone(),
            grace_period_seconds: 0,
            revoke_tokens: false,
        })
        .await
        .unwrap()
        .into_inner();
    let client = Client {
        credential: client.credential,
        secret: rotated.client_secret.clone(),
    };
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    // The old secret is refused: a failed authentication, on record.
    let old = Client {
        credential: client.credential.clone(),
        secret: "lks_wrong".into(),
    };
    assert_code(issue(&stack, &old, &[]).await, Code::Unauthenticated);
    stack
        .issuer
        .token_client()
        .revoke_token(token_pb::RevokeTokenRequest {
            token: token.clone(),
            client_id: client.credential.client_id.clone(),
            client_secret: client.secret.clone(),
        })
        .await
        .unwrap();
    // A scope the credential does not hold: a refused issuance, on record.
    // The issuer sends its events in order, so once this one is listed,
    // any event of the issuance and revocation above would be too.
    assert_code(
        issue(&stack, &client, &["billing.admin"]).await,
        Code::InvalidArgument,
    );
    for disable in [true, false] {
        if disable {
            registry
                .disable_credential(registry_pb::DisableCredentialRequest {
                    credential_id: id.clone(),
                })
                .await
                .unwrap();
        } else {
            registry
                .enable_credential(registry_pb::EnableCredentialRequest {
                    credential_id: id.clone(),
                })
                .await
                .unwrap();
        }
    }
    assert_code(
        registry
            .delete_credential(registry_pb::DeleteCredentialRequest {
                credential_id: id.clone(),
                confirm_name: "not-its-name".into(),
            })
            .await,
        Code::FailedPrecondition,
    );
    registry
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();

    let expected = vec![
        (AuditAction::CreateCredential, AuditOutcome::Succeeded),
        (AuditAction::UpdateCredential, AuditOutcome::Succeeded),
        (AuditAction::RotateCredentialSecret, AuditOutcome::Succeeded),
        // Not the token issued nor its revocation: counted in usage rollups.
        (AuditAction::IssueToken, AuditOutcome::Failed),
        (AuditAction::DisableCredential, AuditOutcome::Succeeded),
        (AuditAction::EnableCredential, AuditOutcome::Succeeded),
        (AuditAction::DeleteCredential, AuditOutcome::Failed),
        (AuditAction::DeleteCredential, AuditOutcome::Succeeded),
    ];
    // Token events arrive in the issuer's next batch.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let events = loop {
        let events = all_events(&mut registry, of_credential(&id)).await;
        if events.len() >= expected.len() || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(actions(&events), expected);

    let by_action = |action: AuditAction| {
        events
            .iter()
            .find(|event| event.action() == action)
            .unwrap()
    };
    let update = by_action(AuditAction::UpdateCredential);
    assert_eq!(update.actor, admin_id);
    assert_eq!(update.project_id, "acme");
    assert_eq!(update.source_ip, "127.0.0.1");
    assert!(update.detail.contains("allowed_ips"), "{update:?}");
    let refused_issue = by_action(AuditAction::IssueToken);
    assert_eq!(refused_issue.actor, id, "the client itself asked");
    assert_eq!(refused_issue.project_id, "acme");
    assert_eq!(refused_issue.source_ip, "127.0.0.1");
    assert_eq!(refused_issue.detail, "invalid_scope", "{refused_issue:?}");
    let refused_delete = events
        .iter()
        .find(|event| {
            event.action() == AuditAction::DeleteCredential
                && event.outcome() == AuditOutcome::Failed
        })
        .unwrap();
    assert!(
        refused_delete.detail.contains("FAILED_PRECONDITION"),
        "{refused_delete:?}"
    );
    // Newest first, each event once.
    let times: Vec<_> = events.iter().map(|e| e.time.unwrap().seconds).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");
    let mut ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len());

    // The refused secret is on record as a failed authentication of that
    // client ID, from the address it came from.
    let failures = all_events(
        &mut registry,
        registry_pb::ListAuditEventsRequest {
            project_id: String::new(),
            ..Default::default()
        },
    )
    .await;
    let failure = failures
        .iter()
        .find(|event| event.action() == AuditAction::AuthenticateClient)
        .expect("the failed authentication is recorded");
    assert_eq!(failure.outcome(), AuditOutcome::Failed);
    assert_eq!(failure.actor, client.credential.client_id);
    assert_eq!(failure.source_ip, "127.0.0.1");
    // With the registry's reason (the client itself only learned "invalid
    // client"): the presented value is not even secret-shaped.
    assert_eq!(failure.detail, "malformed_secret", "{failure:?}");
    // Nowhere a successful issuance or revocation.
    assert!(
        failures.iter().all(|event| {
            event.outcome() == AuditOutcome::Failed
                || !matches!(
                    event.action(),
                    AuditAction::IssueToken | AuditAction::RevokeToken
                )
        }),
        "{failures:?}"
    );

    assert_no_secret(
        &failures,
        &[
            &rotated.client_secret,
            &token,
            &stack.admin.client_secret,
            "lks_wrong",
        ],
    );
}

async fn only_admins_and_the_projects_managers_read_its_trail(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    project_with_client(&stack, "globex", None, credential(&["orders.read"], &[])).await;
    let as_member = |scope: &'static str| {
        let stack = &stack;
        async move {
            let member = create_client(
                stack,
                registry_pb::CreateCredentialRequest {
                    project_id: "acme".into(),
                    owner: "bob".into(),
                    allowed_apis: vec![scope.into()],
                    ..Default::default()
                },
            )
            .await;
            let token = issue(stack, &member, &[]).await.unwrap().access_token;
            stack.registry.client_with_token(Some(&token))
        }
    };
    let mut manager = as_member("credentials:manage").await;
    let mut owner = as_member("credentials:own").await;
    let in_project = |project: &str| registry_pb::ListAuditEventsRequest {
        project_id: project.to_owned(),
        ..Default::default()
    };

    let own = all_events(&mut manager, in_project("acme")).await;
    assert!(
        own.iter()
            .any(|event| event.action() == AuditAction::CreateCredential),
        "{own:?}"
    );
    assert!(own.iter().all(|event| event.project_id == "acme"));
    assert_code(
        manager.list_audit_events(in_project("globex")).await,
        Code::PermissionDenied,
    );
    assert_code(
        manager.list_audit_events(in_project("")).await,
        Code::PermissionDenied,
    );
    assert_code(
        owner.list_audit_events(in_project("acme")).await,
        Code::PermissionDenied,
    );
    let everything = all_events(&mut stack.registry.client(), in_project("")).await;
    for project in ["acme", "globex"] {
        assert!(everything.iter().any(|event| event.project_id == project));
    }
}

async fn bad_listing_requests_name_their_field(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let mut registry = stack.registry.client();
    let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
    for (request, field) in [
        (
            registry_pb::ListAuditEventsRequest {
                start_time: at(2_000_000_000),
                end_time: at(1_000_000_000),
                ..Default::default()
            },
            "end_time",
        ),
        (of_credential("not-a-credential"), "credential_id"),
        (
            registry_pb::ListAuditEventsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
    ] {
        let status = assert_code(
            registry.list_audit_events(request).await,
            Code::InvalidArgument,
        );
        assert!(status.message().contains(field), "{status:?}");
    }
    // A page token only continues the listing it came from.
    let first = registry
        .list_audit_events(registry_pb::ListAuditEventsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!first.next_page_token.is_empty());
    let status = assert_code(
        registry
            .list_audit_events(registry_pb::ListAuditEventsRequest {
                page_token: first.next_page_token,
                ..of_credential(&client.credential.id)
            })
            .await,
        Code::InvalidArgument,
    );
    assert!(status.message().contains("page_token"), "{status:?}");
    // A time window: nothing in the far past.
    let past = registry
        .list_audit_events(registry_pb::ListAuditEventsRequest {
            end_time: at(1_000_000_000),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(past.events.is_empty());
}

async fn a_refused_secret_is_on_its_projects_record(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let target = project_with_client(&stack, "acme", None, credential(&["orders.read"], &[])).await;
    let other = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: "mallory".into(),
            ..Default::default()
        },
    )
    .await;
    // A well-formed secret that is not this client's: the registry refuses
    // it as a wrong secret, and the client learns only "invalid client".
    let refused = stack
        .issuer
        .token_client()
        .issue_token(token_pb::IssueTokenRequest {
            client_id: target.credential.client_id.clone(),
            client_secret: other.secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(!refused.message().contains("wrong_secret"), "{refused:?}");

    // The project's manager sees the attack on its key: the credential, the
    // reason and the source, without the presented secret.
    let manager = create_client(
        &stack,
        registry_pb::CreateCredentialRequest {
            project_id: "acme".into(),
            owner: "ops".into(),
            allowed_apis: vec!["credentials:manage".into()],
            ..Default::default()
        },
    )
    .await;
    let token = issue(&stack, &manager, &[]).await.unwrap().access_token;
    let mut manager = stack.registry.client_with_token(Some(&token));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let refusal = loop {
        let events = all_events(
            &mut manager,
            registry_pb::ListAuditEventsRequest {
                project_id: "acme".into(),
                credential_id: target.credential.id.clone(),
                ..Default::default()
            },
        )
        .await;
        if let Some(event) = events.iter().find(|event| {
            event.action() == AuditAction::AuthenticateClient
                && event.outcome() == AuditOutcome::Failed
        }) {
            assert_no_secret(&events, &[&other.secret, &target.secret]);
            break event.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal on the project's record: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(refusal.project_id, "acme");
    assert_eq!(refusal.credential_id, target.credential.id);
    assert!(refusal.detail.contains("wrong_secret"), "{refusal:?}");
    assert_eq!(refusal.source_ip, "127.0.0.1");
}

on_both_stacks!(
    a_refused_secret_is_on_its_projects_record,
    a_credentials_life_is_on_record_without_its_secrets,
    only_admins_and_the_projects_managers_read_its_trail,
    bad_listing_requests_name_their_field,
);
