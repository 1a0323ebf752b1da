//! Counters a node can read from the main thread at any moment without locking.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated by background tasks with relaxed atomics (they are for display
/// and monitoring, not for synchronisation).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connected peers right now.
    pub peers: AtomicU64,
    /// Handshakes in progress right now.
    pub pending_handshakes: AtomicU64,
    /// Handshakes that completed.
    pub handshakes_ok: AtomicU64,
    /// Handshakes that failed or timed out.
    pub handshakes_failed: AtomicU64,
    /// Application packets received.
    pub packets_in: AtomicU64,
    /// Application packets sent.
    pub packets_out: AtomicU64,
    /// Application bytes received.
    pub bytes_in: AtomicU64,
    /// Application bytes sent.
    pub bytes_out: AtomicU64,
    /// Outgoing packets dropped because a peer's queue was full.
    pub send_drops: AtomicU64,
    /// Incoming datagrams or records thrown away (garbage, oversize, full queues, limits).
    pub dropped_datagrams: AtomicU64,
    /// Of those, datagrams dropped because a peer's inbound queue was full (a burst
    /// larger than `inbound_queue`).
    pub inbound_drops: AtomicU64,
    /// Handshake fragments dropped before webrtc-dtls saw them: malformed, impossible
    /// within their message, or over the per-message and per-peer bounds
    /// (`handshake_filter.rs`).
    pub dropped_fragments: AtomicU64,
    /// Received packets dropped because the peer's dispatch queue was full: it sent
    /// faster than the node delivers (`SessionOptions::dispatch_queue`).
    pub dispatch_drops: AtomicU64,
}

/// A plain copy of [`Stats`] at one instant, convenient for a node to hand to a script.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`Stats::peers`].
    pub peers: u64,
    /// See [`Stats::pending_handshakes`].
    pub pending_handshakes: u64,
    /// See [`Stats::handshakes_ok`].
    pub handshakes_ok: u64,
    /// See [`Stats::handshakes_failed`].
    pub handshakes_failed: u64,
    /// See [`Stats::packets_in`].
    pub packets_in: u64,
    /// See [`Stats::packets_out`].
    pub packets_out: u64,
    /// See [`Stats::bytes_in`].
    pub bytes_in: u64,
    /// See [`Stats::bytes_out`].
    pub bytes_out: u64,
    /// See [`Stats::send_drops`].
    pub send_drops: u64,
    /// See [`Stats::dropped_datagrams`].
    pub dropped_datagrams: u64,
    /// See [`Stats::inbound_drops`].
    pub inbound_drops: u64,
    /// See [`Stats::dropped_fragments`].
    pub dropped_fragments: u64,
    /// See [`Stats::dispatch_drops`].
    pub dispatch_drops: u64,
}

impl Stats {
    /// Reads every counter once.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            peers: g(&self.peers),
            pending_handshakes: g(&self.pending_handshakes),
            handshakes_ok: g(&self.handshakes_ok),
            handshakes_failed: g(&self.handshakes_failed),
            packets_in: g(&self.packets_in),
            packets_out: g(&self.packets_out),
            bytes_in: g(&self.bytes_in),
            bytes_out: g(&self.bytes_out),
            send_drops: g(&self.send_drops),
            dropped_datagrams: g(&self.dropped_datagrams),
            inbound_drops: g(&self.inbound_drops),
            dropped_fragments: g(&self.dropped_fragments),
            dispatch_drops: g(&self.dispatch_drops),
        }
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl crate::core::metrics::MetricSource for Stats {
    fn add_to(&self, totals: &mut crate::core::metrics::Totals) {
        totals.dtls_peers += self.peers.load(Ordering::Relaxed);
        totals.dtls_pending += self.pending_handshakes.load(Ordering::Relaxed);
        totals.dtls_packets_in += self.packets_in.load(Ordering::Relaxed);
        totals.dtls_packets_out += self.packets_out.load(Ordering::Relaxed);
        totals.dtls_dropped_fragments += self.dropped_fragments.load(Ordering::Relaxed);
        totals.dtls_dispatch_drops += self.dispatch_drops.load(Ordering::Relaxed);
    }
}

/// Creates a stats block that the Performance monitors see for as long as it lives.
pub fn registered() -> std::sync::Arc<Stats> {
    let stats = std::sync::Arc::new(Stats::default());
    let source: std::sync::Arc<dyn crate::core::metrics::MetricSource> = stats.clone();
    crate::core::metrics::register(std::sync::Arc::downgrade(&source));
    stats
}
