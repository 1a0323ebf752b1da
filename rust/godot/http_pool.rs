//! `HTTPPool`: the node a game talks to its backend through.
//!
//! `exit_tree` cancels every request and transfer. When the node is freed, the core pool is
//! dropped (every request aborted, nothing more delivered) and every task, download and
//! stream still awaited gets `ERR_CANCELLED`: during the game from a callable queued with
//! `call_deferred` at `NOTIFICATION_PREDELETE` (emitting there would run handlers inside the
//! notification), which the message queue runs later in the same frame. When the game
//! quits, Godot has flushed its message queue before it frees the tree, so a deferred call
//! would never run, and an `await task.completed` left hanging keeps the task and its
//! coroutine alive in a cycle that Godot reports as leaked at exit: then the tasks end at
//! once, under `base_mut()`, gdext's re-entrant borrow.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use godot::classes::notify::NodeNotification;
use godot::classes::{INode, Node};
use godot::prelude::*;

use super::class_enums::HttpMethod;
use super::class_enums::StreamModeArg;
use super::frame_hook::FrameBudget;
use super::http_download::HttpDownload;
use super::http_response::HttpResponse;
use super::http_stream::HttpStream;
use super::http_task::HttpTask;
use super::json_variant::variant_to_json;
use super::stats_dict::stats_dict;
use crate::core::http::{
    ErrorKind, HttpPool as CorePool, ParsedRequest, PoolSettings, Rejected, RequestBody,
    RequestSpec,
};

/// A pooled, keep-alive HTTP client node for a game's backend calls.
///
/// One node replaces a crowd of [HTTPRequest] nodes for login, profiles, leaderboards and
/// saves: connections are kept open and reused (HTTP/2 where the server offers it), at most
/// [member max_concurrent] requests run at once and the rest wait in order, failed attempts
/// are retried with backoff, and JSON is parsed on a background thread. Every request ends
/// exactly once, with an [HTTPResponse], through [signal HTTPTask.completed] and then
/// [signal request_completed].
///
/// ```gdscript
/// var pool := HTTPPool.new()
/// pool.base_url = "https://api.example.com"
/// pool.default_headers = {"Authorization": "Bearer " + token}
/// add_child(pool)
///
/// var task := pool.request(HTTPClient.METHOD_POST, "/scores", {"score": 10})
/// var res: HTTPResponse = await task.completed
/// if res.ok:
///     print(res.json)
/// else:
///     print(res.get_error_name(), ": ", res.error_message)
/// ```
///
/// **Delivery.** Finished requests are delivered at the start of each frame
/// (`SceneTree.process_frame`), at most [member dispatch_max_per_frame] of them and for at
/// most [member dispatch_budget_usec] per frame; the rest wait for the next frame, in order.
/// In the tree, delivery follows the node's processing as `_process` would: results wait
/// while the tree is paused (unless [member Node.process_mode] lets this node run) and after
/// `set_process(false)`. A pool outside the tree still delivers. Handlers may free the pool,
/// its parent or anything else, and may call [method request] again.
///
/// **Lifetime.** Removing the node from the tree cancels its requests: each ends with
/// [constant HTTPResponse.ERR_CANCELLED]. Freeing the node ends every task still awaited with
/// [constant HTTPResponse.ERR_CANCELLED] later in the same frame, without
/// [signal request_completed].
///
/// **Downloads and streams.** [method download] writes a response to a file with progress,
/// resume and a SHA-256 check ([HTTPDownload]); [method stream] and [method stream_events]
/// deliver a response as it arrives, as chunks, lines or server-sent events
/// ([HTTPStream]). They share this pool's connections, TLS settings, retry policy and
/// dispatch budget, but not its [member max_concurrent] slots.
///
/// **Settings.** A property change applies to the requests made after it; a request already
/// queued or running keeps the settings it was made with.
#[derive(GodotClass)]
#[class(init, base = Node, rename = HTTPPool)]
pub struct HttpPool {
    /// Text put before every request path, e.g.
    /// `"https://api.example.com/v1"`.
    ///
    /// The path is appended with exactly one `/` between them: `"https://x/v1"` and
    /// `"/scores"` make `"https://x/v1/scores"`. This is concatenation, not RFC 3986
    /// reference resolution, which would drop the `/v1`. A path that is itself a full
    /// `http://` or `https://` URL is used as is. A path with a colon in its first segment
    /// (`"ht!tp://x"`, `"localhost:8080/x"`) is a broken URL, not a path (RFC 3986 section
    /// 4.2), and ends with `ERR_INVALID_URL`; so does a relative path while [member base_url] is
    /// empty.
    #[export_group(name = "Connection")]
    #[export]
    base_url: GString,
    /// Headers sent with every request, header name to value, e.g.
    /// `{"Authorization": "Bearer " + token}`. Values are converted to text.
    ///
    /// A header of the same name passed to [method request] replaces the default one for that
    /// request (names compare case-insensitively, RFC 9110 section 5.1).
    #[export]
    pub(super) default_headers: VarDictionary,
    /// The `User-Agent` header sent unless a request sets its own; by default
    /// `"godot-netkit/"` followed by the addon's version.
    #[export]
    #[init(val = GString::from(concat!("godot-netkit/", env!("CARGO_PKG_VERSION"))))]
    user_agent: GString,
    /// Requests that run at once; more wait in a first-in, first-out queue.
    #[export(range = (1.0, 256.0, or_greater))]
    #[init(val = 8)]
    max_concurrent: i64,
    /// Requests that may wait for a free slot. One more ends at once with
    /// [constant HTTPResponse.ERR_QUEUE_FULL]; nothing waits without a bound.
    #[export(range = (0.0, 100000.0, or_greater))]
    #[init(val = 1024)]
    max_queued: i64,
    /// Seconds one attempt may take, from sending the request to the last byte of the body,
    /// like [member HTTPRequest.timeout]. A slower attempt ends with
    /// [constant HTTPResponse.ERR_TIMEOUT], and is retried as [member max_retries] allows.
    #[export(range = (0.1, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 30.0)]
    timeout: f64,
    /// Seconds allowed to open a connection, TCP and TLS handshake together.
    /// Running out ends the attempt with [constant HTTPResponse.ERR_TIMEOUT].
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 10.0)]
    connect_timeout: f64,
    /// Largest response body accepted, in bytes (16 MiB by default).
    ///
    /// A larger body ends the request with [constant HTTPResponse.ERR_BODY_TOO_LARGE]: at once
    /// when `Content-Length` announces it, otherwise when the download passes the limit, and
    /// then [member HTTPResponse.body] keeps the bytes read so far.
    #[export(range = (0.0, 1073741824.0, or_greater, suffix = "B"))]
    #[init(val = 16 * 1024 * 1024)]
    max_body_bytes: i64,
    /// Redirects followed per attempt; 0 returns the 3xx response itself.
    ///
    /// 301, 302 and 303 continue with a GET without body, 307 and 308 repeat the method and
    /// body (RFC 9110 section 15.4). One more redirect ends the request with
    /// [constant HTTPResponse.ERR_TOO_MANY_REDIRECTS].
    #[export(range = (0.0, 50.0))]
    #[init(val = 10)]
    max_redirects: i64,
    /// Seconds a keep-alive connection may sit idle in the pool before
    /// it is closed instead of reused. Keep it below your server's keep-alive timeout (Node.js and
    /// Apache: 5 s, nginx: 75 s) so requests rarely meet a connection the server is closing.
    /// When one does anyway, an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, or one
    /// with an `Idempotency-Key` header) is sent again at once on a new connection, without
    /// spending a retry; any other request ends with [constant HTTPResponse.ERR_CONNECTION_LOST]
    /// and is never sent twice.
    #[export_subgroup(name = "Keep-Alive", prefix = "pool_")]
    #[export(range = (0.1, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 4.0)]
    pool_idle_timeout: f64,
    /// Retries after the first attempt; 0 turns retries off.
    ///
    /// A retry follows a connection error, a timeout, or one of the statuses 408, 429, 500,
    /// 502, 503 and 504, which say "try again later". Only requests that are safe to repeat
    /// are retried: the idempotent methods of RFC 9110 section 9.2.2 (GET, HEAD, PUT, DELETE,
    /// OPTIONS, TRACE) and any request carrying an `Idempotency-Key` header. For other
    /// requests the [member HTTPResponse.error_message] says why no retry was made.
    #[export_group(name = "Retries")]
    #[export(range = (0.0, 20.0, or_greater))]
    #[init(val = 2)]
    max_retries: i64,
    /// Base of the wait between attempts, in seconds.
    ///
    /// The wait before retry `n` is a random time between 0 and
    /// `min(retry_max_delay, retry_base_delay * 2^(n - 1))` ("full jitter"), so clients that
    /// failed together do not come back together. A `Retry-After` header from the server
    /// (RFC 9110 section 10.2.3, seconds or a date) is waited for instead.
    // The subgroup's prefix makes the labels "Base Delay" and "Max Delay", which fit the
    // default dock width ("Retry Base Dela..." did not); scripts keep the full names.
    #[export_subgroup(name = "Backoff", prefix = "retry_")]
    #[export(range = (0.0, 60.0, 0.01, or_greater, suffix = "s"))]
    #[init(val = 0.5)]
    retry_base_delay: f64,
    /// Longest wait between attempts, in seconds.
    ///
    /// It caps the backoff of [member retry_base_delay]. A `Retry-After` longer than this is
    /// not waited for: the response is returned at once, and its
    /// [member HTTPResponse.error_message] says how long the server asked to wait. A durable
    /// request ([method request_durable]) waits this long instead and tries again.
    #[export(range = (0.0, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 30.0)]
    retry_max_delay: f64,
    /// Most finished requests delivered per frame; the rest wait for the
    /// next frame, in order.
    #[export_group(name = "Dispatch", prefix = "dispatch_")]
    #[export(range = (1.0, 10000.0, or_greater))]
    #[init(val = 256)]
    dispatch_max_per_frame: i64,
    /// Microseconds per frame spent delivering finished requests, handlers included (0
    /// means no time limit). The rest wait for the next frame, in order; at
    /// least one is delivered per frame.
    #[export(range = (0.0, 100000.0, or_greater))]
    #[init(val = 2000)]
    dispatch_budget_usec: i64,
    /// Whether this pool opens its durable outbox when it enters the
    /// tree, replaying what an earlier run left pending; [method request_durable] opens it
    /// anyway. Only one pool may have a given [member outbox_path] open.
    #[export_group(name = "Outbox", prefix = "outbox_")]
    #[export]
    pub(super) outbox_enabled: bool,
    /// Where the durable outbox is stored: a `user://` or absolute path, read when the
    /// outbox opens.
    #[export(file = "*.redb")]
    #[init(val = GString::from("user://netkit_outbox.redb"))]
    pub(super) outbox_path: GString,
    /// Seconds a durable request is tried before it is given up as a dead letter (604800,
    /// a week, by default), counted from [method request_durable] across restarts.
    #[export(range = (1.0, 31536000.0, 1.0, or_greater, suffix = "s"))]
    #[init(val = 604_800.0)]
    pub(super) outbox_max_age: f64,
    /// Durable requests that the store may hold at once, pending ones and dead letters
    /// together. One more ends at once with
    /// [constant HTTPResponse.ERR_QUEUE_FULL] and is not stored; dropping or retrying dead
    /// letters makes room.
    #[export(range = (1.0, 1000000.0, or_greater))]
    #[init(val = 10_000)]
    pub(super) outbox_max_pending: i64,
    /// Whether [method request_durable] commits its entry to disk before it returns.
    ///
    /// `true`: one fsync on the calling thread per call (a few milliseconds, see the
    /// README), and an entry survives even a crash or SIGKILL right after the call.
    /// `false`: the call only queues the entry; a background thread commits everything
    /// queued in one fsync, typically within milliseconds, and the entry is sent once it is
    /// on disk. Freeing the pool or quitting commits what is still queued first, so a clean
    /// exit (including a SIGTERM handled through [signal Netkit.shutdown_requested]) loses
    /// nothing; a crash or SIGKILL in those milliseconds loses the entry. A background write
    /// that fails ends the task with [constant HTTPResponse.ERR_FILE] and prints
    /// the error.
    #[export]
    #[init(val = true)]
    pub(super) outbox_sync_write: bool,
    /// Longest line of a [constant HTTPStream.MODE_LINES] stream, and longest line or event
    /// data of a [constant HTTPStream.MODE_EVENTS] stream, in bytes (1 MiB by default). A
    /// longer one ends the stream with [constant HTTPResponse.ERR_BODY_TOO_LARGE].
    #[export_group(name = "Streams")]
    #[export_subgroup(name = "Limits", prefix = "stream_")]
    #[export(range = (1.0, 1073741824.0, or_greater, suffix = "B"))]
    #[init(val = crate::core::http::transfer::DEFAULT_MAX_LINE_BYTES as i64)]
    stream_max_line_bytes: i64,
    /// Bytes of one stream's chunks, lines or events that may wait for delivery (1 MiB
    /// by default). Each piece counts its bytes plus the few hundred its own record
    /// takes, so a flood of empty lines cannot queue a million of them. When the game does
    /// not keep up, netkit stops reading that stream's socket until some were delivered:
    /// the server slows down, nothing is lost.
    #[export(range = (1.0, 1073741824.0, or_greater, suffix = "B"))]
    #[init(val = crate::core::http::transfer::DEFAULT_STREAM_BUFFER_BYTES as i64)]
    stream_buffer_bytes: i64,
    /// Seconds a stream's body may stay silent (not one byte, comments and keep-alives
    /// included) before netkit takes the connection for dead; 0 waits for ever.
    /// An event stream then reconnects with `Last-Event-ID`; a chunk or line stream
    /// ends with [constant HTTPResponse.ERR_TIMEOUT]. Without it a half-open connection (a
    /// NAT that forgot it, a phone that changed networks) is a stream that just stops; set
    /// it above the server's keep-alive interval (e.g. 45.0 for a comment every 15 s).
    #[export(range = (0.0, 3600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 0.0)]
    stream_idle_timeout: f64,
    /// Seconds an event stream waits before reconnecting until the server sends a `retry`
    /// field (3 by default, as browsers); it doubles for each failed attempt in a
    /// row, up to [member retry_max_delay]. Below 0.1 it counts as 0.1, as does a
    /// server's `retry` (no reconnect storm).
    #[export_subgroup(name = "Server-Sent Events", prefix = "sse_")]
    #[export(range = (0.0, 600.0, 0.01, or_greater, suffix = "s"))]
    #[init(val = crate::core::http::transfer::DEFAULT_SSE_RETRY_MS as f64 / 1000.0)]
    sse_reconnect_delay: f64,
    /// Reconnections in a row without an event in between after which an event stream
    /// ends with the last error.
    #[export(range = (0.0, 1000.0, or_greater))]
    #[init(val = i64::from(crate::core::http::transfer::DEFAULT_SSE_MAX_RECONNECTS))]
    sse_max_reconnects: i64,
    /// Largest file [method download] accepts, in bytes (4 GiB by default). A larger file
    /// ends the download with [constant HTTPResponse.ERR_BODY_TOO_LARGE]: at once when the
    /// server announces its size, otherwise when it grows past the limit, and its part file
    /// is removed. [member max_body_bytes] does not apply to downloads.
    #[export_group(name = "Downloads")]
    #[export(range = (0.0, 1099511627776.0, or_greater, suffix = "B"))]
    #[init(val = crate::core::http::transfer::DEFAULT_MAX_DOWNLOAD_BYTES as i64)]
    max_download_bytes: i64,
    /// Simulated network conditions for this pool's requests; empty: follow
    /// the process-wide ones set by [method Netkit.simulate_network], `NETKIT_SIMULATE` or
    /// `netkit/debug/simulate`), in the syntax of [method Netkit.simulate_network], e.g.
    /// `"latency=200ms failure=10%"`. `latency` and `jitter` delay each attempt before it
    /// is sent, `in:latency` and `in:jitter` before its answer is delivered, and `failure`
    /// turns that share of attempts into a refused connection or a `503`, which the retry
    /// policy handles as real ones. Applies to requests, the durable outbox, AgonesSDK
    /// calls, downloads and streams. Set it to `"latency=0ms"` to keep this pool
    /// clean while the process simulates. An unreadable value is reported in the output
    /// when the next request is made, and the pool then follows the process.
    #[export_group(name = "Simulation")]
    #[export(placeholder = "latency=200ms failure=10%")]
    simulate: GString,
    /// Whether HTTPS server certificates are verified.
    ///
    /// Turn it off only for throwaway local tests: anyone on the path could then read and
    /// change the traffic. For a development server with a self-signed certificate, add that
    /// certificate to [member trusted_ca_pem] instead.
    #[export_group(name = "TLS")]
    #[export]
    #[init(val = true)]
    verify_tls: bool,
    /// Extra certificate authorities to trust, as PEM text, besides the
    /// bundled Mozilla root certificates. A self-signed certificate is its own authority, and
    /// a server whose certificate is exactly one given here is trusted even when it is marked
    /// as an authority (as `openssl req -x509` makes it); its host name is still checked.
    ///
    /// A PEM that cannot be read is reported in the output when the next request is made,
    /// and requests end with [constant HTTPResponse.ERR_TLS] until it is fixed.
    #[export(multiline)]
    trusted_ca_pem: GString,
    pub(super) outbox: super::durable_outbox::DurableOutbox,
    core: Option<CorePool>,
    /// Downloads and streams (`transfer_delivery`).
    pub(super) transfers: super::transfer_delivery::TransferState,
    /// The property values the core was last configured from; compared on every request
    /// without touching the core's lock (which worker threads take on every completion).
    applied: Option<PropertySnapshot>,
    /// Whether `SceneTree.process_frame` already calls [`HttpPool::deliver`] for this node.
    hooked: bool,
    pub(super) tasks: HashMap<u64, Gd<HttpTask>>,
    frames_with_dispatch: u64,
    dispatched: u64,
    last_frame_dispatched: i64,
    base: Base<Node>,
}

#[godot_api]
impl INode for HttpPool {
    fn ready(&mut self) {
        // Delivery runs from the frame hook, not `_process`, but follows the processing
        // flag so `set_process(false)` holds results back as it would for `_process`.
        self.base_mut().set_process(true);
        self.open_outbox_if_enabled();
    }

    fn exit_tree(&mut self) {
        if let Some(core) = &self.core {
            core.cancel_all();
        }
        self.transfers.cancel_all();
    }

    fn on_notification(&mut self, what: NodeNotification) {
        if what == NodeNotification::PREDELETE {
            let requests = self.end_pending_tasks();
            let transfers = self.transfers.end_pending();
            let work: Vec<Box<dyn FnOnce()>> = requests.into_iter().chain(transfers).collect();
            if work.is_empty() {
                return;
            }
            if tree_is_being_freed() {
                // The game is quitting: no frame, and no message-queue flush, follows, so
                // a deferred call would never run, and an `await task.completed` never
                // resumed keeps the task and its coroutine alive in a cycle that Godot
                // reports as leaked at exit. Emit now; `base_mut()` lets handlers call
                // back into the pool (gdext's re-entrant borrow), so none is held.
                let _reentrant = self.base_mut();
                for work in work {
                    work();
                }
                return;
            }
            // Freed during the game: emitting here would run handlers inside this
            // notification; the message queue runs them later in this frame.
            let mut pending = Some(work);
            Callable::from_fn("HTTPPool.cancel_freed", move |_args| {
                for work in pending.take().unwrap_or_default() {
                    work();
                }
                Variant::nil()
            })
            .call_deferred(&[]);
        }
    }
}

#[godot_api]
impl HttpPool {
    /// Emitted for every finished request, right after its [signal HTTPTask.completed], for
    /// code that prefers one handler for all requests.
    ///
    /// [param task_id] is the task's [member HTTPTask.id]; [param response] is the same
    /// [HTTPResponse] the task got.
    #[signal]
    fn request_completed(task_id: i64, response: Gd<HttpResponse>);

    /// Emitted when the backend accepted a durable request (a 2xx), right after the
    /// [signal HTTPTask.completed] of its task when it was made in this run; also for entries
    /// replayed from an earlier run, which have no task.
    ///
    /// [param entry_id] is the entry's id in the outbox (the task's [member HTTPTask.id]);
    /// [param response] is the accepting [HTTPResponse].
    #[signal]
    pub(super) fn durable_delivered(entry_id: i64, response: Gd<HttpResponse>);

    /// Emitted when a durable request was given up and kept as a dead letter: the backend
    /// refused it for good (a 4xx other than 408 and 429), or it was older than
    /// [member outbox_max_age]. [method get_dead_letters] lists it.
    ///
    /// [param entry_id] is the entry's id; [param response] is the last answer, and its
    /// [member HTTPResponse.error_message] says why it was given up.
    #[signal]
    pub(super) fn durable_dead_lettered(entry_id: i64, response: Gd<HttpResponse>);

    /// Starts a request, or queues it behind [member max_concurrent] running ones, and returns
    /// its [HTTPTask] at once.
    ///
    /// - [param method]: an [enum HTTPClient.Method] value, e.g. `HTTPClient.METHOD_POST`.
    /// - [param path]: appended to [member base_url]; a full `http://` or `https://` URL is
    ///   used as is.
    /// - [param body]: a Dictionary or Array is sent as JSON (`application/json`), a String as
    ///   UTF-8 text (`text/plain; charset=utf-8`), a PackedByteArray as bytes
    ///   (`application/octet-stream`), `null` as no body. A `Content-Type` header of your own
    ///   wins.
    /// - [param headers]: `"Name: value"` lines, as [method HTTPRequest.request] takes them;
    ///   they add to [member default_headers] and replace a default of the same name.
    ///
    /// Bad input never raises an error here: the task completes on a later frame with
    /// [constant HTTPResponse.ERR_INVALID_URL] (no usable http or https URL),
    /// [constant HTTPResponse.ERR_INVALID_REQUEST] (an int that is no [enum HTTPClient.Method],
    /// a malformed header, a body JSON cannot carry such as an Object, NaN or nesting deeper
    /// than 128 levels) or [constant HTTPResponse.ERR_QUEUE_FULL] (already
    /// [member max_queued] requests waiting), with the reason in
    /// [member HTTPResponse.error_message].
    #[func]
    fn request(
        &mut self,
        method: HttpMethod,
        path: GString,
        body: Variant,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpTask> {
        let spec = self.build_spec(method, &path.to_string(), &body, &headers);
        self.hook_frames();
        let core = self.core();
        let id = core.submit(spec.map(|parsed| parsed.spec));
        let task = HttpTask::create(id, core.cancel_handle(id));
        self.tasks.insert(id, task.clone());
        task
    }

    /// Starts a GET request: the same as `request(HTTPClient.METHOD_GET, path, null, headers)`.
    #[func]
    fn fetch(
        &mut self,
        path: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpTask> {
        self.request(HttpMethod::GET, path, Variant::nil(), headers)
    }

    /// Downloads [param path] to the file [param file_path] and returns its [HTTPDownload]
    /// at once; see there for resuming, progress and errors.
    ///
    /// - [param path]: appended to [member base_url], as for [method request].
    /// - [param file_path]: `user://...`, `res://...` (writable in the editor only) or an
    ///   absolute path; missing folders are created, and an existing file is replaced only
    ///   once the new one is complete and verified. While the download runs the bytes go
    ///   to `file_path + ".part"` beside a small `.part.meta` file; a part file left by an
    ///   earlier run for the same URL is resumed.
    /// - [param sha256]: 64 hex digits the complete file must hash to; empty for no check.
    /// - [param headers]: `"Name: value"` lines added to [member default_headers]. The
    ///   download sets `Range`, `If-Range` and `Accept-Encoding: identity` itself: here they
    ///   are refused, in [member default_headers] they are not sent with downloads.
    ///
    /// Downloads do not take [member max_concurrent] slots (at most 8 of one pool run at
    /// once; more wait their turn without a connection), and [member max_body_bytes]
    /// does not apply ([member max_download_bytes] does). [member timeout] is the longest
    /// wait for the answer and then between two pieces of the body, not for the whole file.
    /// Bad input ends the download on a later frame: [constant HTTPResponse.ERR_INVALID_URL],
    /// [constant HTTPResponse.ERR_INVALID_REQUEST] (a bad or download-managed header, a bad
    /// digest), or
    /// [constant HTTPResponse.ERR_FILE] (an empty or unwritable path).
    #[func]
    fn download(
        &mut self,
        path: GString,
        file_path: GString,
        #[opt(default = "")] sha256: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpDownload> {
        let spec = self.build_download(&path.to_string(), &file_path, &sha256, &headers);
        self.hook_frames();
        self.core();
        let core = self.core.as_ref().expect("created by core()");
        self.transfers.download(core, spec, file_path)
    }

    /// Starts a request whose response body is delivered as it arrives, and returns its
    /// [HTTPStream] at once.
    ///
    /// [param method], [param path], [param body] and [param headers] are as for
    /// [method request]; [param mode] is one of [enum HTTPStream.Mode]. An event stream
    /// sends the body again on every reconnection. Streams do not take
    /// [member max_concurrent] slots; [member timeout] bounds the wait for the answer's
    /// head only, so a quiet stream stays open. Bad input ends the stream on a later frame
    /// with the error [method request] would give.
    #[func]
    fn stream(
        &mut self,
        method: HttpMethod,
        path: GString,
        body: Variant,
        mode: StreamModeArg,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpStream> {
        let spec = self.build_stream(method, &path.to_string(), &body, mode, &headers);
        self.hook_frames();
        self.core();
        let core = self.core.as_ref().expect("created by core()");
        self.transfers.stream(core, spec, mode.0)
    }

    /// Opens a server-sent event stream: the same as
    /// `stream(HTTPClient.METHOD_GET, path, null, HTTPStream.MODE_EVENTS, headers)`.
    ///
    /// The stream sends `Accept: text/event-stream` itself; an `Accept` in
    /// [member default_headers] or [param headers] is not sent with it. A `Last-Event-ID`
    /// in [param headers] (an id the game saved) is sent until the first event with an
    /// `id` arrives; reconnections then send the stream's own.
    #[func]
    fn stream_events(
        &mut self,
        path: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpStream> {
        self.stream(
            HttpMethod::GET,
            path,
            Variant::nil(),
            StreamModeArg(crate::core::http::transfer::StreamMode::Events as i64),
            headers,
        )
    }

    /// Cancels every queued and running request of this pool, without blocking.
    ///
    /// Each still completes on a later frame, through [signal HTTPTask.completed] and
    /// [signal request_completed], with [constant HTTPResponse.ERR_CANCELLED]; a request that
    /// had already finished keeps its result.
    #[func]
    fn cancel_all(&mut self) {
        if let Some(core) = &self.core {
            core.cancel_all();
        }
    }

    /// Returns this pool's counters as a Dictionary of String to int:
    ///
    /// - `in_flight`, `queued`: requests running now, and waiting for a slot.
    /// - `peak_in_flight`: the most that ever ran at once.
    /// - `succeeded`, `failed`, `cancelled`: requests that ended [member HTTPResponse.ok],
    ///   with another error (HTTP status errors included), or cancelled.
    /// - `retries`: attempts beyond the first; `bytes_received`: body bytes received.
    /// - `downloads`, `streams`: downloads and streams that have not ended.
    /// - `waiting_dispatch`: finished requests not delivered yet; `dispatched`: delivered so
    ///   far; `frames_with_dispatch`: frames that delivered any; `last_frame_dispatched`: how
    ///   many the last delivering frame handled.
    /// - The durable outbox: `outbox_pending` (stored, not delivered yet), `outbox_delivered`
    ///   and `outbox_attempts` (since it opened), `outbox_hung_attempts` (attempts given up
    ///   unanswered past the outbox's hung-call deadline, and tried again later),
    ///   `outbox_dead_letters` (kept in the store),
    ///   `outbox_store_errors` (failed reads and writes), `outbox_set_aside` (1 when an
    ///   unreadable store was renamed aside at open) and `outbox_open` (1 while it is open).
    ///
    /// The same figures summed over every pool are Performance monitors (`netkit/http_*`)
    /// and [method Netkit.get_stats].
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let s = self.core.as_ref().map(|c| c.stats()).unwrap_or_default();
        let waiting = self.core.as_ref().map_or(0, |c| c.pending_events()) as u64;
        let mut stats = stats_dict([
            ("in_flight", s.in_flight),
            ("queued", s.queued),
            ("peak_in_flight", s.peak_in_flight),
            ("succeeded", s.succeeded),
            ("failed", s.failed),
            ("cancelled", s.cancelled),
            ("retries", s.retries),
            ("bytes_received", s.bytes_received),
            ("waiting_dispatch", waiting),
            ("dispatched", self.dispatched),
            ("frames_with_dispatch", self.frames_with_dispatch),
            (
                "last_frame_dispatched",
                self.last_frame_dispatched.max(0) as u64,
            ),
            ("downloads", self.transfers.active().0),
            ("streams", self.transfers.active().1),
        ]);
        stats.extend_dictionary(&self.outbox.stats(), true);
        stats
    }

    /// Returns how many requests of this pool have not finished: running plus queued
    /// (finished ones still waiting for delivery are not counted).
    #[func]
    fn get_pending_count(&self) -> i64 {
        self.core.as_ref().map_or(0, |c| {
            let s = c.stats();
            (s.in_flight + s.queued) as i64
        })
    }
}

impl HttpPool {
    fn settings(&self) -> PoolSettings {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.0, 1e6));
        PoolSettings {
            max_concurrent: self.max_concurrent.clamp(1, 100_000) as usize,
            max_queued: self.max_queued.max(0) as usize,
            timeout: secs(self.timeout.max(0.001)),
            connect_timeout: secs(self.connect_timeout.max(0.001)),
            max_retries: self.max_retries.clamp(0, 1000) as u32,
            retry_base_delay: secs(self.retry_base_delay),
            retry_max_delay: secs(self.retry_max_delay),
            max_body_bytes: self.max_body_bytes.max(0) as u64,
            max_redirects: self.max_redirects.clamp(0, 1000) as usize,
            verify_tls: self.verify_tls,
            trusted_ca_pem: self.trusted_ca_pem.to_string(),
            user_agent: self.user_agent.to_string(),
            pool_idle_timeout: secs(self.pool_idle_timeout.max(0.001)),
            simulate: self.own_conditions(),
            ..PoolSettings::default()
        }
    }

    /// The `simulate` property as conditions; empty follows the process.
    fn own_conditions(&self) -> Option<std::sync::Arc<crate::core::simulate::Conditions>> {
        let text = self.simulate.to_string();
        if text.trim().is_empty() {
            return None;
        }
        match crate::core::simulate::Conditions::parse(&text) {
            Ok(c) => {
                if !c.is_clean() {
                    godot_print!(
                        "[netkit] simulating network conditions (HTTPPool.simulate): {}",
                        super::simulation::describe(&c)
                    );
                }
                Some(std::sync::Arc::new(c))
            }
            Err(e) => {
                godot_error!(
                    "HTTPPool.simulate: {e}; this pool follows the process-wide conditions"
                );
                None
            }
        }
    }

    fn snapshot(&self) -> PropertySnapshot {
        PropertySnapshot {
            numbers: [
                self.max_concurrent,
                self.max_queued,
                self.max_retries,
                self.max_body_bytes,
                self.max_redirects,
            ],
            seconds: [
                self.timeout,
                self.connect_timeout,
                self.retry_base_delay,
                self.retry_max_delay,
                self.pool_idle_timeout,
            ],
            verify_tls: self.verify_tls,
            trusted_ca_pem: self.trusted_ca_pem.clone(),
            user_agent: self.user_agent.clone(),
            simulate: self.simulate.clone(),
        }
    }

    /// The core pool, created on first use and kept in step with the properties.
    pub(super) fn core(&mut self) -> &CorePool {
        let snapshot = self.snapshot();
        if self.core.is_none() || self.applied.as_ref() != Some(&snapshot) {
            let settings = self.settings();
            match &self.core {
                None => {
                    let core = CorePool::new(settings);
                    if let Some(err) = core.client_error() {
                        godot_error!("HTTPPool: {err}");
                    }
                    self.core = Some(core);
                }
                Some(core) => {
                    if let Err(err) = core.set_settings(settings) {
                        godot_error!("HTTPPool: {err}");
                    }
                }
            }
            self.applied = Some(snapshot);
        }
        self.core.as_ref().expect("just created")
    }

    /// The core pool and the outbox component together (the outbox opens on the pool).
    pub(super) fn core_and_outbox(
        &mut self,
    ) -> (&CorePool, &mut super::durable_outbox::DurableOutbox) {
        self.core();
        (self.core.as_ref().expect("made above"), &mut self.outbox)
    }

    /// A call checked and merged with the pool's base URL and default headers
    /// (`RequestSpec::parse`); the body is converted from its Variant only when the rest
    /// holds.
    pub(super) fn build_spec(
        &self,
        method: HttpMethod,
        path: &str,
        body: &Variant,
        headers: &PackedStringArray,
    ) -> Result<ParsedRequest, Rejected> {
        let defaults: Vec<(String, String)> = self
            .default_headers
            .iter_shared()
            .map(|(k, v)| (k.stringify().to_string(), v.stringify().to_string()))
            .collect();
        let lines: Vec<String> = headers.as_slice().iter().map(GString::to_string).collect();
        RequestSpec::parse(
            method.0,
            &self.base_url.to_string(),
            path,
            defaults,
            &lines,
            || body_of(body),
        )
    }

    /// A download's spec from the script's arguments; the path is globalized here, on the
    /// main thread, so the core gets a plain path.
    fn build_download(
        &self,
        path: &str,
        file_path: &GString,
        sha256: &GString,
        headers: &PackedStringArray,
    ) -> Result<crate::core::http::transfer::DownloadSpec, Box<crate::core::http::Response>> {
        let failed = |rejected: Rejected| {
            Box::new(crate::core::http::Response::failed(
                rejected.kind(),
                rejected.to_string(),
                rejected.url(),
            ))
        };
        let ParsedRequest { spec, own_headers } = self
            .build_spec(HttpMethod::GET, path, &Variant::nil(), headers)
            .map_err(failed)?;
        let fail = |kind, message: String| {
            failed(Rejected::Call {
                url: spec.url.clone(),
                kind,
                why: message,
            })
        };
        if let Some((name, value)) = own_headers.iter().find(|(name, _)| {
            crate::core::http::transfer::MANAGED_HEADERS
                .contains(&name.to_ascii_lowercase().as_str())
        }) {
            return Err(fail(
                ErrorKind::InvalidRequest,
                format!(
                    "download() sets Range, If-Range and Accept-Encoding itself (to resume and to hash the file's own bytes); remove '{name}: {value}' from its headers"
                ),
            ));
        }
        let given = file_path.to_string();
        if given.trim().is_empty() {
            return Err(fail(
                ErrorKind::File,
                "file_path is empty; pass where the download goes, e.g. \"user://pack.pck\"".into(),
            ));
        }
        let global = godot::classes::ProjectSettings::singleton()
            .globalize_path(file_path)
            .to_string();
        if global.is_empty() || global.contains("://") || global.ends_with('/') {
            return Err(fail(
                ErrorKind::File,
                format!(
                    "cannot write a download to '{given}': pass a file under user:// (res:// is read-only in exported games) or an absolute path"
                ),
            ));
        }
        let digest = sha256.to_string();
        let sha256 = if digest.trim().is_empty() {
            None
        } else {
            Some(
                crate::core::http::transfer::parse_sha256(&digest).ok_or_else(|| {
                    fail(
                        ErrorKind::InvalidRequest,
                        format!("sha256 '{digest}' is not 64 hexadecimal digits"),
                    )
                })?,
            )
        };
        Ok(crate::core::http::transfer::DownloadSpec {
            url: spec.url,
            headers: spec.headers,
            file: std::path::PathBuf::from(global),
            sha256,
            max_bytes: self.max_download_bytes.max(0) as u64,
        })
    }

    /// A stream's spec from the script's arguments and the pool's stream properties.
    fn build_stream(
        &self,
        method: HttpMethod,
        path: &str,
        body: &Variant,
        mode: StreamModeArg,
        headers: &PackedStringArray,
    ) -> Result<crate::core::http::transfer::StreamSpec, Box<crate::core::http::Response>> {
        use crate::core::http::transfer::{StreamMode, StreamSpec};
        let spec = self
            .build_spec(method, path, body, headers)
            .map_err(|rejected| {
                crate::core::http::Response::failed(
                    rejected.kind(),
                    rejected.to_string(),
                    rejected.url(),
                )
            })?
            .spec;
        let mode = StreamMode::from_godot(mode.0).ok_or_else(|| {
            Box::new(crate::core::http::Response::failed(
                ErrorKind::InvalidRequest,
                format!("{} is not an HTTPStream.Mode value (use HTTPStream.MODE_CHUNKS, MODE_LINES or MODE_EVENTS)", mode.0),
                &spec.url,
            ))
        })?;
        Ok(StreamSpec {
            method: spec.method,
            url: spec.url,
            headers: spec.headers,
            body: spec.body,
            mode,
            max_line_bytes: self.stream_max_line_bytes.clamp(1, 1 << 30) as usize,
            buffer_bytes: self.stream_buffer_bytes.clamp(1, 1 << 30) as usize,
            retry_ms: (self.sse_reconnect_delay.clamp(0.0, 1e6) * 1000.0) as u64,
            max_reconnects: self.sse_max_reconnects.clamp(0, 1_000_000) as u32,
            idle_timeout: (self.stream_idle_timeout > 0.0)
                .then(|| std::time::Duration::from_secs_f64(self.stream_idle_timeout.min(1e6))),
        })
    }

    /// Connects this node to the frame hook once (see `frame_hook`).
    pub(super) fn hook_frames(&mut self) {
        if !self.hooked {
            self.hooked =
                super::frame_hook::connect(&self.to_gd(), "HTTPPool.deliver", Self::deliver);
        }
    }

    /// Takes the next finished request under a short borrow, so the caller can emit with
    /// none held. `None` when nothing is waiting.
    fn take_next(&mut self) -> Option<(u64, Option<Gd<HttpTask>>, Gd<HttpResponse>)> {
        let event = self.core.as_ref().and_then(|c| c.next_event())?;
        let task = self.tasks.remove(&event.id);
        let response = HttpResponse::from_core(event.id, event.response);
        self.dispatched += 1;
        Some((event.id, task, response))
    }

    /// Delivers finished requests within the frame's budget, at the start of each frame.
    /// No borrow of the pool (or of a task) is held while a signal is emitted: a handler
    /// or a resumed `await` may free the pool, its parent or anything else, or call back
    /// into the pool. The pool is re-checked after every emission.
    fn deliver(mut this: Gd<Self>) {
        if !super::frame_hook::should_deliver(&this) {
            return;
        }
        let mut budget = {
            let pool = this.bind();
            FrameBudget::start(pool.dispatch_max_per_frame, pool.dispatch_budget_usec)
        };
        // Building a response for nobody is skipped: read once per frame.
        let listened = !this
            .get_signal_connection_list("request_completed")
            .is_empty();
        while budget.allows() {
            let Some((id, task, response)) = this.bind_mut().take_next() else {
                break;
            };
            budget.spend();
            if let Some(mut task) = task {
                task.bind_mut().set_response(response.clone());
                task.signals().completed().emit(&response);
                if !this.is_instance_valid() {
                    return;
                }
            }
            if listened {
                this.signals()
                    .request_completed()
                    .emit(id as i64, &response);
                if !this.is_instance_valid() {
                    return;
                }
            }
        }
        if !super::transfer_delivery::deliver(&mut this, &mut budget) {
            return;
        }
        if !Self::deliver_outbox(&mut this, &mut budget) {
            return;
        }
        {
            let delivered = budget.used();
            let mut pool = this.bind_mut();
            pool.last_frame_dispatched = delivered as i64;
            if delivered > 0 {
                pool.frames_with_dispatch += 1;
            }
        }
    }
}

/// A request body from its Variant: none for `null`, text for a String, bytes for a
/// PackedByteArray, JSON for anything else (Dictionary, Array, numbers, ...).
fn body_of(body: &Variant) -> Result<RequestBody, String> {
    Ok(match body.get_type() {
        VariantType::NIL => RequestBody::Empty,
        VariantType::STRING | VariantType::STRING_NAME => {
            RequestBody::Text(Bytes::from(body.stringify().to_string()))
        }
        VariantType::PACKED_BYTE_ARRAY => RequestBody::Binary(Bytes::copy_from_slice(
            body.to::<PackedByteArray>().as_slice(),
        )),
        _ => RequestBody::Json(Bytes::from(
            variant_to_json(body)
                .map_err(|e| e.to_string())?
                .to_string(),
        )),
    })
}

/// The properties that shape the core's settings, as set on the node.
#[derive(PartialEq)]
struct PropertySnapshot {
    numbers: [i64; 5],
    seconds: [f64; 5],
    verify_tls: bool,
    trusted_ca_pem: GString,
    user_agent: GString,
    simulate: GString,
}

/// Pairs each task with the `ERR_CANCELLED` response it ends with, `message` saying why.
pub(super) fn cancelled(
    tasks: impl IntoIterator<Item = (u64, Gd<HttpTask>)>,
    message: &str,
) -> Vec<(Gd<HttpTask>, Gd<HttpResponse>)> {
    tasks
        .into_iter()
        .map(|(id, task)| {
            let response = HttpResponse::from_core(
                id,
                crate::core::http::Response::failed(ErrorKind::Cancelled, message, ""),
            );
            (task, response)
        })
        .collect()
}

impl HttpPool {
    /// Takes every task still awaited and returns the emission that ends each with
    /// `ERR_CANCELLED`; `on_notification` runs it (see the module's doc). Nothing is sent
    /// to the pool's own `request_completed`: the pool is going away.
    fn end_pending_tasks(&mut self) -> Option<Box<dyn FnOnce()>> {
        // Close the outbox (its entries stay on disk), then drop the core: its requests are
        // aborted and nothing more arrives.
        let durable = self.close_outbox();
        self.core = None;
        let tasks: Vec<(u64, Gd<HttpTask>)> = self.tasks.drain().collect();
        if tasks.is_empty() && durable.is_empty() {
            return None;
        }
        let mut responses = cancelled(tasks, "the HTTPPool was freed before the request finished");
        responses.extend(durable);
        Some(Box::new(move || {
            for (mut task, response) in responses {
                if task.bind().is_done() {
                    continue;
                }
                task.bind_mut().set_response(response.clone());
                task.signals().completed().emit(&response);
            }
        }))
    }
}

/// True while Godot frees the scene tree because the game is quitting: the tree's root
/// has already left it (`SceneTree::finalize` detaches the root before deleting it). During
/// the game the root is always inside the tree.
fn tree_is_being_freed() -> bool {
    let Some(main_loop) = godot::classes::Engine::singleton().get_main_loop() else {
        return true;
    };
    let Ok(tree) = main_loop.try_cast::<godot::classes::SceneTree>() else {
        return false;
    };
    tree.get_root().is_none_or(|root| !root.is_inside_tree())
}
