//! The client: SDK calls through an ordered, retrying HTTP pool, health pings through a
//! second pool, and the watch stream, all on the shared runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::AbortHandle;

use super::calls::{MAX_WAITING_CALLS, SdkCall};
use super::endpoint::Endpoint;
use super::health::{self, HealthControl, HealthCounts};
use super::liveness::Liveness;
use super::{AgonesEvent, watch};
use crate::core::events::{EventQueue, channel};
use crate::core::http::{
    CancelHandle, ErrorKind, HttpEvent, HttpPool, PoolSettings, Rejected, RequestId,
};
use crate::core::runtime;

/// How the client behaves; the node fills it from its properties.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    /// Send health pings.
    pub health_enabled: bool,
    /// Time between pings.
    pub health_interval: Duration,
    /// Pings stop while the main loop has not run for longer than this.
    pub health_tolerance: Duration,
    /// Follow `/watch/gameserver`.
    pub watch: bool,
    /// Time allowed for one attempt of a call.
    pub call_timeout: Duration,
    /// Retries of a repeatable call (connection refused while the sidecar starts, 5xx,
    /// timeouts).
    pub max_retries: u32,
    /// No retry of a call begins later than this after its first attempt: a sidecar that
    /// accepts and never answers fails a call in about this long, not after
    /// `max_retries + 1` whole `call_timeout`s (over ten minutes).
    pub retry_window: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            health_enabled: true,
            health_interval: Duration::from_secs(2),
            health_tolerance: Duration::from_secs(5),
            watch: true,
            call_timeout: Duration::from_secs(10),
            // With backoff from 0.1 s up to 1 s (full jitter), about 30 s of retrying: a
            // sidecar container takes a few seconds to start next to the game.
            max_retries: 60,
            retry_window: Duration::from_secs(30),
        }
    }
}

/// Talks to one Agones SDK sidecar. Dropping it stops its tasks and cancels its calls.
pub struct AgonesClient {
    endpoint: Endpoint,
    base_url: String,
    calls: HttpPool,
    pings: Arc<HttpPool>,
    events: EventQueue<AgonesEvent>,
    liveness: Liveness,
    health: Arc<HealthControl>,
    tasks: Vec<AbortHandle>,
    /// Makes each call's Idempotency-Key unique (retries of one call share theirs).
    next_key: AtomicU64,
}

impl AgonesClient {
    /// A client on the shared runtime.
    pub fn new(endpoint: Endpoint, options: ClientOptions) -> AgonesClient {
        Self::with_runtime(endpoint, options, runtime::handle())
    }

    /// A client on a given runtime (tests use their own). With [`Endpoint::Absent`] no
    /// task starts and every call fails at once with the endpoint's sentence.
    pub fn with_runtime(endpoint: Endpoint, options: ClientOptions, rt: Handle) -> AgonesClient {
        let port = match &endpoint {
            Endpoint::Sidecar { port, .. } => *port,
            Endpoint::Absent(_) => super::endpoint::DEFAULT_PORT,
        };
        // 127.0.0.1 rather than "localhost": the sidecar listens on IPv4 loopback, and
        // a resolver that answers ::1 first would cost a failed connect per call.
        let base_url = format!("http://127.0.0.1:{port}");
        // One call at a time: the sidecar applies calls in arrival order, and ready()
        // followed by allocate() must not end Ready because a retry reordered them.
        let calls = HttpPool::with_runtime(
            PoolSettings {
                max_concurrent: 1,
                max_queued: MAX_WAITING_CALLS,
                timeout: options.call_timeout,
                connect_timeout: Duration::from_secs(2),
                max_retries: options.max_retries,
                retry_window: Some(options.retry_window),
                retry_base_delay: Duration::from_millis(100),
                retry_max_delay: Duration::from_secs(1),
                max_body_bytes: 4 * 1024 * 1024,
                max_redirects: 0,
                ..PoolSettings::default()
            },
            rt.clone(),
        );
        // Pings are never retried (the next one replaces a failed one) and never pile
        // up: with the sidecar hung, the third waiting ping fails at once (QueueFull).
        let pings = Arc::new(HttpPool::with_runtime(
            PoolSettings {
                max_concurrent: 1,
                max_queued: 2,
                timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(2),
                max_retries: 0,
                max_body_bytes: 64 * 1024,
                max_redirects: 0,
                ..PoolSettings::default()
            },
            rt.clone(),
        ));
        let (sender, events) = channel();
        let liveness = Liveness::new();
        let health = Arc::new(HealthControl::new(
            options.health_enabled,
            options.health_interval,
            options.health_tolerance,
        ));
        let mut tasks = Vec::new();
        if matches!(endpoint, Endpoint::Sidecar { .. }) {
            tasks.push(
                rt.spawn(health::run(
                    Arc::downgrade(&pings),
                    format!("{base_url}/health"),
                    health.clone(),
                    liveness.clone(),
                    sender.clone(),
                ))
                .abort_handle(),
            );
            if options.watch {
                match watch_client() {
                    Ok(client) => tasks.push(
                        rt.spawn(watch::run(
                            client,
                            format!("{base_url}/watch/gameserver"),
                            sender,
                        ))
                        .abort_handle(),
                    ),
                    Err(why) => {
                        sender.send(AgonesEvent::WatchLost(why));
                    }
                }
            }
        }
        AgonesClient {
            endpoint,
            base_url,
            calls,
            pings,
            events,
            liveness,
            health,
            tasks,
            next_key: AtomicU64::new(1),
        }
    }

    /// Where the client talks to, or why it does not.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends a call (after the ones made before it). It ends with exactly one event from
    /// [`AgonesClient::next_call_event`], failures included.
    pub fn call(&self, call: &SdkCall) -> RequestId {
        let spec = match &self.endpoint {
            Endpoint::Absent(why) => Err(Rejected::Call {
                url: self.base_url.clone(),
                kind: ErrorKind::Connect,
                why: format!("{}: {why}", call.name()),
            }),
            Endpoint::Sidecar { .. } => {
                let key = self.next_key.fetch_add(1, Ordering::Relaxed);
                call.to_request(&self.base_url, key)
            }
        };
        self.calls.submit(spec)
    }

    /// Ends a call that cannot be made (arguments the node could not read) with
    /// `ErrorKind::InvalidRequest` and `why`, through the same events as any call.
    pub fn reject(&self, why: String) -> RequestId {
        self.calls.submit(Err(Rejected::Call {
            url: self.base_url.clone(),
            kind: ErrorKind::InvalidRequest,
            why,
        }))
    }

    /// A handle that cancels call `id` from anywhere.
    pub fn cancel_handle(&self, id: RequestId) -> CancelHandle {
        self.calls.cancel_handle(id)
    }

    /// Cancels every call still waiting or running; each still ends with an event.
    pub fn cancel_all(&self) {
        self.calls.cancel_all();
    }

    /// The next finished call, if any.
    pub fn next_call_event(&self) -> Option<HttpEvent> {
        self.calls.next_event()
    }

    /// The next finished health ping, if any.
    pub fn next_ping_event(&self) -> Option<HttpEvent> {
        self.pings.next_event()
    }

    /// The next watch or health event, if any.
    pub fn next_event(&self) -> Option<AgonesEvent> {
        self.events.next()
    }

    /// Records that the main loop ran now; call it every frame.
    pub fn mark_alive(&self) {
        self.liveness.stamp();
    }

    /// Changes the health settings; the ping task reads them before every tick.
    pub fn set_health(&self, enabled: bool, interval: Duration, tolerance: Duration) {
        self.health.set(enabled, interval, tolerance);
    }

    /// The ping task's counters.
    pub fn health_counts(&self) -> HealthCounts {
        self.health.counts()
    }
}

impl Drop for AgonesClient {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A plain client for the watch stream: no total timeout (the response never ends), a
/// short connect timeout, no proxy (the sidecar is on loopback), no redirects. rustls is
/// given its provider explicitly, as the pool does, although only http:// is used.
fn watch_client() -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("could not set up the watch stream's HTTP client: {e}"))
}
