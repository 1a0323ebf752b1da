//! An event sender that goes quiet the moment its owner closes, so a closed or dropped
//! server or client never reports anything afterwards; per peer, it is also where the
//! peer's packets meet the bound of its own dispatch queue.
//!
//! A peer's connect, packets and disconnect go to its own lane (`Gate::for_peer`); a
//! client's session too. At most `dispatch_queue` packets (default 2,048, so two bursts of
//! 1,000 in one frame arrive complete) wait per peer; more are dropped and counted in
//! `dispatch_drops` (`get_stats()`, monitor `netkit/dtls_dispatch_drops`); connects and
//! disconnects are never dropped. Measurements: `tests/dtls/flood.rs`.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::super::events::{EventSender, LaneSender, Push};
use super::events::DtlsEvent;
use super::stats::Stats;

/// Wraps the node's sender with the owner's cancellation token.
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    tx: EventSender<DtlsEvent>,
    /// For one peer: its lane, and where to count the packets its full lane refused.
    peer: Option<(LaneSender<DtlsEvent>, Arc<Stats>)>,
    closed: CancellationToken,
}

impl Gate {
    /// Pairs a sender with the token that silences it.
    pub fn new(tx: EventSender<DtlsEvent>, closed: CancellationToken) -> Self {
        Self {
            tx,
            peer: None,
            closed,
        }
    }

    /// A gate for one peer's events: they wait in a lane of their own, which the node
    /// drains in turn with every other peer's. At most `limit` packets wait there;
    /// beyond that a packet is dropped and counted in `stats.dispatch_drops`. Connects
    /// and disconnects always go in, after the packets that came before them.
    pub fn for_peer(&self, limit: usize, stats: Arc<Stats>) -> Self {
        Self {
            tx: self.tx.clone(),
            peer: Some((self.tx.lane(limit.max(1)), stats)),
            closed: self.closed.clone(),
        }
    }

    /// Sends unless the owner has closed.
    pub fn send(&self, event: DtlsEvent) {
        if self.closed.is_cancelled() {
            return;
        }
        match &self.peer {
            None => {
                self.tx.send(event);
            }
            Some((lane, stats)) => {
                let pushed = match event {
                    DtlsEvent::Packet { .. } => lane.offer(event),
                    _ => lane.send(event),
                };
                if pushed == Push::Full {
                    Stats::inc(&stats.dispatch_drops);
                }
            }
        }
    }
}
