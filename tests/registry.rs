//! The credential registry served in-process on an ephemeral port.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use credential_registry::{Listeners, RegistryConfig, ServeError, serve};
use latchkey_proto::registry::v1::client_authentication_client::ClientAuthenticationClient;
use latchkey_proto::registry::v1::credential_registry_client::CredentialRegistryClient;
use latchkey_registry_store::DatabaseConfig;
use latchkey_runtime::{ClientTls, Shutdown, TracedChannel};
use latchkey_secrets::HashKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
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

/// Adds `authorization: Bearer <token>` to every call, as a management
/// client does.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// The interceptor for `token` (none: calls go without a token).
    pub fn new(token: Option<&str>) -> Self {
        Self(token.map(|token| format!("Bearer {token}").parse().expect("ASCII token")))
    }

    /// Sends `value` as the whole `authorization` header (e.g. Basic).
    pub fn raw(value: Option<MetadataValue<Ascii>>) -> Self {
        Self(value)
    }
}

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A `CredentialRegistry` client that presents a bearer token.
pub type ManagementClient = CredentialRegistryClient<InterceptedService<Channel, BearerToken>>;

/// A running registry; stopped when dropped.
#[derive(Debug)]
pub struct RegistryFixture {
    address: SocketAddr,
    internal_address: SocketAddr,
    admin_address: SocketAddr,
    http_address: SocketAddr,
    channel: Channel,
    internal_channel: TracedChannel,
    unsigned_internal_channel: Channel,
    hash_key: HashKey,
    database: DatabaseConfig,
    config: RegistryConfig,
    admin_token: Option<String>,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), ServeError>>,
    // Dropped after the server stops, in field order.
    _schema: Option<TestSchema>,
    _data_dir: tempfile::TempDir,
}

impl RegistryFixture {
    /// Starts a registry on `backend` after `customize` adjusts the config.
    pub async fn start_with(backend: Backend, customize: impl FnOnce(&mut RegistryConfig)) -> Self {
        Self::start_configured(backend, customize, None).await
    }

    /// Like [`RegistryFixture::start_with`]; the test's own clients speak TLS
    /// with `client_tls` when given (the registry's `tls` must be set).
    pub async fn start_configured(
        backend: Backend,
        customize: impl FnOnce(&mut RegistryConfig),
        client_tls: Option<&ClientTls>,
    ) -> Self {
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
            internal_key: Some(HashKey::generate().to_hex()),
            shutdown_grace_seconds: 2,
            ..RegistryConfig::default()
        };
        customize(&mut config);
        config.validate().expect("test configuration is valid");

        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let internal_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let internal_address = internal_listener.local_addr().expect("local address");
        let internal_key = config
            .internal_key_source()
            .resolve()
            .expect("test internal key");
        let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin_address = admin_listener.local_addr().expect("local address");
        let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let http_address = http_listener.local_addr().expect("local address");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(serve(
            config.clone(),
            Listeners {
                grpc: listener,
                internal: internal_listener,
                admin: admin_listener,
                http: http_listener,
            },
            shutdown.clone(),
        ));
        let channel = crate::connect_lazy(address, client_tls);
        let internal_channel = crate::connect_internal(internal_address, client_tls, internal_key);
        let unsigned_internal_channel = crate::connect_lazy(internal_address, client_tls);
        let fixture = Self {
            address,
            internal_address,
            admin_address,
            http_address,
            channel,
            internal_channel,
            unsigned_internal_channel,
            hash_key,
            database,
            config,
            admin_token: None,
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

    /// The public gRPC address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The internal gRPC address (for the token issuers).
    pub fn internal_address(&self) -> SocketAddr {
        self.internal_address
    }

    /// `http://host:port/metrics` on the admin listener.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.admin_url())
    }

    /// `http://host:port` of the admin listener (`/metrics`, `/livez`,
    /// `/readyz`).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_address)
    }

    /// `http://host:port` of the management API over HTTP/JSON.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_address)
    }

    /// The platform admin's management token, once the stack set it.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// A channel to the registry's public listener.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A channel to the internal listener signing every call with the
    /// internal key, as a token issuer does.
    pub fn internal_channel(&self) -> TracedChannel {
        self.internal_channel.clone()
    }

    /// A channel to the internal listener that signs nothing (an attacker
    /// who reaches the port but has no key).
    pub fn unsigned_internal_channel(&self) -> Channel {
        self.unsigned_internal_channel.clone()
    }

    /// A `CredentialRegistry` client presenting the platform admin's token.
    pub fn client(&self) -> ManagementClient {
        self.client_with_token(self.admin_token.as_deref())
    }

    /// A `CredentialRegistry` client presenting `token` (or none).
    pub fn client_with_token(&self, token: Option<&str>) -> ManagementClient {
        CredentialRegistryClient::with_interceptor(self.channel.clone(), BearerToken::new(token))
    }

    /// The registry's configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Sets the token `client()` presents.
    pub fn set_admin_token(&mut self, token: String) {
        self.admin_token = Some(token);
    }

    /// A `ClientAuthentication` client, signed as a token issuer's.
    pub fn authentication_client(&self) -> ClientAuthenticationClient<TracedChannel> {
        ClientAuthenticationClient::new(self.internal_channel.clone())
    }

    /// The internal key the registry verifies internal calls with (issuers
    /// started for this registry must share it).
    pub fn internal_key(&self) -> String {
        self.config
            .internal_key
            .clone()
            .expect("the fixture configures an internal key")
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
