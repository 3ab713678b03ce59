//! The real `token-issuer` binary refuses a configuration it cannot run
//! safely: exit 64 naming the key, before any port is bound.

#![allow(unused_crate_dependencies, clippy::unwrap_used)]

use std::process::{Command, Stdio};

/// The binary with a clean `LATCHKEY_*` environment.
fn issuer_command(directory: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_token-issuer"));
    command
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("LATCHKEY_") || key == "REDIS_URL" {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn a_production_store_without_the_internal_key_exits_64() {
    let directory = tempfile::tempdir().unwrap();
    let hash_key = "ab".repeat(32);
    let cases: [(Option<&str>, &str); 2] = [
        // Redis without the key the registry signs and verifies with.
        (None, "internal_key"),
        // A key that is not 64 hex digits.
        (Some("abc"), "internal_key"),
    ];
    for (internal_key, named) in cases {
        let mut command = issuer_command(directory.path());
        command
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("LATCHKEY_HASH_KEY", &hash_key);
        if let Some(value) = internal_key {
            command.env("LATCHKEY_INTERNAL_KEY", value);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{internal_key:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(named), "{message:?} should name {named}");
        assert!(!message.contains(&hash_key), "no key material: {message}");
    }
}

/// Kills the process when dropped, so a failed assertion leaves nothing
/// running.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on `address` over HTTP/1.0: the status line.
fn status_line(address: &str, path: &str) -> String {
    use std::io::{BufRead as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    line
}

/// An issuer whose Redis does not answer starts, is alive (`/livez` 200) and
/// not ready (`/readyz` 503) on its admin listener, and its logs, written
/// to a pipe (a file, a log shipper, `docker logs`), carry no colour escape
/// codes.
#[test]
fn with_redis_unreachable_the_issuer_is_live_not_ready_and_logs_plain_text() {
    let directory = tempfile::tempdir().unwrap();
    let child = issuer_command(directory.path())
        // Terminal detection alone must turn colour off, not NO_COLOR.
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        // Nothing listens on port 1.
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("LATCHKEY_HASH_KEY", "ab".repeat(32))
        .env("LATCHKEY_INTERNAL_KEY", "cd".repeat(32))
        .env("LATCHKEY_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_INTERNAL_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stderr = running.0.stderr.take().unwrap();
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut logs = String::new();
    let mut admin = None;
    // The first readiness check logs the store as unreachable.
    while !logs.contains("reporting NOT_SERVING") {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no NOT_SERVING log line within 30 s:\n{logs}"));
        if let Some(rest) = line.split("admin=Some(").nth(1) {
            admin = rest.split(')').next().map(str::to_owned);
        }
        logs.push_str(&line);
        logs.push('\n');
    }
    let admin =
        admin.unwrap_or_else(|| panic!("the serving line names the admin address:\n{logs}"));
    let readyz = status_line(&admin, "/readyz");
    assert!(readyz.contains(" 503 "), "{readyz}");
    let livez = status_line(&admin, "/livez");
    assert!(livez.contains(" 200 "), "{livez}");
    assert!(logs.contains("WARN"), "{logs}");
    assert!(
        !logs.contains("\u{1b}["),
        "colour escape codes in piped logs: {logs:?}"
    );
}
