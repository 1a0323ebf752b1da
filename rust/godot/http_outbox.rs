//! `HTTPPool`'s durable outbox: [method HTTPPool.request_durable], the dead letters, and the
//! delivery of outbox events on the main thread (the signals are declared in `http_pool.rs`,
//! since gdext 0.5 allows `#[signal]` only in a class's primary `#[godot_api]` block).

use std::time::Duration;

use godot::prelude::*;

use super::class_enums::HttpMethod;
use super::durable_outbox::{OutboxSettings, Taken};
use super::frame_hook::FrameBudget;
use super::http_pool::HttpPool;
use super::http_response::HttpResponse;
use super::http_task::HttpTask;
use crate::core::http::outbox::Write;
use crate::core::http::{ErrorKind, Rejected, RequestSpec};

#[godot_api(secondary)]
impl HttpPool {
    /// Stores a request in the durable outbox, on disk, then sends it until the backend
    /// accepts it, and returns its [HTTPTask] at once.
    ///
    /// Use it for what must not be lost: saves, purchases, match results. The entry is
    /// committed to [member outbox_path] (an fsync) **before this returns**, so a crash, a
    /// SIGKILL or a power cut right after it loses nothing; the next run replays it (see
    /// [member outbox_enabled]). That costs a few milliseconds of the calling thread;
    /// [member outbox_sync_write] set to `false` trades it for a background commit. It carries an `Idempotency-Key` header (a random UUID, or
    /// the one you pass in [param headers]) that stays the same on every attempt and after
    /// restarts, so a backend that honours it applies the request exactly once.
    ///
    /// It is retried without an attempt limit after network errors, timeouts, 5xx, 408 and
    /// 429, with the backoff of [member retry_base_delay] and [member retry_max_delay] (a
    /// `Retry-After` is honoured up to [member retry_max_delay]), until it is older than
    /// [member outbox_max_age]. A redirect is followed only when it keeps the method and the
    /// body (307, 308; the `Idempotency-Key` goes along, credentials only to the same
    /// origin): a 301, 302 or 303 would turn the save into a GET, so it is final. An attempt
    /// the backend leaves unanswered past 4 times its slowest recent answer (at least
    /// 0.25 s, at most [member timeout]; longer on each such attempt of the same save) is
    /// given up as hung and sent again later with the same key, so calls a backend never
    /// answers cannot hold the outbox's 8 delivery slots (`outbox_hung_attempts` in
    /// [method get_stats]). It leaves
    /// the store on a 2xx ([signal durable_delivered]), or becomes a dead letter on any other
    /// 4xx or on its max age ([signal durable_dead_lettered], [method get_dead_letters]).
    /// The task completes then, which may be much later: `await` works, and the signals
    /// also report entries replayed from an earlier run, which have no task.
    ///
    /// Credentials are never written to disk: `Authorization`, `Cookie` and
    /// `Proxy-Authorization` in [param headers] are used in this run only, and
    /// [member default_headers] are applied at each attempt, so an entry replayed after a
    /// restart is sent with the defaults of that run. Other [param headers] and the body are
    /// stored. Arguments are those of [method request]. Entries are independent: they may be
    /// delivered in any order.
    ///
    /// Errors: the task completes on a later frame with [constant HTTPResponse.ERR_INVALID_URL]
    /// or [constant HTTPResponse.ERR_INVALID_REQUEST] for bad input (nothing stored), with
    /// [constant HTTPResponse.ERR_FILE] when the outbox cannot be opened or
    /// written (the sentence says why; another pool may have the same [member outbox_path]
    /// open), or with [constant HTTPResponse.ERR_QUEUE_FULL] beyond
    /// [member outbox_max_pending]. A 401 or 403 is final too (the backend refused these
    /// credentials): refresh [member default_headers] and [method retry_dead_letter]. A
    /// durable request cannot be cancelled: freeing the pool
    /// ends its task with [constant HTTPResponse.ERR_CANCELLED] and leaves the entry stored.
    #[func]
    fn request_durable(
        &mut self,
        method: HttpMethod,
        path: GString,
        body: Variant,
        #[opt(default = &PackedStringArray::new())] headers: PackedStringArray,
    ) -> Gd<HttpTask> {
        self.hook_frames();
        let mut spec = match self.build_spec(method, &path.to_string(), &body, &headers) {
            // The request's own headers only: defaults are applied at send time.
            Ok(parsed) => RequestSpec {
                headers: parsed.own_headers,
                ..parsed.spec
            },
            Err(rejected) => return self.failed_task(rejected),
        };
        if let Err(message) = self.ensure_outbox() {
            let url = std::mem::take(&mut spec.url);
            return self.failed_task(Rejected::Call {
                url,
                kind: ErrorKind::File,
                why: message,
            });
        }
        self.sync_send_headers(true);
        let max_age = Duration::from_secs_f64(self.outbox_max_age.clamp(0.0, 1e10));
        let url = spec.url.clone();
        let write = if self.outbox_sync_write {
            Write::BeforeReturn
        } else {
            Write::Background
        };
        // A durable request cannot be cancelled: its task gets a handle that cancels nothing.
        let handle = self.core().cancel_handle(0);
        match self.outbox.submit(spec, max_age, write, |entry| {
            HttpTask::create(entry, handle)
        }) {
            Ok(task) => task,
            Err((kind, why)) => self.failed_task(Rejected::Call { url, kind, why }),
        }
    }

    /// Returns the dead letters kept in the outbox, oldest first, as an Array of
    /// Dictionaries: `id` (int), `idempotency_key`, `method` (e.g. `"POST"`), `url`,
    /// `headers` (Dictionary, no credentials), `body` (PackedByteArray), `body_text`
    /// (String), `status` (int, 0 when no answer arrived), `answer_body` (PackedByteArray)
    /// and `answer_text` (String): the first 64 KiB of the backend's last answer body, where
    /// a backend usually says why it refused the save (empty when no answer arrived),
    /// `error` (an [enum HTTPResponse.Error] value), `reason` (a sentence), `attempts` (int, in the run
    /// that gave it up), `created_at` and `dead_at` (Unix time in seconds, float, as
    /// [method Time.get_unix_time_from_system]).
    ///
    /// Opens the outbox if needed. Reads the store on the calling thread (one read
    /// transaction). An empty Array when the outbox cannot be opened; the error is printed.
    #[func]
    fn get_dead_letters(&mut self) -> Array<VarDictionary> {
        let mut out = Array::new();
        if let Err(message) = self.ensure_outbox() {
            godot_error!("HTTPPool: {message}");
            return out;
        }
        match self.outbox.dead_letters() {
            Ok(letters) => {
                for d in letters {
                    let mut headers = VarDictionary::new();
                    for (name, value) in &d.headers {
                        headers.set(name.as_str(), value.as_str());
                    }
                    let mut row = VarDictionary::new();
                    row.set("id", d.id as i64);
                    row.set("idempotency_key", d.key.as_str());
                    row.set("method", d.method.as_str());
                    row.set("url", d.url.as_str());
                    row.set("headers", &headers);
                    row.set("body_text", String::from_utf8_lossy(&d.body).as_ref());
                    row.set("body", &PackedByteArray::from(d.body.as_slice()));
                    row.set("answer_text", String::from_utf8_lossy(&d.answer).as_ref());
                    row.set("answer_body", &PackedByteArray::from(d.answer.as_slice()));
                    row.set("status", i64::from(d.status));
                    row.set("error", i64::from(d.error));
                    row.set("reason", d.reason.as_str());
                    row.set("attempts", i64::from(d.attempts));
                    row.set("created_at", d.created_ms as f64 / 1000.0);
                    row.set("dead_at", d.dead_ms as f64 / 1000.0);
                    out.push(&row);
                }
            }
            Err(message) => godot_error!("HTTPPool: {message}"),
        }
        out
    }

    /// Deletes the dead letter [param entry_id] from the outbox; returns `false` when there
    /// is none (or the store cannot be written; the error is printed). One durable commit
    /// on the calling thread.
    #[func]
    fn drop_dead_letter(&mut self, entry_id: i64) -> bool {
        if let Err(message) = self.ensure_outbox() {
            godot_error!("HTTPPool: {message}");
            return false;
        }
        match self.outbox.drop_dead_letter(entry_id.max(0) as u64) {
            Ok(dropped) => dropped,
            Err(message) => {
                godot_error!("HTTPPool: {message}");
                false
            }
        }
    }

    /// Sends the dead letter [param entry_id] again, with its `Idempotency-Key` and body,
    /// as a pending entry that expires [member outbox_max_age] from now; returns `false`
    /// when there is no such dead letter (or the store cannot be written; the error is
    /// printed). For example after a 401: refresh the token in [member default_headers],
    /// then retry. It ends through [signal durable_delivered] or
    /// [signal durable_dead_lettered] like any entry (no task). One durable commit on the
    /// calling thread.
    #[func]
    fn retry_dead_letter(&mut self, entry_id: i64) -> bool {
        if let Err(message) = self.ensure_outbox() {
            godot_error!("HTTPPool: {message}");
            return false;
        }
        self.sync_send_headers(true);
        let max_age = Duration::from_secs_f64(self.outbox_max_age.clamp(0.0, 1e10));
        match self
            .outbox
            .retry_dead_letter(entry_id.max(0) as u64, max_age)
        {
            Ok(retried) => retried,
            Err(message) => {
                godot_error!("HTTPPool: {message}");
                false
            }
        }
    }

    /// Deletes every dead letter from the outbox and returns how many there were (0 when
    /// the store cannot be written; the error is printed). One durable commit on the
    /// calling thread.
    #[func]
    fn clear_dead_letters(&mut self) -> i64 {
        if let Err(message) = self.ensure_outbox() {
            godot_error!("HTTPPool: {message}");
            return 0;
        }
        match self.outbox.clear_dead_letters() {
            Ok(n) => n as i64,
            Err(message) => {
                godot_error!("HTTPPool: {message}");
                0
            }
        }
    }

    /// Returns why the outbox could not be opened (String), or `""` while it is usable or
    /// has not been opened yet. The same sentence was printed as an error when it happened.
    #[func]
    fn get_outbox_error(&self) -> GString {
        GString::from(self.outbox.error())
    }
}

impl HttpPool {
    /// Opens the outbox at `_ready` when [member outbox_enabled] asks for it, so what an
    /// earlier run left pending is sent without waiting for a new durable request.
    pub(super) fn open_outbox_if_enabled(&mut self) {
        if self.outbox_enabled && !self.outbox.is_open() {
            self.hook_frames();
            if let Err(message) = self.ensure_outbox() {
                godot_error!("HTTPPool: {message}");
            }
        }
    }

    /// Opens the store on first use with the pool's outbox properties (see
    /// `DurableOutbox::open`).
    fn ensure_outbox(&mut self) -> Result<(), String> {
        if self.outbox.is_open() {
            return Ok(());
        }
        let settings = OutboxSettings {
            path: self.outbox_path.clone(),
            max_pending: self.outbox_max_pending,
            default_headers: self.default_headers.clone(),
        };
        let (core, outbox) = self.core_and_outbox();
        outbox.open(&settings, core)?;
        self.hook_frames();
        Ok(())
    }

    /// Hands changed `default_headers` to the outbox, so its next attempts use them.
    fn sync_send_headers(&mut self, force: bool) {
        let headers = self.default_headers.clone();
        self.outbox.sync_headers(&headers, force);
    }

    /// A task that fails on a later frame, through the pool's ordinary request path.
    fn failed_task(&mut self, rejected: Rejected) -> Gd<HttpTask> {
        let core = self.core();
        let id = core.submit(Err(rejected));
        let task = HttpTask::create(id, core.cancel_handle(id));
        self.tasks.insert(id, task.clone());
        task
    }

    /// Closes the outbox (entries stay stored) and returns the durable tasks to end with
    /// `ERR_CANCELLED`.
    pub(super) fn close_outbox(&mut self) -> Vec<(Gd<HttpTask>, Gd<HttpResponse>)> {
        super::http_pool::cancelled(
            self.outbox.close(),
            "the HTTPPool was freed before the durable request was delivered; it stays in the outbox and is sent when the store is next opened",
        )
    }

    /// Delivers outbox events within what is left of the frame's budget, and at least one
    /// per frame (a busy pool's responses must not starve its saves), with no borrow held
    /// while emitting (see `HttpPool::deliver`). False when a handler freed the pool.
    pub(super) fn deliver_outbox(this: &mut Gd<Self>, budget: &mut FrameBudget) -> bool {
        this.bind_mut().sync_send_headers(false);
        let mut delivered = 0;
        while delivered == 0 || budget.allows() {
            let Some(taken) = this.bind_mut().outbox.take_event() else {
                break;
            };
            delivered += 1;
            budget.spend();
            match taken {
                Taken::StoreError(message) => godot_error!("HTTPPool: {message}"),
                Taken::NotStored { task, response } => {
                    godot_error!("HTTPPool: {}", response.bind().get_error_message());
                    if let Some(mut task) = task {
                        task.bind_mut().set_response(response.clone());
                        task.signals().completed().emit(&response);
                        if !this.is_instance_valid() {
                            return false;
                        }
                    }
                }
                Taken::Done {
                    delivered: ok,
                    entry,
                    task,
                    response,
                } => {
                    if let Some(mut task) = task {
                        task.bind_mut().set_response(response.clone());
                        task.signals().completed().emit(&response);
                        if !this.is_instance_valid() {
                            return false;
                        }
                    }
                    if ok {
                        this.signals()
                            .durable_delivered()
                            .emit(entry as i64, &response);
                    } else {
                        this.signals()
                            .durable_dead_lettered()
                            .emit(entry as i64, &response);
                    }
                    if !this.is_instance_valid() {
                        return false;
                    }
                }
            }
        }
        true
    }
}
