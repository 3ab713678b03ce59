//! TLS for an axum HTTP listener.
//!
//! Handshakes run in their own tasks, so a slow or silent client cannot hold
//! up the others; finished connections are handed to the HTTP server
//! through a channel. Connections are taken from a [`LimitedListener`], so
//! handshaking ones count against the listener's connection limit too.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::config::ConfigError;
use crate::limits::ListenerLimits;
use crate::listener::{LimitedListener, LimitedStream};
use crate::tls::ServerTls;

/// Handshaken connections waiting for the HTTP server.
const BACKLOG: usize = 128;

/// A TCP listener whose connections are TLS.
#[derive(Debug)]
pub struct HttpsListener {
    local_address: SocketAddr,
    connections: mpsc::Receiver<(TlsStream<LimitedStream>, SocketAddr)>,
}

impl HttpsListener {
    /// Serves TLS with `tls`'s certificate on `listener`, within the default
    /// [`ListenerLimits`]. HTTP clients are not asked for certificates (they
    /// authenticate with tokens and secrets).
    pub fn new(listener: TcpListener, tls: &ServerTls) -> Result<Self, ConfigError> {
        Self::limited(
            LimitedListener::new(listener, &ListenerLimits::default()),
            tls,
        )
    }

    /// Serves TLS on `listener`: its connection limit counts handshaking
    /// connections too, and a handshake must finish within its first read
    /// timeout (the header read timeout).
    pub fn limited(listener: LimitedListener, tls: &ServerTls) -> Result<Self, ConfigError> {
        let local_address = listener
            .local_addr()
            .map_err(|error| ConfigError::new(format!("listener: {error}")))?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(tls)?));
        let (sender, connections) = mpsc::channel(BACKLOG);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        Ok(Self {
            local_address,
            connections,
        })
    }
}

fn server_config(tls: &ServerTls) -> Result<ServerConfig, ConfigError> {
    let certificates = CertificateDer::pem_file_iter(&tls.cert_file)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|error| ConfigError::new(format!("tls.cert_file: {error}")))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|error| ConfigError::new(format!("tls.key_file: {error}")))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ConfigError::new(format!("tls: {error}")))?
        .with_no_client_auth()
        .with_single_cert(certificates, key)
        .map_err(|error| ConfigError::new(format!("tls: {error}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

async fn accept_loop(
    listener: LimitedListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(TlsStream<LimitedStream>, SocketAddr)>,
) {
    let handshake_timeout = listener.first_read_timeout();
    loop {
        // Ends (closing the port) as soon as the server drops its side.
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = sender.closed() => return,
        };
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = sender.send((tls, peer)).await;
                }
                Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<LimitedStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_address)
    }
}
