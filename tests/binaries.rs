//! The real `credential-registry` and `token-issuer` binaries, for tests
//! where a process, a port or a signal matters: started with a clean
//! environment, their log in a file, killed when dropped.
//!
//! The binaries are taken from the target directory the test was built in:
//! `scripts/test` builds them; run alone, build them first
//! (`cargo build -p credential-registry -p token-issuer`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// The binary `name`, built next to the running test.
pub fn binary(name: &str) -> PathBuf {
    let test = std::env::current_exe().expect("the test's path");
    let mut directory = test.parent().expect("the test's directory");
    if directory.ends_with("deps") {
        directory = directory.parent().expect("the target directory");
    }
    let path = directory.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built: run `cargo build -p credential-registry -p token-issuer` first \
         (scripts/test builds every binary)",
        path.display()
    );
    path
}

/// `N` distinct free ports of 127.0.0.1, below the kernel's ephemeral
/// range (see `free_ports.rs` for why).
pub fn free_ports<const N: usize>() -> [u16; N] {
    crate::free_ports::free_ports()
}

/// `name` run in `directory` with a clean `LATCHKEY_*` / `OTEL_*`
/// environment and its log appended to `directory/<name>.log`.
pub fn command(name: &str, directory: &Path) -> Command {
    let mut command = Command::new(binary(name));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(name, directory))
        .expect("the log file");
    command
        .current_dir(directory)
        .stdout(Stdio::null())
        .stderr(log);
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_")
            || key.starts_with("OTEL_")
            || key == "DATABASE_URL"
            || key == "REDIS_URL"
            || key == "RUST_LOG"
        {
            command.env_remove(key);
        }
    }
    // The issuer's admin listener defaults to 127.0.0.1:9091, one port for
    // every test running at once: an ephemeral one unless the test sets it.
    if name == "token-issuer" {
        command.env("LATCHKEY_ADMIN_LISTEN_ADDR", "127.0.0.1:0");
    }
    command
}

/// Where [`command`] writes the log of `name`.
pub fn log_path(name: &str, directory: &Path) -> PathBuf {
    directory.join(format!("{name}.log"))
}

/// A running process, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Running(pub Child);

impl Running {
    /// Kills the process at once (SIGKILL: no shutdown, no last flush),
    /// and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the gRPC server on `port` reports SERVING; panics with the
/// log when `child` exits first or after 30 s.
pub async fn wait_until_serving(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().ok().flatten().is_some() {
            panic!(
                "a service exited during start-up:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if let Ok(channel) = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .expect("a valid URL")
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
        assert!(
            Instant::now() < deadline,
            "not serving after 30 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `credential-registry bootstrap-admin --project <project>` in
/// `directory` (with `configure` adding its environment) and returns the
/// admin's client ID and secret from what it prints.
pub fn bootstrap(
    directory: &Path,
    project: &str,
    configure: impl FnOnce(&mut Command),
) -> (String, String) {
    let mut bootstrap = command("credential-registry", directory);
    configure(&mut bootstrap);
    let output = bootstrap
        .args(["bootstrap-admin", "--project", project])
        .stdout(Stdio::piped())
        .output()
        .expect("run bootstrap-admin");
    assert!(
        output.status.success(),
        "bootstrap-admin failed:\n{}",
        std::fs::read_to_string(log_path("credential-registry", directory)).unwrap_or_default()
    );
    let printed = String::from_utf8(output.stdout).expect("UTF-8 output");
    let value = |label: &str| {
        printed
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(|value| value.trim().to_owned())
            .unwrap_or_else(|| panic!("bootstrap-admin printed no {label}"))
    };
    (value("client_id:"), value("client_secret:"))
}
