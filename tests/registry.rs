//! The credential registry served in-process on an ephemeral port.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use credential_registry::{RegistryConfig, ServeError, serve};
use latchkey_proto::registry::v1::client_authentication_client::ClientAuthenticationClient;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_registry_store::DatabaseConfig;
use latchkey_runtime::Shutdown;
use latchkey_secrets::HashKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::postgres::{TestSchema, postgres_url};

/// Which database the registry runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh schema in the test PostgreSQL.
    Postgres,
}

/// A running registry; stopped when dropped.
#[derive(Debug)]
pub struct RegistryFixture {
    address: SocketAddr,
    channel: Channel,
    hash_key: HashKey,
    database: DatabaseConfig,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), ServeError>>,
    // Dropped after the server stops, in field order.
    _schema: Option<TestSchema>,
    _data_dir: tempfile::TempDir,
}

impl RegistryFixture {
    /// Starts a registry with the default configuration on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a registry on `backend` after `customize` adjusts the config.
    pub async fn start_with(backend: Backend, customize: impl FnOnce(&mut RegistryConfig)) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let hash_key = HashKey::generate();
        let (database, schema) = match backend {
            Backend::Sqlite => (
                DatabaseConfig {
                    url: format!(
                        "sqlite://{}/registry.db?mode=rwc",
                        data_dir.path().display()
                    ),
                    ..DatabaseConfig::default()
                },
                None,
            ),
            Backend::Postgres => {
                let schema = TestSchema::create().await;
                (
                    DatabaseConfig {
                        url: postgres_url(),
                        max_connections: 8,
                        schema: Some(schema.name().to_owned()),
                        ..DatabaseConfig::default()
                    },
                    Some(schema),
                )
            }
        };
        let mut config = RegistryConfig {
            data_dir: data_dir.path().to_path_buf(),
            database: database.clone(),
            hash_key: Some(hash_key.to_hex()),
            shutdown_grace_seconds: 2,
            // Registry-only tests run without a token issuer.
            token_issuer_url: String::new(),
            ..RegistryConfig::default()
        };
        customize(&mut config);
        config.validate().expect("test configuration is valid");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(serve(config, listener, shutdown.clone()));
        let channel = Endpoint::from_shared(format!("http://{address}"))
            .expect("endpoint")
            .connect_lazy();
        let fixture = Self {
            address,
            channel,
            hash_key,
            database,
            shutdown,
            task,
            _schema: schema,
            _data_dir: data_dir,
        };
        fixture.wait_until_serving().await;
        fixture
    }

    /// Polls the health service until it answers SERVING. Panics with the
    /// server's own error if it stopped, or after 30 s.
    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut health = HealthClient::new(self.channel.clone());
        loop {
            if self.task.is_finished() {
                panic!("the registry stopped during start-up; see its log above");
            }
            let request = HealthCheckRequest {
                service: String::new(),
            };
            if let Ok(response) = health.check(request).await
                && response.get_ref().status == 1
            {
                return;
            }
            assert!(Instant::now() < deadline, "registry not serving after 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The gRPC address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A channel to the registry.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A `CredentialRegistry` client.
    pub fn client(&self) -> CredentialRegistryClient<Channel> {
        CredentialRegistryClient::new(self.channel.clone())
    }

    /// A `ClientAuthentication` client.
    pub fn authentication_client(&self) -> ClientAuthenticationClient<Channel> {
        ClientAuthenticationClient::new(self.channel.clone())
    }

    /// The key the registry hashes secrets with.
    pub fn hash_key(&self) -> &HashKey {
        &self.hash_key
    }

    /// Where the registry keeps its data, for tests that inspect it.
    pub fn database(&self) -> &DatabaseConfig {
        &self.database
    }

    /// Fires the shutdown trigger and waits for the server to end.
    pub async fn stop(&mut self) -> Result<(), ServeError> {
        self.shutdown.trigger();
        (&mut self.task).await.expect("server task")
    }
}

impl Drop for RegistryFixture {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.task.abort();
    }
}
