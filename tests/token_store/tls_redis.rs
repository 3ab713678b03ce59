//! Redis over TLS with an ACL user: a `redis-server` of the test's own on a
//! TLS-only port, with a CA and a server certificate made in the test and a
//! user `latchkey` (the default user is off). The store issues and looks
//! up tokens through it (its introspection cache's tracking connection
//! too); what a retry cannot cure — a wrong password, an untrusted
//! certificate, plain `redis://` on the TLS port — fails at start with a
//! message that says which.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_token::TokenStore;
use latchkey_token_store::{RedisConfig, RedisTokenStore};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};

use crate::support::{Issue, Store, new_credential};

const USER: &str = "latchkey";
const PASSWORD: &str = "correct-horse-battery";

/// A TLS-only Redis with an ACL user, killed when dropped.
struct TlsRedis {
    port: u16,
    process: Child,
    directory: tempfile::TempDir,
}

impl TlsRedis {
    async fn start() -> Self {
        let directory = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(directory.path().join(name), pem);
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        server_params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let server = server_params.signed_by(&server_key, &issuer).unwrap();
        write("ca.pem", ca.pem()).unwrap();
        write("server.pem", server.pem()).unwrap();
        write("server.key", server_key.serialize_pem()).unwrap();
        // A CA that signed nothing here: trusting it alone must fail.
        let other_key = KeyPair::generate().unwrap();
        let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        write(
            "other-ca.pem",
            other_params.self_signed(&other_key).unwrap().pem(),
        )
        .unwrap();

        let port = latchkey_tests::binaries::free_ports::<1>()[0];
        let path = |name: &str| directory.path().join(name).to_str().unwrap().to_owned();
        let process = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &path("")])
            .args(["--tls-cert-file", &path("server.pem")])
            .args(["--tls-key-file", &path("server.key")])
            .args(["--tls-ca-cert-file", &path("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .args(["--user", "default", "off"])
            .args([
                "--user",
                USER,
                "on",
                &format!(">{PASSWORD}"),
                "~*",
                "&*",
                "+@all",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed: run scripts/test, which installs it");
        let redis = Self {
            port,
            process,
            directory,
        };
        redis.await_ready().await;
        redis
    }

    /// Polls until the server answers a TLS `PING` as the user.
    async fn await_ready(&self) {
        let config = self.config(&self.url(USER, PASSWORD));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(store) = RedisTokenStore::connect(&config).await
                && store.ping().await.is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the TLS redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn ca_file(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@localhost:{}", self.port)
    }

    /// The store's configuration for `url`, trusting the test's CA.
    fn config(&self, url: &str) -> RedisConfig {
        RedisConfig {
            url: url.to_owned(),
            key_prefix: "lk:".to_owned(),
            response_timeout_ms: 500,
            tls_ca_file: Some(self.ca_file("ca.pem")),
            ..RedisConfig::default()
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Connecting must fail, with `expected` in the message and no password.
async fn assert_refused_at_start(config: &RedisConfig, expected: &str) {
    let error = match RedisTokenStore::connect(config).await {
        Ok(store) => panic!("connected with {config:?}: {store:?}"),
        Err(error) => format!("{error}: {:?}", std::error::Error::source(&error)),
    };
    assert!(error.contains(expected), "{error}");
    assert!(!error.contains(PASSWORD), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_issued_and_introspected_over_tls_as_an_acl_user() {
    let redis = TlsRedis::start().await;
    let store = RedisTokenStore::connect(&redis.config(&redis.url(USER, PASSWORD)))
        .await
        .unwrap();
    // The introspection cache's own (RESP3 tracking) connection is up too.
    let start = Instant::now();
    while !store.cache_stats().unwrap().live {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "tracking never established"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store: Store = std::sync::Arc::new(store);
    let credential = new_credential();
    let hash = Issue::new(credential).ok(&store).await;
    let lookup = store.lookup(credential, &hash).await.unwrap();
    assert!(lookup.token.is_some(), "{lookup:?}");
    assert!(lookup.policy.is_some(), "{lookup:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_the_start() {
    let redis = TlsRedis::start().await;
    let config = redis.config(&redis.url(USER, "not-the-password"));
    assert_refused_at_start(&config, "wrong user or password").await;
    let config = redis.config(&redis.url("nobody", PASSWORD));
    assert_refused_at_start(&config, "wrong user or password").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_certificate_fails_the_start() {
    let redis = TlsRedis::start().await;
    let config = RedisConfig {
        tls_ca_file: Some(redis.ca_file("other-ca.pem")),
        ..redis.config(&redis.url(USER, PASSWORD))
    };
    assert_refused_at_start(&config, "TLS handshake failed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_redis_on_the_tls_port_fails_the_start() {
    let redis = TlsRedis::start().await;
    let config = RedisConfig {
        tls_ca_file: None,
        ..redis.config(&format!(
            "redis://{USER}:{PASSWORD}@localhost:{}",
            redis.port
        ))
    };
    assert_refused_at_start(&config, "rediss://").await;
}

/// The real `token-issuer`, configured as an operator would
/// (`LATCHKEY_REDIS__URL=rediss://user:password@…`,
/// `LATCHKEY_REDIS__TLS_CA_FILE`), reports SERVING, which it does only
/// while the store answers its pings; trusting another CA, it exits at
/// start saying why, without the password in its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issuer_binary_serves_from_a_tls_redis_as_an_acl_user() {
    use latchkey_tests::binaries::{Running, command, free_ports, log_path, wait_until_serving};

    let redis = TlsRedis::start().await;
    let directory = tempfile::tempdir().unwrap();
    let issuer = |ca: &str| {
        let [grpc, internal, http] = free_ports::<3>();
        let mut process = command("token-issuer", directory.path());
        process
            .env("LATCHKEY_REDIS__URL", redis.url(USER, PASSWORD))
            .env("LATCHKEY_REDIS__TLS_CA_FILE", redis.ca_file(ca))
            .env("LATCHKEY_HASH_KEY", "ab".repeat(32))
            .env("LATCHKEY_INTERNAL_KEY", "cd".repeat(32))
            .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{grpc}"))
            .env(
                "LATCHKEY_INTERNAL_LISTEN_ADDR",
                format!("127.0.0.1:{internal}"),
            )
            .env("LATCHKEY_HTTP_LISTEN_ADDR", format!("127.0.0.1:{http}"))
            // Nobody there: the issuer serves introspection without it.
            .env("LATCHKEY_REGISTRY_URL", "http://127.0.0.1:9");
        (grpc, Running(process.spawn().unwrap()))
    };
    let log = log_path("token-issuer", directory.path());

    let (port, mut serving) = issuer("ca.pem");
    wait_until_serving(port, &mut serving.0, &log).await;
    serving.kill();

    let (_, mut refused) = issuer("other-ca.pem");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = refused.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running with an untrusted certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "{status:?}");
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(written.contains("TLS handshake failed"), "{written}");
    assert!(!written.contains(PASSWORD), "{written}");
}
