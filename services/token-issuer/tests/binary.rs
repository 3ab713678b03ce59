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

/// Logs written to a pipe (a file, a log shipper, `docker logs`) carry no
/// colour escape codes: the issuer logs its failure to reach Redis through
/// `tracing`, to stderr, which here is a pipe.
#[test]
fn logs_to_a_pipe_carry_no_colour() {
    let directory = tempfile::tempdir().unwrap();
    let output = issuer_command(directory.path())
        // Terminal detection alone must turn colour off, not NO_COLOR.
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        // Nothing listens on port 1: the start fails after logging is set up.
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("LATCHKEY_HASH_KEY", "ab".repeat(32))
        .env("LATCHKEY_INTERNAL_KEY", "cd".repeat(32))
        .env("LATCHKEY_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_INTERNAL_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_HTTP_LISTEN_ADDR", "127.0.0.1:0")
        .env("LATCHKEY_ADMIN_LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("ERROR") && logs.contains("token issuer failed"),
        "the failure is logged: {logs}"
    );
    assert!(
        !logs.contains("\u{1b}["),
        "colour escape codes in piped logs: {logs:?}"
    );
}
