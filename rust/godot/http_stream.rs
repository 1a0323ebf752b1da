//! `HTTPStream`: a response delivered piece by piece as it arrives.
//!
//! `cancel()` marks the object, so no piece is emitted after it returns (queued ones are
//! dropped), and cancels the task, whose `finished` (`ERR_CANCELLED`) follows on a later
//! frame. When the task had already queued its own ending (a short stream whose body was
//! all in, cancelled from its first `line_received`), that ending becomes `ERR_CANCELLED`
//! too: it said `ok` while the pieces after the cancel were dropped, so the game could not
//! have told it had not got the whole stream.

use godot::prelude::*;

use super::class_enums::StreamModeArg;
use super::http_response::HttpResponse;
use crate::core::http::transfer::{SseEvent, StreamHandle};

/// A streamed response: raw chunks, lines or server-sent events as they arrive.
///
/// Started by [method HTTPPool.stream] or [method HTTPPool.stream_events]; it ends with one
/// [signal finished].
///
/// ```gdscript
/// var feed: HTTPStream = pool.stream_events("/matches/42/events")
/// feed.event_received.connect(func(ev: Dictionary):
///     if ev["event"] == "score":
///         show_score(JSON.parse_string(ev["data"])))
/// var res: HTTPResponse = await feed.finished
/// ```
///
/// **Server-sent events** ([constant MODE_EVENTS]) are parsed as the WHATWG HTML standard
/// says ("Server-sent events"): `event`, `data` (several lines join with `\n`), `id` and
/// `retry` fields, comments, CRLF, LF or CR line ends, a leading byte order mark. When
/// the connection drops or the server ends the body, the stream reconnects after the
/// reconnection time (the server's `retry`, else [member HTTPPool.sse_reconnect_delay],
/// doubling for each failed attempt in a row, capped by [member HTTPPool.retry_max_delay];
/// never less than 100 ms, so a server that sends `retry: 0` and ends every connection
/// cannot make the game reconnect in a tight loop, and a huge `retry` waits no longer
/// than [member HTTPPool.retry_max_delay]) with a `Last-Event-ID` header, and gives up after [member HTTPPool.sse_max_reconnects]
/// attempts in a row that brought no event. A `204` answer ends it for good.
///
/// **Delivery.** Pieces are delivered at the start of a frame within the pool's dispatch
/// budget ([member HTTPPool.dispatch_max_per_frame], [member HTTPPool.dispatch_budget_usec]).
/// When the game does not keep up, at most [member HTTPPool.stream_buffer_bytes] of this
/// stream wait; then netkit stops reading its socket until the game took some, so the
/// server is slowed down by TCP flow control. Nothing is dropped and memory stays bounded;
/// a flooding stream delays only itself. A line or event longer than
/// [member HTTPPool.stream_max_line_bytes] ends the stream with
/// [constant HTTPResponse.ERR_BODY_TOO_LARGE].
///
/// The stream is not counted against [member HTTPPool.max_concurrent]; a pool holds at
/// most 64 open streams, and one more ends at once (on a later frame) with
/// [constant HTTPResponse.ERR_QUEUE_FULL]. It ends when the
/// server ends it (not for event streams, which reconnect), on an error, on
/// [method cancel], or when the pool leaves the tree or is freed; dropping every reference
/// to the HTTPStream does not stop it (the pool holds it until it ends). Chunk and line streams
/// are not retried or reconnected: a dropped connection ends them with
/// [constant HTTPResponse.ERR_CONNECTION_LOST] after the pieces that arrived.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted, rename = HTTPStream)]
pub struct HttpStream {
    /// The stream's id (int), unique within its pool.
    #[var(no_set)]
    id: i64,
    /// How the body is delivered: one of [enum HTTPStream.Mode].
    // An explicit getter: the one gdext generates returns a plain `int`, and the help page
    // and autocompletion take a property's type from its getter.
    #[var(get = get_mode, no_set)]
    mode: StreamModeArg,
    /// The `id` of the last server-sent event delivered (what a reconnection sends as
    /// `Last-Event-ID`); empty before.
    #[var(no_set)]
    last_event_id: GString,
    /// The [HTTPResponse] once [signal finished] was emitted: status and headers of the
    /// last connection, [member HTTPResponse.attempts] the number of connections made; for
    /// an error status, up to 64 KiB of its body. `null` before.
    #[var(no_set)]
    response: Option<Gd<HttpResponse>>,
    handle: Option<StreamHandle>,
    cancelled: bool,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpStream {
    // `HTTPStream.Mode` is registered by `class_enums`; these carry its help text only.
    /// Deliver the body as it arrives, through [signal chunk_received].
    #[constant]
    #[cfg(any())]
    const MODE_CHUNKS: i64 = 0;
    /// Deliver each line (ended by CRLF, LF or CR, which is not included) through
    /// [signal line_received]; a last line without a line end too.
    #[constant]
    #[cfg(any())]
    const MODE_LINES: i64 = 1;
    /// Parse server-sent events and deliver them through [signal event_received];
    /// reconnect with `Last-Event-ID`. Sends `Accept: text/event-stream`.
    #[constant]
    #[cfg(any())]
    const MODE_EVENTS: i64 = 2;

    /// Getter of [member mode].
    #[func]
    pub fn get_mode(&self) -> StreamModeArg {
        self.mode
    }

    /// Emitted for each piece of the body in [constant MODE_CHUNKS], in order.
    #[signal]
    pub fn chunk_received(data: PackedByteArray);

    /// Emitted for each line in [constant MODE_LINES], in order; invalid UTF-8 becomes
    /// U+FFFD.
    #[signal]
    pub fn line_received(line: GString);

    /// Emitted for each server-sent event in [constant MODE_EVENTS], in order.
    ///
    /// [param event] has the keys `"event"` (String, `"message"` when the server named
    /// none), `"data"` (String, its `data` lines joined with `\n`), `"id"` (String, the
    /// last event ID in effect, empty for none) and `"retry"` (int, the reconnection time
    /// in milliseconds in effect).
    #[signal]
    pub fn event_received(event: VarDictionary);

    /// Emitted once when the stream ends, with an [HTTPResponse]:
    /// [member HTTPResponse.ok] when the server ended it (or answered `204` to an event
    /// stream), else the error: [constant HTTPResponse.ERR_CANCELLED],
    /// [constant HTTPResponse.ERR_HTTP_STATUS], [constant HTTPResponse.ERR_CONNECTION_LOST],
    /// [constant HTTPResponse.ERR_BODY_TOO_LARGE] (a line or event over the limit),
    /// [constant HTTPResponse.ERR_DECODE] (an event stream whose `Content-Type` is not
    /// `text/event-stream`, or whose last event `id` holds control characters, which a
    /// `Last-Event-ID` header cannot carry back), [constant HTTPResponse.ERR_TIMEOUT] (a
    /// chunk or line stream silent for [member HTTPPool.stream_idle_timeout]), and those
    /// of requests. After [method cancel] it is always [constant HTTPResponse.ERR_CANCELLED].
    #[signal]
    pub fn finished(response: Gd<HttpResponse>);

    /// Ends the stream at once: no [signal chunk_received], [signal line_received] or
    /// [signal event_received] is emitted after this call, and [signal finished] follows
    /// on a later frame with [constant HTTPResponse.ERR_CANCELLED]. Never blocks.
    #[func]
    pub fn cancel(&mut self) {
        self.cancelled = true;
        if let Some(handle) = &self.handle {
            handle.cancel();
        }
    }

    /// Returns `true` once [signal finished] has been emitted.
    #[func]
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }
}

impl HttpStream {
    /// Creates the handle; `handle` is `None` for a stream refused before it started.
    pub fn create(id: u64, mode: i64, handle: Option<StreamHandle>) -> Gd<HttpStream> {
        Gd::from_init_fn(|base| HttpStream {
            id: id as i64,
            mode: StreamModeArg(mode),
            last_event_id: GString::new(),
            response: None,
            handle,
            cancelled: false,
            base,
        })
    }

    /// Whether [method cancel] was called: pieces still queued are dropped.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Records the last event's id and builds its Dictionary.
    pub fn event_dict(&mut self, event: &SseEvent) -> VarDictionary {
        self.last_event_id = GString::from(event.id.as_str());
        let mut dict = VarDictionary::new();
        dict.set("event", &GString::from(event.event.as_str()).to_variant());
        dict.set("data", &GString::from(event.data.as_str()).to_variant());
        dict.set("id", &GString::from(event.id.as_str()).to_variant());
        dict.set("retry", event.retry_ms.min(i64::MAX as u64) as i64);
        dict
    }

    /// Records the ending; the caller emits `finished` once no borrow is held.
    pub fn set_response(&mut self, response: Gd<HttpResponse>) {
        self.response = Some(response);
        self.handle = None;
    }
}
