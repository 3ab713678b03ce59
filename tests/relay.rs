//! A TCP relay that can be cut and restored on the same address, to play a
//! store outage without stopping the shared server other tests use.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Relays connections to `target` until cut.
#[derive(Debug)]
pub struct TcpRelay {
    address: SocketAddr,
    target: String,
    tasks: JoinSet<()>,
}

impl TcpRelay {
    /// Starts relaying from an ephemeral port on 127.0.0.1 to `target`
    /// (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local address");
        let mut relay = Self {
            address,
            target,
            tasks: JoinSet::new(),
        };
        relay.serve(listener);
        relay
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target.clone();
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
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
