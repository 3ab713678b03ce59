//! The issuer killed (SIGKILL) while a change is in flight: the registry
//! sent delete / disable / rotate-with-revoke / member removal, the issuer
//! took it, and died before answering. What users care about: the change
//! is not reported done, no token of the credential reads active while the
//! registry says it is gone or disabled, the credential is not stuck once
//! the issuer is back (it converges by itself), and the change, retried,
//! takes effect.

use latchkey_proto::registry::v1 as registry_pb;
use registry_pb::CredentialState;

use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use tonic::transport::Channel;

use crate::deployment::{Credential, Deployment, admin_request};

/// The changes that must revoke a credential's tokens.
#[derive(Debug, Clone, Copy)]
enum Change {
    Delete,
    Disable,
    RotateRevoking,
    RemoveMember,
}

impl Change {
    /// Sends the change; whether the registry reported it done.
    async fn send(
        self,
        deployment: &Deployment,
        credential: &Credential,
    ) -> Result<(), tonic::Status> {
        self.send_with(
            deployment.management().await,
            deployment.admin_token.clone(),
            credential.clone(),
        )
        .await
    }

    /// [`Change::send`] with owned parts, for a task of its own.
    async fn send_with(
        self,
        mut management: CredentialRegistryClient<Channel>,
        admin_token: String,
        credential: Credential,
    ) -> Result<(), tonic::Status> {
        let id = credential.id.clone();
        match self {
            Self::Delete => management
                .delete_credential(admin_request(
                    registry_pb::DeleteCredentialRequest {
                        credential_id: id,
                        confirm_name: credential.name.clone(),
                    },
                    &admin_token,
                ))
                .await
                .map(drop),
            Self::Disable => management
                .disable_credential(admin_request(
                    registry_pb::DisableCredentialRequest { credential_id: id },
                    &admin_token,
                ))
                .await
                .map(drop),
            Self::RotateRevoking => management
                .rotate_credential_secret(admin_request(
                    registry_pb::RotateCredentialSecretRequest {
                        credential_id: id,
                        grace_period_seconds: 0,
                        revoke_tokens: true,
                    },
                    &admin_token,
                ))
                .await
                .map(drop),
            Self::RemoveMember => management
                .remove_member(admin_request(
                    registry_pb::RemoveMemberRequest {
                        project_id: "shop".into(),
                        user_id: "alice".into(),
                    },
                    &admin_token,
                ))
                .await
                .map(drop),
        }
    }

    /// Whether the registry's record shows the change applied.
    async fn committed(self, deployment: &Deployment, credential: &Credential) -> bool {
        let state = deployment.state(credential).await;
        match self {
            Self::Delete => state.is_none(),
            Self::Disable => state == Some(CredentialState::Disabled),
            // A removal leaves the credential's own state as it was; the
            // member is what changes.
            Self::RemoveMember => {
                let member = deployment
                    .management()
                    .await
                    .get_member(deployment.admin(registry_pb::GetMemberRequest {
                        project_id: "shop".into(),
                        user_id: "alice".into(),
                    }))
                    .await
                    .unwrap()
                    .into_inner()
                    .member
                    .unwrap();
                member.state() == registry_pb::MemberState::Removed
            }
            Self::RotateRevoking => deployment
                .issue(0, &credential.client_id, &credential.secret)
                .await
                .is_err_and(|status| status.code() == tonic::Code::Unauthenticated),
        }
    }
}

async fn issuer_killed_mid(change: Change) {
    let mut deployment = Deployment::start(1).await;
    if matches!(change, Change::RemoveMember) {
        deployment
            .management()
            .await
            .create_member(deployment.admin(registry_pb::CreateMemberRequest {
                project_id: "shop".into(),
                user_id: "alice".into(),
                api_ceiling: vec!["orders.read".into()],
                ..Default::default()
            }))
            .await
            .unwrap();
    }
    let credential = deployment.credential("orders reader", "alice").await;
    let token = deployment
        .issue(0, &credential.client_id, &credential.secret)
        .await
        .unwrap();
    let gateway = deployment.gateway(0).await;
    assert_eq!(gateway.active(&token).await.unwrap(), true);

    // The change reaches the issuer; its answer never comes back, and the
    // issuer dies while the registry waits for it.
    deployment
        .to_issuer
        .swallow_answers_after(credential.id.as_bytes());
    let sent = tokio::spawn(change.send_with(
        deployment.management().await,
        deployment.admin_token.clone(),
        credential.clone(),
    ));
    // Long enough for the request to have passed the relay, well within
    // the registry's wait for the answer.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    deployment.kill_issuer(0);
    let outcome = sent.await.unwrap();
    deployment.to_issuer.stop_swallowing().await;
    assert!(
        outcome.is_err(),
        "{change:?} was reported done without an answer from the issuer"
    );

    deployment.restart_issuer(0).await;
    let gateway = deployment.gateway(0).await;
    // Whatever the registry's record says, the token side never reads
    // wider than it: a token of a credential the record calls gone or
    // disabled is never active.
    if change.committed(&deployment, &credential).await {
        assert_eq!(gateway.active(&token).await.unwrap(), false, "{change:?}");
    }
    // Not stuck: the change, sent again, applies (or was already in); the
    // token ends and the secret is refused.
    let deadline = std::time::Instant::now() + crate::deployment::CONVERGENCE;
    while !change.committed(&deployment, &credential).await {
        match change.send(&deployment, &credential).await {
            Ok(()) => break,
            Err(status) => assert!(
                std::time::Instant::now() < deadline,
                "{change:?} still refused after the issuer came back: {status:?}\n{}",
                deployment.logs()
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        change.committed(&deployment, &credential).await,
        "{change:?}"
    );
    assert_eq!(gateway.active(&token).await.unwrap(), false, "{change:?}");
    let refused = deployment
        .issue(0, &credential.client_id, &credential.secret)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{change:?}");
    // And the registry's later changes still reach the token side: another
    // credential of the project issues and is revoked as usual.
    let other = deployment.credential("billing reader", "bob").await;
    let other_token = deployment
        .issue(0, &other.client_id, &other.secret)
        .await
        .unwrap();
    assert_eq!(gateway.active(&other_token).await.unwrap(), true);
    Change::Disable.send(&deployment, &other).await.unwrap();
    assert_eq!(gateway.active(&other_token).await.unwrap(), false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_killed_mid_delete() {
    issuer_killed_mid(Change::Delete).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_killed_mid_disable() {
    issuer_killed_mid(Change::Disable).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_killed_mid_rotation_that_revokes() {
    issuer_killed_mid(Change::RotateRevoking).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_killed_mid_member_removal() {
    issuer_killed_mid(Change::RemoveMember).await;
}
