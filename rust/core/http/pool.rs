//! The scheduler: at most `max_concurrent` requests running, the rest in a bounded FIFO
//! queue, each request ending in exactly one event on the owner's channel.
//!
//! Waiting requests are a mutex-guarded `VecDeque`, running ones a map. A request starts at
//! once when fewer than `max_concurrent` run and nobody waits; otherwise it queues, or ends
//! at once with `ERR_QUEUE_FULL` when `max_queued` already wait. When a request ends its
//! slot is handed to the head of the queue, so start order is FIFO by construction (a
//! semaphore's wake order depends on task polling order, which a multi-thread runtime does
//! not guarantee).
//!
//! Every running request's task owns a `FinishGuard`: if the task is dropped before it
//! completes (runtime shutdown, a panic), the guard still reports `ERR_CANCELLED` and frees
//! the slot. Requests that fail before starting (a bad URL, a bad body) are answered
//! through the same channel, so a script always sees them through `completed`, never as a
//! return value.
//!
//! `HTTPTask.cancel()` holds a `CancelHandle` (a `Weak` to the pool's shared state and the
//! id), so it never touches the node and never blocks: a queued request is removed and
//! answered at once; a running one has its `CancellationToken` cancelled and its task
//! answers `ERR_CANCELLED`. Dropping the pool aborts every request and delivers nothing.
//! `PoolStats::stale_resends` counts the resends of `exec.rs`'s stale-connection rule.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use super::client::{Clients, build_clients};
use super::error::ErrorKind;
use super::exec::{AttemptLimits, RetryCounter, execute};
use super::request::RequestSpec;
use super::request_parse::Rejected;
use super::response::Response;
use super::retry::RetryPolicy;
use super::settings::PoolSettings;
use crate::core::events::{Budget, EventQueue, EventSender, channel};
use crate::core::{metrics, runtime};

/// Identifies a request within its pool; ids start at 1 and are never reused.
pub type RequestId = u64;

/// A finished request, as delivered to the owner's queue.
#[derive(Debug)]
pub struct HttpEvent {
    /// The request this answers.
    pub id: RequestId,
    /// How it ended.
    pub response: Response,
}

/// A snapshot of a pool's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Requests running now.
    pub in_flight: u64,
    /// Requests waiting for a free slot.
    pub queued: u64,
    /// Highest `in_flight` seen.
    pub peak_in_flight: u64,
    /// Requests that ended with `ok`.
    pub succeeded: u64,
    /// Requests that ended with any error (HTTP status included, cancellations excluded).
    pub failed: u64,
    /// Requests cancelled.
    pub cancelled: u64,
    /// Retries made (attempts beyond the first).
    pub retries: u64,
    /// Body bytes received.
    pub bytes_received: u64,
    /// Requests sent again at once on a new connection because a reused keep-alive
    /// connection closed before answering (these spend no retry).
    pub stale_resends: u64,
}

/// The engine-free HTTP pool. Dropping it cancels everything it runs; nothing is
/// delivered afterwards.
pub struct HttpPool {
    shared: Arc<Shared>,
    queue: EventQueue<HttpEvent>,
}

/// Cancels one request without needing the pool (a task object may outlive its node).
#[derive(Clone, Debug)]
pub struct CancelHandle {
    shared: Weak<Shared>,
    id: RequestId,
}

impl CancelHandle {
    /// Cancels the request if it has not ended; never blocks on the network.
    pub fn cancel(&self) -> bool {
        self.shared.upgrade().is_some_and(|s| s.cancel(self.id))
    }
}

struct Queued {
    id: RequestId,
    spec: RequestSpec,
}

struct Sched {
    waiting: VecDeque<Queued>,
    running: HashMap<RequestId, CancellationToken>,
    settings: PoolSettings,
    client: Result<Clients, String>,
}

struct Shared {
    sched: Mutex<Sched>,
    events: EventSender<HttpEvent>,
    runtime: Handle,
    next_id: AtomicU64,
    closed: AtomicBool,
    peak: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    retries: AtomicU64,
    stale_resends: AtomicU64,
    bytes: AtomicU64,
}

impl metrics::MetricSource for Shared {
    fn add_to(&self, totals: &mut metrics::Totals) {
        let sched = self.lock();
        totals.http_in_flight += sched.running.len() as u64;
        totals.http_queued += sched.waiting.len() as u64;
        totals.http_succeeded += self.succeeded.load(Ordering::Relaxed);
        totals.http_failed += self.failed.load(Ordering::Relaxed);
    }
}

impl RetryCounter for Shared {
    fn on_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn on_stale_resend(&self) {
        self.stale_resends.fetch_add(1, Ordering::Relaxed);
    }
}

impl HttpPool {
    /// Creates a pool on the shared runtime. A bad `trusted_ca_pem` does not fail here:
    /// it is reported by [`HttpPool::client_error`] and by every request, so nothing is silent.
    pub fn new(settings: PoolSettings) -> HttpPool {
        Self::with_runtime(settings, runtime::handle())
    }

    /// Creates a pool on a given runtime (tests use their own).
    pub fn with_runtime(settings: PoolSettings, runtime: Handle) -> HttpPool {
        let (events, queue) = channel();
        let client = build_clients(&settings);
        let shared = Arc::new(Shared {
            sched: Mutex::new(Sched {
                waiting: VecDeque::new(),
                running: HashMap::new(),
                settings,
                client,
            }),
            events,
            runtime,
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            peak: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            stale_resends: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        });
        let source: Arc<dyn metrics::MetricSource> = shared.clone();
        metrics::register(Arc::downgrade(&source));
        HttpPool { shared, queue }
    }

    /// Applies new settings to requests started from now on. Returns the client error, if
    /// the new TLS settings are unusable (requests then fail with that message).
    pub fn set_settings(&self, settings: PoolSettings) -> Result<(), String> {
        let mut sched = self.shared.lock();
        if sched.settings.needs_new_client(&settings) {
            sched.client = build_clients(&settings);
        }
        sched.settings = settings;
        let result = sched.client.as_ref().map(|_| ()).map_err(Clone::clone);
        self.shared.start_waiting(&mut sched);
        result
    }

    /// The current settings.
    pub fn settings(&self) -> PoolSettings {
        self.shared.lock().settings.clone()
    }

    /// Why the client could not be built, if it could not.
    pub fn client_error(&self) -> Option<String> {
        self.shared.lock().client.as_ref().err().cloned()
    }

    /// Submits a request, or a request that already failed to be built (bad URL, bad
    /// body): either way it gets an id and ends with exactly one event.
    pub fn submit(&self, spec: Result<RequestSpec, Rejected>) -> RequestId {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let spec = match spec {
            Ok(spec) => spec,
            Err(rejected) => {
                self.shared.finish(
                    id,
                    Response::failed(rejected.kind(), rejected.to_string(), rejected.url()),
                );
                return id;
            }
        };
        let mut sched = self.shared.lock();
        if sched.running.len() < sched.settings.max_concurrent.max(1) && sched.waiting.is_empty() {
            self.shared.start(&mut sched, Queued { id, spec });
        } else if sched.waiting.len() >= sched.settings.max_queued {
            let message = format!(
                "the queue is full ({} requests waiting, max_queued); the request to {} was not sent",
                sched.waiting.len(),
                spec.url
            );
            drop(sched);
            self.shared.finish(
                id,
                Response::failed(ErrorKind::QueueFull, message, &spec.url),
            );
        } else {
            sched.waiting.push_back(Queued { id, spec });
        }
        id
    }

    /// A handle that can cancel request `id` from anywhere.
    pub fn cancel_handle(&self, id: RequestId) -> CancelHandle {
        CancelHandle {
            shared: Arc::downgrade(&self.shared),
            id,
        }
    }

    /// Cancels one request; false when it had already ended.
    pub fn cancel(&self, id: RequestId) -> bool {
        self.shared.cancel(id)
    }

    /// Cancels every queued and running request; each still ends with a `Cancelled` event.
    pub fn cancel_all(&self) {
        self.shared.cancel_all();
    }

    /// Takes finished requests in completion order, within the budget.
    pub fn drain(&self, budget: Budget) -> Vec<HttpEvent> {
        self.queue.drain(budget)
    }

    /// Takes the next finished request, if any.
    pub fn next_event(&self) -> Option<HttpEvent> {
        self.queue.next()
    }

    /// Finished requests waiting to be drained.
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// What the durable outbox sends through: this pool's client and settings, read at
    /// each attempt, without holding the pool alive.
    pub(crate) fn attempt_source(&self) -> AttemptSource {
        AttemptSource(Arc::downgrade(&self.shared), self.shared.runtime.clone())
    }

    /// What a download or stream (`transfer/`) borrows from the pool when it starts: its
    /// clients, settings and runtime.
    pub(crate) fn transfer_base(&self) -> TransferBase {
        let sched = self.shared.lock();
        TransferBase {
            clients: sched.client.clone(),
            settings: sched.settings.clone(),
            runtime: self.shared.runtime.clone(),
        }
    }

    /// The counters.
    pub fn stats(&self) -> PoolStats {
        let sched = self.shared.lock();
        let s = &self.shared;
        PoolStats {
            in_flight: sched.running.len() as u64,
            queued: sched.waiting.len() as u64,
            peak_in_flight: s.peak.load(Ordering::Relaxed),
            succeeded: s.succeeded.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            cancelled: s.cancelled.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            stale_resends: s.stale_resends.load(Ordering::Relaxed),
            bytes_received: s.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for HttpPool {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.cancel_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Sched> {
        // A panic while holding the lock cannot leave Sched half-updated in a way that
        // matters more than losing the pool, so keep going with the data as it is.
        self.sched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start_waiting(self: &Arc<Self>, sched: &mut Sched) {
        while sched.running.len() < sched.settings.max_concurrent.max(1) {
            let Some(job) = sched.waiting.pop_front() else {
                break;
            };
            self.start(sched, job);
        }
    }

    /// Marks `job` running and copies what its attempt needs out of the locked state.
    fn prepare(&self, sched: &mut Sched, job: Queued) -> Prepared {
        let token = CancellationToken::new();
        sched.running.insert(job.id, token.clone());
        self.peak
            .fetch_max(sched.running.len() as u64, Ordering::Relaxed);
        let settings = &sched.settings;
        Prepared {
            id: job.id,
            spec: job.spec,
            token,
            limits: AttemptLimits {
                timeout: settings.timeout,
                max_body_bytes: settings.max_body_bytes,
                max_redirects: settings.max_redirects,
                keep_method: false,
            },
            policy: RetryPolicy {
                max_retries: settings.max_retries,
                base_delay: settings.retry_base_delay,
                max_delay: settings.retry_max_delay,
                window: settings.retry_window,
            },
            client: sched.client.clone(),
        }
    }

    /// Runs `job` on a new task. When it ends, the same task takes the next queued request
    /// (if a slot is free), so a long queue costs no task spawn per request.
    fn start(self: &Arc<Self>, sched: &mut Sched, job: Queued) {
        let first = self.prepare(sched, job);
        let weak = Arc::downgrade(self);
        self.runtime.spawn(async move {
            let mut next = Some(first);
            while let Some(job) = next.take() {
                let mut guard = FinishGuard {
                    shared: weak.clone(),
                    id: job.id,
                    url: job.spec.url.clone(),
                    done: false,
                    released: false,
                };
                let response = match job.client {
                    Err(message) => Response::failed(ErrorKind::Tls, message, &job.spec.url),
                    Ok(client) => {
                        let Some(shared) = weak.upgrade() else { return };
                        tokio::select! {
                            biased;
                            _ = job.token.cancelled() => cancelled(&job.spec.url, "the request was cancelled while running"),
                            response = execute(&client, &job.spec, job.limits, job.policy, shared.as_ref()) => response,
                        }
                    }
                };
                guard.complete(response);
                next = guard.hand_over();
            }
        });
    }

    fn cancel(self: &Arc<Self>, id: RequestId) -> bool {
        let mut sched = self.lock();
        if let Some(pos) = sched.waiting.iter().position(|q| q.id == id) {
            let job = sched.waiting.remove(pos).expect("position is in range");
            drop(sched);
            self.finish(
                id,
                cancelled(&job.spec.url, "the request was cancelled while queued"),
            );
            return true;
        }
        match sched.running.get(&id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn cancel_all(self: &Arc<Self>) {
        let mut sched = self.lock();
        let waiting: Vec<Queued> = sched.waiting.drain(..).collect();
        for token in sched.running.values() {
            token.cancel();
        }
        drop(sched);
        for job in waiting {
            self.finish(
                job.id,
                cancelled(&job.spec.url, "the request was cancelled while queued"),
            );
        }
    }

    /// Counts and delivers a response. Sending fails only when the owner is gone, which is
    /// exactly when nothing should be delivered.
    fn finish(&self, id: RequestId, response: Response) {
        let counter = match response.error {
            ErrorKind::None => &self.succeeded,
            ErrorKind::Cancelled => &self.cancelled,
            _ => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(response.body.len() as u64, Ordering::Relaxed);
        if !self.closed.load(Ordering::Acquire) {
            self.events.send(HttpEvent { id, response });
        }
    }
}

fn cancelled(url: &str, why: &str) -> Response {
    Response::failed(ErrorKind::Cancelled, why, url)
}

/// Guarantees the "exactly one ending" rule: if a running request's task is dropped before
/// it completes (runtime shutdown, panic), the guard still reports it and frees its slot.
struct FinishGuard {
    shared: Weak<Shared>,
    id: RequestId,
    url: String,
    done: bool,
    released: bool,
}

/// A request taken off the queue, with the settings it runs under.
struct Prepared {
    id: RequestId,
    spec: RequestSpec,
    token: CancellationToken,
    limits: AttemptLimits,
    policy: RetryPolicy,
    client: Result<Clients, String>,
}

impl FinishGuard {
    fn complete(&mut self, response: Response) {
        if let Some(shared) = self.shared.upgrade() {
            shared.finish(self.id, response);
        }
        self.done = true;
    }

    /// Frees this request's slot and, when the queue has work and the limit allows,
    /// claims the next request for the calling task.
    fn hand_over(&mut self) -> Option<Prepared> {
        self.released = true;
        let shared = self.shared.upgrade()?;
        let mut sched = shared.lock();
        sched.running.remove(&self.id);
        if shared.closed.load(Ordering::Acquire)
            || sched.running.len() >= sched.settings.max_concurrent.max(1)
        {
            return None;
        }
        let job = sched.waiting.pop_front()?;
        Some(shared.prepare(&mut sched, job))
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if self.released {
            return;
        }
        if !self.done {
            shared.finish(
                self.id,
                cancelled(
                    &self.url,
                    "the request was stopped because netkit's runtime shut down",
                ),
            );
        }
        let mut sched = shared.lock();
        sched.running.remove(&self.id);
        if !shared.closed.load(Ordering::Acquire) {
            shared.start_waiting(&mut sched);
        }
    }
}

/// One attempt at a time for the durable outbox (which retries by its own rules), under the
/// pool's current client, timeout, body limit and redirects.
#[derive(Clone)]
pub(crate) struct AttemptSource(Weak<Shared>, Handle);

impl AttemptSource {
    /// The runtime the pool runs on.
    pub(crate) fn runtime(&self) -> Handle {
        self.1.clone()
    }

    /// The pool's backoff base and cap now; `None` once the pool is gone.
    pub(crate) fn backoff(&self) -> Option<RetryPolicy> {
        let shared = self.0.upgrade()?;
        let sched = shared.lock();
        Some(RetryPolicy {
            max_retries: 0,
            base_delay: sched.settings.retry_base_delay,
            max_delay: sched.settings.retry_max_delay,
            window: sched.settings.retry_window,
        })
    }

    /// The pool's `timeout` for one attempt now; `None` once the pool is gone.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        Some(self.0.upgrade()?.lock().settings.timeout)
    }

    /// Sends `spec` once (a stale keep-alive connection is still retried at once); `None`
    /// once the pool is gone.
    pub(crate) async fn attempt(&self, spec: &RequestSpec) -> Option<Response> {
        let shared = self.0.upgrade()?;
        let (client, limits) = {
            let sched = shared.lock();
            let s = &sched.settings;
            let limits = AttemptLimits {
                timeout: s.timeout,
                max_body_bytes: s.max_body_bytes,
                max_redirects: s.max_redirects,
                keep_method: true,
            };
            (sched.client.clone(), limits)
        };
        let policy = RetryPolicy {
            max_retries: 0,
            base_delay: Default::default(),
            max_delay: Default::default(),
            window: None,
        };
        Some(match client {
            Err(message) => Response::failed(ErrorKind::Tls, message, &spec.url),
            Ok(client) => execute(&client, spec, limits, policy, shared.as_ref()).await,
        })
    }
}

/// What a download or stream borrows from the pool when it starts (`transfer/` depends on
/// the pool, never the other way).
#[derive(Clone)]
pub(crate) struct TransferBase {
    pub clients: Result<Clients, String>,
    pub settings: PoolSettings,
    pub runtime: Handle,
}
