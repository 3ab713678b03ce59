//! Finding 11 of issue 12 on the real services: half-sent requests, silent
//! and idle connections and trickled bodies are cut off on every listener
//! (DESIGN rule 12), with the default limits an operator gets: 5 s for a
//! request head (and a new connection's first bytes), 10 s for a body.
//!
//! Registered in `main.rs` once the services serve through
//! `latchkey_runtime::serve_http` and `LimitedListener`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use latchkey_tests::{Stack, StackBackend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{credential, project_with_client};

/// The default header read timeout.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The default body read timeout.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How late a deadline may fire on a loaded machine.
const SLACK: Duration = Duration::from_secs(3);
/// How early a cut-off may come and still be the deadline's.
const EARLY: Duration = Duration::from_millis(500);

/// The issuer's HTTP address, from its URL.
fn http_address(stack: &Stack) -> SocketAddr {
    stack
        .issuer
        .http_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap()
}

/// The socket address of an `http://host:port` admin URL.
fn admin_address(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .parse()
        .expect("admin URL is http://host:port")
}

/// Reads until the server closes the connection: what it sent, or `None`
/// if it is still open at `until`.
async fn closed_by(stream: &mut TcpStream, until: Instant) -> Option<String> {
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let read = tokio::time::timeout_at(until.into(), stream.read(&mut buffer)).await;
        match read {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(String::from_utf8_lossy(&received).into_owned()),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Asserts the server cut `stream` off `timeout` after `since`, give or
/// take.
async fn assert_cut_off(what: &str, stream: &mut TcpStream, since: Instant, timeout: Duration) {
    let closed = closed_by(stream, since + timeout + SLACK).await;
    assert!(
        closed.is_some(),
        "{what}: still open after {:?}",
        since.elapsed()
    );
    assert!(
        since.elapsed() + EARLY >= timeout,
        "{what}: cut off after {:?}, before the {timeout:?} deadline",
        since.elapsed()
    );
}

async fn half_sent_requests_and_silent_connections_are_cut_off_on_every_listener(
    backend: StackBackend,
) {
    let stack = Stack::start(backend).await;
    let http = http_address(&stack);

    // All at once: each waits out the same deadline.
    let started = Instant::now();
    let mut half_head = TcpStream::connect(http).await.unwrap();
    half_head
        .write_all(b"POST /oauth2/token HTTP/1.1\r\nhost: issuer\r\ncontent-ty")
        .await
        .unwrap();
    let mut silent = Vec::new();
    for (listener, address) in [
        ("issuer HTTP", http),
        ("issuer gRPC", stack.issuer.grpc_address()),
        ("registry gRPC", stack.registry.address()),
        ("registry admin", admin_address(&stack.registry.admin_url())),
        ("issuer admin", admin_address(&stack.issuer.admin_url())),
    ] {
        silent.push((listener, TcpStream::connect(address).await.unwrap()));
    }
    assert_cut_off(
        "half a request head",
        &mut half_head,
        started,
        HEADER_TIMEOUT,
    )
    .await;
    for (listener, stream) in &mut silent {
        let what = format!("a silent connection to the {listener}");
        assert_cut_off(&what, stream, started, HEADER_TIMEOUT).await;
    }

    // The listeners still serve.
    let answer = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        stack.issuer.http_url()
    ))
    .await
    .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
}

async fn a_trickled_token_request_gets_408(backend: StackBackend) {
    let stack = Stack::start(backend).await;
    let client = project_with_client(&stack, "acme", None, credential(&[], &[])).await;
    let body = crate::support::encode_form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &client.credential.client_id),
        ("client_secret", &client.secret),
    ]);
    let head = format!(
        "POST /oauth2/token HTTP/1.1\r\nhost: issuer\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let stream = TcpStream::connect(http_address(&stack)).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    // A byte a second: every gap far inside any per-frame timeout, the
    // whole body far outside the 10 s body timeout.
    let bytes = body.into_bytes();
    let trickle = tokio::spawn(async move {
        for byte in bytes {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(BODY_TIMEOUT + SLACK, reader.read_to_end(&mut received)).await;
    trickle.abort();
    let answer = String::from_utf8_lossy(&received);
    assert!(
        read.is_ok(),
        "still open after {:?}: {answer}",
        started.elapsed()
    );
    assert!(started.elapsed() + EARLY >= BODY_TIMEOUT, "{answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

on_both_stacks!(
    half_sent_requests_and_silent_connections_are_cut_off_on_every_listener,
    a_trickled_token_request_gets_408,
);
