//! Finding 14: a refused client authentication is audited with the
//! credential and project the client ID names, and the registry's reason.

use std::sync::Arc;

use crate::audit::{AuditQueue, TokenAction};
use crate::testing::{Answer, CLIENT_ID, CREDENTIAL_ID, Fixture};

use super::{request, right};

fn audited() -> (Fixture, Arc<AuditQueue>) {
    let mut fixture = Fixture::new();
    let queue = Arc::new(AuditQueue::default());
    fixture.tokens = fixture.tokens.with_audit(queue.clone());
    (fixture, queue)
}

#[tokio::test]
async fn a_refusal_names_its_credential_project_and_reason() {
    let (fixture, queue) = audited();
    fixture
        .tokens
        .issuer()
        .issue(request("lks_wrong", "10.0.0.1"))
        .await
        .unwrap_err();
    *fixture.registry.answer.lock().unwrap() = Answer::Refused("disabled");
    fixture.tokens.issuer().issue(right()).await.unwrap_err();

    let events = queue.take(10);
    let seen: Vec<_> = events
        .iter()
        .map(|event| {
            (
                event.action,
                event.succeeded,
                event.credential_id.as_str(),
                event.project_id.as_str(),
                event.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                TokenAction::Authenticate,
                false,
                CREDENTIAL_ID,
                "acme",
                "wrong_secret"
            ),
            (
                TokenAction::Authenticate,
                false,
                CREDENTIAL_ID,
                "acme",
                "disabled"
            ),
        ]
    );
    assert!(events.iter().all(|event| !event.detail.contains("lks_")));
}

#[tokio::test]
async fn an_unknown_client_id_names_no_credential() {
    let (fixture, queue) = audited();
    let mut unknown = right();
    unknown.client_id = "lkc_4vJq0cZbW3mKx9TnR2pLs8aQ1fYhD7".to_owned();
    fixture.tokens.issuer().issue(unknown).await.unwrap_err();
    let events = queue.take(10);
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.action, TokenAction::Authenticate);
    assert_eq!(
        (event.credential_id.as_str(), event.project_id.as_str()),
        ("", "")
    );
    assert_eq!(event.detail, "unknown_client");
    assert_ne!(event.actor, CLIENT_ID);
}

#[tokio::test]
async fn an_introspection_caller_refused_by_the_registry_is_audited_too() {
    let (fixture, queue) = audited();
    fixture
        .tokens
        .introspector()
        .authorize_introspection_caller(
            crate::caller_auth::CallerCredentials::Client {
                client_id: CLIENT_ID,
                client_secret: "lks_wrong",
            },
            "10.0.0.1".parse().unwrap(),
        )
        .await
        .unwrap_err();
    let events = queue.take(10);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].credential_id.as_str(), events[0].detail.as_str()),
        (CREDENTIAL_ID, "wrong_secret")
    );
}
