//! Health pings from the runtime, gated on the main loop's proof of life.
//!
//! Agones kills a GameServer whose pings stop for `periodSeconds * failureThreshold`.
//! Sending them from the frame loop would let one long frame (a level load, a GC pause, a
//! 2 s hitch) kill the server; sending them from a free-running thread would keep a
//! deadlocked game alive forever. So a runtime task sends them on its own clock, but only
//! while the node's per-frame stamp is younger than `tolerance`.
//!
//! `POST /health` goes every `health_interval` (2 s) while the stamp is younger than
//! `health_tolerance` (5 s): a 2 s hitch or a level load never costs a ping, and a
//! deadlocked or endlessly looping main thread stops pinging within `health_tolerance +
//! health_interval`, so Agones marks it Unhealthy after its own `periodSeconds *
//! failureThreshold`. Pings go through a second pool (`max_retries = 0`: the next ping
//! replaces a failed one; `max_queued = 2`: a hung sidecar cannot make them pile up). Pause
//! and resume are reported to the node, which prints how long pings were stopped. The stamp
//! is written by the frame hook on every `SceneTree.process_frame`, paused tree included.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::AgonesEvent;
use super::liveness::Liveness;
use crate::core::events::EventSender;
use crate::core::http::{HttpPool, Method, RequestBody, RequestSpec};

/// Shortest interval honoured, so a mistaken 0 cannot flood the sidecar.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Health settings the node may change at any time, and the task's counters.
#[derive(Debug)]
pub struct HealthControl {
    enabled: AtomicBool,
    interval_ms: AtomicU64,
    tolerance_ms: AtomicU64,
    sent: AtomicU64,
    skipped: AtomicU64,
}

/// A snapshot of the health task's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthCounts {
    /// Pings handed to the ping pool.
    pub sent: u64,
    /// Ticks without a ping because the main loop had not shown life within the tolerance.
    pub skipped: u64,
}

impl HealthControl {
    /// Settings as given; `interval` is raised to [`MIN_INTERVAL`].
    pub fn new(enabled: bool, interval: Duration, tolerance: Duration) -> HealthControl {
        let control = HealthControl {
            enabled: AtomicBool::new(enabled),
            interval_ms: AtomicU64::new(0),
            tolerance_ms: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
        };
        control.set(enabled, interval, tolerance);
        control
    }

    /// Changes the settings; the task reads them before every tick.
    pub fn set(&self, enabled: bool, interval: Duration, tolerance: Duration) {
        self.enabled.store(enabled, Ordering::Relaxed);
        let interval = interval.max(MIN_INTERVAL).as_millis() as u64;
        self.interval_ms.store(interval, Ordering::Relaxed);
        self.tolerance_ms
            .store(tolerance.as_millis() as u64, Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn counts(&self) -> HealthCounts {
        HealthCounts {
            sent: self.sent.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms.load(Ordering::Relaxed))
    }

    fn tolerance(&self) -> Duration {
        Duration::from_millis(self.tolerance_ms.load(Ordering::Relaxed))
    }
}

/// The task: a ping at once, then one per interval while the main loop is alive. Ends
/// when the pool (owned by the client) is gone.
pub async fn run(
    pool: Weak<HttpPool>,
    url: String,
    control: Arc<HealthControl>,
    liveness: Liveness,
    events: EventSender<AgonesEvent>,
) {
    let mut paused_at: Option<Instant> = None;
    loop {
        if control.enabled.load(Ordering::Relaxed) {
            let age = liveness.age();
            if age <= control.tolerance() {
                if let Some(at) = paused_at.take() {
                    events.send(AgonesEvent::HealthResumed {
                        paused_for: at.elapsed(),
                    });
                }
                let Some(pool) = pool.upgrade() else { return };
                // Not repeatable on purpose: a ping that failed is replaced by the next one.
                pool.submit(Ok(RequestSpec {
                    method: Method::Post,
                    url: url.clone(),
                    headers: Vec::new(),
                    body: RequestBody::Json(Bytes::from_static(b"{}")),
                    final_500: false,
                }));
                control.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                control.skipped.fetch_add(1, Ordering::Relaxed);
                if paused_at.is_none() {
                    paused_at = Some(Instant::now());
                    events.send(AgonesEvent::HealthPaused { frame_age: age });
                }
            }
        }
        if pool.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(control.interval()).await;
    }
}
