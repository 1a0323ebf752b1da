//! Process-wide totals for Godot's Performance monitors and the headless stats log: every
//! live pool and DTLS endpoint registers itself, and a reader sums them on demand.

use std::sync::{Mutex, Weak};

/// Sums over every live pool and DTLS endpoint at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// HTTP requests running.
    pub http_in_flight: u64,
    /// HTTP requests waiting in queues.
    pub http_queued: u64,
    /// HTTP requests that succeeded.
    pub http_succeeded: u64,
    /// HTTP requests that failed (cancellations excluded).
    pub http_failed: u64,
    /// Connected DTLS peers.
    pub dtls_peers: u64,
    /// DTLS handshakes in progress.
    pub dtls_pending: u64,
    /// DTLS application packets received.
    pub dtls_packets_in: u64,
    /// DTLS application packets sent.
    pub dtls_packets_out: u64,
    /// DTLS handshake fragments dropped by the record layer (hostile or broken senders).
    pub dtls_dropped_fragments: u64,
    /// DTLS packets dropped because a peer sent faster than its node delivered them.
    pub dtls_dispatch_drops: u64,
    /// Durable outbox entries waiting for delivery (in the stores of open pools).
    pub outbox_pending: u64,
    /// Durable outbox entries delivered since their stores were opened.
    pub outbox_delivered: u64,
    /// Dead letters kept in open outbox stores.
    pub outbox_dead_letters: u64,
    /// Sessions of DTLSMultiplayerPeer endpoints (a client counts its server).
    pub mp_peers: u64,
    /// DTLS payload bytes DTLSMultiplayerPeer endpoints received.
    pub mp_bytes_in: u64,
    /// DTLS payload bytes DTLSMultiplayerPeer endpoints sent.
    pub mp_bytes_out: u64,
    /// Datagrams and HTTP attempts dropped or failed on purpose by simulated network
    /// conditions since the process started.
    pub simulated_drops: u64,
    /// Reliable messages DTLSMultiplayerPeer endpoints sent again (counted by netkit:
    /// renet does not).
    pub mp_resent: u64,
}

/// Something that contributes to the totals.
pub trait MetricSource: Send + Sync {
    /// Adds this source's current figures to `totals`.
    fn add_to(&self, totals: &mut Totals);
}

static SOURCES: Mutex<Vec<Weak<dyn MetricSource>>> = Mutex::new(Vec::new());

/// Registers a source; it drops out by itself when its last `Arc` goes.
pub fn register(source: Weak<dyn MetricSource>) {
    let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
    sources.retain(|s| s.strong_count() > 0);
    sources.push(source);
}

/// True while any source lives (the stats log stays quiet otherwise).
pub fn any_source() -> bool {
    let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
    sources.retain(|s| s.strong_count() > 0);
    !sources.is_empty()
}

/// Current totals over all live sources.
pub fn totals() -> Totals {
    let sources: Vec<_> = {
        let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
        sources.retain(|s| s.strong_count() > 0);
        sources.iter().filter_map(Weak::upgrade).collect()
    };
    let mut totals = Totals {
        simulated_drops: super::simulate::drops(),
        ..Totals::default()
    };
    for source in sources {
        source.add_to(&mut totals);
    }
    totals
}
