//! Black-box tests of the `credential-registry` binary: the embedded default
//! starts from nothing, bad configuration exits 64 naming the key, SIGTERM
//! shuts down cleanly.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const BINARY: &str = env!("CARGO_BIN_EXE_credential-registry");

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary in `directory` with a clean `LATCHKEY_*` environment.
fn registry_command(directory: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .current_dir(directory)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until_serving(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the registry exited during start-up"
        );
        if let Ok(channel) =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                .unwrap()
                .connect()
                .await
        {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if answer.is_ok_and(|response| response.get_ref().status == 1) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "not serving after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit within {timeout:?}");
        // An async sleep keeps this runtime's client connections polled, so
        // they can answer the server's GOAWAY and let it drain.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn embedded_default_starts_from_nothing_and_stops_on_sigterm() {
    let directory = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = registry_command(directory.path())
        .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_METRICS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_INTERNAL_LISTEN_ADDR", "127.0.0.1:0")
        .spawn()
        .unwrap();
    let mut running = Running(child);
    wait_until_serving(port, &mut running.0).await;

    let data = directory.path().join("latchkey-data");
    assert!(
        data.join("registry.db").exists(),
        "SQLite file created on first start"
    );
    let key_file = data.join("hash.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.trim().len(), 64, "a generated 32-byte hex key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the hash key is readable by its owner only"
        );
    }

    let terminated = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = wait_with_timeout(&mut running.0, Duration::from_secs(15)).await;
    assert!(status.success(), "clean exit after SIGTERM, got {status:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(running.0.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(
        !log.contains(key.trim()),
        "the hash key never reaches the log"
    );
    assert!(
        log.contains("credential registry stopped"),
        "drained before the grace period: {log}"
    );

    // A restart keeps the same key, so existing secrets still verify.
    let port = free_port();
    let child = registry_command(directory.path())
        .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_METRICS_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_INTERNAL_LISTEN_ADDR", "127.0.0.1:0")
        .spawn()
        .unwrap();
    let mut again = Running(child);
    wait_until_serving(port, &mut again.0).await;
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
}

#[test]
fn bad_configuration_exits_64_and_names_the_key() {
    let directory = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 8] = [
        (
            "LATCHKEY_POLICY_DEFAULTS__TOKEN_TTL_SECONDS",
            "0",
            "token_ttl_seconds",
        ),
        ("LATCHKEY_LISTEN_ADDR", "not-an-address", "listen_addr"),
        (
            "DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1/test",
            "hash_key",
        ),
        ("LATCHKEY_HASH_KEY", "abc", "hash_key"),
        // CORS names exact origins: no wildcard, no path.
        (
            "LATCHKEY_CORS_ALLOWED_ORIGINS",
            "[\"*\"]",
            "cors_allowed_origins",
        ),
        (
            "LATCHKEY_CORS_ALLOWED_ORIGINS",
            "[\"https://console.example.com/app\"]",
            "cors_allowed_origins",
        ),
        // The auth proxy's networks are CIDRs; its header a header name.
        (
            "LATCHKEY_AUTH_PROXY__TRUSTED_PROXIES",
            "[\"10.0.0.0/33\"]",
            "trusted_proxies",
        ),
        (
            "LATCHKEY_AUTH_PROXY__USER_HEADER",
            "x user",
            "auth_proxy.user_header",
        ),
    ];
    for (variable, value, key) in cases {
        let output = registry_command(directory.path())
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{variable}={value}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains(key),
            "{variable}: {message:?} should name {key}"
        );
        assert!(
            !message.contains("hunter2"),
            "the DSN's password is never printed"
        );
    }
    // A production store without the internal key: the registry could not
    // authenticate its calls to the issuers, nor theirs to it.
    let output = registry_command(directory.path())
        .env("DATABASE_URL", "postgres://postgres:hunter2@127.0.0.1/test")
        .env("LATCHKEY_HASH_KEY", "ab".repeat(32))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("internal_key"), "{message:?}");
    // The file named by LATCHKEY_CONFIG is read (its bad value is reported).
    std::fs::write(
        directory.path().join("bad.toml"),
        "listen_addr = \"nowhere\"\n",
    )
    .unwrap();
    let from_variable = registry_command(directory.path())
        .env("LATCHKEY_CONFIG", "bad.toml")
        .output()
        .unwrap();
    assert_eq!(from_variable.status.code(), Some(64));
    let message = String::from_utf8_lossy(&from_variable.stderr);
    assert!(message.contains("listen_addr"), "{message}");
    assert!(
        !message.contains("unknown field"),
        "LATCHKEY_CONFIG is not a key: {message}"
    );
    let missing_file = registry_command(directory.path())
        .args(["--config", "does-not-exist.toml"])
        .output()
        .unwrap();
    assert_eq!(missing_file.status.code(), Some(64));
}

#[test]
fn bootstrap_admin_prints_the_secret_once_and_refuses_a_second_admin() {
    let directory = tempfile::tempdir().unwrap();
    let bootstrap = |extra: &[&str]| {
        registry_command(directory.path())
            .args(["bootstrap-admin", "--project", "ops"])
            .args(extra)
            .stdout(Stdio::piped())
            .output()
            .unwrap()
    };
    let first = bootstrap(&[]);
    assert!(first.status.success(), "{first:?}");
    let printed = String::from_utf8_lossy(&first.stdout);
    assert!(printed.contains("client_id:     lkc_"), "{printed}");
    assert!(printed.contains("client_secret: lks_"), "{printed}");

    let second = bootstrap(&[]);
    assert_eq!(second.status.code(), Some(1), "an admin exists already");
    assert!(String::from_utf8_lossy(&second.stderr).contains("--force"));
    assert!(
        !String::from_utf8_lossy(&second.stdout).contains("lks_"),
        "no new secret"
    );

    let forced = bootstrap(&["--force"]);
    assert!(forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stdout).contains("client_secret: lks_"));
}

#[tokio::test]
async fn a_hash_key_other_than_the_databases_stops_the_start() {
    let directory = tempfile::tempdir().unwrap();
    let first_key = "a1".repeat(32);
    let other_key = "b2".repeat(32);
    let start = |key: &str| {
        let port = free_port();
        let child = registry_command(directory.path())
            .env("LATCHKEY_HASH_KEY", key)
            .env("LATCHKEY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_METRICS_LISTEN_ADDR", "127.0.0.1:0")
            .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
            .spawn()
            .unwrap();
        (port, Running(child))
    };

    // The first start records the key's fingerprint.
    let (port, mut first) = start(&first_key);
    wait_until_serving(port, &mut first.0).await;
    drop(first);

    // Another key: exit 64 naming the setting, with no key material.
    let (_, mut other) = start(&other_key);
    let status = wait_with_timeout(&mut other.0, Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(64), "{status:?}");
    let mut log = String::new();
    std::io::Read::read_to_string(other.0.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("hash_key"), "{log}");
    assert!(log.contains("hash_key_file"), "{log}");
    for key in [&first_key, &other_key] {
        assert!(!log.contains(&key[..16]), "no key material in {log}");
    }
    // `bootstrap-admin` checks it too, before writing anything.
    let bootstrap = registry_command(directory.path())
        .env("LATCHKEY_HASH_KEY", &other_key)
        .args(["bootstrap-admin", "--project", "ops"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(bootstrap.status.code(), Some(64), "{bootstrap:?}");
    assert!(String::from_utf8_lossy(&bootstrap.stderr).contains("hash_key"));
    assert!(!String::from_utf8_lossy(&bootstrap.stdout).contains("lks_"));

    // The database's own key still serves, and admins it creates verify.
    let bootstrap = registry_command(directory.path())
        .env("LATCHKEY_HASH_KEY", &first_key)
        .args(["bootstrap-admin", "--project", "ops"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(bootstrap.status.success(), "{bootstrap:?}");
    let (port, mut again) = start(&first_key);
    wait_until_serving(port, &mut again.0).await;
}

#[test]
fn hash_keys_status_counts_the_secrets_of_each_key() {
    let directory = tempfile::tempdir().unwrap();
    let first_key = "c3".repeat(32);
    let second_key = "d4".repeat(32);
    let run = |config: Option<&str>, second: bool, args: &[&str]| {
        let mut command = registry_command(directory.path());
        if second {
            command
                .env("LATCHKEY_HASH_KEY", &second_key)
                .env("LATCHKEY_HASH_KEY_ID", "2");
        } else {
            command.env("LATCHKEY_HASH_KEY", &first_key);
        }
        if let Some(config) = config {
            let path = directory.path().join("registry.toml");
            std::fs::write(&path, config).unwrap();
            command.arg("--config").arg(path);
        }
        command.args(args).stdout(Stdio::piped()).output().unwrap()
    };
    let stdout =
        |output: &std::process::Output| String::from_utf8_lossy(&output.stdout).into_owned();

    // An admin under key 1 (a key configured without an ID).
    let created = run(None, false, &["bootstrap-admin", "--project", "ops"]);
    assert!(created.status.success(), "{created:?}");
    let status = run(None, false, &["hash-keys", "status"]);
    assert!(status.status.success(), "{status:?}");
    assert!(
        stdout(&status).contains("hash key 1: 1 live secrets, current"),
        "{status:?}"
    );

    // Key 2 current, key 1 previous.
    let previous = format!("[[previous_hash_keys]]\nid = 1\nkey = \"{first_key}\"\n");
    let status = run(Some(&previous), true, &["hash-keys", "status"]);
    assert!(status.status.success(), "{status:?}");
    let report = stdout(&status);
    assert!(
        report.contains("hash key 1: 1 live secrets, previous"),
        "{report}"
    );
    assert!(
        report.contains("hash key 2: 0 live secrets, current"),
        "{report}"
    );
    assert!(
        report.contains("1 live secrets still use an older key"),
        "{report}"
    );
    for key in [&first_key, &second_key] {
        assert!(!report.contains(&key[..16]), "no key material in {report}");
    }

    // Without key 1: the status says so, a start refuses.
    let status = run(Some(""), true, &["hash-keys", "status"]);
    assert!(status.status.success(), "{status:?}");
    assert!(
        stdout(&status).contains("hash key 1: 1 live secrets, NOT CONFIGURED"),
        "{status:?}"
    );
    let refused = run(
        Some(""),
        true,
        &["bootstrap-admin", "--project", "ops", "--force"],
    );
    assert_eq!(refused.status.code(), Some(64), "{refused:?}");
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(log.contains("previous_hash_keys"), "{log}");
    assert!(log.contains("key 1 (1 secrets)"), "{log}");
}
