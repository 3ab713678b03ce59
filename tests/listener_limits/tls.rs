//! `serve_http` over TLS: the same limits, the handshake included.

use std::time::Duration;

use latchkey_runtime::ServerTls;
use rcgen::{CertificateParams, KeyPair, SanType};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{HttpServer, SLACK, assert_cut_off, closed_within, quick_limits};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const EARLY: Duration = Duration::from_millis(800);

/// A self-signed certificate for 127.0.0.1, as PEM files.
struct Certificate {
    directory: tempfile::TempDir,
    pem: String,
}

impl Certificate {
    fn generate() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let certificate = params.self_signed(&key).unwrap();
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("server.pem"), certificate.pem()).unwrap();
        std::fs::write(directory.path().join("server.key"), key.serialize_pem()).unwrap();
        Self {
            directory,
            pem: certificate.pem(),
        }
    }

    fn server(&self) -> ServerTls {
        ServerTls {
            cert_file: self.directory.path().join("server.pem"),
            key_file: self.directory.path().join("server.key"),
            client_ca_file: None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_handlers_see_the_peer_and_silent_handshakes_are_cut_off() {
    let certificate = Certificate::generate();
    let server = HttpServer::start_with_tls(quick_limits(), Some(&certificate.server())).await;

    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(certificate.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = http
        .get(format!("https://{}/peer", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert!(
        answer.text().await.unwrap().starts_with("127.0.0.1:"),
        "the handler saw the TCP peer"
    );

    // Connects and says nothing.
    let mut silent = TcpStream::connect(server.address).await.unwrap();
    let closed = closed_within(&mut silent, HEADER_TIMEOUT + SLACK).await;
    assert_cut_off(closed, EARLY, HEADER_TIMEOUT);

    // Starts a ClientHello and stalls: the handshake deadline.
    let mut stalled = TcpStream::connect(server.address).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    let closed = closed_within(&mut stalled, HEADER_TIMEOUT + SLACK).await;
    assert_cut_off(closed, EARLY, HEADER_TIMEOUT);
}
