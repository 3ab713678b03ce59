//! Restarting `latchkey dev` as an operator does: Ctrl-C (SIGTERM) loses
//! neither live tokens nor the last uses, usage and audit events of the
//! moments before it; a crash (SIGKILL) ends the live tokens rather than
//! ever bringing back one revoked since the last clean stop.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::common::{Running, free_ports};

/// Adds the admin's bearer token to each call.
type Bearer =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;
type Registry = CredentialRegistryClient<InterceptedService<Channel, Bearer>>;

/// One `latchkey dev` on a data directory, on free ports.
struct Dev {
    running: Running,
    http: String,
    registry: Registry,
    admin_id: String,
    admin_secret: String,
}

impl Dev {
    async fn start(directory: &Path) -> Self {
        let ports: [u16; 8] = free_ports();
        let flags = [
            "--registry-addr",
            "--issuer-addr",
            "--http-addr",
            "--registry-admin-addr",
            "--registry-internal-addr",
            "--issuer-internal-addr",
            "--api-addr",
            "--issuer-admin-addr",
        ];
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command.current_dir(directory).arg("dev");
        for (flag, port) in flags.iter().zip(ports) {
            command.args([*flag, &format!("127.0.0.1:{port}")]);
        }
        let running = Running(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let http = format!("http://127.0.0.1:{}", ports[2]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let admin_env = directory.join("latchkey-data/admin.env");
        let kept = loop {
            if let Ok(kept) = std::fs::read_to_string(&admin_env)
                && kept.contains("ADMIN_SECRET=")
            {
                break kept;
            }
            assert!(Instant::now() < deadline, "no admin.env after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let value = |name: &str| {
            kept.lines()
                .find_map(|line| line.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_owned()
        };
        let (admin_id, admin_secret) = (value("ADMIN_ID"), value("ADMIN_SECRET"));
        let admin_token = loop {
            if let Ok(token) = token(&http, &admin_id, &admin_secret, "").await {
                break token;
            }
            assert!(Instant::now() < deadline, "no admin token after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let bearer: tonic::metadata::MetadataValue<_> =
            format!("Bearer {admin_token}").parse().unwrap();
        let channel = loop {
            if let Ok(channel) =
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", ports[0]))
                    .unwrap()
                    .connect()
                    .await
            {
                break channel;
            }
            assert!(Instant::now() < deadline, "registry not up after 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let interceptor: Bearer = Box::new(move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
            Ok(request)
        });
        Self {
            running,
            http,
            registry: CredentialRegistryClient::with_interceptor(channel, interceptor),
            admin_id,
            admin_secret,
        }
    }

    /// Whether `token` introspects as active, asked as the admin.
    async fn active(&self, token: &str) -> bool {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/oauth2/introspect", self.http))
            .basic_auth(&self.admin_id, Some(&self.admin_secret))
            .form(&[("token", token), ("client_ip", "127.0.0.1")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["active"].as_bool().unwrap()
    }

    /// Sends `signal` and waits for the process to end; its exit status.
    async fn stop(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.running.0.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.running.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running 30 s after {signal}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A token from `/oauth2/token`, or the refusal's status.
async fn token(http: &str, client_id: &str, secret: &str, scope: &str) -> Result<String, u16> {
    let mut form = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let response = reqwest::Client::new()
        .post(format!("{http}/oauth2/token"))
        .basic_auth(client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .map_err(|_| 0_u16)?;
    if !response.status().is_success() {
        return Err(response.status().as_u16());
    }
    let body: serde_json::Value = response.json().await.unwrap();
    Ok(body["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_keeps_live_tokens_and_the_last_moments_usage_but_a_crash_revives_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let mut dev = Dev::start(directory.path()).await;
    dev.registry
        .create_project(pb::CreateProjectRequest {
            project_id: "shop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let created = dev
        .registry
        .create_credential(pb::CreateCredentialRequest {
            project_id: "shop".into(),
            owner: "orders".into(),
            name: "orders-prod".into(),
            allowed_apis: vec!["inventory.read".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let credential = created.credential.unwrap();
    let (client_id, secret) = (credential.client_id.clone(), created.client_secret);

    // The moments before Ctrl-C: a token issued and used, and a refusal
    // (a scope the credential does not hold), none of them reported yet.
    let live = token(&dev.http, &client_id, &secret, "").await.unwrap();
    assert!(dev.active(&live).await);
    assert_eq!(
        token(&dev.http, &client_id, &secret, "billing.write").await,
        Err(400)
    );
    let status = dev.stop("-TERM").await;
    assert!(status.success(), "{status:?}");
    assert!(
        directory
            .path()
            .join("latchkey-data/tokens.snapshot")
            .exists(),
        "a clean stop saves the live tokens"
    );

    // After the restart the token still works, and the registry has what
    // the issuer sent on its way out.
    let mut dev = Dev::start(directory.path()).await;
    assert!(
        !directory
            .path()
            .join("latchkey-data/tokens.snapshot")
            .exists(),
        "a snapshot is taken back once"
    );
    assert!(dev.active(&live).await, "a live token outlives Ctrl-C");
    let stored = dev
        .registry
        .get_credential(pb::GetCredentialRequest {
            credential_id: credential.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert!(stored.last_used_time.is_some(), "the last use was flushed");
    assert_eq!(stored.last_used_ip, "127.0.0.1");
    let usage = dev
        .registry
        .list_usage(pb::ListUsageRequest {
            project_id: "shop".into(),
            credential_id: credential.id.clone(),
            granularity: pb::UsageGranularity::Day.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let issued: i64 = usage
        .buckets
        .iter()
        .map(|bucket| bucket.tokens_issued)
        .sum();
    assert_eq!(issued, 1, "the issuance was rolled up: {usage:?}");
    let audit = dev
        .registry
        .list_audit_events(pb::ListAuditEventsRequest {
            project_id: "shop".into(),
            credential_id: credential.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        audit.events.iter().any(|event| {
            event.action == pb::AuditAction::IssueToken as i32
                && event.outcome == pb::AuditOutcome::Failed as i32
        }),
        "the refused issuance is in the audit trail: {:?}",
        audit.events
    );

    // Deleted after the restart, then a crash: the snapshot of the clean
    // stop is gone, so nothing brings the deleted credential's token back.
    dev.registry
        .delete_credential(pb::DeleteCredentialRequest {
            credential_id: credential.id.clone(),
            confirm_name: "orders-prod".into(),
        })
        .await
        .unwrap();
    assert!(!dev.active(&live).await);
    let status = dev.stop("-KILL").await;
    assert!(!status.success());

    let dev = Dev::start(directory.path()).await;
    assert!(!dev.active(&live).await, "a crash revives nothing");
    assert_eq!(token(&dev.http, &client_id, &secret, "").await, Err(401));
    // Ctrl-C again: nothing is lost, nothing else is kept.
    let status = dev.stop("-TERM").await;
    assert!(status.success(), "{status:?}");
}
