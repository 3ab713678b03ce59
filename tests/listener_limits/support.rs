//! Servers under test and clients that misbehave on purpose.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use latchkey_runtime::{ListenerLimits, ServerTls, Shutdown, serve_http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Small limits, so every test takes seconds: 1 s to send a head, 1 s for a
/// body, 2 s for an answer, 3 s of silence. Valid ones, as a service would
/// refuse to start with invalid ones.
pub(crate) fn quick_limits() -> ListenerLimits {
    let limits = ListenerLimits {
        header_read_timeout_ms: 1_000,
        body_read_timeout_ms: 1_000,
        request_timeout_ms: 2_000,
        idle_timeout_ms: 3_000,
        max_connections: 64,
        max_concurrent_requests: 64,
        ..ListenerLimits::default()
    };
    limits.validate("limits").expect("valid test limits");
    limits
}

/// Slack for a loaded test machine: a deadline may fire this much late.
pub(crate) const SLACK: Duration = Duration::from_secs(3);

/// Requests the test holds in the app until it lets them go.
#[derive(Debug)]
pub(crate) struct Gate {
    entered: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Gate {
    pub(crate) fn new(open: bool) -> Arc<Self> {
        Arc::new(Self {
            entered: AtomicUsize::new(0),
            open: watch::channel(open).0,
        })
    }

    /// Waits (as a held request) until the gate opens.
    pub(crate) async fn pass(&self) {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }

    /// Lets every held request (and every later one) through.
    pub(crate) fn open(&self) {
        self.open.send_replace(true);
    }

    /// Waits until `count` requests are held.
    pub(crate) async fn wait_for_held(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.entered.load(Ordering::SeqCst) < count {
            assert!(Instant::now() < deadline, "requests never reached the app");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// `GET /peer` answers the peer address the handler saw; `POST /echo` the
/// length of the body it read; `GET /hold` waits at the gate.
fn app(gate: Arc<Gate>) -> Router {
    Router::new()
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/hold",
            get(|State(gate): State<Arc<Gate>>| async move {
                gate.pass().await;
                "released"
            }),
        )
        .with_state(gate)
}

/// The app served by `serve_http` on an ephemeral port.
pub(crate) struct HttpServer {
    pub(crate) address: SocketAddr,
    pub(crate) gate: Arc<Gate>,
    pub(crate) shutdown: Shutdown,
    pub(crate) server: JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    pub(crate) async fn start(limits: ListenerLimits) -> Self {
        Self::start_with_tls(limits, None).await
    }

    pub(crate) async fn start_with_tls(limits: ListenerLimits, tls: Option<&ServerTls>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let gate = Gate::new(false);
        let shutdown = Shutdown::new();
        let server = serve_http(listener, tls, app(gate.clone()), &limits, shutdown.clone())
            .expect("the server starts");
        Self {
            address,
            gate,
            shutdown,
            server: tokio::spawn(server),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.gate.open();
        self.shutdown.trigger();
    }
}

/// What the server did to a connection the client stopped talking on.
#[derive(Debug)]
pub(crate) struct Closed {
    /// When, after the client went quiet.
    pub(crate) after: Duration,
    /// What it sent before closing.
    pub(crate) received: String,
}

/// Reads `stream` until the server closes it; `None` if it is still open
/// after `within`.
pub(crate) async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Closed> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let remaining = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(remaining, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => {
                return Some(Closed {
                    after: started.elapsed(),
                    received: String::from_utf8_lossy(&received).into_owned(),
                });
            }
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Sends `request` (a whole HTTP/1.1 request) and reads one response: its
/// head and a `content-length` body. The connection stays open.
pub(crate) async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let read = tokio::time::timeout(SLACK, stream.read(&mut buffer))
            .await
            .expect("an answer")
            .unwrap();
        assert!(read > 0, "closed before answering");
        received.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&received).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        if body.len() >= length {
            return text;
        }
    }
}

/// Asserts a deadline fired: after at least `not_before`, at most `timeout`
/// plus [`SLACK`].
#[track_caller]
pub(crate) fn assert_cut_off(closed: Option<Closed>, not_before: Duration, timeout: Duration) {
    let closed = closed.unwrap_or_else(|| panic!("still open after {:?}", timeout + SLACK));
    assert!(
        closed.after >= not_before,
        "closed after {:?}, before the {timeout:?} deadline: {:?}",
        closed.after,
        closed.received
    );
}
