//! The durable outbox: requests that must reach the backend even across a backend outage,
//! a restart or a crash. ARCHITECTURE.md, "The durable outbox", has the decisions.
//!
//! A durable request is written to a crash-safe store ([`store`], redb) before its first
//! attempt, with an `Idempotency-Key` made once and sent with every attempt. It is retried
//! with capped exponential backoff and full jitter, without an attempt limit, until it is
//! older than its max age. It leaves the store on a 2xx, or becomes a dead letter (kept in
//! the store) on a status that repeating cannot fix. Credentials are never stored: the
//! caller's credential headers live in memory for this run, and the pool's default headers
//! are supplied at send time ([`Outbox::set_send_headers`]). Opening a store replays what it
//! holds. Delivery is at-least-once; the key makes it exactly-once at a backend that
//! honours it.
//!
//! Opening the store reads every pending record and starts a task for each; a pool opens it
//! at `_ready` when `outbox_enabled` is set, or at the first `request_durable` or
//! dead-letter call. Each pending entry has one task, with at most [`OUTBOX_CONCURRENCY`]
//! attempts in flight per outbox (a semaphore). Dead letters stay in the store until
//! `drop_dead_letter`/`clear_dead_letters`, or `retry_dead_letter`, which makes one pending
//! again with its key and body and a new expiry (a 401 or 403 is final like any 4xx: the
//! game refreshes `default_headers`, then retries). At most `outbox_max_pending` (10000)
//! entries pending and dead letters together: one more is refused with `ERR_QUEUE_FULL` and
//! not stored. Memory holds the entries' metadata only; bodies are read from the store at
//! each attempt.
//!
//! With `outbox_sync_write = false` the call only allocates the id and queues the entry;
//! one background writer (`spawn_blocking`) commits everything queued in one transaction
//! (one fsync for a burst), then starts delivering it. Dropping the outbox takes the
//! store's write lock, which the writer holds while it takes and commits a batch, and
//! commits whatever is still queued on the dropping thread, so a clean exit loses nothing.
//! A failed background write ends the task with `ERR_FILE` and prints the error.

mod deadline;
mod entry;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod store;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::error::ErrorKind;
use super::pool::{AttemptSource, HttpPool};
use super::request::{Method, RequestSpec};
use super::response::Response;
use crate::core::events::{Budget, EventQueue, EventSender, channel};
use crate::core::metrics;
pub use entry::{CREDENTIAL_HEADERS, IDEMPOTENCY_KEY};
use entry::{EntryRecord, body_from, body_kind, is_credential, method_from, method_name, now_ms};
pub use store::OpenError;
use store::Store;

/// Attempts of one outbox that run at once; the rest wait (entries are independent, so a
/// long outage ends in a paced catch-up rather than a burst).
pub const OUTBOX_CONCURRENCY: usize = 8;

/// Bytes of the backend's answer body kept with a dead letter: the reason a save was
/// refused is usually in it, and a bound keeps a backend's error page from growing the store.
pub const DEAD_LETTER_ANSWER_BYTES: usize = 64 * 1024;

/// Where an outbox lives and how much it may hold.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// The store file (a plain path: the engine side resolves `user://`).
    pub path: PathBuf,
    /// Pending entries plus dead letters allowed; one more is refused with `QueueFull` and
    /// not stored.
    pub max_pending: usize,
    /// The headers every attempt starts from, in place before replayed entries are sent
    /// (see [`Outbox::set_send_headers`]).
    pub send_headers: Vec<(String, String)>,
}

/// When [`Outbox::submit`] commits an entry to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// On the calling thread, before `submit` returns: survives a crash right after.
    BeforeReturn,
    /// On a background thread, batched with other entries; committed first when the
    /// outbox is dropped.
    Background,
}

/// Something the outbox tells its owner, drained on the main thread.
#[derive(Debug)]
pub enum OutboxEvent {
    /// The backend accepted entry `entry` (2xx); it left the store.
    Delivered {
        /// The entry id.
        entry: u64,
        /// The accepting response.
        response: Response,
    },
    /// Entry `entry` was given up and kept as a dead letter.
    DeadLettered {
        /// The entry id.
        entry: u64,
        /// The last response (its `error_message` says why it was given up).
        response: Response,
    },
    /// The store failed to read or write; nothing was lost, the sentence says what follows.
    StoreError(String),
    /// A background write of entry `entry` failed: it was not stored and is not sent.
    NotStored {
        /// The entry id.
        entry: u64,
        /// A failed response whose `error_message` says why.
        response: Response,
    },
}

/// A snapshot of an outbox's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Entries in the store waiting for delivery.
    pub pending: u64,
    /// Entries delivered since the store was opened.
    pub delivered: u64,
    /// Dead letters kept in the store.
    pub dead_letters: u64,
    /// Attempts made since the store was opened.
    pub attempts: u64,
    /// Attempts given up as hung (unanswered past the outbox's deadline) since it opened.
    pub hung_attempts: u64,
    /// Store reads or writes that failed since it was opened.
    pub store_errors: u64,
    /// 1 when the file was unreadable at open and was renamed aside, else 0.
    pub set_aside: u64,
    /// Pending records in the file that could not be decoded (never sent).
    pub unreadable: u64,
}

/// A dead letter as the owner lists it.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The entry id.
    pub id: u64,
    /// The `Idempotency-Key` it was sent with.
    pub key: String,
    /// The method name.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The stored headers (no credentials).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The first [`DEAD_LETTER_ANSWER_BYTES`] of the last answer's body (empty when no
    /// answer arrived).
    pub answer: Vec<u8>,
    /// The last HTTP status, 0 when none arrived.
    pub status: u16,
    /// The last error kind.
    pub error: i32,
    /// Why it was given up.
    pub reason: String,
    /// Attempts in the run that gave it up.
    pub attempts: u32,
    /// When it was made, Unix milliseconds.
    pub created_ms: u64,
    /// When it was given up, Unix milliseconds.
    pub dead_ms: u64,
}

/// An open outbox. Dropping it stops its attempts at once; what is pending stays in the
/// store for the next open.
pub struct Outbox {
    inner: Arc<Inner>,
    queue: EventQueue<OutboxEvent>,
}

/// What the outbox's tasks share.
struct Inner {
    /// The open file; taken out (closing it) when the outbox is dropped, so another pool
    /// may open it at once even while tasks are still winding down.
    store: RwLock<Option<Store>>,
    path: PathBuf,
    source: AttemptSource,
    runtime: Handle,
    events: EventSender<OutboxEvent>,
    /// The pool's default headers (credentials included), as of the last update.
    send_headers: Mutex<Vec<(String, String)>>,
    /// Credential headers given to `submit`, per entry, for this run only.
    secrets: Mutex<HashMap<u64, Vec<(String, String)>>>,
    permits: Semaphore,
    cancel: CancellationToken,
    next_id: AtomicU64,
    /// Entries submitted with [`Write::Background`], not committed yet.
    unwritten: Mutex<Vec<(EntryRecord, Vec<u8>)>>,
    /// A background writer is running (or about to).
    writer_busy: AtomicBool,
    max_pending: usize,
    pending: AtomicU64,
    delivered: AtomicU64,
    dead_letters: AtomicU64,
    attempts: AtomicU64,
    /// Attempts given up as hung.
    hung: AtomicU64,
    /// Answer times of recent attempts, from which the hung-call deadline is derived.
    answer_times: Mutex<deadline::AnswerTimes>,
    store_errors: AtomicU64,
    set_aside: AtomicU64,
    unreadable: AtomicU64,
}

impl metrics::MetricSource for Inner {
    fn add_to(&self, totals: &mut metrics::Totals) {
        totals.outbox_pending += self.pending.load(Ordering::Relaxed);
        totals.outbox_delivered += self.delivered.load(Ordering::Relaxed);
        totals.outbox_dead_letters += self.dead_letters.load(Ordering::Relaxed);
    }
}

impl Outbox {
    /// Opens (or creates) the store at `config.path` and replays its pending entries,
    /// sending through `pool` (its client and settings at each attempt). Returns the outbox and, when the file was
    /// unreadable and renamed aside, the sentence to report. Fails when another pool has the
    /// file open, or when no store can be made there at all.
    ///
    /// Blocking: it opens the file and reads the pending records.
    pub fn open(
        config: OutboxConfig,
        pool: &HttpPool,
    ) -> Result<(Outbox, Option<String>), OpenError> {
        let source = pool.attempt_source();
        let runtime = source.runtime();
        let opened = Store::open(&config.path)?;
        let (events, queue) = channel();
        let inner = Arc::new(Inner {
            path: opened.store.path().to_path_buf(),
            store: RwLock::new(Some(opened.store)),
            source,
            runtime,
            events,
            send_headers: Mutex::new(config.send_headers),
            secrets: Mutex::new(HashMap::new()),
            permits: Semaphore::new(OUTBOX_CONCURRENCY),
            cancel: CancellationToken::new(),
            next_id: AtomicU64::new(opened.next_id),
            unwritten: Mutex::new(Vec::new()),
            writer_busy: AtomicBool::new(false),
            max_pending: config.max_pending,
            pending: AtomicU64::new(opened.pending.len() as u64),
            delivered: AtomicU64::new(0),
            dead_letters: AtomicU64::new(opened.dead_letters),
            attempts: AtomicU64::new(0),
            hung: AtomicU64::new(0),
            answer_times: Mutex::new(deadline::AnswerTimes::default()),
            store_errors: AtomicU64::new(0),
            set_aside: AtomicU64::new(u64::from(opened.set_aside.is_some())),
            unreadable: AtomicU64::new(opened.unreadable),
        });
        let source: Arc<dyn metrics::MetricSource> = inner.clone();
        metrics::register(Arc::downgrade(&source));
        for record in opened.pending {
            inner.spawn(record);
        }
        Ok((Outbox { inner, queue }, opened.set_aside))
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The headers every attempt starts from (the pool's `default_headers`, credentials
    /// included); a request's stored headers replace those of the same name.
    pub fn set_send_headers(&self, headers: Vec<(String, String)>) {
        *lock(&self.inner.send_headers) = headers;
    }

    /// Stores `spec` durably, then starts delivering it; returns the entry id.
    ///
    /// With `write` [`Write::BeforeReturn`] the entry is committed to disk (an fsync) on the
    /// calling thread before this returns, so a crash right after it loses nothing. With
    /// [`Write::Background`] it is committed by a background thread together with the
    /// entries submitted meanwhile (one fsync for all), typically within milliseconds;
    /// dropping the outbox commits what is still waiting first, so a clean quit loses
    /// nothing, but a crash in those milliseconds loses the entry.
    ///
    /// Credential headers of `spec` are kept in memory only, for this run. An
    /// `Idempotency-Key` header of `spec` is used as the key; otherwise a random UUID v4 is
    /// made. Fails with `QueueFull` beyond `max_pending`, or (before-return writes) with
    /// `File` when the store cannot write; nothing is stored then. A background
    /// write that fails ends the entry with [`OutboxEvent::NotStored`].
    pub fn submit(
        &self,
        spec: RequestSpec,
        max_age: Duration,
        write: Write,
    ) -> Result<u64, (ErrorKind, String)> {
        let inner = &self.inner;
        // Dead letters stay on disk until the game drops them, so they count too: a
        // backend that refuses every save would otherwise grow the store without bound.
        let pending = inner.pending.load(Ordering::Acquire);
        let dead = inner.dead_letters.load(Ordering::Acquire);
        if pending.saturating_add(dead) >= inner.max_pending as u64 {
            return Err((
                ErrorKind::QueueFull,
                format!(
                    "the outbox already holds {pending} pending entries and {dead} dead letters (outbox_max_pending counts both); the request to {} was not stored. Drop or retry dead letters (get_dead_letters, drop_dead_letter, clear_dead_letters) to make room",
                    spec.url
                ),
            ));
        }
        let mut key = None;
        let mut stored = Vec::new();
        let mut secret = Vec::new();
        for (name, value) in spec.headers {
            if name.eq_ignore_ascii_case(IDEMPOTENCY_KEY) {
                key = Some(value);
            } else if is_credential(&name) {
                secret.push((name, value));
            } else {
                stored.push((name, value));
            }
        }
        let created_ms = now_ms();
        let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let id = inner.next_id.fetch_add(1, Ordering::AcqRel);
        let record = EntryRecord {
            id,
            key: key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            method: method_name(spec.method).to_string(),
            url: spec.url,
            headers: stored,
            body_kind: body_kind(&spec.body).to_string(),
            created_ms,
            expires_ms: created_ms.saturating_add(max_age_ms),
        };
        let body = spec.body.bytes().map(|b| b.to_vec()).unwrap_or_default();
        if !secret.is_empty() {
            lock(&inner.secrets).insert(id, secret);
        }
        inner.pending.fetch_add(1, Ordering::AcqRel);
        match write {
            Write::BeforeReturn => {
                let entries = [(record, body)];
                if let Err(e) = inner.with_store(|store| store.insert(&entries)) {
                    inner.store_errors.fetch_add(1, Ordering::Relaxed);
                    inner.forget(id);
                    return Err((
                        ErrorKind::File,
                        format!(
                            "{e}; the request to {} was not stored or sent",
                            entries[0].0.url
                        ),
                    ));
                }
                let [(record, _)] = entries;
                inner.spawn(record);
            }
            Write::Background => {
                lock(&inner.unwritten).push((record, body));
                if !inner.writer_busy.swap(true, Ordering::AcqRel) {
                    let writer = Arc::clone(inner);
                    self.inner
                        .runtime
                        .spawn_blocking(move || writer.write_waiting());
                }
            }
        }
        Ok(id)
    }

    /// Takes events in order, within the budget.
    pub fn drain(&self, budget: Budget) -> Vec<OutboxEvent> {
        self.queue.drain(budget)
    }

    /// Takes the next event, if any.
    pub fn next_event(&self) -> Option<OutboxEvent> {
        self.queue.next()
    }

    /// Events waiting to be drained.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// The counters.
    pub fn stats(&self) -> OutboxStats {
        let i = &self.inner;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OutboxStats {
            pending: get(&i.pending),
            delivered: get(&i.delivered),
            dead_letters: get(&i.dead_letters),
            attempts: get(&i.attempts),
            hung_attempts: get(&i.hung),
            store_errors: get(&i.store_errors),
            set_aside: get(&i.set_aside),
            unreadable: get(&i.unreadable),
        }
    }

    /// Every dead letter, oldest first. Blocking: one read transaction.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        let rows = self
            .inner
            .with_store(Store::dead_letters)
            .inspect_err(|_| {
                self.inner.store_errors.fetch_add(1, Ordering::Relaxed);
            })?;
        Ok(rows
            .into_iter()
            .map(|row| (row.record, row.body, row.answer))
            .map(|(d, body, answer)| DeadLetter {
                id: d.entry.id,
                key: d.entry.key,
                method: d.entry.method,
                url: d.entry.url,
                headers: d.entry.headers,
                body,
                answer,
                status: d.status,
                error: d.error,
                reason: d.reason,
                attempts: d.attempts,
                created_ms: d.entry.created_ms,
                dead_ms: d.dead_ms,
            })
            .collect())
    }

    /// Sends dead letter `id` again: it becomes pending with its key and body, expiring
    /// `max_age` from now (e.g. after the game refreshed an expired token that got a 401).
    /// False when there is no such dead letter. Blocking: one durable commit.
    pub fn retry_dead_letter(&self, id: u64, max_age: Duration) -> Result<bool, String> {
        let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let expires = now_ms().saturating_add(max_age_ms);
        match self.inner.with_store(|s| s.revive(id, expires))? {
            Some(record) => {
                self.inner.dead_letters.fetch_sub(1, Ordering::AcqRel);
                self.inner.pending.fetch_add(1, Ordering::AcqRel);
                self.inner.spawn(record);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Deletes dead letter `id`; false when there is none. Blocking: one durable commit.
    pub fn drop_dead_letter(&self, id: u64) -> Result<bool, String> {
        let dropped = self.inner.with_store(|s| s.drop_dead_letter(id))?;
        if dropped {
            self.inner.dead_letters.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(dropped)
    }

    /// Deletes every dead letter; returns how many. Blocking: one durable commit.
    pub fn clear_dead_letters(&self) -> Result<u64, String> {
        let n = self.inner.with_store(Store::clear_dead_letters)?;
        self.inner.dead_letters.store(0, Ordering::Release);
        Ok(n)
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.inner.cancel.cancel();
        // A file deleted since the last store operation is made again now, so what this
        // run still holds pending survives the quit (a failure is reported, as any).
        if let Err(e) = self.inner.ensure_current() {
            self.inner.report_store_error(e);
        }
        // Waits at most for one store operation in progress (a commit). The background
        // writer takes its batch under the read lock, so every entry handed over with
        // Write::Background is either committed already or still waiting here: it is
        // committed now, on the dropping thread (one commit), so a clean quit loses none.
        let mut store = self.inner.store.write().unwrap_or_else(|p| p.into_inner());
        let waiting = std::mem::take(&mut *lock(&self.inner.unwritten));
        if let Some(open) = store.as_ref()
            && !waiting.is_empty()
            && let Err(e) = open.insert(&waiting)
        {
            self.inner.report_store_error(format!(
                "{e}; {} entries submitted just before the outbox closed were not stored",
                waiting.len()
            ));
        }
        // Closes the file.
        drop(store.take());
    }
}

impl Inner {
    fn spawn(self: &Arc<Self>, record: EntryRecord) {
        let inner = Arc::clone(self);
        self.runtime.spawn(worker::deliver(inner, record));
    }

    /// The request of one attempt: send-time headers, then the stored ones, then this
    /// run's credentials, then the key.
    fn spec_for(&self, record: &EntryRecord, method: Method, body: Vec<u8>) -> RequestSpec {
        let mut headers = lock(&self.send_headers).clone();
        let mut put = |name: &str, value: &str| {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_string(), value.to_string()));
        };
        for (n, v) in &record.headers {
            put(n, v);
        }
        if let Some(secret) = lock(&self.secrets).get(&record.id) {
            for (n, v) in secret {
                put(n, v);
            }
        }
        put(IDEMPOTENCY_KEY, &record.key);
        RequestSpec {
            method,
            url: record.url.clone(),
            headers,
            body: body_from(&record.body_kind, body),
            final_500: false,
        }
    }

    /// Runs `work` on the open store; an error once the outbox is closed. A store file
    /// deleted while open is made again first (see [`Inner::ensure_current`]).
    fn with_store<T>(&self, work: impl FnOnce(&Store) -> Result<T, String>) -> Result<T, String> {
        self.ensure_current()?;
        let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(store) => work(store),
            None => Err(format!(
                "the outbox store {} is closed (its HTTPPool is gone)",
                self.path.display()
            )),
        }
    }

    /// Makes the store file again, with everything the open store holds, when it was
    /// deleted while open (a player clearing `user://`, a cleanup script): writes to the
    /// deleted file would succeed and vanish at exit, losing every save made since.
    fn ensure_current(&self) -> Result<(), String> {
        {
            let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(store) if store.moved() => {}
                _ => return Ok(()),
            }
        }
        let mut guard = self.store.write().unwrap_or_else(|p| p.into_inner());
        let Some(store) = guard.as_ref() else {
            return Ok(());
        };
        if !store.moved() {
            return Ok(());
        }
        let rebuilt = store.rebuild()?;
        *guard = Some(rebuilt);
        drop(guard);
        self.report_store_error(format!(
            "the outbox store {} was deleted while the game ran; it was made again with every pending entry and dead letter, and nothing was lost",
            self.path.display()
        ));
        Ok(())
    }

    /// Drops what the outbox keeps in memory for an entry that will not be sent.
    fn forget(&self, id: u64) {
        lock(&self.secrets).remove(&id);
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// The background writer (on a blocking thread): commits everything waiting in one
    /// transaction, then starts delivering it, until nothing is waiting.
    fn write_waiting(self: Arc<Self>) {
        loop {
            // A failure shows in the insert below, which then reports it per entry.
            let _ = self.ensure_current();
            let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
            let batch = std::mem::take(&mut *lock(&self.unwritten));
            if batch.is_empty() {
                drop(guard);
                self.writer_busy.store(false, Ordering::Release);
                // A submit may have pushed after the take and seen the writer busy.
                if lock(&self.unwritten).is_empty() || self.writer_busy.swap(true, Ordering::AcqRel)
                {
                    return;
                }
                continue;
            }
            let written = match guard.as_ref() {
                Some(store) => store.insert(&batch),
                None => Err("the outbox store is closed".to_string()),
            };
            drop(guard);
            match written {
                Ok(()) => {
                    for (record, _) in batch {
                        self.spawn(record);
                    }
                }
                Err(e) => {
                    self.store_errors.fetch_add(1, Ordering::Relaxed);
                    for (record, _) in batch {
                        self.forget(record.id);
                        let message = format!(
                            "{e}; the durable request to {} was not stored and is not sent",
                            record.url
                        );
                        let response = Response::failed(ErrorKind::File, message, &record.url);
                        self.events.send(OutboxEvent::NotStored {
                            entry: record.id,
                            response,
                        });
                    }
                }
            }
        }
    }

    /// Runs blocking store work off the tokio workers.
    async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Store) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let inner = Arc::clone(self);
        tokio::task::spawn_blocking(move || inner.with_store(work))
            .await
            .unwrap_or_else(|e| Err(format!("the outbox's store task failed: {e}")))
    }

    fn report_store_error(&self, message: String) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        self.events.send(OutboxEvent::StoreError(message));
    }
}

/// The decoded method of a record (records are written by netkit, so this holds unless
/// the file was edited).
fn record_method(record: &EntryRecord) -> Option<Method> {
    method_from(&record.method)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data under these locks stays consistent across a panic (plain replaces).
    m.lock().unwrap_or_else(|p| p.into_inner())
}
