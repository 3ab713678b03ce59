//! A registry process killed (SIGKILL) between applying a change on the
//! token side and committing it (DESIGN.md rule 3, issue 12's last hole):
//! the enable reached the issuer, the database never committed it, and no
//! process is left that remembers. The durable note the registry wrote
//! before sending the change makes the next registry process settle the
//! token side to what was committed within seconds of starting: no token
//! stays live for a credential whose record says disabled.
//!
//! Real binaries: `credential-registry` on SQLite in a temporary directory,
//! `token-issuer` with its in-process store, and a relay between them that
//! swallows the issuer's answer so the change is caught in flight.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use latchkey_tests::TcpRelay;
use latchkey_tests::binaries::{
    Running, bootstrap, command, free_ports, log_path, wait_until_serving,
};
use tonic::transport::{Channel, Endpoint};

/// How long the restarted registry may take to settle the change.
const CONVERGENCE: Duration = Duration::from_secs(10);

async fn channel(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The registry's configuration: its ports, the internal key, the issuer
/// behind `relay_port`. The data directory is `directory`'s default.
struct RegistryPorts {
    public: u16,
    internal: u16,
    relay: u16,
}

fn registry_command(directory: &Path, ports: &RegistryPorts, internal_key: &str) -> Command {
    let mut registry = command("credential-registry", directory);
    registry
        .env(
            "LATCHKEY_LISTEN_ADDR",
            format!("127.0.0.1:{}", ports.public),
        )
        .env(
            "LATCHKEY_INTERNAL_LISTEN_ADDR",
            format!("127.0.0.1:{}", ports.internal),
        )
        .env("LATCHKEY_INTERNAL_KEY", internal_key)
        .env("LATCHKEY_METRICS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "LATCHKEY_TOKEN_ISSUER_URL",
            format!("http://127.0.0.1:{}", ports.relay),
        );
    registry
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_killed_mid_enable_leaves_no_token_live() {
    let directory = tempfile::tempdir().unwrap();
    let (registry_dir, issuer_dir) = (directory.path().join("r"), directory.path().join("i"));
    std::fs::create_dir_all(&registry_dir).unwrap();
    std::fs::create_dir_all(&issuer_dir).unwrap();
    let internal_key = latchkey_secrets::HashKey::generate().to_hex();
    let [issuer_port, issuer_internal, http_port, public, internal] = free_ports();
    let mut relay = TcpRelay::start(format!("127.0.0.1:{issuer_internal}")).await;
    let ports = RegistryPorts {
        public,
        internal,
        relay: relay.address().port(),
    };
    let (admin_id, admin_secret) = bootstrap(&registry_dir, "ops", |_| {});
    let registry_log = log_path("credential-registry", &registry_dir);
    let mut registry = Running(
        registry_command(&registry_dir, &ports, &internal_key)
            .spawn()
            .unwrap(),
    );
    let mut issuer = command("token-issuer", &issuer_dir);
    issuer
        .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{issuer_port}"))
        .env(
            "LATCHKEY_INTERNAL_LISTEN_ADDR",
            format!("127.0.0.1:{issuer_internal}"),
        )
        .env("LATCHKEY_INTERNAL_KEY", &internal_key)
        .env(
            "LATCHKEY_HTTP_LISTEN_ADDR",
            format!("127.0.0.1:{http_port}"),
        )
        .env(
            "LATCHKEY_REGISTRY_URL",
            format!("http://127.0.0.1:{}", ports.internal),
        );
    let mut issuer = Running(issuer.spawn().unwrap());
    wait_until_serving(ports.public, &mut registry.0, &registry_log).await;
    wait_until_serving(
        issuer_port,
        &mut issuer.0,
        &log_path("token-issuer", &issuer_dir),
    )
    .await;

    let tokens = TokenServiceClient::new(channel(issuer_port).await);
    let issue = |client_id: String, client_secret: String| {
        let mut tokens = tokens.clone();
        async move {
            tokens
                .issue_token(token_pb::IssueTokenRequest {
                    client_id,
                    client_secret,
                    scopes: Vec::new(),
                })
                .await
        }
    };
    let admin_token = issue(admin_id.clone(), admin_secret.clone())
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let management = || async { CredentialRegistryClient::new(channel(ports.public).await) };
    let created = management()
        .await
        .create_credential(with_bearer(
            registry_pb::CreateCredentialRequest {
                project_id: "ops".into(),
                owner: "svc".into(),
                name: "orders reader".into(),
                allowed_apis: vec!["orders.read".into()],
                ..Default::default()
            },
            &admin_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let credential = created.credential.unwrap();
    let token = issue(credential.client_id.clone(), created.client_secret.clone())
        .await
        .unwrap()
        .into_inner()
        .access_token;
    // Introspected as a gateway (the admin holds tokens:introspect).
    let gateway = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{admin_id}:{admin_secret}"))
        )
    };
    let introspection = IntrospectionClient::new(channel(issuer_port).await);
    let active = || {
        let mut introspection = introspection.clone();
        let gateway = gateway.clone();
        let token = token.clone();
        async move {
            let mut request = tonic::Request::new(token_pb::IntrospectRequest {
                token,
                client_ip: "127.0.0.1".into(),
                required_scopes: Vec::new(),
            });
            request
                .metadata_mut()
                .insert("authorization", gateway.parse().unwrap());
            introspection
                .introspect(request)
                .await
                .unwrap()
                .into_inner()
                .active
        }
    };
    assert!(active().await);
    management()
        .await
        .disable_credential(with_bearer(
            registry_pb::DisableCredentialRequest {
                credential_id: credential.id.clone(),
            },
            &admin_token,
        ))
        .await
        .unwrap();
    assert!(!active().await, "disabled");

    // The enable reaches the issuer; its answer never comes back, and the
    // registry is killed while it waits.
    relay.swallow_answers_after(credential.id.as_bytes());
    let enabling = {
        let mut management = management().await;
        let request = with_bearer(
            registry_pb::EnableCredentialRequest {
                credential_id: credential.id.clone(),
            },
            &admin_token,
        );
        tokio::spawn(async move { management.enable_credential(request).await })
    };
    let deadline = Instant::now() + Duration::from_secs(4);
    while !active().await {
        assert!(
            Instant::now() < deadline,
            "the issuer never applied the enable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    registry.kill();
    assert!(
        enabling.await.unwrap().is_err(),
        "the enable never answered OK"
    );
    relay.stop_swallowing().await;
    // The hole this test is about: with no registry, the token side stays
    // wider than the record.
    assert!(active().await);

    // A new registry process over the same database settles it.
    let mut registry = Running(
        registry_command(&registry_dir, &ports, &internal_key)
            .spawn()
            .unwrap(),
    );
    wait_until_serving(ports.public, &mut registry.0, &registry_log).await;
    let deadline = Instant::now() + CONVERGENCE;
    while active().await {
        assert!(
            Instant::now() < deadline,
            "the token is still live {CONVERGENCE:?} after the registry restarted:\n{}",
            std::fs::read_to_string(&registry_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored = management()
        .await
        .get_credential(with_bearer(
            registry_pb::GetCredentialRequest {
                credential_id: credential.id.clone(),
            },
            &admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .credential
        .unwrap();
    assert_eq!(stored.state(), registry_pb::CredentialState::Disabled);
    let refused = issue(credential.client_id.clone(), created.client_secret.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    // And the registry's changes reach the token side again.
    management()
        .await
        .enable_credential(with_bearer(
            registry_pb::EnableCredentialRequest {
                credential_id: credential.id.clone(),
            },
            &admin_token,
        ))
        .await
        .unwrap();
    assert!(active().await, "enabled for real");
}
