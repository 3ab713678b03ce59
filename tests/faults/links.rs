//! The links between the services failing, and more than one issuer:
//! registry ↔ issuer partitions in each direction, and two issuer replicas
//! on one Redis, where a revocation sent to one must end the token on the
//! other at once.

use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;

use crate::deployment::{CONVERGENCE, Deployment};

/// Longest a replica may keep answering from its cache after another
/// replica applied a revocation (a loaded CI machine included).
const INVALIDATION_BOUND: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_cut_off_from_the_issuer_changes_nothing_then_heals() {
    let mut deployment = Deployment::start(1).await;
    let credential = deployment.credential("orders reader", "svc").await;
    let token = deployment
        .issue(0, &credential.client_id, &credential.secret)
        .await
        .unwrap();
    let gateway = deployment.gateway(0).await;

    // Registry → issuer cut: a delete cannot reach the token side, so it
    // fails and the credential and its token stay as they were.
    deployment.to_issuer.cut().await;
    let refused = deployment
        .management()
        .await
        .delete_credential(deployment.admin(registry_pb::DeleteCredentialRequest {
            credential_id: credential.id.clone(),
            confirm_name: credential.name.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(gateway.active(&token).await.unwrap());

    // Healed (the registry checks management tokens at the issuer, so it
    // reads nothing while cut off): nothing was deleted, and the same
    // delete now goes through and ends the token at once.
    deployment.to_issuer.restore().await;
    let deadline = Instant::now() + CONVERGENCE;
    loop {
        match deployment.try_state(&credential).await {
            Ok(state) => {
                assert!(state.is_some(), "deleted though the delete failed");
                break;
            }
            Err(status) => assert!(Instant::now() < deadline, "{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + CONVERGENCE;
    while let Err(status) = deployment
        .management()
        .await
        .delete_credential(deployment.admin(registry_pb::DeleteCredentialRequest {
            credential_id: credential.id.clone(),
            confirm_name: credential.name.clone(),
        }))
        .await
    {
        assert!(
            Instant::now() < deadline,
            "the delete still fails after the link healed: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!gateway.active(&token).await.unwrap());
    let refused = deployment
        .issue(0, &credential.client_id, &credential.secret)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_cut_off_from_the_registry_keeps_introspecting_then_heals() {
    let mut deployment = Deployment::start(1).await;
    let known = deployment.credential("orders reader", "svc").await;
    let token = deployment
        .issue(0, &known.client_id, &known.secret)
        .await
        .unwrap();
    let gateway = deployment.gateway(0).await;
    assert!(gateway.active(&token).await.unwrap());
    let stranger = deployment.credential("never used", "svc").await;

    // Issuer → registry cut: gateways known to the issuer keep their
    // answers; a secret the issuer never verified cannot be checked, so it
    // is refused as unavailable (never let in unverified).
    deployment.to_registry.cut().await;
    assert!(gateway.active(&token).await.unwrap());
    let refused = deployment
        .issue(0, &stranger.client_id, &stranger.secret)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");

    // Healed: the stranger gets a token without restarting anything.
    deployment.to_registry.restore().await;
    let deadline = Instant::now() + CONVERGENCE;
    loop {
        match deployment
            .issue(0, &stranger.client_id, &stranger.secret)
            .await
        {
            Ok(token) => {
                assert!(gateway.active(&token).await.unwrap());
                break;
            }
            Err(status) => assert!(
                Instant::now() < deadline,
                "no issuance after the link healed: {status:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_agree_on_a_revocation_at_once() {
    let deployment = Deployment::start(2).await;
    let credential = deployment.credential("orders reader", "svc").await;
    // Issued on one replica, introspected (and cached) on both.
    let token = deployment
        .issue(1, &credential.client_id, &credential.secret)
        .await
        .unwrap();
    let (first, second) = (deployment.gateway(0).await, deployment.gateway(1).await);
    for _ in 0..3 {
        assert!(first.active(&token).await.unwrap());
        assert!(second.active(&token).await.unwrap());
    }

    // The registry sends the disable to replica 0; replica 1 learns it
    // from Redis (its exact cache is invalidated by CLIENT TRACKING).
    deployment
        .management()
        .await
        .disable_credential(deployment.admin(registry_pb::DisableCredentialRequest {
            credential_id: credential.id.clone(),
        }))
        .await
        .unwrap();
    // The invalidation travels asynchronously: bounded, and short (the
    // design's "within the measured invalidation delay"; milliseconds here).
    let disabled_at = Instant::now();
    for (replica, gateway) in [(0, &first), (1, &second)] {
        while gateway.active(&token).await.unwrap() {
            assert!(
                disabled_at.elapsed() < INVALIDATION_BOUND,
                "replica {replica} still says active {INVALIDATION_BOUND:?} after the disable"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for replica in [0, 1] {
        let refused = deployment
            .issue(replica, &credential.client_id, &credential.secret)
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::Unauthenticated,
            "replica {replica}"
        );
    }
}
