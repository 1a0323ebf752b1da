//! One stream's task: the request, the body cut into chunks, lines or server-sent events,
//! each queued only once the stream's buffer has room for it (backpressure), and for
//! event streams the reconnection with `Last-Event-ID` that `EventSource` does.
//!
//! An event stream reconnects after the retry time (the server's, else
//! `sse_reconnect_delay`), doubling per failed attempt in a row, capped by
//! `retry_max_delay` (the server's `retry` too: `retry: 99999999999` would otherwise park
//! the stream for years without a word) and never below 100 ms (`retry: 0` from a server
//! that sends an event and closes would otherwise reconnect in a tight loop, each
//! connection resetting the count). reqwest appends a header the game also set, so an event
//! stream drops the game's `Accept` (a pool-wide `Accept: application/json` let servers
//! pick JSON) and its `Last-Event-ID` once the stream has an id of its own (the saved id,
//! sent first, made each reconnection replay from it). An id a header cannot carry (control
//! characters) ends the stream with `ERR_DECODE` rather than reconnecting without it.
//! `sse_max_reconnects` attempts in a row without an event end it; 204 ends it for good (as
//! `EventSource`); a non-2xx status or a Content-Type other than `text/event-stream` ends
//! it without reconnecting.
//!
//! `stream_idle_timeout` (seconds, default 0: off) bounds the silence between two chunks of
//! the body, keep-alive comments included: past it an event stream reconnects (counted like
//! a drop) and any other stream ends with `ERR_TIMEOUT`. The pool's `timeout` still bounds
//! the wait for the head.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use tokio::sync::Semaphore;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use super::credit::Credit;
use super::lines::{LineSplitter, LineTooLong};
use super::sse::SseParser;
use super::{
    StreamItem, StreamMode, StreamSlot, StreamSpec, TransferBase, TransferEvent, head_response,
    wait_before,
};
use crate::core::events::{LaneSender, Push};
use crate::core::http::classify::{chain, classify};
use crate::core::http::exec::{Simulated, pace_body, simulated_end, simulated_start};
use crate::core::http::{ErrorKind, Response};
use crate::core::simulate::http::BodyPace;

/// Shortest wait before an event stream reconnects, whatever `retry` says.
pub(super) const MIN_RECONNECT: Duration = Duration::from_millis(100);

/// What one queued item costs besides its bytes (the event itself and its place in the
/// queue), charged to the stream's buffer with them: a flood of empty lines or events
/// would otherwise queue a million items, each far larger than the one byte it counts.
const ITEM_COST: usize = std::mem::size_of::<TransferEvent>() + 16;

/// Sends the stream's items; also its one `Finished`, even when the task is dropped.
struct Out {
    lane: LaneSender<TransferEvent>,
    credits: Arc<Semaphore>,
    buffer: usize,
    id: u64,
    url: String,
    finished: bool,
}

/// The node is gone: stop.
struct Gone;

impl Out {
    /// Waits for room in the buffer (the socket is not read meanwhile), then queues.
    async fn item(&self, item: StreamItem, bytes: usize) -> Result<(), Gone> {
        let credit = Credit::take(&self.credits, bytes + ITEM_COST, self.buffer)
            .await
            .ok_or(Gone)?;
        match self.lane.send(TransferEvent::Stream {
            id: self.id,
            item,
            credit,
        }) {
            Push::Queued => Ok(()),
            Push::Full | Push::Gone => Err(Gone),
        }
    }

    fn finish(&mut self, response: Response) {
        self.finished = true;
        let _ = self.lane.send(TransferEvent::Stream {
            id: self.id,
            item: StreamItem::Finished(response),
            credit: Credit::none(),
        });
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        if !self.finished {
            let url = self.url.clone();
            self.finish(Response::failed(
                ErrorKind::Cancelled,
                "the stream was stopped because netkit's runtime shut down",
                &url,
            ));
        }
    }
}

/// How one connection ended.
enum End {
    /// The stream is over with this response (no reconnection).
    Over(Response),
    /// The connection ended or broke; an event stream reconnects. `events` counts what
    /// it delivered.
    Dropped { response: Response, events: u64 },
    /// The node is gone.
    Gone,
}

pub(super) async fn run(
    base: TransferBase,
    spec: StreamSpec,
    id: u64,
    token: CancellationToken,
    lane: LaneSender<TransferEvent>,
    credits: Arc<Semaphore>,
    _slot: StreamSlot,
) {
    let mut out = Out {
        lane,
        credits,
        buffer: spec.buffer_bytes,
        id,
        url: spec.url.clone(),
        finished: false,
    };
    let started = Instant::now();
    let mut task = StreamTask {
        pace: None,
        parser: SseParser::new(spec.max_line_bytes, spec.retry_ms),
        spec,
        base,
        connections: 0,
    };
    let result = tokio::select! {
        biased;
        _ = token.cancelled() => None,
        response = task.run(&out) => Some(response),
    };
    let mut response = match result {
        Some(Some(response)) => response,
        Some(None) => return, // the node is gone: nobody to tell
        None => Response::failed(
            ErrorKind::Cancelled,
            "the stream was cancelled",
            &task.spec.url,
        ),
    };
    response.attempts = task.connections;
    response.elapsed = started.elapsed();
    out.finish(response);
}

struct StreamTask {
    /// The pace simulated conditions set for the current connection's body, if any.
    pace: Option<BodyPace>,
    spec: StreamSpec,
    base: TransferBase,
    parser: SseParser,
    connections: u32,
}

impl StreamTask {
    /// Connects (and for event streams reconnects) until the stream is over; `None` when
    /// the node is gone.
    async fn run(&mut self, out: &Out) -> Option<Response> {
        let clients = match &self.base.clients {
            Ok(clients) => clients.clone(),
            Err(message) => {
                return Some(Response::failed(
                    ErrorKind::Tls,
                    message.clone(),
                    &self.spec.url,
                ));
            }
        };
        let events = self.spec.mode == StreamMode::Events;
        let mut failures = 0u32;
        loop {
            self.connections += 1;
            // Simulated network conditions (`core::simulate`) delay or fail the connection,
            // which an event stream then reconnects like a real one.
            let end = match simulated_start(&clients, &self.spec.url, 0).await {
                Err(response) => End::Dropped {
                    response,
                    events: 0,
                },
                Ok(sim) => {
                    simulated_end(sim).await;
                    self.pace = Simulated::body_pace(sim);
                    self.connect(&clients.pooled, clients.own_ca, out).await
                }
            };
            match end {
                End::Gone => return None,
                End::Over(response) => return Some(response),
                End::Dropped {
                    response,
                    events: delivered,
                } => {
                    if !events {
                        return Some(response);
                    }
                    // A connection that brought events resets the count: only reconnections
                    // in a row that bring nothing are bounded.
                    failures = if delivered > 0 { 1 } else { failures + 1 };
                    if failures > self.spec.max_reconnects {
                        let mut response = response;
                        response.error_message.push_str(&format!(
                            " (gave up after {} reconnections in a row without an event)",
                            self.spec.max_reconnects
                        ));
                        return Some(response);
                    }
                    // The server's `retry` is bounded both ways: a huge one must not park
                    // the stream for years without a word, a zero one must not turn a
                    // server that ends every connection at once into a reconnect storm.
                    let cap = self.base.settings.retry_max_delay.max(MIN_RECONNECT);
                    let retry =
                        Duration::from_millis(self.parser.retry_ms()).clamp(MIN_RECONNECT, cap);
                    tokio::time::sleep(wait_before(retry, cap, failures)).await;
                    self.parser.reconnected();
                }
            }
        }
    }

    async fn connect(&mut self, client: &reqwest::Client, own_ca: bool, out: &Out) -> End {
        let url = self.spec.url.clone();
        let events = self.spec.mode == StreamMode::Events;
        let mut builder = client.request(self.spec.method.as_reqwest(), &url);
        let mut has_content_type = false;
        for (name, value) in &self.spec.headers {
            // An event stream sends its own `Accept` (a pool's default
            // `Accept: application/json` beside it would let the server pick JSON), and its
            // own `Last-Event-ID` once an id arrived: the game's one names where to start
            // and, sent again beside netkit's, made every reconnection replay from there.
            if events
                && (name.eq_ignore_ascii_case("accept")
                    || (name.eq_ignore_ascii_case("last-event-id")
                        && !self.parser.last_event_id().is_empty()))
            {
                continue;
            }
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            builder = builder.header(name.as_str(), value.as_str());
        }
        if events {
            // As EventSource sends them (WHATWG HTML, "Server-sent events").
            builder = builder
                .header(ACCEPT, "text/event-stream")
                .header(CACHE_CONTROL, "no-store");
            let id = self.parser.last_event_id();
            if !id.is_empty() {
                // The standard lets an id hold any character but NUL; a header cannot carry
                // control characters. Reconnecting without it would replay the stream from
                // its start, so the stream ends and says why.
                let Ok(value) = HeaderValue::from_str(id) else {
                    return End::Over(Response::failed(
                        ErrorKind::Decode,
                        format!(
                            "the event stream's last id ({} bytes) holds control characters, which a Last-Event-ID header cannot carry; the stream cannot resume from it and ended instead of reconnecting",
                            id.len()
                        ),
                        &url,
                    ));
                };
                builder = builder.header("last-event-id", value);
            }
        }
        if let Some(bytes) = self.spec.body.bytes() {
            if !has_content_type && let Some(ct) = self.spec.body.content_type() {
                builder = builder.header(CONTENT_TYPE, ct);
            }
            builder = builder.body(bytes);
        }
        let head_timeout = self.base.settings.timeout;
        let dropped = |response| End::Dropped {
            response,
            events: 0,
        };
        let mut reply = match timeout(head_timeout, builder.send()).await {
            Err(_) => {
                let message = format!(
                    "no answer from {url} within {:.1} s (the pool's timeout)",
                    head_timeout.as_secs_f64()
                );
                return dropped(Response::failed(ErrorKind::Timeout, message, &url));
            }
            Ok(Err(err)) => {
                let (kind, message) = classify(&err, &url, own_ca);
                let response = Response::failed(kind, message, &url);
                return match kind {
                    ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::ConnectionLost => {
                        dropped(response)
                    }
                    _ => End::Over(response),
                };
            }
            Ok(Ok(reply)) => reply,
        };
        let mut head = head_response(&reply, self.connections);
        let status = head.status;
        if events && status == 204 {
            // The standard's way for a server to say "do not reconnect".
            return End::Over(head);
        }
        if !(200..300).contains(&status) {
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            head.error = ErrorKind::HttpStatus;
            head.error_message = format!("the server answered {status} {reason}")
                .trim_end()
                .to_string();
            // Status and headers are kept; the body of an error is read up to a small
            // bound so the game can show the server's explanation.
            head.body = read_some(&mut reply, 64 * 1024).await;
            return End::Over(head);
        }
        if events {
            let content_type = head
                .header("content-type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if !content_type.starts_with("text/event-stream") {
                head.error = ErrorKind::Decode;
                head.error_message = format!(
                    "{url} answered with Content-Type '{content_type}', not text/event-stream; it is not an event stream"
                );
                return End::Over(head);
            }
        }
        let mut lines = LineSplitter::new(self.spec.max_line_bytes);
        let mut delivered = 0u64;
        loop {
            let next = match self.spec.idle_timeout {
                Some(idle) => match timeout(idle, reply.chunk()).await {
                    Ok(next) => next,
                    Err(_) => {
                        head.error = ErrorKind::Timeout;
                        head.error_message = format!(
                            "no byte of the stream from {url} arrived for {:.1} s (stream_idle_timeout); the connection was taken for dead",
                            idle.as_secs_f64()
                        );
                        return End::Dropped {
                            response: head,
                            events: delivered,
                        };
                    }
                },
                None => reply.chunk().await,
            };
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    if self.spec.mode == StreamMode::Lines
                        && let Some(last) = lines.finish()
                    {
                        let text = String::from_utf8_lossy(&last).into_owned();
                        if out.item(StreamItem::Line(text), last.len()).await.is_err() {
                            return End::Gone;
                        }
                    }
                    head.error_message = if events {
                        format!("{url} ended the event stream")
                    } else {
                        String::new()
                    };
                    return if events {
                        End::Dropped {
                            response: head,
                            events: delivered,
                        }
                    } else {
                        End::Over(head)
                    };
                }
                Err(err) => {
                    head.error = ErrorKind::ConnectionLost;
                    head.error_message = format!(
                        "the connection to {url} broke during the stream: {}",
                        chain(&err)
                    );
                    return End::Dropped {
                        response: head,
                        events: delivered,
                    };
                }
            };
            pace_body(&mut self.pace, chunk.len()).await;
            let result = match self.spec.mode {
                StreamMode::Chunks => self.chunks(chunk, out).await,
                StreamMode::Lines => self.lines(&mut lines, &chunk, out).await,
                StreamMode::Events => self.events(&chunk, out, &mut delivered).await,
            };
            match result {
                Ok(Ok(())) => {}
                Ok(Err(too_long)) => {
                    head.error = ErrorKind::BodyTooLarge;
                    head.error_message = format!(
                        "a {} of the stream from {url} is longer than max_line_bytes ({} bytes); the stream was closed",
                        if events { "line or event" } else { "line" },
                        too_long.max
                    );
                    return End::Over(head);
                }
                Err(Gone) => return End::Gone,
            }
        }
    }

    async fn chunks(&self, chunk: Bytes, out: &Out) -> Result<Result<(), LineTooLong>, Gone> {
        // A chunk bigger than the whole buffer is cut, so it never waits for room that
        // cannot exist.
        let mut rest = chunk;
        while !rest.is_empty() {
            let piece = rest.split_to(rest.len().min(out.buffer.max(1)));
            let len = piece.len();
            out.item(StreamItem::Chunk(piece), len).await?;
        }
        Ok(Ok(()))
    }

    async fn lines(
        &self,
        splitter: &mut LineSplitter,
        chunk: &[u8],
        out: &Out,
    ) -> Result<Result<(), LineTooLong>, Gone> {
        let mut found = Vec::new();
        let split = splitter.push(chunk, |line| {
            found.push(String::from_utf8_lossy(line).into_owned())
        });
        for line in found {
            let len = line.len();
            out.item(StreamItem::Line(line), len).await?;
        }
        Ok(split)
    }

    async fn events(
        &mut self,
        chunk: &[u8],
        out: &Out,
        delivered: &mut u64,
    ) -> Result<Result<(), LineTooLong>, Gone> {
        let parsed = match self.parser.push(chunk) {
            Ok(events) => events,
            Err(too_long) => return Ok(Err(too_long)),
        };
        for event in parsed {
            let len = event.data.len() + event.event.len() + event.id.len();
            out.item(StreamItem::Event(event), len).await?;
            *delivered += 1;
        }
        Ok(Ok(()))
    }
}

/// Longest time spent reading an error response's explanation, in all.
const ERROR_BODY_TIME: Duration = Duration::from_secs(2);

/// Up to `max` bytes of a body (an error response's explanation), read for at most
/// [`ERROR_BODY_TIME`] in all: a server that trickles a byte now and then must not hold
/// back the error (a bound per chunk alone let 64 KiB at one byte a second take 18 hours).
async fn read_some(reply: &mut reqwest::Response, max: usize) -> Bytes {
    let mut body = Vec::new();
    let deadline = tokio::time::Instant::now() + ERROR_BODY_TIME;
    while body.len() < max {
        match tokio::time::timeout_at(deadline, reply.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())])
            }
            _ => break,
        }
    }
    Bytes::from(body)
}
