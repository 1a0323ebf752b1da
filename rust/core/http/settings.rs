//! Everything a pool can be tuned with, as plain values that may cross to worker threads.

use std::time::Duration;

/// A pool's configuration. The node copies its properties into one of these; a change
/// applies to requests made after it (requests in flight keep what they started with).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSettings {
    /// Requests running at once; the rest wait in FIFO order.
    pub max_concurrent: usize,
    /// Requests allowed to wait; one more is rejected with `QueueFull`.
    pub max_queued: usize,
    /// Time allowed for one attempt, from sending to the last byte of the body.
    pub timeout: Duration,
    /// Time allowed to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Extra attempts after the first for retryable failures.
    pub max_retries: u32,
    /// Base of the exponential backoff.
    pub retry_base_delay: Duration,
    /// Cap of the backoff, and the longest `Retry-After` the pool is willing to wait.
    pub retry_max_delay: Duration,
    /// No retry starts when it would begin this long after the first attempt did (waits
    /// and attempts included); `None`: only `max_retries` limits. Without it a server that
    /// accepts and never answers costs `max_retries + 1` whole timeouts.
    pub retry_window: Option<Duration>,
    /// Largest body accepted; checked against Content-Length and while streaming.
    pub max_body_bytes: u64,
    /// Redirects followed before failing with `TooManyRedirects`; 0 disables following.
    pub max_redirects: usize,
    /// Verify server certificates. Off only for throwaway local testing.
    pub verify_tls: bool,
    /// Extra trusted CA certificates, PEM, added to the bundled public roots.
    pub trusted_ca_pem: String,
    /// The User-Agent header sent unless a request sets its own.
    pub user_agent: String,
    /// Idle keep-alive connections kept per host.
    pub max_idle_per_host: usize,
    /// A pooled connection idle this long is closed instead of reused. Kept below the
    /// keep-alive timeout of common servers (Node.js and Apache close after 5 s), so the
    /// pool rarely sends a request on a connection the server is closing.
    pub pool_idle_timeout: Duration,
    /// This pool's own simulated network conditions (`HTTPPool.simulate`), which beat the
    /// process-wide ones; `None` follows the process.
    pub simulate: Option<std::sync::Arc<crate::core::simulate::Conditions>>,
}

/// Default of [`PoolSettings::pool_idle_timeout`]: under the 5 s of Node.js, Apache and
/// uvicorn, the shortest common server keep-alive timeouts after gunicorn's 2 s.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_concurrent: 8,
            max_queued: 1024,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            retry_base_delay: Duration::from_millis(500),
            retry_max_delay: Duration::from_secs(30),
            retry_window: None,
            max_body_bytes: 16 * 1024 * 1024,
            max_redirects: 10,
            verify_tls: true,
            trusted_ca_pem: String::new(),
            user_agent: concat!("godot-netkit/", env!("CARGO_PKG_VERSION")).to_string(),
            max_idle_per_host: 32,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            simulate: None,
        }
    }
}

impl PoolSettings {
    /// True when switching from `self` to `other` needs a new connection pool (TLS and
    /// connection options are baked into the client).
    pub fn needs_new_client(&self, other: &PoolSettings) -> bool {
        self.connect_timeout != other.connect_timeout
            || self.max_redirects != other.max_redirects
            || self.verify_tls != other.verify_tls
            || self.trusted_ca_pem != other.trusted_ca_pem
            || self.user_agent != other.user_agent
            || self.max_idle_per_host != other.max_idle_per_host
            || self.pool_idle_timeout != other.pool_idle_timeout
            // The clients carry the pool's own simulated conditions to every attempt,
            // downloads' and streams' included.
            || self.simulate != other.simulate
    }
}
