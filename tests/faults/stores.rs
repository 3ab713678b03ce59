//! The stores failing under load: Redis paused (SIGSTOP, a stalled
//! primary), killed and restarted empty; PostgreSQL cut away from the
//! registry under management load. Users care that no revoked token ever
//! reads active, that a change during the outage fails and changes nothing,
//! that introspection stays up while PostgreSQL is down, and that every
//! part recovers by itself, without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;

use crate::deployment::{CONVERGENCE, Credential, Deployment, Gateway};

/// Introspects `tokens` in a loop until stopped, counting answers; a token
/// listed in `revoked` that ever reads active is counted apart.
struct Load {
    stop: Arc<AtomicBool>,
    answers: Arc<AtomicUsize>,
    errors: Arc<AtomicUsize>,
    revived: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(gateway: Gateway, live: Vec<String>, revoked: Vec<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (answers, errors, revived) = Default::default();
        Self {
            stop: stop.clone(),
            answers: Arc::clone(&answers),
            errors: Arc::clone(&errors),
            revived: Arc::clone(&revived),
            task: tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for token in &live {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        match gateway.active(token).await {
                            Ok(_) => answers.fetch_add(1, Ordering::Relaxed),
                            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                    for token in &revoked {
                        match gateway.active(token).await {
                            Ok(true) => revived.fetch_add(1, Ordering::Relaxed),
                            Ok(false) => answers.fetch_add(1, Ordering::Relaxed),
                            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                }
            }),
        }
    }

    /// Stops the load; (answers, errors, revived).
    async fn finish(self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        (
            self.answers.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
            self.revived.load(Ordering::Relaxed),
        )
    }
}

/// Two credentials of one project, a token each; the second deleted; a
/// gateway introspecting both tokens in a loop (the deleted one's must
/// never read active).
struct Scene {
    live: Credential,
    live_token: String,
    doomed: Credential,
    gateway: Gateway,
    load: Load,
}

impl Scene {
    async fn under_load(deployment: &Deployment) -> Self {
        let live = deployment.credential("orders reader", "svc").await;
        let doomed = deployment.credential("old reader", "svc").await;
        let live_token = deployment
            .issue(0, &live.client_id, &live.secret)
            .await
            .unwrap();
        let doomed_token = deployment
            .issue(0, &doomed.client_id, &doomed.secret)
            .await
            .unwrap();
        let gateway = deployment.gateway(0).await;
        assert!(gateway.active(&doomed_token).await.unwrap());
        deployment
            .management()
            .await
            .delete_credential(deployment.admin(registry_pb::DeleteCredentialRequest {
                credential_id: doomed.id.clone(),
                confirm_name: doomed.name.clone(),
            }))
            .await
            .unwrap();
        let load = Load::start(
            gateway.clone(),
            vec![live_token.clone()],
            vec![doomed_token.clone()],
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        Self {
            live,
            live_token,
            doomed,
            gateway,
            load,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_then_resumed_under_introspection_load() {
    let deployment = Deployment::start(1).await;
    let Scene {
        live,
        live_token,
        doomed: _,
        gateway,
        load,
    } = Scene::under_load(&deployment).await;

    // Redis stalls (SIGSTOP: connections open, no answers). A change now
    // cannot reach it: refused as unavailable within the store's timeout.
    deployment.redis.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut request = deployment.admin(registry_pb::DisableCredentialRequest {
        credential_id: live.id.clone(),
    });
    request.set_timeout(Duration::from_secs(10));
    let refused = deployment
        .management()
        .await
        .disable_credential(request)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Redis answers again: introspection and changes recover by themselves,
    // and the refused change changed nothing.
    deployment.redis.signal("-CONT");
    gateway
        .until(
            &live_token,
            true,
            "introspection did not recover after Redis resumed",
        )
        .await;
    let (answers, errors, revived) = load.finish().await;
    assert_eq!(revived, 0, "a deleted credential's token read active");
    assert!(answers > 0, "the load ran ({errors} errors)");
    let deadline = Instant::now() + CONVERGENCE;
    let state = loop {
        match deployment.try_state(&live).await {
            Ok(state) => break state,
            Err(status) => assert!(Instant::now() < deadline, "{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        state,
        Some(registry_pb::CredentialState::Active),
        "a refused change changes nothing"
    );
    deployment
        .management()
        .await
        .disable_credential(deployment.admin(registry_pb::DisableCredentialRequest {
            credential_id: live.id.clone(),
        }))
        .await
        .unwrap();
    assert!(!gateway.active(&live_token).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_under_load_fails_closed_and_recovers() {
    let mut deployment = Deployment::start(1).await;
    let Scene {
        live,
        live_token,
        doomed,
        gateway,
        load,
    } = Scene::under_load(&deployment).await;

    deployment.redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    deployment.redis.resume().await;
    // The tokens were in Redis only: gone, so inactive (never revived).
    gateway
        .until(&live_token, false, "a token Redis lost still reads active")
        .await;
    let (_, _, revived) = load.finish().await;
    assert_eq!(revived, 0, "a deleted credential's token read active");
    // The deleted credential stays refused; the live one gets new tokens,
    // without restarting the issuer.
    let refused = deployment
        .issue(0, &doomed.client_id, &doomed.secret)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let deadline = Instant::now() + CONVERGENCE;
    let fresh = loop {
        match deployment.issue(0, &live.client_id, &live.secret).await {
            Ok(token) => break token,
            Err(status) => assert!(
                Instant::now() < deadline,
                "no issuance after Redis came back: {status:?}\n{}",
                deployment.logs()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(gateway.active(&fresh).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_under_management_load() {
    let mut deployment = Deployment::start(1).await;
    let live = deployment.credential("orders reader", "svc").await;
    let token = deployment
        .issue(0, &live.client_id, &live.secret)
        .await
        .unwrap();
    let gateway = deployment.gateway(0).await;
    assert!(gateway.active(&token).await.unwrap());

    deployment.postgres.cut().await;
    // Management fails, precisely, and writes nothing ...
    let mut management = deployment.management().await;
    for index in 0..2 {
        let refused = management
            .create_credential(deployment.admin(registry_pb::CreateCredentialRequest {
                project_id: "shop".into(),
                owner: "svc".into(),
                name: format!("during the outage {index}"),
                allowed_apis: vec!["orders.read".into()],
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    }
    // ... while introspection and issuance with a known secret go on.
    assert!(gateway.active(&token).await.unwrap());
    let during = deployment
        .issue(0, &live.client_id, &live.secret)
        .await
        .unwrap();
    assert!(gateway.active(&during).await.unwrap());

    // PostgreSQL back: management recovers without a restart, and none of
    // the refused creates left a row behind.
    deployment.postgres.restore().await;
    let deadline = Instant::now() + CONVERGENCE;
    let listed = loop {
        match management
            .list_credentials(deployment.admin(registry_pb::ListCredentialsRequest {
                project_id: "shop".into(),
                ..Default::default()
            }))
            .await
        {
            Ok(listed) => break listed.into_inner(),
            Err(status) => assert!(
                Instant::now() < deadline,
                "management did not recover: {status:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = listed
        .credentials
        .iter()
        .map(|credential| credential.name.as_str())
        .collect();
    assert!(
        names
            .iter()
            .all(|name| !name.starts_with("during the outage")),
        "{names:?}"
    );
    deployment.credential("after the outage", "svc").await;
}
