//! `HTTPPool`: the node a game talks to its backend through.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use godot::classes::notify::NodeNotification;
use godot::classes::{INode, Node};
use godot::prelude::*;

use super::http_response::HttpResponse;
use super::http_task::HttpTask;
use super::json_variant::variant_to_json;
use super::stats_dict::stats_dict;
use crate::core::http::{
    ErrorKind, HttpPool as CorePool, Method, PoolSettings, RequestBody, RequestSpec, build_url,
};

/// A pooled, keep-alive HTTP client for backend calls (login, profiles, leaderboards,
/// saves). One node replaces a crowd of [HTTPRequest] nodes: connections are reused (HTTP/2
/// where the server offers it), at most [member max_concurrent] requests run at once and the
/// rest wait in order, failures are retried with backoff, and JSON is parsed off the main
/// thread. Results arrive on the main thread, spread over frames by the dispatch budget.
/// [codeblock]
/// var pool := HTTPPool.new()
/// pool.base_url = "https://api.example.com"
/// add_child(pool)
/// var res: HTTPResponse = await pool.request(HTTPClient.METHOD_POST, "/scores", {"score": 10}).completed
/// if res.ok: print(res.json) else: print(res.error_message)
/// [/codeblock]
/// Removing the node from the tree cancels its requests; freeing it delivers nothing more
/// to the pool (tasks still awaited end with [constant HTTPResponse.ERR_CANCELLED]).
/// Responses are delivered in [method Node._process]: while the tree is paused they wait,
/// unless [member Node.process_mode] is [constant Node.PROCESS_MODE_ALWAYS].
#[derive(GodotClass)]
#[class(init, base = Node, rename = HTTPPool)]
pub struct HttpPool {
    /// Prefix for request paths, e.g. "https://api.example.com/v1". A path that is itself a
    /// full http(s) URL is used as is.
    #[export]
    base_url: GString,
    /// Headers sent with every request (e.g. Authorization); a request's own headers win.
    #[export]
    default_headers: VarDictionary,
    /// Requests running at once. More wait in a FIFO queue.
    #[export(range = (1.0, 256.0, or_greater))]
    #[init(val = 8)]
    max_concurrent: i64,
    /// Requests allowed to wait; one more ends at once with [constant HTTPResponse.ERR_QUEUE_FULL].
    #[export(range = (0.0, 100000.0, or_greater))]
    #[init(val = 1024)]
    max_queued: i64,
    /// Seconds one attempt may take, from sending to the last body byte.
    #[export(range = (0.1, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 30.0)]
    timeout: f64,
    /// Seconds allowed to open a connection (TCP and TLS).
    #[export(range = (0.1, 120.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 10.0)]
    connect_timeout: f64,
    /// Retries after the first attempt, on connection errors, timeouts and statuses 408, 429,
    /// 500, 502, 503, 504. Only for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) or
    /// requests carrying an `Idempotency-Key` header.
    #[export(range = (0.0, 20.0, or_greater))]
    #[init(val = 2)]
    max_retries: i64,
    /// Seconds; the backoff before retry n is random in [0, base * 2^(n-1)] (full jitter).
    #[export(range = (0.0, 60.0, 0.01, or_greater, suffix = "s"))]
    #[init(val = 0.5)]
    retry_base_delay: f64,
    /// Seconds; caps the backoff. A `Retry-After` longer than this is not waited for: the
    /// response is returned instead.
    #[export(range = (0.0, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 30.0)]
    retry_max_delay: f64,
    /// Largest body accepted, in bytes; larger ends with [constant HTTPResponse.ERR_BODY_TOO_LARGE].
    #[export(range = (0.0, 1073741824.0, or_greater, suffix = "B"))]
    #[init(val = 16 * 1024 * 1024)]
    max_body_bytes: i64,
    /// Redirects followed (301/302/303 switch to GET, 307/308 keep method and body); 0 disables.
    #[export(range = (0.0, 50.0))]
    #[init(val = 10)]
    max_redirects: i64,
    /// Verify server certificates. Turn off only for throwaway local tests; prefer
    /// [member trusted_ca_pem] for a self-signed development server.
    #[export]
    #[init(val = true)]
    verify_tls: bool,
    /// Seconds a keep-alive connection may sit idle in the pool before it is closed instead
    /// of reused (default 4.0). Keep it below your server's keep-alive timeout (Node.js and
    /// Apache: 5 s, nginx: 75 s) so requests rarely meet a connection the server is closing.
    /// When one does anyway, an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, or one
    /// with an `Idempotency-Key` header) is sent again at once on a new connection, without
    /// spending a retry; any other request ends with `ERR_CONNECTION_LOST` and is never
    /// sent twice.
    #[export(range = (0.1, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 4.0)]
    pool_idle_timeout: f64,
    /// Extra CA certificates (PEM) to trust besides the bundled public roots.
    #[export(multiline)]
    trusted_ca_pem: GString,
    /// User-Agent sent unless a request sets its own.
    #[export]
    #[init(val = GString::from(concat!("godot-netkit/", env!("CARGO_PKG_VERSION"))))]
    user_agent: GString,
    /// Most responses delivered per frame; the rest wait for the next frame, in order.
    #[export(range = (1.0, 10000.0, or_greater))]
    #[init(val = 256)]
    dispatch_max_per_frame: i64,
    /// Microseconds per frame spent delivering responses (handlers included) before the
    /// rest wait for the next frame. 0 means no time limit.
    #[export(range = (0.0, 100000.0, or_greater, suffix = "us"))]
    #[init(val = 2000)]
    dispatch_budget_usec: i64,
    core: Option<CorePool>,
    /// The property values the core was last configured from; compared on every request
    /// without touching the core's lock (which worker threads take on every completion).
    applied: Option<PropertySnapshot>,
    listened: bool,
    tasks: HashMap<u64, Gd<HttpTask>>,
    frames_with_dispatch: u64,
    dispatched: u64,
    last_frame_dispatched: i64,
    base: Base<Node>,
}

#[godot_api]
impl INode for HttpPool {
    fn ready(&mut self) {
        self.base_mut().set_process(true);
    }

    fn process(&mut self, _delta: f64) {
        self.dispatch();
        super::monitors::maybe_log();
    }

    fn exit_tree(&mut self) {
        if let Some(core) = &self.core {
            core.cancel_all();
        }
    }

    fn on_notification(&mut self, what: NodeNotification) {
        if what == NodeNotification::PREDELETE {
            self.end_pending_tasks();
        }
    }
}

#[godot_api]
impl HttpPool {
    /// Emitted for every finished request, after its [signal HTTPTask.completed], for code
    /// that prefers one handler for all requests.
    #[signal]
    fn request_completed(task_id: i64, response: Gd<HttpResponse>);

    /// Starts (or queues) a request and returns its [HTTPTask]. [param method] is an
    /// [enum HTTPClient.Method]. [param body]: a Dictionary or Array is sent as JSON, a
    /// String as text, a PackedByteArray as bytes, null as no body. [param headers] are
    /// "Name: value" lines, as [method HTTPRequest.request] takes them; they add to (and
    /// override) [member default_headers]. Bad input never raises: the task completes with
    /// an error such as [constant HTTPResponse.ERR_INVALID_URL].
    #[func]
    fn request(
        &mut self,
        method: i64,
        path: GString,
        body: Variant,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpTask> {
        let spec = self.build_spec(method, &path.to_string(), &body, &headers);
        let core = self.core();
        let id = core.submit(spec);
        let task = HttpTask::create(id, core.cancel_handle(id));
        self.tasks.insert(id, task.clone());
        task
    }

    /// Shortcut for a GET: [code]request(HTTPClient.METHOD_GET, path, null, headers)[/code].
    #[func]
    fn fetch(
        &mut self,
        path: GString,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpTask> {
        self.request(0, path, Variant::nil(), headers)
    }

    /// Cancels every queued and running request. Each still completes, with
    /// [constant HTTPResponse.ERR_CANCELLED]. Never blocks.
    #[func]
    fn cancel_all(&mut self) {
        if let Some(core) = &self.core {
            core.cancel_all();
        }
    }

    /// Counters: in_flight, queued, peak_in_flight, succeeded, failed, cancelled, retries,
    /// bytes_received, waiting_dispatch (finished, not yet delivered), dispatched,
    /// frames_with_dispatch, last_frame_dispatched.
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let s = self.core.as_ref().map(|c| c.stats()).unwrap_or_default();
        let waiting = self.core.as_ref().map_or(0, |c| c.pending_events()) as u64;
        stats_dict([
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
        ])
    }

    /// Requests not finished yet (running plus queued).
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
            ..PoolSettings::default()
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
        }
    }

    /// The core pool, created on first use and kept in step with the properties.
    fn core(&mut self) -> &CorePool {
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

    fn build_spec(
        &self,
        method: i64,
        path: &str,
        body: &Variant,
        headers: &PackedStringArray,
    ) -> Result<RequestSpec, (ErrorKind, String, String)> {
        let base = self.base_url.to_string();
        let url = build_url(&base, path)
            .map_err(|e| (ErrorKind::InvalidUrl, e, format!("{base}{path}")))?
            .to_string();
        let fail = |message: String| (ErrorKind::InvalidRequest, message, url.clone());
        let method = Method::from_godot(method).ok_or_else(|| {
            fail(format!(
                "{method} is not an HTTPClient.Method value (use HTTPClient.METHOD_GET, METHOD_POST, ...)"
            ))
        })?;
        let mut pairs: Vec<(String, String)> = self
            .default_headers
            .iter_shared()
            .map(|(k, v)| (k.stringify().to_string(), v.stringify().to_string()))
            .collect();
        for line in headers.as_slice() {
            let line = line.to_string();
            let (name, value) = line.split_once(':').ok_or_else(|| {
                fail(format!(
                    "the header '{line}' is not of the form 'Name: value'"
                ))
            })?;
            pairs.push((name.trim().to_string(), value.trim().to_string()));
        }
        let mut merged: Vec<(String, String)> = Vec::new();
        for (name, value) in pairs {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(fail(format!("'{name}' is not a valid header name")));
            }
            if reqwest::header::HeaderValue::from_str(&value).is_err() {
                return Err(fail(format!(
                    "the value of header '{name}' contains characters HTTP does not allow"
                )));
            }
            merged.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            merged.push((name, value));
        }
        let body = match body.get_type() {
            VariantType::NIL => RequestBody::Empty,
            VariantType::STRING | VariantType::STRING_NAME => {
                RequestBody::Text(Bytes::from(body.stringify().to_string()))
            }
            VariantType::PACKED_BYTE_ARRAY => RequestBody::Binary(Bytes::copy_from_slice(
                body.to::<PackedByteArray>().as_slice(),
            )),
            _ => {
                let json = variant_to_json(body)
                    .map_err(|e| fail(format!("the body cannot be sent: {e}")))?;
                RequestBody::Json(Bytes::from(json.to_string()))
            }
        };
        Ok(RequestSpec {
            method,
            url,
            headers: merged,
            body,
        })
    }

    /// Delivers finished requests within the frame's budget. Signals are emitted with the
    /// node's borrow released, so handlers may call back into the pool.
    fn dispatch(&mut self) {
        let started = Instant::now();
        self.listened = !self
            .base()
            .get_signal_connection_list("request_completed")
            .is_empty();
        let max = self.dispatch_max_per_frame.max(1) as usize;
        let budget = Duration::from_micros(self.dispatch_budget_usec.max(0) as u64);
        let mut delivered = 0usize;
        while delivered < max && (budget.is_zero() || delivered == 0 || started.elapsed() < budget)
        {
            let Some(event) = self.core.as_ref().and_then(|c| c.next_event()) else {
                break;
            };
            delivered += 1;
            let task = self.tasks.remove(&event.id);
            let response = HttpResponse::from_core(event.id, event.response);
            {
                // Suspends this borrow of the pool for the handlers (re-entrant calls).
                let _guard = self.base_mut();
                if let Some(mut task) = task {
                    task.bind_mut().set_response(response.clone());
                    task.signals().completed().emit(&response);
                }
            }
            self.signals()
                .request_completed()
                .emit(event.id as i64, &response);
        }
        self.dispatched += delivered as u64;
        self.last_frame_dispatched = delivered as i64;
        if delivered > 0 {
            self.frames_with_dispatch += 1;
        }
    }
}

/// The properties that shape the core's settings, as set on the node.
#[derive(PartialEq)]
struct PropertySnapshot {
    numbers: [i64; 5],
    seconds: [f64; 5],
    verify_tls: bool,
    trusted_ca_pem: GString,
    user_agent: GString,
}

impl HttpPool {
    /// Ends every task still awaited with `ERR_CANCELLED`, synchronously, while the node is
    /// still alive (PREDELETE). Deferring it would not work when the game quits (no frame
    /// follows), and an `await task.completed` that never resumes keeps the task and the
    /// coroutine alive in a cycle that Godot reports as leaked at exit. Nothing is sent
    /// to the pool's own `request_completed`: the pool is going away.
    fn end_pending_tasks(&mut self) {
        // Drop the core first: its requests are aborted and nothing more arrives.
        self.core = None;
        let tasks: Vec<(u64, Gd<HttpTask>)> = self.tasks.drain().collect();
        let _guard = self.base_mut();
        for (id, mut task) in tasks {
            let response = HttpResponse::from_core(
                id,
                crate::core::http::Response::failed(
                    ErrorKind::Cancelled,
                    "the HTTPPool was freed before the request finished",
                    "",
                ),
            );
            task.bind_mut().set_response(response.clone());
            task.signals().completed().emit(&response);
        }
    }
}
