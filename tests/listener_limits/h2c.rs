//! A bare HTTP/2 client (prior knowledge, no TLS) whose connection future
//! tells when the server closes the connection.

use std::net::SocketAddr;

use axum::body::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Opens an HTTP/2 connection; the handle resolves when it closes.
pub(crate) async fn connect(address: SocketAddr) -> (SendRequest<Empty<Bytes>>, JoinHandle<()>) {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(async move {
        // An error is a close too (a reset, or the server's timeout).
        let _ = connection.await;
    });
    (sender, connection)
}

/// `GET path`: the status.
pub(crate) async fn get(
    sender: &mut SendRequest<Empty<Bytes>>,
    address: SocketAddr,
    path: &str,
) -> u16 {
    let request = hyper::Request::get(format!("http://{address}{path}"))
        .body(Empty::new())
        .unwrap();
    sender
        .send_request(request)
        .await
        .unwrap()
        .status()
        .as_u16()
}
