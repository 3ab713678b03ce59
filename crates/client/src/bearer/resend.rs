//! Keeping a request body to send it twice. A gRPC body is a stream, so a
//! body is kept only when it is whole before the call starts: every frame
//! ready at once, the end seen, at most a bound of bytes. Waiting for the end
//! instead could hang a bidirectional call whose next message waits for the
//! callee's answer; so the first frame that is not ready ends the attempt,
//! and the frames read so far go out ahead of the rest of the stream.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

/// A whole request body, kept to be sent again.
#[derive(Debug, Clone, Default)]
pub(super) struct Kept {
    data: Vec<Bytes>,
    trailers: Option<HeaderMap>,
    length: usize,
}

impl Kept {
    /// A body sending the kept frames (the `Bytes` are shared, not copied).
    pub(super) fn body(&self) -> Body {
        Body::new(Frames {
            data: self.data.iter().cloned().collect(),
            trailers: self.trailers.clone(),
            rest: None,
        })
    }

    /// The frames read so far, then whatever `rest` still has.
    fn followed_by(self, rest: Body) -> Body {
        Body::new(Frames {
            data: self.data.into(),
            trailers: self.trailers,
            rest: Some(rest),
        })
    }
}

/// Reads the frames `body` has ready now, up to `limit` bytes of data. A
/// body that ends within them comes back with a copy kept to send again;
/// otherwise (a frame not ready yet, or more than `limit` bytes) it comes
/// back unchanged to the callee, with nothing kept.
///
/// # Errors
///
/// The body's own error (tonic's encoding error, e.g. a message larger than
/// the channel's limit), which the call would have failed with anyway.
pub(super) async fn keep(mut body: Body, limit: usize) -> Result<(Body, Option<Kept>), Status> {
    if limit == 0 {
        return Ok((body, None));
    }
    let mut kept = Kept::default();
    loop {
        if http_body::Body::is_end_stream(&body) {
            return Ok((kept.body(), Some(kept)));
        }
        let frame = std::future::poll_fn(|context| Poll::Ready(poll_now(&mut body, context))).await;
        let frame = match frame {
            Poll::Pending => return Ok((kept.followed_by(body), None)),
            Poll::Ready(None) => return Ok((kept.body(), Some(kept))),
            Poll::Ready(Some(frame)) => frame?,
        };
        match frame.into_data() {
            Ok(data) => {
                kept.length = kept.length.saturating_add(data.len());
                kept.data.push(data);
            }
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    kept.trailers = Some(trailers);
                }
            }
        }
        if kept.length > limit {
            return Ok((kept.followed_by(body), None));
        }
    }
}

type Polled = Poll<Option<Result<Frame<Bytes>, Status>>>;

fn poll_now(body: &mut Body, context: &mut Context<'_>) -> Polled {
    http_body::Body::poll_frame(Pin::new(body), context)
}

/// Frames read ahead, then the rest of the original body if any.
struct Frames {
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    rest: Option<Body>,
}

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, context: &mut Context<'_>) -> Polled {
        let this = self.get_mut();
        if let Some(data) = this.data.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(trailers) = this.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        match &mut this.rest {
            Some(rest) => poll_now(rest, context),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
            && self.trailers.is_none()
            && self
                .rest
                .as_ref()
                .is_none_or(http_body::Body::is_end_stream)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;

    /// A body whose frames arrive when the test sends them.
    struct Channel(mpsc::UnboundedReceiver<Bytes>);

    impl http_body::Body for Channel {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(self: Pin<&mut Self>, context: &mut Context<'_>) -> Polled {
            self.get_mut()
                .0
                .poll_recv(context)
                .map(|data| data.map(|data| Ok(Frame::data(data))))
        }
    }

    async fn all(body: Body) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_body_whole_at_once_is_kept_and_sent_twice_alike() {
        let (sender, receiver) = mpsc::unbounded_channel();
        sender.send(Bytes::from_static(b"\0\0\0\0\x02hi")).unwrap();
        sender.send(Bytes::from_static(b"there")).unwrap();
        drop(sender);

        let (first, kept) = keep(Body::new(Channel(receiver)), 1024).await.unwrap();
        let kept = kept.expect("kept");
        assert_eq!(all(first).await, &b"\0\0\0\0\x02hithere"[..]);
        assert_eq!(all(kept.body()).await, &b"\0\0\0\0\x02hithere"[..]);
    }

    #[tokio::test]
    async fn a_stream_still_being_written_is_passed_on_whole_and_not_kept() {
        let (sender, receiver) = mpsc::unbounded_channel();
        sender.send(Bytes::from_static(b"first")).unwrap();

        let (body, kept) = keep(Body::new(Channel(receiver)), 1024).await.unwrap();
        assert!(kept.is_none(), "the end was not there yet");
        sender.send(Bytes::from_static(b" second")).unwrap();
        drop(sender);
        assert_eq!(all(body).await, &b"first second"[..]);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_passed_on_whole_and_not_kept() {
        let (sender, receiver) = mpsc::unbounded_channel();
        sender.send(Bytes::from(vec![7_u8; 600])).unwrap();
        sender.send(Bytes::from(vec![8_u8; 600])).unwrap();
        sender.send(Bytes::from(vec![9_u8; 600])).unwrap();
        drop(sender);

        let (body, kept) = keep(Body::new(Channel(receiver)), 1000).await.unwrap();
        assert!(kept.is_none());
        let sent = all(body).await;
        assert_eq!(sent.len(), 1800);
        assert_eq!((sent[0], sent[600], sent[1799]), (7, 8, 9));
    }

    #[tokio::test]
    async fn a_limit_of_zero_keeps_nothing() {
        let (sender, receiver) = mpsc::unbounded_channel();
        sender.send(Bytes::from_static(b"unary")).unwrap();
        drop(sender);

        let (body, kept) = keep(Body::new(Channel(receiver)), 0).await.unwrap();
        assert!(kept.is_none());
        assert_eq!(all(body).await, &b"unary"[..]);
    }
}
