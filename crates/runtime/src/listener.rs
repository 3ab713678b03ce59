//! A TCP listener that holds at most `max_connections` connections open and
//! closes connections whose client falls silent.
//!
//! The limit is taken **before** `accept`: past it, new connections wait in
//! the kernel's accept backlog (bounded by the listen backlog; past that
//! the kernel refuses them) and are served as soon as an open connection
//! closes. Nothing beyond the limit is ever accepted, so a flood of idle
//! connections costs the process nothing but the limit's worth of sockets.
//!
//! Each accepted [`LimitedStream`] enforces two read deadlines itself, for
//! every protocol spoken over it (HTTP/1.1, HTTP/2, gRPC, TLS):
//!
//! - its first bytes must arrive within the header read timeout (a client
//!   that connects and says nothing is cut off quickly);
//! - after that, a connection whose client has sent nothing for the idle
//!   timeout is closed (reads and writes then fail with `TimedOut`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::limits::ListenerLimits;

/// A TCP listener with a connection limit and read deadlines on every
/// connection.
#[derive(Debug)]
pub struct LimitedListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    first_read_timeout: Duration,
    idle_timeout: Duration,
}

impl LimitedListener {
    /// Serves `listener` within `limits`.
    pub fn new(listener: TcpListener, limits: &ListenerLimits) -> Self {
        // A u32 always fits in usize on the platforms we build for.
        let max_connections = usize::try_from(limits.max_connections).unwrap_or(usize::MAX);
        Self {
            listener,
            slots: Arc::new(Semaphore::new(max_connections)),
            first_read_timeout: limits.header_read_timeout(),
            idle_timeout: limits.idle_timeout(),
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// How long a new connection has to send its first bytes (and to finish
    /// a TLS handshake).
    pub fn first_read_timeout(&self) -> Duration {
        self.first_read_timeout
    }

    /// Waits for a free connection slot, then for a connection. Never fails:
    /// accept errors (a reset before accept, out of file descriptors) are
    /// logged and retried, as `axum::serve` does. Cancel-safe.
    pub async fn accept(&self) -> (LimitedStream, SocketAddr) {
        // The semaphore is never closed, so acquiring cannot fail.
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            unreachable!("the connection semaphore is never closed");
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    // Small answers must not wait for Nagle's algorithm.
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%error, "cannot set TCP_NODELAY");
                    }
                    let stream = LimitedStream::new(
                        stream,
                        slot,
                        self.first_read_timeout,
                        self.idle_timeout,
                    );
                    return (stream, peer);
                }
                Err(error) if is_connection_error(&error) => {}
                Err(error) => {
                    // Out of file descriptors and the like: wait, then go on.
                    tracing::error!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// The accepted connections as a stream, for tonic's
    /// `serve_with_incoming_shutdown`. It never yields an error nor ends.
    pub fn into_incoming(self) -> impl Stream<Item = io::Result<LimitedStream>> + Send + 'static {
        futures_util::stream::unfold(self, |listener| async move {
            let (stream, _) = listener.accept().await;
            Some((Ok(stream), listener))
        })
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        LimitedListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        LimitedListener::local_addr(self)
    }
}

/// An accepted connection: counts against its listener's limit until
/// dropped, and fails its reads and writes once its client has been silent
/// too long.
#[derive(Debug)]
pub struct LimitedStream {
    stream: TcpStream,
    deadline: Pin<Box<Sleep>>,
    /// When the client last sent bytes; `None` until its first bytes, whose
    /// deadline is fixed at accept.
    last_read: Option<Instant>,
    idle_timeout: Duration,
    _slot: OwnedSemaphorePermit,
}

impl LimitedStream {
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        first_read_timeout: Duration,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            stream,
            deadline: Box::pin(tokio::time::sleep(first_read_timeout)),
            last_read: None,
            idle_timeout,
            _slot: slot,
        }
    }

    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// Called when an operation is pending: `TimedOut` once the client has
    /// been silent past its deadline, else pending with the deadline's timer
    /// registered. The deadline moves lazily (only when its timer fires), so
    /// a read costs one clock reading, not a timer update.
    fn poll_silence(&mut self, context: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            if self.deadline.as_mut().poll(context).is_pending() {
                return Poll::Pending;
            }
            let Some(last_read) = self.last_read else {
                return Poll::Ready(timed_out("no bytes within the header read timeout"));
            };
            let due = last_read + self.idle_timeout;
            if due <= Instant::now() {
                return Poll::Ready(timed_out("the client was idle too long"));
            }
            self.deadline.as_mut().reset(due);
        }
    }
}

fn timed_out(reason: &'static str) -> io::Error {
    tracing::debug!(reason, "closing a silent connection");
    io::Error::new(io::ErrorKind::TimedOut, reason)
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buffer.filled().len();
        match Pin::new(&mut self.stream).poll_read(context, buffer) {
            Poll::Ready(Ok(())) => {
                if buffer.filled().len() > before {
                    self.last_read = Some(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => self.poll_silence(context).map(Err),
        }
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write(context, buffer) {
            // A client that neither sends nor reads cannot hold a write
            // open past its idle deadline.
            Poll::Pending => self.poll_silence(context).map(Err),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.stream).poll_write_vectored(context, buffers) {
            Poll::Pending => self.poll_silence(context).map(Err),
            ready => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }
}

/// tonic reads the peer address from this (`Request::remote_addr`, and
/// [`peer_address`](crate::peer_address)), over plain TCP and under its TLS.
impl Connected for LimitedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
