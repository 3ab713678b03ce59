//! The real `credential-registry` and `token-issuer` binaries, for tests
//! where a process, a port or a signal matters: started with a clean
//! environment, their log in a file, killed when dropped.
//!
//! The binaries are taken from the target directory the test was built in:
//! `scripts/test` builds them; run alone, build them first
//! (`cargo build -p credential-registry -p token-issuer`).

use std::net::TcpListener;
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

/// `N` distinct ports of 127.0.0.1 nobody listened on a moment ago, for a
/// service started later to bind. They are drawn from below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`), which the kernel never
/// hands to an outgoing connection: an ephemeral port, released here, could
/// be taken by one of the many connections parallel tests open (to
/// PostgreSQL, Redis, the services) before the service binds it, and the
/// service would exit with "address already in use". All are held until
/// every one is chosen, so none comes back twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    use std::hash::{BuildHasher, RandomState};

    const LOWEST: u16 = 20_000;
    let below = ephemeral_range_start().filter(|start| *start > LOWEST + 1_000);
    let Some(below) = below else {
        // An unusual range: ports from the kernel, as before.
        let listeners: [TcpListener; N] =
            std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").expect("an ephemeral port"));
        return listeners.map(|listener| listener.local_addr().expect("its address").port());
    };
    let random = RandomState::new();
    let mut held: Vec<(u16, TcpListener)> = Vec::with_capacity(N);
    for attempt in 0u64.. {
        if held.len() == N {
            break;
        }
        assert!(
            attempt < 100_000,
            "no free port between {LOWEST} and {below}"
        );
        let offset = random.hash_one(attempt) % u64::from(below - LOWEST);
        let port = LOWEST + u16::try_from(offset).expect("below a u16");
        if held.iter().any(|(taken, _)| *taken == port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, listener));
        }
    }
    std::array::from_fn(|index| held[index].0)
}

/// The first port of the kernel's ephemeral range, where it says.
fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
