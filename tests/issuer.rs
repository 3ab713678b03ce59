//! The token issuer served in-process on ephemeral ports.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use latchkey_proto::token::v1::introspection_client::IntrospectionClient;
use latchkey_proto::token::v1::token_service_client::TokenServiceClient;
use latchkey_runtime::{ClientTls, Shutdown};
use latchkey_token_store::RedisConfig;
use token_issuer::{IssuerConfig, Listeners, ServeError, serve};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::redis::{TestRedis, redis_cluster_urls, redis_url};

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
    http: TcpListener,
}

impl IssuerListeners {
    /// Binds two ephemeral ports on 127.0.0.1.
    pub async fn bind() -> Self {
        Self {
            grpc: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            http: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        }
    }

    /// The gRPC address.
    pub fn grpc_address(&self) -> SocketAddr {
        self.grpc.local_addr().expect("address")
    }

    /// The HTTP address.
    pub fn http_address(&self) -> SocketAddr {
        self.http.local_addr().expect("address")
    }
}

/// A running token issuer; stopped when dropped.
#[derive(Debug)]
pub struct IssuerFixture {
    grpc_address: SocketAddr,
    http_address: SocketAddr,
    channel: Channel,
    config: IssuerConfig,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), ServeError>>,
    stopped: bool,
    client_tls: Option<ClientTls>,
    redis: Option<TestRedis>,
    _data_dir: tempfile::TempDir,
}

impl IssuerFixture {
    /// Starts an issuer on `listeners` that asks the registry at
    /// `registry_address`.
    pub async fn start(
        backend: TokenBackend,
        listeners: IssuerListeners,
        registry_address: SocketAddr,
    ) -> Self {
        Self::start_with(backend, listeners, registry_address, |_| {}).await
    }

    /// Like [`IssuerFixture::start`], after `customize` adjusts the config.
    pub async fn start_with(
        backend: TokenBackend,
        listeners: IssuerListeners,
        registry_address: SocketAddr,
        customize: impl FnOnce(&mut IssuerConfig),
    ) -> Self {
        Self::start_configured(backend, listeners, registry_address, customize, None).await
    }

    /// Like [`IssuerFixture::start_with`]; the test's own clients speak TLS
    /// with `client_tls` when given (`customize` must set the issuer's `tls`).
    pub async fn start_configured(
        backend: TokenBackend,
        listeners: IssuerListeners,
        registry_address: SocketAddr,
        customize: impl FnOnce(&mut IssuerConfig),
        client_tls: Option<ClientTls>,
    ) -> Self {
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
        let http_address = listeners.http_address();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(serve(
            config.clone(),
            Listeners {
                grpc: listeners.grpc,
                http: listeners.http,
            },
            shutdown.clone(),
        ));
        let channel = crate::connect_lazy(grpc_address, client_tls.as_ref());
        let fixture = Self {
            grpc_address,
            http_address,
            channel,
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
            http: TcpListener::bind(self.http_address)
                .await
                .expect("rebind HTTP port"),
        };
        let config = self.config.clone();
        let redis = self.redis.take();
        let client_tls = self.client_tls.take();
        let data_dir = tempfile::tempdir().expect("temporary directory");
        drop(self);
        Self::start_with_config(config, listeners, redis, data_dir, client_tls).await
    }

    /// A channel to the issuer's gRPC port.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
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
}

impl Drop for IssuerFixture {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.task.abort();
    }
}
