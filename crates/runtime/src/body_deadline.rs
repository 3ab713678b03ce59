//! A deadline on a whole request body.
//!
//! tower-http's `RequestBodyTimeout` times the gap between two body frames,
//! so a client trickling a byte just inside each gap holds a request open
//! for as long as it likes. Here the body must arrive whole within the body
//! read timeout of the request reaching the app; past it, the body fails
//! (whatever extractor reads it gets an error) and the answer is replaced by
//! 408, whatever the handler made of the error.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::http_server::{describe, refusal};

/// The middleware: wraps the body, then answers 408 if it timed out.
pub(crate) async fn read_body_within(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    // Nothing to wait for (GET, or a body already complete).
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let flag = timed_out.clone();
    let request = request.map(|body| Body::new(DeadlineBody::new(body, deadline, flag)));
    let response = next.run(request).await;
    if !timed_out.load(Ordering::Relaxed) {
        return response;
    }
    tracing::debug!("request body not received in time");
    let mut response = refusal(
        StatusCode::REQUEST_TIMEOUT,
        "invalid_request",
        &format!(
            "the request body did not arrive within {}",
            describe(timeout)
        ),
    );
    // The rest of the body will never be read: HTTP/1.1 cannot go on.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a late body fails with.
#[derive(Debug, thiserror::Error)]
#[error("request body read timed out")]
pub(crate) struct BodyReadTimeout;

/// A body that fails once its deadline passes while it waits for data.
struct DeadlineBody {
    body: Body,
    deadline: Instant,
    /// Made on the first wait only: a body that is already buffered (the
    /// common small form) never touches the timer.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl DeadlineBody {
    fn new(body: Body, deadline: Instant, timed_out: Arc<AtomicBool>) -> Self {
        Self {
            body,
            deadline,
            sleep: None,
            timed_out,
        }
    }
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(context) {
            return Poll::Ready(frame);
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(context).is_pending() {
            return Poll::Pending;
        }
        self.timed_out.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(BodyReadTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
