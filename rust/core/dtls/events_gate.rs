//! An event sender that goes quiet the moment its owner closes, so a closed or dropped
//! server or client never reports anything afterwards.

use tokio_util::sync::CancellationToken;

use super::super::events::EventSender;
use super::events::DtlsEvent;

/// Wraps the node's sender with the owner's cancellation token.
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    tx: EventSender<DtlsEvent>,
    closed: CancellationToken,
}

impl Gate {
    /// Pairs a sender with the token that silences it.
    pub fn new(tx: EventSender<DtlsEvent>, closed: CancellationToken) -> Self {
        Self { tx, closed }
    }

    /// Sends unless the owner has closed.
    pub fn send(&self, event: DtlsEvent) {
        if !self.closed.is_cancelled() {
            self.tx.send(event);
        }
    }
}
