//! `serve_http` against slow, silent, idle and greedy clients.

use std::time::{Duration, Instant};

use latchkey_runtime::ListenerLimits;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{HttpServer, SLACK, assert_cut_off, closed_within, exchange, quick_limits};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// A deadline that fires this much early is not the deadline.
const EARLY: Duration = Duration::from_millis(800);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_head_is_cut_off_within_the_header_timeout() {
    let server = HttpServer::start(quick_limits()).await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    client
        .write_all(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-le")
        .await
        .unwrap();
    let closed = closed_within(&mut client, HEADER_TIMEOUT + SLACK).await;
    assert_cut_off(closed, EARLY, HEADER_TIMEOUT);

    // A client that sends its request in time is served.
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let answer = exchange(&mut client, "GET /peer HTTP/1.1\r\nhost: test\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_cut_off() {
    let server = HttpServer::start(quick_limits()).await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let closed = closed_within(&mut client, HEADER_TIMEOUT + SLACK).await;
    assert_cut_off(closed, EARLY, HEADER_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_with_408() {
    let server = HttpServer::start(quick_limits()).await;
    let head = "POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n";

    // The whole body in time: read and answered.
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let answer = exchange(&mut client, &format!("{head}{}", "x".repeat(100))).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n100"), "{answer}");

    // One byte every 200 ms: each gap is well inside the 1 s body timeout,
    // the whole body (20 s) far outside it.
    let client = TcpStream::connect(server.address).await.unwrap();
    let (mut reader, mut writer) = client.into_split();
    writer.write_all(head.as_bytes()).await.unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(
        Duration::from_secs(1) + SLACK,
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut received),
    )
    .await;
    trickle.abort();
    let text = String::from_utf8_lossy(&received);
    assert!(
        closed.is_ok(),
        "still open after {:?}: {text}",
        started.elapsed()
    );
    assert!(started.elapsed() >= EARLY, "cut off too early: {text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("did not arrive within 1 s"),
        "the answer says why: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = HttpServer::start(quick_limits()).await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    for _ in 0..2 {
        let answer = exchange(&mut client, "GET /peer HTTP/1.1\r\nhost: test\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "kept alive: {answer}");
    }
    let closed = closed_within(&mut client, HEADER_TIMEOUT + SLACK).await;
    assert_cut_off(closed, EARLY, HEADER_TIMEOUT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    let limits = quick_limits();
    let server = HttpServer::start(limits).await;
    let (mut sender, connection) = crate::h2c::connect(server.address).await;
    let status = crate::h2c::get(&mut sender, server.address, "/peer").await;
    assert_eq!(status, 200);
    let started = Instant::now();
    let idle = limits.idle_timeout();
    let closed = tokio::time::timeout(idle + SLACK, connection).await;
    assert!(
        closed.is_ok(),
        "HTTP/2 connection still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= idle - Duration::from_millis(300),
        "closed after {:?}, before the idle timeout",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = HttpServer::start(ListenerLimits {
        // Long enough that the two silent connections stay open.
        header_read_timeout_ms: 10_000,
        max_connections: 2,
        ..quick_limits()
    })
    .await;
    let first = TcpStream::connect(server.address).await.unwrap();
    let _second = TcpStream::connect(server.address).await.unwrap();
    // The kernel completes the third connection; the server does not take
    // it while two are open.
    let mut third = TcpStream::connect(server.address).await.unwrap();
    third
        .write_all(b"GET /peer HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut third, Duration::from_millis(700))
            .await
            .is_none(),
        "a third connection was served past the limit of two"
    );
    drop(first);
    let answered = closed_within(&mut third, SLACK)
        .await
        .expect("served once a connection closed");
    assert!(
        answered.received.starts_with("HTTP/1.1 200"),
        "{answered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_is_shed_with_503_instead_of_queued() {
    let server = HttpServer::start(ListenerLimits {
        max_concurrent_requests: 2,
        request_timeout_ms: 10_000,
        idle_timeout_ms: 11_000,
        ..quick_limits()
    })
    .await;
    let http = reqwest::Client::new();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(http.get(server.url("/hold")).send()))
        .collect();
    server.gate.wait_for_held(2).await;

    let started = Instant::now();
    let shed = http.get(server.url("/peer")).send().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once, not queued"
    );
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: serde_json::Value = shed.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    server.gate.open();
    for request in held {
        assert_eq!(request.await.unwrap().unwrap().status().as_u16(), 200);
    }
    let served = http.get(server.url("/peer")).send().await.unwrap();
    assert_eq!(served.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_times_out_with_503() {
    let limits = quick_limits();
    let server = HttpServer::start(limits).await;
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(server.url("/hold"))
        .timeout(limits.request_timeout() + SLACK)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(started.elapsed() >= limits.request_timeout() - Duration::from_millis(200));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_see_the_peer_address() {
    let server = HttpServer::start(quick_limits()).await;
    let mut client = TcpStream::connect(server.address).await.unwrap();
    let local = client.local_addr().unwrap();
    let answer = exchange(&mut client, "GET /peer HTTP/1.1\r\nhost: test\r\n\r\n").await;
    assert!(answer.ends_with(&format!("\r\n\r\n{local}")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_the_port_and_lets_requests_in_progress_finish() {
    let server = HttpServer::start(quick_limits()).await;
    let held = tokio::spawn(reqwest::Client::new().get(server.url("/hold")).send());
    server.gate.wait_for_held(1).await;
    server.shutdown.trigger();

    let deadline = Instant::now() + SLACK;
    while TcpStream::connect(server.address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after shutdown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !server.server.is_finished(),
        "a request is still in progress"
    );
    server.gate.open();
    let answer = held.await.unwrap().unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.unwrap(), "released");
    let stopped = tokio::time::timeout(SLACK, async {
        while !server.server.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(stopped.is_ok(), "the server did not stop after draining");
}
