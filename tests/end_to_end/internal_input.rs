//! `TokenAdmin` takes only what the registry's public API would (findings 4
//! and 5 of issue 12): a policy with an unbounded or malformed field is
//! refused naming the field, on `SyncPolicy` and `PurgeCredential` alike,
//! and nothing reaches the token store; `CheckCaller` bounds its token and
//! requires the caller's address.

use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::token_admin_client::TokenAdminClient;
use latchkey_tests::{Stack, StackBackend};
use tonic::Code;

use crate::support::{credential, introspect, issue, project_with_client};

/// Breaks one field of a policy.
type Change = fn(&mut token_pb::CredentialPolicy);

/// One past the largest version accepted (2^53).
const VERSION_2_53: i64 = 1 << 53;

async fn token_admin_refuses_unbounded_policies_and_writes_nothing(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &["a.read"])
        .await
        .unwrap()
        .access_token;
    let mut admin = TokenAdminClient::new(stack.issuer.internal_channel());

    // Valid in every field but the one each case breaks: had any of them
    // been applied, the token would be disabled or purged.
    let disabling = token_pb::CredentialPolicy {
        credential_id: client.credential.id.clone(),
        version: VERSION_2_53 - 1,
        state: token_pb::PolicyState::Disabled.into(),
        client_id: client.credential.client_id.clone(),
        project_id: "acme".into(),
        owner: "alice".into(),
        allowed_apis: vec!["a.read".into()],
        allowed_ips: vec![],
        expire_time: None,
    };
    let cases: Vec<(Change, &str)> = vec![
        (|p| p.credential_id = String::new(), "policy.credential_id"),
        (|p| p.credential_id = "../x".into(), "policy.credential_id"),
        (|p| p.version = 0, "policy.version"),
        (|p| p.version = -1, "policy.version"),
        (|p| p.version = VERSION_2_53, "policy.version"),
        (|p| p.version = i64::MAX, "policy.version"),
        (|p| p.state = 0, "policy.state"),
        (|p| p.state = 99, "policy.state"),
        (|p| p.client_id = "lkc_forged".into(), "policy.client_id"),
        (|p| p.client_id = String::new(), "policy.client_id"),
        (
            |p| p.project_id = "Ops/../admin".into(),
            "policy.project_id",
        ),
        (|p| p.project_id = String::new(), "policy.project_id"),
        (|p| p.owner = "the admin".into(), "policy.owner"),
        (|p| p.owner = "o".repeat(129), "policy.owner"),
        (
            |p| p.allowed_apis = (0..65).map(|i| format!("api{i}")).collect(),
            "policy.allowed_apis",
        ),
        (
            |p| p.allowed_apis = vec!["a".repeat(129)],
            "policy.allowed_apis[0]",
        ),
        (
            // Finding 4: 40 such calls took Redis from 1.9 MB to 152 MB; the
            // listener refuses them before any handler.
            |p| p.allowed_apis = vec!["a".repeat(1 << 20)],
            "request body",
        ),
        (
            |p| p.allowed_apis = vec!["a.read".into(), "has space".into()],
            "policy.allowed_apis[1]",
        ),
        (
            |p| p.allowed_ips = (0..65).map(|i| format!("10.0.0.{i}")).collect(),
            "policy.allowed_ips",
        ),
        (
            |p| p.allowed_ips = vec!["nowhere".into()],
            "policy.allowed_ips[0]",
        ),
        (
            |p| {
                p.expire_time = Some(prost_types::Timestamp {
                    seconds: -1,
                    nanos: 0,
                })
            },
            "policy.expire_time",
        ),
        (
            |p| {
                p.expire_time = Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                })
            },
            "policy.expire_time",
        ),
        (
            |p| {
                p.expire_time = Some(prost_types::Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 2_000_000_000,
                })
            },
            "policy.expire_time",
        ),
    ];
    for (change, field) in cases {
        let mut policy = disabling.clone();
        change(&mut policy);
        let synced = admin
            .sync_policy(token_pb::SyncPolicyRequest {
                policy: Some(policy.clone()),
            })
            .await
            .unwrap_err();
        let purged = admin
            .purge_credential(token_pb::PurgeCredentialRequest {
                policy: Some(policy),
            })
            .await
            .unwrap_err();
        for refused in [synced, purged] {
            assert_eq!(
                refused.code(),
                Code::InvalidArgument,
                "{field}: {refused:?}"
            );
            assert!(
                refused.message().starts_with(&format!("{field}: ")),
                "{field}: {refused:?}"
            );
        }
    }
    let missing = admin
        .sync_policy(token_pb::SyncPolicyRequest { policy: None })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::InvalidArgument, "policy: required")
    );

    // Nothing was applied: the token is active, the credential issues.
    assert!(
        introspect(&stack, &token, "127.0.0.1", &["a.read"])
            .await
            .active
    );
    issue(&stack, &client, &["a.read"]).await.unwrap();
}

async fn check_caller_bounds_its_token_and_requires_the_address(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    let mut admin = TokenAdminClient::new(stack.issuer.internal_channel());
    let check = |token: String, client_ip: &str| token_pb::CheckCallerRequest {
        token,
        client_ip: client_ip.to_owned(),
    };
    for (request, field) in [
        (check("x".repeat(513), "127.0.0.1"), "token"),
        // Past the listener's largest message: refused before any handler.
        (check("x".repeat(1 << 20), "127.0.0.1"), "request body"),
        (check(token.clone(), ""), "client_ip"),
        (check(token.clone(), "not-an-ip"), "client_ip"),
        (
            check(token.clone(), &format!("127.0.0.1{}", " ".repeat(100))),
            "client_ip",
        ),
    ] {
        let refused = admin.check_caller(request).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{field}: {refused:?}"
        );
        assert!(
            refused.message().starts_with(&format!("{field}: ")),
            "{field}: {refused:?}"
        );
    }
    let answer = admin
        .check_caller(check(token, "127.0.0.1"))
        .await
        .unwrap()
        .into_inner();
    assert!(answer.active);
    assert_eq!(answer.credential_id, client.credential.id);
}

on_both_stacks!(
    token_admin_refuses_unbounded_policies_and_writes_nothing,
    check_caller_bounds_its_token_and_requires_the_address,
);
