//! Rule 3 when the issuer cannot be reached: the registry refuses the change
//! (UNAVAILABLE) and changes nothing, so no token stays live for a
//! credential that is gone. (With the issuer down the registry cannot even
//! check the caller's token; `tests/registry/token_sync.rs` covers the
//! issuer failing after the caller was checked.)

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::token::v1::InactiveReason;
use latchkey_tests::{Stack, StackBackend};
use prost_types::FieldMask;
use tonic::Code;

use crate::support::{
    assert_code, assert_inactive, credential, introspect, issue, project_with_client,
};

async fn with_the_issuer_down_changes_fail_and_change_nothing(backend: StackBackend) {
    let mut stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&["a.read"], &[])).await;
    let token = issue(&stack, &client, &[]).await.unwrap().access_token;
    stack.issuer.stop().await;

    let mut admin = stack.registry.client();
    let id = client.credential.id.clone();
    let delete = admin
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: id.clone(),
            confirm_name: client.credential.name.clone(),
        })
        .await;
    assert!(
        assert_code(delete, Code::Unavailable)
            .message()
            .contains("token issuer")
    );
    let disable = admin
        .disable_credential(registry_pb::DisableCredentialRequest {
            credential_id: id.clone(),
        })
        .await;
    assert_code(disable, Code::Unavailable);
    let narrow = admin
        .update_credential(registry_pb::UpdateCredentialRequest {
            credential: Some(registry_pb::Credential {
                id: id.clone(),
                allowed_apis: vec![],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["allowed_apis".into()],
            }),
        })
        .await;
    assert_code(narrow, Code::Unavailable);

    // With the issuer back, the delete goes through and the token dies.
    let issuer = stack.issuer;
    stack.issuer = issuer.restart().await;
    // The in-process store starts empty: the admin needs a new token.
    stack.renew_admin_token().await;
    let mut admin = stack.registry.client();

    // Nothing changed in the registry while the issuer was away.
    let unchanged = admin
        .get_credential(registry_pb::GetCredentialRequest {
            credential_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(unchanged.state(), registry_pb::CredentialState::Active);
    assert_eq!(unchanged.allowed_apis, ["a.read"]);

    if backend == StackBackend::Production {
        // Redis kept the token across the restart, and it was never revoked.
        assert!(introspect(&stack, &token, "127.0.0.1", &[]).await.active);
    }
    stack
        .registry
        .client()
        .delete_credential(registry_pb::DeleteCredentialRequest {
            credential_id: id,
            confirm_name: client.credential.name.clone(),
        })
        .await
        .unwrap();
    let answer = introspect(&stack, &token, "127.0.0.1", &[]).await;
    assert!(!answer.active, "{answer:?}");
    if backend == StackBackend::Production {
        assert_inactive(&answer, InactiveReason::Revoked);
    }
    assert_code(issue(&stack, &client, &[]).await, Code::Unauthenticated);
}

on_both_stacks!(with_the_issuer_down_changes_fail_and_change_nothing);
