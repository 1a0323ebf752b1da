//! The queue between the socket reader and one peer's DTLS layer, bounded by datagrams
//! and by bytes.
//!
//! A game may send a thousand packets in one frame; they reach the socket faster than
//! one peer's DTLS layer decrypts them, so a connected session gets a deep queue
//! (`inbound_queue`, 1024 by default). A handshake never needs more than a few
//! datagrams in flight, and the pending table may hold hundreds of handshakes for
//! spoofed addresses, so until the session is established the queue stays shallow.
//! Whatever does not fit is dropped, as a congested path would, and counted.
//!
//! Sizes: 32 datagrams while handshaking, then `inbound_queue` datagrams and `inbound_queue
//! × max(mtu, 1500)` bytes per connected peer. Drops count in `dropped_datagrams` and,
//! separately, in `inbound_drops`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::datagram_queue::{self, QueueReceiver, QueueSender, Refused};

use super::stats::Stats;

/// Datagrams a handshake may have waiting. A flight is a handful of datagrams; this
/// leaves room for retransmissions and duplicates.
pub(crate) const HANDSHAKE_QUEUE: usize = 32;

/// The datagram size the byte bound assumes at least: a full Ethernet frame, so a peer
/// whose own MTU is larger than ours is not cut short.
const MIN_DATAGRAM_BUDGET: usize = 1500;

/// Fill level and limits, shared by both ends.
#[derive(Debug)]
pub(crate) struct InboundLimits {
    datagrams: AtomicUsize,
    bytes: AtomicUsize,
    established: AtomicBool,
    max_datagrams: usize,
    datagram_budget: usize,
}

impl InboundLimits {
    /// Limits for a session allowing `inbound_queue` datagrams of about `mtu` bytes once
    /// established.
    pub fn new(inbound_queue: usize, mtu: usize) -> Arc<Self> {
        Arc::new(Self {
            datagrams: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            established: AtomicBool::new(false),
            max_datagrams: inbound_queue.max(1),
            datagram_budget: mtu.max(MIN_DATAGRAM_BUDGET),
        })
    }

    /// Switches from the handshake's shallow queue to the session's deep one.
    pub fn establish(&self) {
        self.established.store(true, Ordering::Release);
    }

    fn max_datagrams(&self) -> usize {
        if self.established.load(Ordering::Acquire) {
            self.max_datagrams
        } else {
            HANDSHAKE_QUEUE.min(self.max_datagrams)
        }
    }

    /// Reserves room for one datagram; false when it does not fit. An empty queue
    /// always takes one datagram, however large, so nothing is unreceivable.
    fn reserve(&self, len: usize) -> bool {
        let max = self.max_datagrams();
        let max_bytes = max * self.datagram_budget;
        let count = self.datagrams.fetch_add(1, Ordering::AcqRel);
        let bytes = self.bytes.fetch_add(len, Ordering::AcqRel);
        if count == 0 || (count < max && bytes + len <= max_bytes) {
            return true;
        }
        self.release(len);
        false
    }

    fn release(&self, len: usize) {
        self.datagrams.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(len, Ordering::AcqRel);
    }
}

/// The socket reader's end.
#[derive(Debug)]
pub(crate) struct InboundSender {
    tx: QueueSender,
    limits: Arc<InboundLimits>,
    stats: Arc<Stats>,
}

/// The DTLS layer's end.
#[derive(Debug)]
pub(crate) struct InboundReceiver {
    rx: QueueReceiver,
    limits: Arc<InboundLimits>,
}

/// A queue within `limits`; drops are counted in `stats.inbound_drops`.
pub(crate) fn queue(
    limits: Arc<InboundLimits>,
    stats: Arc<Stats>,
) -> (InboundSender, InboundReceiver) {
    // The limits bound it, by datagrams and by bytes; the queue's own capacity does not.
    let (tx, rx) = datagram_queue::queue(usize::MAX);
    (
        InboundSender {
            tx,
            limits: limits.clone(),
            stats,
        },
        InboundReceiver { rx, limits },
    )
}

impl InboundSender {
    /// Queues a datagram without waiting; gives it back when the queue is full or the
    /// receiver is gone.
    pub fn try_send(&self, datagram: Vec<u8>) -> Result<(), Vec<u8>> {
        let len = datagram.len();
        if !self.limits.reserve(len) {
            Stats::inc(&self.stats.inbound_drops);
            return Err(datagram);
        }
        self.tx.try_send(datagram).map_err(|refused| {
            self.limits.release(len);
            match refused {
                Refused::Full(d) | Refused::Closed(d) => d,
            }
        })
    }
}

impl InboundReceiver {
    /// The limits this queue works within.
    pub fn limits(&self) -> Arc<InboundLimits> {
        self.limits.clone()
    }

    /// The next datagram; `None` once the sender is gone.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let datagram = self.rx.recv().await?;
        self.limits.release(datagram.len());
        Some(datagram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shallow_during_handshake_deep_once_established_and_drops_counted() {
        let stats = Arc::new(Stats::default());
        let limits = InboundLimits::new(1000, 1200);
        let (tx, mut rx) = queue(limits.clone(), stats.clone());
        let sent = (0..100)
            .filter(|_| tx.try_send(vec![0; 100]).is_ok())
            .count();
        assert_eq!(sent, HANDSHAKE_QUEUE);
        limits.establish();
        let sent = (0..2000)
            .filter(|_| tx.try_send(vec![0; 100]).is_ok())
            .count();
        assert_eq!(sent, 1000 - HANDSHAKE_QUEUE);
        assert_eq!(
            stats.inbound_drops.load(Ordering::Relaxed),
            (100 - HANDSHAKE_QUEUE + 2000 - (1000 - HANDSHAKE_QUEUE)) as u64
        );
        for _ in 0..1000 {
            rx.recv().await.unwrap();
        }
        assert!(tx.try_send(vec![0; 100]).is_ok());
    }

    #[test]
    fn bytes_are_bounded_too_but_one_datagram_always_fits() {
        let stats = Arc::new(Stats::default());
        let limits = InboundLimits::new(4, 1200);
        limits.establish();
        let (tx, _rx) = queue(limits, stats);
        // 4 × 1500 bytes of budget: one 8 KiB datagram fits in an empty queue only.
        assert!(tx.try_send(vec![0; 8192]).is_ok());
        assert!(tx.try_send(vec![0; 10]).is_err());
    }
}
