//! Rule 2: delete requires the credential's name as confirmation; a wrong
//! name deletes nothing.

use latchkey_proto::registry::v1 as pb;
use latchkey_tests::{Backend, Stack};
use tonic::Code;

use crate::support::{assert_refused, create_credential, create_project, list_all, new_credential};

async fn a_wrong_confirmation_deletes_nothing(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project(&mut client, "acme").await;
    let (credential, secret) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "billing".into(),
            ..new_credential("acme", "alice")
        },
    )
    .await;

    for wrong in ["Billing", "billing ", "billin", "other"] {
        let refused = client
            .delete_credential(pb::DeleteCredentialRequest {
                credential_id: credential.id.clone(),
                confirm_name: wrong.into(),
            })
            .await;
        assert_refused(refused, Code::FailedPrecondition, "confirm_name");
    }
    let empty = client
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: credential.id.clone(),
            confirm_name: String::new(),
        })
        .await;
    assert_refused(empty, Code::InvalidArgument, "confirm_name");

    assert_eq!(
        list_all(&mut client, "acme").await,
        std::slice::from_ref(&credential)
    );
    authentication
        .authenticate(pb::AuthenticateRequest {
            client_id: credential.client_id.clone(),
            client_secret: secret,
            client_ip: "10.0.0.1".into(),
        })
        .await
        .expect("the credential still works");
}

async fn the_right_confirmation_deletes_and_the_secret_stops_working(backend: Backend) {
    let stack = Stack::for_registry(backend).await;
    let registry = &stack.registry;
    let mut client = registry.client();
    let mut authentication = registry.authentication_client();
    create_project(&mut client, "acme").await;
    let (credential, secret) = create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "billing".into(),
            ..new_credential("acme", "alice")
        },
    )
    .await;
    let (survivor, _) = create_credential(&mut client, new_credential("acme", "bob")).await;

    client
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: credential.id.clone(),
            confirm_name: "billing".into(),
        })
        .await
        .expect("delete");

    let gone = client
        .get_credential(pb::GetCredentialRequest {
            credential_id: credential.id.clone(),
        })
        .await;
    assert_refused(gone, Code::NotFound, &credential.id);
    assert_eq!(list_all(&mut client, "acme").await, [survivor]);
    let refused = authentication
        .authenticate(pb::AuthenticateRequest {
            client_id: credential.client_id.clone(),
            client_secret: secret,
            client_ip: "10.0.0.1".into(),
        })
        .await;
    assert_refused(refused, Code::Unauthenticated, "invalid client");

    let again = client
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: credential.id.clone(),
            confirm_name: "billing".into(),
        })
        .await;
    assert_refused(again, Code::NotFound, "credential");

    // The name is free again.
    create_credential(
        &mut client,
        pb::CreateCredentialRequest {
            name: "billing".into(),
            ..new_credential("acme", "alice")
        },
    )
    .await;
}

on_both_backends!(
    a_wrong_confirmation_deletes_nothing,
    the_right_confirmation_deletes_and_the_secret_stops_working,
);
