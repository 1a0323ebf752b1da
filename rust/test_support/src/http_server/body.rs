//! Response bodies: whole ones, streamed ones, and one that fails on purpose.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

use super::state::InFlight;

/// Why a response body stopped early; only `/reset-mid-body` produces one.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type every handler returns, whole or streamed.
pub type ResBody = UnsyncBoxBody<Bytes, BodyError>;

/// The one response type every handler returns.
pub type Res = Response<ResBody>;

/// Size of each chunk `/big` writes; small enough to stream, big enough to be fast.
const BIG_CHUNK: usize = 64 * 1024;

/// A body sent in one piece.
pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with `status`, a `Content-Type` and a body sent in one piece.
pub fn with_type(status: StatusCode, content_type: &'static str, body: ResBody) -> Res {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// A JSON response from already serialized text.
pub fn json_text(status: StatusCode, text: impl Into<Bytes>) -> Res {
    with_type(status, "application/json", full(text))
}

/// A JSON response from a value.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Res {
    json_text(status, value.to_string())
}

/// A 4xx answer explaining what was wrong with the request.
pub fn error(status: StatusCode, message: &str) -> Res {
    json(status, &serde_json::json!({ "error": message }))
}

/// `total` bytes of JSON-ish filler lines, produced one chunk at a time so that even
/// gigabytes never sit in memory.
pub fn filler(total: u64) -> ResBody {
    let chunk = filler_chunk();
    let chunks = stream::unfold(total, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let len = usize::try_from(left).map_or(BIG_CHUNK, |left| left.min(BIG_CHUNK));
            let frame = Frame::data(chunk.slice(..len));
            Some((Ok(frame), left - len as u64))
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// One `BIG_CHUNK` of repeated `{"filler":"..."},\n` lines, cut to size.
fn filler_chunk() -> Bytes {
    let line = b"{\"filler\":\"abcdefghijklmnopqrstuvwxyz0123456789\"},\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(BIG_CHUNK).collect();
    Bytes::from(chunk)
}

/// `count` chunks `chunk <i>\n`, the first at once, then one every `interval`.
pub fn trickle(count: u64, interval: Duration) -> ResBody {
    let chunks = stream::unfold(0u64, move |index| async move {
        if index >= count {
            return None;
        }
        if index > 0 {
            tokio::time::sleep(interval).await;
        }
        let frame = Frame::data(Bytes::from(format!("chunk {index}\n")));
        Some((Ok(frame), index + 1))
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// `sent` bytes, a pause so they reach the socket, then an error. The error makes hyper
/// drop the connection (HTTP/1.1) or reset the stream (HTTP/2), so the client sees a
/// truncated body rather than a clean end.
pub fn broken(sent: usize) -> ResBody {
    let chunks = stream::unfold(0u8, move |step| async move {
        match step {
            0 => Some((Ok(Frame::data(Bytes::from(vec![b'x'; sent]))), 1)),
            1 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let error: BodyError = "body aborted on purpose by /reset-mid-body".into();
                Some((Err(error), 2))
            }
            _ => None,
        }
    });
    StreamBody::new(chunks).boxed_unsync()
}

/// Wraps a body so its request stays counted as in flight until the body is done.
pub fn tracked(inner: ResBody, in_flight: InFlight) -> ResBody {
    Tracked {
        inner,
        _in_flight: in_flight,
    }
    .boxed_unsync()
}

/// A body that holds an [`InFlight`] guard while it is being sent.
struct Tracked {
    inner: ResBody,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
