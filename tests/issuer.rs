//! The token issuer served in-process on ephemeral ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use latchkey_runtime::{ClientTls, Shutdown, TracedChannel};
use latchkey_token_store::RedisConfig;
use token_issuer::{IssuerConfig, Listeners, ServeError, serve};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::redis::{TestRedis, redis_cluster_urls, redis_url};
use crate::registry::RegistryFixture;

/// Which token store the issuer runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenBackend {
    /// The in-process store.
    Memory,
    /// The test Redis, under a key prefix of its own.
    Redis,
    /// The test Redis Cluster (`LATCHKEY_TEST_REDIS_CLUSTER_URLS`), under a
    /// key prefix of its own.
    RedisCluster,
}

/// Listeners bound before the services start, so each can be told the
/// other's address.
#[derive(Debug)]
pub struct IssuerListeners {
    grpc: TcpListener,
    internal: TcpListener,
    http: TcpListener,
    admin: TcpListener,
}

impl IssuerListeners {
    /// Binds four ephemeral ports on 127.0.0.1.
    pub async fn bind() -> Self {
        Self {
            grpc: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            internal: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            http: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            admin: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        }
    }

    /// The internal gRPC address (for the registry).
    pub fn internal_address(&self) -> SocketAddr {
        self.internal.local_addr().expect("address")
    }

    /// The gRPC address.
    pub fn grpc_address(&self) -> SocketAddr {
        self.grpc.local_addr().expect("address")
    }

    /// The HTTP address.
    pub fn http_address(&self) -> SocketAddr {
        self.http.local_addr().expect("address")
    }

    /// The admin listener's address.
    pub fn admin_address(&self) -> SocketAddr {
        self.admin.local_addr().expect("address")
    }
}

/// A running token issuer; stopped when dropped.
#[derive(Debug)]
pub struct IssuerFixture {
    grpc_address: SocketAddr,
    internal_address: SocketAddr,
    http_address: SocketAddr,
    admin_address: SocketAddr,
    channel: Channel,
    internal_channel: TracedChannel,
    unsigned_internal_channel: Channel,
    config: IssuerConfig,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), ServeError>>,
    stopped: bool,
    client_tls: Option<ClientTls>,
    redis: Option<TestRedis>,
    _data_dir: tempfile::TempDir,
}

impl IssuerFixture {
    /// Starts an issuer on `listeners` that asks `registry` (through its
    /// internal listener, with its internal key).
    pub async fn start(
        backend: TokenBackend,
        listeners: IssuerListeners,
        registry: &RegistryFixture,
    ) -> Self {
        Self::start_with(backend, listeners, registry, |_| {}).await
    }

    /// Like [`IssuerFixture::start`], after `customize` adjusts the config.
    pub async fn start_with(
        backend: TokenBackend,
        listeners: IssuerListeners,
        registry: &RegistryFixture,
        customize: impl FnOnce(&mut IssuerConfig),
    ) -> Self {
        Self::start_configured(backend, listeners, registry, customize, None).await
    }

    /// Like [`IssuerFixture::start_with`]; the test's own clients speak TLS
    /// with `client_tls` when given (`customize` must set the issuer's `tls`).
    pub async fn start_configured(
        backend: TokenBackend,
        listeners: IssuerListeners,
        registry: &RegistryFixture,
        customize: impl FnOnce(&mut IssuerConfig),
        client_tls: Option<ClientTls>,
    ) -> Self {
        let registry_address = registry.internal_address();
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let redis = match backend {
            TokenBackend::Memory => None,
            TokenBackend::Redis => Some(TestRedis::new()),
            TokenBackend::RedisCluster => Some(TestRedis::on_cluster(redis_cluster_urls())),
        };
        let http_address = listeners.http_address();
        let mut config = IssuerConfig {
            registry_url: format!("http://{registry_address}"),
            public_url: format!("http://{http_address}"),
            data_dir: data_dir.path().to_path_buf(),
            hash_key: Some(latchkey_secrets::HashKey::generate().to_hex()),
            internal_key: Some(registry.internal_key()),
            redis: redis.as_ref().map(|redis| RedisConfig {
                url: redis_url(),
                cluster_urls: redis.cluster_urls().to_vec(),
                key_prefix: redis.prefix().to_owned(),
                ..RedisConfig::default()
            }),
            usage_flush_interval_ms: 100,
            shutdown_grace_seconds: 2,
            ..IssuerConfig::default()
        };
        customize(&mut config);
        Self::start_with_config(config, listeners, redis, data_dir, client_tls).await
    }

    async fn start_with_config(
        config: IssuerConfig,
        listeners: IssuerListeners,
        redis: Option<TestRedis>,
        data_dir: tempfile::TempDir,
        client_tls: Option<ClientTls>,
    ) -> Self {
        config.validate().expect("test configuration is valid");
        let grpc_address = listeners.grpc_address();
        let internal_address = listeners.internal_address();
        let http_address = listeners.http_address();
        let admin_address = listeners.admin_address();
        let internal_key = config
            .internal_key_source()
            .resolve()
            .expect("test internal key");
        let shutdown = Shutdown::new();
        let task = tokio::spawn(serve(
            config.clone(),
            Listeners {
                grpc: listeners.grpc,
                internal: listeners.internal,
                http: listeners.http,
                admin: listeners.admin,
            },
            shutdown.clone(),
        ));
        let channel = crate::connect_lazy(grpc_address, client_tls.as_ref());
        let internal_channel =
            crate::connect_internal(internal_address, client_tls.as_ref(), internal_key);
        let unsigned_internal_channel = crate::connect_lazy(internal_address, client_tls.as_ref());
        let fixture = Self {
            grpc_address,
            internal_address,
            http_address,
            admin_address,
            channel,
            internal_channel,
            unsigned_internal_channel,
            config,
            shutdown,
            task,
            stopped: false,
            client_tls,
            redis,
            _data_dir: data_dir,
        };
        fixture.wait_until_serving().await;
        fixture
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut health = HealthClient::new(self.channel.clone());
        loop {
            assert!(
                !self.task.is_finished(),
                "the token issuer stopped during start-up; see its log above"
            );
            let request = HealthCheckRequest {
                service: String::new(),
            };
            if let Ok(response) = health.check(request).await
                && response.get_ref().status == 1
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "token issuer not serving after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the issuer and waits for it to end.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if !self.stopped {
            let _ = (&mut self.task).await;
            self.stopped = true;
        }
    }

    /// Starts it again on the same ports, configuration and store.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let listeners = IssuerListeners {
            grpc: TcpListener::bind(self.grpc_address)
                .await
                .expect("rebind gRPC port"),
            internal: TcpListener::bind(self.internal_address)
                .await
                .expect("rebind internal gRPC port"),
            http: TcpListener::bind(self.http_address)
                .await
                .expect("rebind HTTP port"),
            admin: TcpListener::bind(self.admin_address)
                .await
                .expect("rebind admin port"),
        };
        let config = self.config.clone();
        let redis = self.redis.take();
        let client_tls = self.client_tls.take();
        let data_dir = tempfile::tempdir().expect("temporary directory");
        drop(self);
        Self::start_with_config(config, listeners, redis, data_dir, client_tls).await
    }

    /// A channel to the issuer's public gRPC port.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A channel to the issuer's internal port signing every call with the
    /// internal key, as the registry does.
    pub fn internal_channel(&self) -> TracedChannel {
        self.internal_channel.clone()
    }

    /// The internal gRPC address (for the registry).
    pub fn internal_address(&self) -> SocketAddr {
        self.internal_address
    }

    /// A channel to the internal port that signs nothing (an attacker who
    /// reaches the port but has no key).
    pub fn unsigned_internal_channel(&self) -> Channel {
        self.unsigned_internal_channel.clone()
    }

    /// A `TokenService` client.
    pub fn token_client(&self) -> TokenServiceClient<Channel> {
        TokenServiceClient::new(self.channel.clone())
    }

    /// An `Introspection` client.
    pub fn introspection_client(&self) -> IntrospectionClient<Channel> {
        IntrospectionClient::new(self.channel.clone())
    }

    /// The gRPC address.
    pub fn grpc_address(&self) -> SocketAddr {
        self.grpc_address
    }

    /// `http://host:port` of the HTTP endpoints.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http_address)
    }

    /// `http://host:port` of the admin listener (`/metrics`, `/livez`,
    /// `/readyz`).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_address)
    }

    /// `http://host:port/metrics` on the admin listener.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.admin_url())
    }
}

impl Drop for IssuerFixture {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.task.abort();
    }
}
