//! A TCP relay that can be cut and restored on the same address, to play a
//! store outage without stopping the shared server other tests use; and
//! that can swallow the answers while still passing requests on, to play a
//! peer that did the work but whose answer never arrived.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Relays connections to `target` until cut.
#[derive(Debug)]
pub struct TcpRelay {
    address: SocketAddr,
    target: Arc<Mutex<String>>,
    swallow: Arc<Swallow>,
    tasks: JoinSet<()>,
}

/// When answers are dropped.
#[derive(Debug, Default)]
struct Swallow {
    /// Answers are being dropped.
    now: AtomicBool,
    /// Start dropping answers once a request carrying these bytes has passed.
    after: Mutex<Option<Vec<u8>>>,
}

impl TcpRelay {
    /// Starts relaying from an ephemeral port on 127.0.0.1 to `target`
    /// (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let mut relay = Self {
            address,
            target: Arc::new(Mutex::new(target)),
            swallow: Arc::new(Swallow::default()),
            tasks: JoinSet::new(),
        };
        relay.serve(listener);
        relay
    }

    /// A relay in front of the test PostgreSQL, and the database URL that
    /// goes through it (to cut the database away from one service only).
    pub async fn in_front_of_postgres() -> (Self, String) {
        let url = crate::postgres_url();
        let target = "127.0.0.1:5432".to_owned();
        assert!(url.contains(&target), "{url} must name {target} literally");
        let relay = Self::start(target.clone()).await;
        let relayed = url.replacen(&target, &relay.address().to_string(), 1);
        (relay, relayed)
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Relays new connections to `target` from now on (for a relay started
    /// before its target was known).
    pub fn retarget(&self, target: String) {
        *self
            .target
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = target;
    }

    /// Once a request carrying `marker` has passed (protobuf strings travel
    /// as plain bytes in gRPC frames), bytes from the target are dropped
    /// instead of relayed: that request and those after it arrive and are
    /// acted on, their answers never come back (the caller times out).
    pub fn swallow_answers_after(&self, marker: &[u8]) {
        *self
            .swallow
            .after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(marker.to_vec());
    }

    /// Relays answers again. Also drops the relayed connections, whose
    /// framing the dropped bytes broke, so callers reconnect.
    pub async fn stop_swallowing(&mut self) {
        *self
            .swallow
            .after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        self.swallow.now.store(false, Ordering::SeqCst);
        self.cut().await;
        self.restore().await;
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        let swallow = self.swallow.clone();
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let target = target
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .clone();
                let swallow = swallow.clone();
                connections.spawn(async move {
                    if let Ok(server) = TcpStream::connect(&target).await {
                        relay(client, server, swallow).await;
                    }
                });
            }
        });
    }

    /// Drops the listener and every relayed connection.
    pub async fn cut(&mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }

    /// Listens again on the same address.
    pub async fn restore(&mut self) {
        let listener = TcpListener::bind(self.address).await.expect("rebind");
        self.serve(listener);
    }
}

/// Copies both ways until either side closes, dropping the server's bytes
/// while `swallow` says so.
async fn relay(client: TcpStream, server: TcpStream, swallow: Arc<Swallow>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let requests = async {
        let mut buffer = vec![0u8; 16 * 1024];
        // The tail of the previous read, so a marker split between two
        // reads is still seen.
        let mut seen: Vec<u8> = Vec::new();
        loop {
            let read = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if server_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
            let marker = swallow
                .after
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            if let Some(marker) = marker {
                seen.extend_from_slice(&buffer[..read]);
                if seen.windows(marker.len()).any(|window| window == marker) {
                    swallow.now.store(true, Ordering::SeqCst);
                }
                let keep = seen.len().saturating_sub(marker.len());
                seen.drain(..keep);
            }
        }
    };
    let answers = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let read = match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };
            if swallow.now.load(Ordering::SeqCst) {
                continue;
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = answers => {}
    }
}
