//! A production deployment of the real binaries, with a handle on every
//! part a fault can hit: `credential-registry` on PostgreSQL (through a
//! relay that can be cut), one or more `token-issuer` replicas on a Redis
//! of the test's own (which it may pause, kill and restart empty), and
//! relays on both internal links (registry → issuer, issuers → registry).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use latchkey_proto::registry::v1 as registry_pb;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_proto::token::v1 as token_pb;
use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use latchkey_tests::binaries::{
    Running, bootstrap, command, free_ports, log_path, wait_until_serving,
};
use latchkey_tests::{TcpRelay, TestSchema};
use tonic::transport::{Channel, Endpoint};

use crate::private_redis::PrivateRedis;

/// How long a fault may take to heal by itself once it is gone.
pub(crate) const CONVERGENCE: Duration = Duration::from_secs(10);

/// The parts of one deployment.
pub(crate) struct Deployment {
    directory: tempfile::TempDir,
    _schema: TestSchema,
    /// Registry → PostgreSQL.
    pub(crate) postgres: TcpRelay,
    pub(crate) redis: PrivateRedis,
    /// Registry → issuer 0's internal listener.
    pub(crate) to_issuer: TcpRelay,
    /// Issuers → the registry's internal listener.
    pub(crate) to_registry: TcpRelay,
    _registry: Running,
    registry_port: u16,
    pub(crate) issuers: Vec<Issuer>,
    internal_key: String,
    token_hash_key: String,
    pub(crate) admin_id: String,
    pub(crate) admin_secret: String,
    pub(crate) admin_token: String,
}

/// One issuer replica.
pub(crate) struct Issuer {
    process: Option<Running>,
    directory: PathBuf,
    pub(crate) grpc: u16,
    pub(crate) internal: u16,
    http: u16,
}

/// A credential made for a test: its IDs and its secret.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) client_id: String,
    pub(crate) secret: String,
}

impl Deployment {
    /// Starts the deployment with `replicas` issuers and a project `shop`.
    pub(crate) async fn start(replicas: usize) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let schema = TestSchema::create().await;
        let (postgres, database_url) = TcpRelay::in_front_of_postgres().await;
        let redis = PrivateRedis::start().await;
        let internal_key = latchkey_secrets::HashKey::generate().to_hex();
        let token_hash_key = latchkey_secrets::HashKey::generate().to_hex();
        let registry_hash_key = latchkey_secrets::HashKey::generate().to_hex();
        let [registry_port, registry_internal] = free_ports();
        let mut issuers: Vec<Issuer> = (0..replicas)
            .map(|index| {
                let [grpc, internal, http] = free_ports();
                let directory = directory.path().join(format!("issuer-{index}"));
                std::fs::create_dir_all(&directory).unwrap();
                Issuer {
                    process: None,
                    directory,
                    grpc,
                    internal,
                    http,
                }
            })
            .collect();
        let to_issuer = TcpRelay::start(format!("127.0.0.1:{}", issuers[0].internal)).await;
        let to_registry = TcpRelay::start(format!("127.0.0.1:{registry_internal}")).await;

        let registry_dir = directory.path().join("registry");
        std::fs::create_dir_all(&registry_dir).unwrap();
        let configure = |command: &mut Command| {
            command
                .env("DATABASE_URL", &database_url)
                .env("LATCHKEY_DATABASE__SCHEMA", schema.name())
                .env("LATCHKEY_DATABASE__ACQUIRE_TIMEOUT_MS", "1000")
                .env("LATCHKEY_HASH_KEY", &registry_hash_key)
                .env("LATCHKEY_INTERNAL_KEY", &internal_key)
                .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{registry_port}"))
                .env(
                    "LATCHKEY_INTERNAL_LISTEN_ADDR",
                    format!("127.0.0.1:{registry_internal}"),
                )
                .env("LATCHKEY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
                .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
                .env(
                    "LATCHKEY_TOKEN_ISSUER_URL",
                    format!("http://{}", to_issuer.address()),
                );
        };
        let (admin_id, admin_secret) = bootstrap(&registry_dir, "shop", configure);
        let mut registry = command("credential-registry", &registry_dir);
        configure(&mut registry);
        let mut registry = Running(registry.spawn().unwrap());
        wait_until_serving(
            registry_port,
            &mut registry.0,
            &log_path("credential-registry", &registry_dir),
        )
        .await;

        let mut deployment = Self {
            directory,
            _schema: schema,
            postgres,
            redis,
            to_issuer,
            to_registry,
            _registry: registry,
            registry_port,
            issuers: Vec::new(),
            internal_key,
            token_hash_key,
            admin_id,
            admin_secret,
            admin_token: String::new(),
        };
        for issuer in &mut issuers {
            deployment.spawn_issuer(issuer).await;
        }
        deployment.issuers = issuers;
        let admin_token = deployment
            .issue(
                0,
                &deployment.admin_id.clone(),
                &deployment.admin_secret.clone(),
            )
            .await
            .unwrap();
        deployment.admin_token = admin_token;
        deployment
    }

    async fn spawn_issuer(&self, issuer: &mut Issuer) {
        let mut process = command("token-issuer", &issuer.directory);
        process
            .env("LATCHKEY_REDIS__URL", self.redis.url())
            .env("LATCHKEY_REDIS__RESPONSE_TIMEOUT_MS", "500")
            .env("LATCHKEY_HASH_KEY", &self.token_hash_key)
            .env("LATCHKEY_INTERNAL_KEY", &self.internal_key)
            .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{}", issuer.grpc))
            .env(
                "LATCHKEY_INTERNAL_LISTEN_ADDR",
                format!("127.0.0.1:{}", issuer.internal),
            )
            .env(
                "LATCHKEY_HTTP_LISTEN_ADDR",
                format!("127.0.0.1:{}", issuer.http),
            )
            .env(
                "LATCHKEY_REGISTRY_URL",
                format!("http://{}", self.to_registry.address()),
            );
        let mut process = Running(process.spawn().unwrap());
        wait_until_serving(
            issuer.grpc,
            &mut process.0,
            &log_path("token-issuer", &issuer.directory),
        )
        .await;
        issuer.process = Some(process);
    }

    /// Kills issuer `index` at once (SIGKILL: no drain, no last flush).
    pub(crate) fn kill_issuer(&mut self, index: usize) {
        if let Some(mut process) = self.issuers[index].process.take() {
            process.kill();
        }
    }

    /// Starts issuer `index` again on its ports.
    pub(crate) async fn restart_issuer(&mut self, index: usize) {
        let mut issuers = std::mem::take(&mut self.issuers);
        self.spawn_issuer(&mut issuers[index]).await;
        self.issuers = issuers;
    }

    /// The logs of every process, for a failure message.
    pub(crate) fn logs(&self) -> String {
        let mut logs = std::fs::read_to_string(log_path(
            "credential-registry",
            &self.directory.path().join("registry"),
        ))
        .unwrap_or_default();
        for issuer in &self.issuers {
            logs.push_str(
                &std::fs::read_to_string(log_path("token-issuer", &issuer.directory))
                    .unwrap_or_default(),
            );
        }
        logs
    }

    /// The registry's management API, as the admin.
    pub(crate) async fn management(&self) -> CredentialRegistryClient<Channel> {
        CredentialRegistryClient::new(channel(self.registry_port).await)
    }

    /// A management request carrying the admin's token.
    pub(crate) fn admin<T>(&self, message: T) -> tonic::Request<T> {
        admin_request(message, &self.admin_token)
    }

    /// Creates a credential in `shop` owned by `owner`.
    pub(crate) async fn credential(&self, name: &str, owner: &str) -> Credential {
        let created = self
            .management()
            .await
            .create_credential(self.admin(registry_pb::CreateCredentialRequest {
                project_id: "shop".into(),
                owner: owner.into(),
                name: name.into(),
                allowed_apis: vec!["orders.read".into()],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let credential = created.credential.unwrap();
        Credential {
            id: credential.id,
            name: credential.name,
            client_id: credential.client_id,
            secret: created.client_secret,
        }
    }

    /// A token from replica `index`, or the refusal.
    pub(crate) async fn issue(
        &self,
        index: usize,
        client_id: &str,
        client_secret: &str,
    ) -> Result<String, tonic::Status> {
        let mut tokens = TokenServiceClient::new(
            Endpoint::from_shared(format!("http://127.0.0.1:{}", self.issuers[index].grpc))
                .unwrap()
                .connect_timeout(Duration::from_secs(2))
                .connect()
                .await
                .map_err(|error| tonic::Status::unavailable(error.to_string()))?,
        );
        Ok(tokens
            .issue_token(token_pb::IssueTokenRequest {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                scopes: Vec::new(),
            })
            .await?
            .into_inner()
            .access_token)
    }

    /// A gateway's introspection client on replica `index`.
    pub(crate) async fn gateway(&self, index: usize) -> Gateway {
        use base64::Engine;
        Gateway {
            client: IntrospectionClient::new(channel(self.issuers[index].grpc).await),
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", self.admin_id, self.admin_secret))
            ),
        }
    }

    /// Whether the registry still holds `credential`, and in which state;
    /// panics when the registry cannot tell.
    pub(crate) async fn state(
        &self,
        credential: &Credential,
    ) -> Option<registry_pb::CredentialState> {
        self.try_state(credential)
            .await
            .unwrap_or_else(|status| panic!("cannot read the credential: {status:?}"))
    }

    /// [`Deployment::state`], or the registry's error.
    pub(crate) async fn try_state(
        &self,
        credential: &Credential,
    ) -> Result<Option<registry_pb::CredentialState>, tonic::Status> {
        match self
            .management()
            .await
            .get_credential(self.admin(registry_pb::GetCredentialRequest {
                credential_id: credential.id.clone(),
            }))
            .await
        {
            Ok(found) => Ok(Some(found.into_inner().credential.unwrap().state())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }
}

/// A gateway asking one replica about tokens.
#[derive(Clone)]
pub(crate) struct Gateway {
    client: IntrospectionClient<Channel>,
    authorization: String,
}

impl Gateway {
    /// The introspection answer: active or not, or the error.
    pub(crate) async fn active(&self, token: &str) -> Result<bool, tonic::Status> {
        let mut request = tonic::Request::new(token_pb::IntrospectRequest {
            token: token.into(),
            client_ip: "127.0.0.1".into(),
            required_scopes: Vec::new(),
        });
        request
            .metadata_mut()
            .insert("authorization", self.authorization.parse().unwrap());
        request.set_timeout(Duration::from_secs(3));
        Ok(self
            .client
            .clone()
            .introspect(request)
            .await?
            .into_inner()
            .active)
    }

    /// Waits (at most [`CONVERGENCE`]) until `token` reads `expected`;
    /// panics with `why` otherwise.
    pub(crate) async fn until(&self, token: &str, expected: bool, why: &str) {
        let deadline = Instant::now() + CONVERGENCE;
        loop {
            if self.active(token).await.ok() == Some(expected) {
                return;
            }
            assert!(Instant::now() < deadline, "{why}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A management request carrying `token`.
pub(crate) fn admin_request<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn channel(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}
