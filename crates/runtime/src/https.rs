//! TLS for an axum HTTP listener.
//!
//! Handshakes run in their own tasks, so a slow or silent client cannot hold
//! up the others; finished connections are handed to axum through a channel.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::config::ConfigError;
use crate::tls::ServerTls;

/// A client has this long to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for axum.
const BACKLOG: usize = 128;

/// A TCP listener whose connections are TLS.
#[derive(Debug)]
pub struct HttpsListener {
    local_address: SocketAddr,
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl HttpsListener {
    /// Serves TLS with `tls`'s certificate on `listener`. HTTP clients are
    /// not asked for certificates (they authenticate with tokens and
    /// secrets).
    pub fn new(listener: TcpListener, tls: &ServerTls) -> Result<Self, ConfigError> {
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
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!(%error, "accepting an HTTPS connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if sender.is_closed() {
            return;
        }
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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
    type Io = TlsStream<TcpStream>;
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
