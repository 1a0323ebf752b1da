//! Counters and logs shared by every connection, so tests can prove what the client did
//! on the wire (connection reuse, parallelism, retries, ordering).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// A snapshot of the server's counters, so a test can assert on connection reuse,
/// request counts and parallelism after driving the client.
///
/// Control endpoints (`/stats`, `/stats/reset`, `/order`, `/order/reset`, `/count`,
/// `/ca.pem`) are never counted in `requests` nor tracked in `in_flight`, so reading the
/// stats does not change them. Every other request is counted and tracked, from the moment
/// its headers arrive until its response body is fully sent (or dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// TCP connections accepted on both listeners (counted before any TLS handshake).
    pub connections: u64,
    /// TCP connections accepted on the plain HTTP listener.
    pub http_connections: u64,
    /// TCP connections accepted on the HTTPS listener.
    pub https_connections: u64,
    /// Requests served, control endpoints excluded.
    pub requests: u64,
    /// Requests whose response is not finished yet.
    pub in_flight: u64,
    /// Highest `in_flight` seen since the start or the last reset.
    pub peak_concurrency: u64,
}

impl Stats {
    /// The JSON object `GET /stats` returns, for GDScript tests that cannot call Rust.
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "connections": self.connections,
            "http_connections": self.http_connections,
            "https_connections": self.https_connections,
            "requests": self.requests,
            "in_flight": self.in_flight,
            "peak_concurrency": self.peak_concurrency,
        })
    }
}

/// Which listener accepted a connection, so accepts can be counted per listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// The plain `http://` listener.
    Http,
    /// The TLS `https://` listener.
    Https,
}

/// Everything the handlers share. One per `TestServer`, behind an `Arc`.
#[derive(Default)]
pub struct State {
    http_connections: AtomicU64,
    https_connections: AtomicU64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    peak: AtomicU64,
    order: Mutex<Vec<String>>,
    key_counts: Mutex<HashMap<String, u64>>,
    retry_first_seen: Mutex<HashMap<String, Instant>>,
    /// The PEM a client must trust for the HTTPS listener, served at `/ca.pem`.
    pub ca_pem: String,
    /// URL and certificate of the self-signed listener, served at `/self-signed`.
    pub self_signed: (String, String),
}

/// Locks a mutex even if a handler panicked while holding it: the data are plain
/// counters and logs, always consistent between statements.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl State {
    /// Creates empty state that will serve `ca_pem` at `/ca.pem` and the self-signed
    /// listener's URL and PEM at `/self-signed`.
    pub fn new(ca_pem: String, self_signed_url: String, self_signed_pem: String) -> Self {
        Self {
            ca_pem,
            self_signed: (self_signed_url, self_signed_pem),
            ..Self::default()
        }
    }

    /// Counts one accepted TCP connection.
    pub fn connection_accepted(&self, listener: Listener) {
        let counter = match listener {
            Listener::Http => &self.http_connections,
            Listener::Https => &self.https_connections,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a request and marks it in flight until the returned guard drops.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// Reads all counters at once.
    pub fn stats(&self) -> Stats {
        let http_connections = self.http_connections.load(Ordering::SeqCst);
        let https_connections = self.https_connections.load(Ordering::SeqCst);
        Stats {
            connections: http_connections + https_connections,
            http_connections,
            https_connections,
            requests: self.requests.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
            peak_concurrency: self.peak.load(Ordering::SeqCst),
        }
    }

    /// Zeroes connections and requests; the peak restarts from the requests still in
    /// flight (which stay counted, since they are still running).
    pub fn reset_stats(&self) {
        self.http_connections.store(0, Ordering::SeqCst);
        self.https_connections.store(0, Ordering::SeqCst);
        self.requests.store(0, Ordering::SeqCst);
        let in_flight = self.in_flight.load(Ordering::SeqCst);
        self.peak.store(in_flight, Ordering::SeqCst);
    }

    /// Appends an id to the arrival-order log.
    pub fn record_arrival(&self, id: &str) {
        lock(&self.order).push(id.to_owned());
    }

    /// The ids logged so far, in arrival order.
    pub fn arrivals(&self) -> Vec<String> {
        lock(&self.order).clone()
    }

    /// Clears the arrival-order log.
    pub fn clear_arrivals(&self) {
        lock(&self.order).clear();
    }

    /// Counts one request for `key` and returns the new count (1 for the first).
    pub fn bump_key(&self, key: &str) -> u64 {
        let mut counts = lock(&self.key_counts);
        let count = counts.entry(key.to_owned()).or_insert(0);
        *count += 1;
        *count
    }

    /// How many requests carried `key` so far.
    pub fn key_count(&self, key: &str) -> u64 {
        lock(&self.key_counts).get(key).copied().unwrap_or(0)
    }

    /// When a `/retry-after` request first used `key`; `None` (and now recorded) on the
    /// first call.
    pub fn retry_first_seen(&self, key: &str) -> Option<Instant> {
        let mut seen = lock(&self.retry_first_seen);
        match seen.get(key) {
            Some(first) => Some(*first),
            None => {
                seen.insert(key.to_owned(), Instant::now());
                None
            }
        }
    }
}

/// Keeps a request counted as in flight; moved into the response body so streaming
/// responses stay in flight until their last byte.
pub struct InFlight(Arc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
