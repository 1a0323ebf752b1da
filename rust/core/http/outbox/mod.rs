//! The durable outbox: requests that must reach the backend even across a backend outage,
//! a restart or a crash (DESIGN.md section 7).
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

mod entry;
mod store;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Where an outbox lives and how much it may hold.
#[derive(Clone, Debug)]
pub struct OutboxConfig {
    /// The store file (a plain path: the engine side resolves `user://`).
    pub path: PathBuf,
    /// Pending entries allowed; one more is refused with `QueueFull` and not stored.
    pub max_pending: usize,
    /// The headers every attempt starts from, in place before replayed entries are sent
    /// (see [`Outbox::set_send_headers`]).
    pub send_headers: Vec<(String, String)>,
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
    max_pending: usize,
    pending: AtomicU64,
    delivered: AtomicU64,
    dead_letters: AtomicU64,
    attempts: AtomicU64,
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
            max_pending: config.max_pending,
            pending: AtomicU64::new(opened.pending.len() as u64),
            delivered: AtomicU64::new(0),
            dead_letters: AtomicU64::new(opened.dead_letters),
            attempts: AtomicU64::new(0),
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
    /// Blocking: the entry is committed to disk (fsync) before this returns, so a crash
    /// right after it loses nothing. Credential headers of `spec` are kept in memory only,
    /// for this run. An `Idempotency-Key` header of `spec` is used as the key; otherwise a
    /// random UUID v4 is made. Fails with `QueueFull` beyond `max_pending`, or with
    /// `InvalidRequest` when the store cannot write (nothing is stored then).
    pub fn submit(&self, spec: RequestSpec, max_age: Duration) -> Result<u64, (ErrorKind, String)> {
        let inner = &self.inner;
        let pending = inner.pending.load(Ordering::Acquire);
        if pending >= inner.max_pending as u64 {
            return Err((
                ErrorKind::QueueFull,
                format!(
                    "the outbox already holds {pending} pending entries (outbox_max_pending); the request to {} was not stored",
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
        let key = key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let created_ms = now_ms();
        let max_age_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
        let kind = body_kind(&spec.body);
        let body = spec.body.bytes().unwrap_or_default();
        let url = spec.url;
        let record = inner
            .with_store(|store| {
                store.insert(
                    |id| EntryRecord {
                        id,
                        key,
                        method: method_name(spec.method).to_string(),
                        url: url.clone(),
                        headers: stored,
                        body_kind: kind.to_string(),
                        created_ms,
                        expires_ms: created_ms.saturating_add(max_age_ms),
                    },
                    &body,
                )
            })
            .map_err(|e| {
                inner.store_errors.fetch_add(1, Ordering::Relaxed);
                (
                    ErrorKind::InvalidRequest,
                    format!("{e}; the request to {url} was not stored or sent"),
                )
            })?;
        let id = record.id;
        if !secret.is_empty() {
            lock(&inner.secrets).insert(id, secret);
        }
        inner.pending.fetch_add(1, Ordering::AcqRel);
        inner.spawn(record);
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
            .map(|(d, body)| DeadLetter {
                id: d.entry.id,
                key: d.entry.key,
                method: d.entry.method,
                url: d.entry.url,
                headers: d.entry.headers,
                body,
                status: d.status,
                error: d.error,
                reason: d.reason,
                attempts: d.attempts,
                created_ms: d.entry.created_ms,
                dead_ms: d.dead_ms,
            })
            .collect())
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
        // Waits at most for one store operation in progress (a commit), then closes the file.
        let store = self
            .inner
            .store
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(store);
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
        }
    }

    /// Runs `work` on the open store; an error once the outbox is closed.
    fn with_store<T>(&self, work: impl FnOnce(&Store) -> Result<T, String>) -> Result<T, String> {
        let guard = self.store.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(store) => work(store),
            None => Err(format!(
                "the outbox store {} is closed (its HTTPPool is gone)",
                self.path.display()
            )),
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
