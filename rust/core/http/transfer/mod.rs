//! Downloads to a file and streamed responses: the long-lived transfers of an HTTP pool.
//!
//! They use the pool's connections, TLS settings and retry policy, but not its
//! `max_concurrent` slots: a patch download of minutes or an event stream that never
//! ends must not hold back the game's saves and logins. Their events travel through a
//! queue of their own ([`Transfers`]), which the node drains in the same frame budget as
//! the pool's responses. A download's progress is not queued at all: it is a pair of
//! counters the node reads once per frame, so a fast download produces no backlog.
//!
//! Files: `download.rs` and `stream.rs` are the tasks; `resume.rs` judges a response
//! against the part file (pure); `part_file.rs` and `file_claim.rs` hold the blocking file
//! work and the per-file claims; `sse.rs` and `lines.rs` are parsers without I/O or a
//! clock; `credit.rs` is the backpressure. The node side is `godot/http_download.rs`,
//! `godot/http_stream.rs` and `godot/transfer_delivery.rs`.
//!
//! Downloads have slots of their own: at most `MAX_RUNNING_DOWNLOADS` (8) of one pool run,
//! a semaphore taken before the file claim; the rest wait with no connection and no file.
//! Without it, a game that started a thousand downloads in a loop opened a thousand
//! connections and part files at once and ran the process out of file descriptors. Streams
//! cannot wait for a slot behind endless streams, so instead at most `MAX_OPEN_STREAMS`
//! (64) are open per pool, a count the stream task gives back when it ends; one more ends
//! at once with `ERR_QUEUE_FULL`. In [`Transfers`] each stream has a lane of its own;
//! download endings share a lane, bounded by the downloads the game started. Transfers take
//! a snapshot of the pool's clients and settings when they start
//! (`HttpPool::transfer_base`).

mod credit;
mod download;
mod file_claim;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod lines;
mod part_file;
mod resume;
mod sse;
mod stream;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use credit::Credit;
pub use download::MANAGED_HEADERS;
pub use lines::{LineSplitter, LineTooLong};
pub use part_file::parse_sha256;
pub use sse::{SseEvent, SseParser};

use super::pool::{HttpPool, TransferBase};
use super::request::{Method, RequestBody};
use super::response::Response;
use crate::core::events::{EventQueue, EventSender, channel};

/// Identifies a download or stream within its [`Transfers`]; never reused.
pub type TransferId = u64;

/// Default of [`DownloadSpec::max_bytes`] (and of `HTTPPool.max_download_bytes`): 4 GiB.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 4 << 30;
/// Default of [`StreamSpec::max_line_bytes`]: 1 MiB per line or event.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Default of [`StreamSpec::buffer_bytes`]: 1 MiB waiting per stream.
pub const DEFAULT_STREAM_BUFFER_BYTES: usize = 1 << 20;
/// The reconnection time of an event stream until the server sends `retry`, in ms (the
/// value browsers use).
pub const DEFAULT_SSE_RETRY_MS: u64 = 3000;
/// Downloads of one [`Transfers`] that run at once; more wait (holding no connection and
/// no file) until one ends. A game that starts a thousand downloads in a loop must not
/// open a thousand connections and files, which runs the process out of file descriptors
/// for everything else, Godot's own files included.
pub const MAX_RUNNING_DOWNLOADS: usize = 8;
/// Streams of one [`Transfers`] open at once; one more ends at once with `QueueFull`.
/// A stream holds its connection for as long as it lives, so waiting for a slot could be
/// for ever; a game that opens streams in a loop gets a clear error instead of running
/// the process out of file descriptors.
pub const MAX_OPEN_STREAMS: usize = 64;
/// Reconnection attempts in a row, without an event between them, before an event stream
/// gives up.
pub const DEFAULT_SSE_MAX_RECONNECTS: u32 = 10;

/// What a download asks for, already converted from engine types.
#[derive(Clone, Debug)]
pub struct DownloadSpec {
    /// The absolute URL.
    pub url: String,
    /// Request headers, the pool's defaults merged in.
    pub headers: Vec<(String, String)>,
    /// Where the file goes; `<file>.part` and `<file>.part.meta` sit beside it meanwhile.
    pub file: PathBuf,
    /// The SHA-256 the complete file must have.
    pub sha256: Option<[u8; 32]>,
    /// Largest file accepted, in bytes.
    pub max_bytes: u64,
}

/// How a stream's body is cut before delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamMode {
    /// Bytes as they arrive.
    Chunks = 0,
    /// Lines (CRLF, LF or CR end one), without their line end.
    Lines = 1,
    /// Server-sent events, with reconnection.
    Events = 2,
}

impl StreamMode {
    /// The mode for `HTTPStream.Mode` value `value`.
    pub fn from_godot(value: i64) -> Option<StreamMode> {
        Some(match value {
            0 => StreamMode::Chunks,
            1 => StreamMode::Lines,
            2 => StreamMode::Events,
            _ => return None,
        })
    }
}

/// What a stream asks for.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Request headers, the pool's defaults merged in.
    pub headers: Vec<(String, String)>,
    /// The body (sent again on every reconnection).
    pub body: RequestBody,
    /// How the body is delivered.
    pub mode: StreamMode,
    /// Longest line, or event data, accepted.
    pub max_line_bytes: usize,
    /// Bytes of undelivered chunks, lines or events that may wait for the game; beyond
    /// it the socket is not read until the game takes some (backpressure).
    pub buffer_bytes: usize,
    /// Reconnection time of an event stream until the server sends `retry`.
    pub retry_ms: u64,
    /// Reconnections in a row without an event in between before an event stream ends.
    pub max_reconnects: u32,
    /// Longest silence of the body (no byte at all, comments and keep-alives included)
    /// before the connection counts as dead: an event stream reconnects, any other ends
    /// with `Timeout`. `None` waits for ever. Without it a half-open connection (a NAT
    /// that forgot it, a phone that changed networks) is a stream that just stops.
    pub idle_timeout: Option<Duration>,
}

impl StreamSpec {
    /// A GET stream of `mode` with the default limits.
    pub fn get(url: impl Into<String>, mode: StreamMode) -> StreamSpec {
        StreamSpec {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: RequestBody::Empty,
            mode,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            buffer_bytes: DEFAULT_STREAM_BUFFER_BYTES,
            retry_ms: DEFAULT_SSE_RETRY_MS,
            max_reconnects: DEFAULT_SSE_MAX_RECONNECTS,
            idle_timeout: None,
        }
    }
}

/// How a download ended.
#[derive(Debug)]
pub struct DownloadOutcome {
    /// Status and headers of the last response, the error and its sentence.
    pub response: Response,
    /// The file, now in place when `response.ok()`.
    pub file: PathBuf,
    /// Bytes in the file (or the part file, when it did not complete).
    pub bytes: u64,
    /// The file's size when the server said it, else `None`.
    pub total: Option<u64>,
    /// Lowercase hex SHA-256 of the complete file; empty when it did not complete.
    pub sha256: String,
    /// Times the download continued an existing part file with a `Range` request that the
    /// server answered with 206.
    pub resumes: u32,
    /// Times it started over from byte 0 after having bytes (server without Range, a
    /// changed validator, or no validator to resume safely), a part file left by an
    /// earlier run that could not be resumed included.
    pub restarts: u32,
}

/// One piece of a stream, in arrival order.
#[derive(Debug)]
pub enum StreamItem {
    /// Raw bytes (mode chunks).
    Chunk(Bytes),
    /// One line (mode lines), lossy UTF-8.
    Line(String),
    /// One server-sent event (mode events).
    Event(SseEvent),
    /// The stream ended: by the server, an error, or cancellation. Always the last item.
    Finished(Response),
}

/// What the node receives.
#[derive(Debug)]
pub enum TransferEvent {
    /// A download ended.
    Download {
        /// Which one.
        id: TransferId,
        /// How.
        outcome: DownloadOutcome,
    },
    /// A piece of a stream; dropping it gives its bytes back to the stream's buffer.
    Stream {
        /// Which stream.
        id: TransferId,
        /// The piece.
        item: StreamItem,
        /// The room it takes in the stream's buffer, returned when this event is dropped.
        credit: Credit,
    },
}

/// Counters a download updates and the node reads once per frame.
#[derive(Debug)]
pub struct Progress {
    received: AtomicU64,
    total: AtomicI64,
    delete_part_on_cancel: AtomicBool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            received: AtomicU64::new(0),
            total: AtomicI64::new(-1),
            delete_part_on_cancel: AtomicBool::new(false),
        }
    }

    /// Bytes of the file received so far, a resumed prefix included.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Acquire)
    }

    /// The file's size, or -1 while unknown.
    pub fn total(&self) -> i64 {
        self.total.load(Ordering::Acquire)
    }

    fn set(&self, received: u64, total: Option<u64>) {
        self.total
            .store(total.map_or(-1, |t| t as i64), Ordering::Release);
        self.received.store(received, Ordering::Release);
    }
}

/// Controls one download from the main thread.
#[derive(Clone, Debug)]
pub struct DownloadHandle {
    /// Its id.
    pub id: TransferId,
    progress: Arc<Progress>,
    token: CancellationToken,
}

impl DownloadHandle {
    /// Live counters.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Stops the download, without blocking; it still ends with `Cancelled`. The part
    /// file is kept for a later resume unless `delete_part`.
    pub fn cancel(&self, delete_part: bool) {
        self.progress
            .delete_part_on_cancel
            .store(delete_part, Ordering::Release);
        self.token.cancel();
    }
}

/// Controls one stream from the main thread.
#[derive(Clone, Debug)]
pub struct StreamHandle {
    /// Its id.
    pub id: TransferId,
    token: CancellationToken,
}

impl StreamHandle {
    /// Stops the stream without blocking; it ends with a `Finished` item (`Cancelled`).
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

/// The downloads and streams of one node, and the queue their events arrive in.
/// Dropping it cancels them all; nothing is delivered afterwards.
pub struct Transfers {
    sender: EventSender<TransferEvent>,
    queue: EventQueue<TransferEvent>,
    next_id: AtomicU64,
    /// Parent of every transfer's token; replaced after `cancel_all`.
    root: Mutex<CancellationToken>,
    /// [`MAX_RUNNING_DOWNLOADS`] permits; a download holds one while it runs.
    download_slots: Arc<Semaphore>,
    /// Streams whose task has not ended.
    open_streams: Arc<AtomicUsize>,
}

/// One open stream in [`Transfers::open_streams`], given back when its task ends.
pub(super) struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Transfers {
    fn default() -> Self {
        Self::new()
    }
}

impl Transfers {
    /// An empty set with its queue.
    pub fn new() -> Transfers {
        let (sender, queue) = channel();
        Transfers {
            sender,
            queue,
            next_id: AtomicU64::new(1),
            root: Mutex::new(CancellationToken::new()),
            download_slots: Arc::new(Semaphore::new(MAX_RUNNING_DOWNLOADS)),
            open_streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn child_token(&self) -> CancellationToken {
        self.root
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .child_token()
    }

    /// Starts a download with `pool`'s clients and settings. It ends with exactly one
    /// [`TransferEvent::Download`].
    pub fn download(&self, pool: &HttpPool, spec: DownloadSpec) -> DownloadHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let base = pool.transfer_base();
        let handle = DownloadHandle {
            id,
            progress: Arc::new(Progress::new()),
            token: self.child_token(),
        };
        let runtime = base.runtime.clone();
        runtime.spawn(download::run(
            base,
            spec,
            handle.clone(),
            self.sender.clone(),
            self.download_slots.clone(),
        ));
        handle
    }

    /// Starts a stream with `pool`'s clients and settings. Its items arrive in order in a
    /// lane of their own, the last one [`StreamItem::Finished`].
    pub fn stream(&self, pool: &HttpPool, spec: StreamSpec) -> StreamHandle {
        if self.open_streams.fetch_add(1, Ordering::AcqRel) >= MAX_OPEN_STREAMS {
            self.open_streams.fetch_sub(1, Ordering::AcqRel);
            let message = format!(
                "{MAX_OPEN_STREAMS} streams of this pool are open already; cancel one (or let it end) before opening another"
            );
            let response = Response::failed(super::ErrorKind::QueueFull, message, &spec.url);
            let id = self.refuse_stream(response);
            return StreamHandle {
                id,
                token: CancellationToken::new(),
            };
        }
        let slot = StreamSlot(self.open_streams.clone());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let base = pool.transfer_base();
        let token = self.child_token();
        // The lane itself is unbounded; the credits bound what waits in it.
        let lane = self.sender.lane(usize::MAX);
        let credits = Arc::new(Semaphore::new(spec.buffer_bytes.clamp(1, 1 << 30)));
        let runtime = base.runtime.clone();
        runtime.spawn(stream::run(
            base,
            spec,
            id,
            token.clone(),
            lane,
            credits,
            slot,
        ));
        StreamHandle { id, token }
    }

    /// Ends a download that could not start (bad URL, bad path, bad digest) through the
    /// queue like any other, so the game learns it the same way; returns its id.
    pub fn refuse_download(&self, response: Response, file: PathBuf) -> TransferId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outcome = DownloadOutcome {
            response,
            file,
            bytes: 0,
            total: None,
            sha256: String::new(),
            resumes: 0,
            restarts: 0,
        };
        self.sender.send(TransferEvent::Download { id, outcome });
        id
    }

    /// Ends a stream that could not start, through the queue; returns its id.
    pub fn refuse_stream(&self, response: Response) -> TransferId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.sender.send(TransferEvent::Stream {
            id,
            item: StreamItem::Finished(response),
            credit: Credit::none(),
        });
        id
    }

    /// Cancels every running download and stream; each still ends with its event.
    pub fn cancel_all(&self) {
        let mut root = self.root.lock().unwrap_or_else(|p| p.into_inner());
        root.cancel();
        *root = CancellationToken::new();
    }

    /// Takes the next event, if any.
    pub fn next_event(&self) -> Option<TransferEvent> {
        self.queue.next()
    }

    /// Events waiting to be taken.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }
}

impl Drop for Transfers {
    fn drop(&mut self) {
        self.root.lock().unwrap_or_else(|p| p.into_inner()).cancel();
    }
}

/// Status and headers of a reply as a [`Response`] without a body.
pub(crate) fn head_response(reply: &reqwest::Response, attempts: u32) -> Response {
    let mut response =
        Response::failed(super::ErrorKind::None, String::new(), reply.url().as_str());
    response.status = reply.status().as_u16();
    response.headers = reply
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    response.attempts = attempts;
    response.http_version = match reply.version() {
        reqwest::Version::HTTP_11 => "HTTP/1.1",
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        _ => "",
    }
    .to_string();
    response
}

/// The time before retry or reconnection `n` (1-based) of a transfer.
pub(crate) fn wait_before(policy_base: Duration, cap: Duration, n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    policy_base.saturating_mul(factor).min(cap.max(policy_base))
}
