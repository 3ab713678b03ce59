//! A tonic server built from `ListenerLimits` over a `LimitedListener`:
//! silent and idle connections closed, calls past the listener's limit
//! refused at once, slow calls timed out, the peer address intact.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use latchkey_runtime::{LimitedListener, ListenerLimits, Shutdown, peer_address};
use tokio::net::{TcpListener, TcpStream};
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::http::Request as HttpRequest;
use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceExt;

use crate::support::{Gate, SLACK, assert_cut_off, closed_within, quick_limits};

/// A gRPC server with health only; every call waits at `gate` and records
/// its peer address.
struct GrpcServer {
    address: SocketAddr,
    gate: Arc<Gate>,
    peers: Arc<Mutex<Vec<Option<SocketAddr>>>>,
    shutdown: Shutdown,
}

impl GrpcServer {
    async fn start(limits: ListenerLimits, gate_open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let listener = LimitedListener::new(listener, &limits);
        let gate = Gate::new(gate_open);
        let peers = Arc::new(Mutex::new(Vec::new()));
        let shutdown = Shutdown::new();
        let (_, health) = tonic_health::server::health_reporter();
        let waiting = gate.clone();
        let seen = peers.clone();
        let at_gate = tower::layer::layer_fn(move |inner: tonic::service::Routes| {
            let gate = waiting.clone();
            let peers = seen.clone();
            tower::service_fn(move |request: HttpRequest<Body>| {
                let inner = Clone::clone(&inner);
                let gate = gate.clone();
                peers.lock().unwrap().push(peer_address(&request));
                async move {
                    gate.pass().await;
                    inner.oneshot(request).await
                }
            })
        });
        let stop = shutdown.clone();
        let router = limits
            .grpc_server()
            .layer(limits.grpc_concurrency_layer())
            .layer(at_gate)
            .add_service(health);
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(listener.into_incoming(), async move {
                    stop.wait().await;
                })
                .await
                .unwrap();
        });
        Self {
            address,
            gate,
            peers,
            shutdown,
        }
    }

    fn client(&self) -> HealthClient<tonic::transport::Channel> {
        HealthClient::new(
            Endpoint::from_shared(format!("http://{}", self.address))
                .unwrap()
                .connect_lazy(),
        )
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.gate.open();
        self.shutdown.trigger();
    }
}

async fn check(client: &mut HealthClient<tonic::transport::Channel>) -> Result<(), tonic::Status> {
    client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_the_listener_limit_are_unavailable_at_once() {
    let server = GrpcServer::start(
        ListenerLimits {
            max_concurrent_requests: 2,
            request_timeout_ms: 10_000,
            idle_timeout_ms: 11_000,
            ..quick_limits()
        },
        false,
    )
    .await;
    // Two connections, so the limit is the listener's, not a connection's.
    let held: Vec<_> = (0..2)
        .map(|_| {
            let mut client = server.client();
            tokio::spawn(async move { check(&mut client).await })
        })
        .collect();
    server.gate.wait_for_held(2).await;

    let started = Instant::now();
    let shed = check(&mut server.client()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "not queued");
    assert_eq!(shed.code(), Code::Unavailable, "{shed:?}");
    assert!(shed.message().contains("retry"), "{shed:?}");

    server.gate.open();
    for call in held {
        call.await.unwrap().unwrap();
    }
    check(&mut server.client()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_times_out() {
    let limits = quick_limits();
    let server = GrpcServer::start(limits, false).await;
    let started = Instant::now();
    let status = tokio::time::timeout(limits.request_timeout() + SLACK, async {
        check(&mut server.client()).await
    })
    .await
    .expect("answered by the server's timeout")
    .unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(started.elapsed() >= limits.request_timeout() - Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_keep_their_peer_address() {
    let server = GrpcServer::start(quick_limits(), true).await;
    check(&mut server.client()).await.unwrap();
    let peers = server.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1);
    let peer = peers[0].expect("the peer address reaches the services");
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_cut_off() {
    let limits = quick_limits();
    let server = GrpcServer::start(limits, true).await;
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let closed = closed_within(&mut silent, limits.header_read_timeout() + SLACK).await;
    assert_cut_off(
        closed,
        Duration::from_millis(800),
        limits.header_read_timeout(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let limits = quick_limits();
    let server = GrpcServer::start(limits, true).await;
    let (_sender, connection) = crate::h2c::connect(server.address).await;
    let started = Instant::now();
    let idle = limits.idle_timeout();
    let closed = tokio::time::timeout(idle + SLACK, connection).await;
    assert!(
        closed.is_ok(),
        "gRPC connection still open after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= idle - Duration::from_millis(300),
        "closed after {:?}, before the idle timeout",
        started.elapsed()
    );
}
