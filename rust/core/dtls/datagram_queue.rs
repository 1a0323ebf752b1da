//! A FIFO of datagrams between one sender and one receiving task, for the queues every
//! peer has in each direction (socket reader to DTLS, node to the session task).
//!
//! Why not a tokio channel: at rest, one allocates a cache-padded channel and a first
//! block of 32 slots up front, about 1.3 KiB for `Vec<u8>` per channel, so two per peer
//! cost a server with 1,000 idle peers over 2.5 MB of memory that holds nothing. Here an
//! empty queue is a mutex, a `VecDeque` that has not allocated and a `Notify`, and a
//! queue that held a burst gives its room back once drained.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Room a drained queue keeps; what a burst grew beyond it is freed.
const KEPT_WHEN_EMPTY: usize = 4;

#[derive(Debug, Default)]
struct Shared {
    items: Mutex<VecDeque<Vec<u8>>>,
    /// Woken when an item arrives or the sender goes.
    ready: Notify,
    sender_gone: AtomicBool,
    receiver_gone: AtomicBool,
}

impl Shared {
    fn items(&self) -> MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end.
#[derive(Debug)]
pub(crate) struct QueueSender {
    shared: Arc<Shared>,
    capacity: usize,
}

/// The receiving end.
#[derive(Debug)]
pub(crate) struct QueueReceiver {
    shared: Arc<Shared>,
}

/// Why a datagram was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `capacity` datagrams wait already.
    Full(Vec<u8>),
    /// The receiver is gone.
    Closed(Vec<u8>),
}

/// A queue holding at most `capacity` datagrams.
pub(crate) fn queue(capacity: usize) -> (QueueSender, QueueReceiver) {
    let shared = Arc::new(Shared::default());
    (
        QueueSender {
            shared: shared.clone(),
            capacity: capacity.max(1),
        },
        QueueReceiver { shared },
    )
}

impl QueueSender {
    /// Queues a datagram without waiting, or gives it back.
    pub fn try_send(&self, datagram: Vec<u8>) -> Result<(), Refused> {
        if self.shared.receiver_gone.load(Ordering::Acquire) {
            return Err(Refused::Closed(datagram));
        }
        {
            let mut items = self.shared.items();
            if items.len() >= self.capacity {
                return Err(Refused::Full(datagram));
            }
            items.push_back(datagram);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl QueueSender {
    /// True when nothing waits in the queue.
    pub fn is_empty(&self) -> bool {
        self.shared.items().is_empty()
    }
}

impl Drop for QueueSender {
    fn drop(&mut self) {
        self.shared.sender_gone.store(true, Ordering::Release);
        self.shared.ready.notify_one();
    }
}

impl QueueReceiver {
    /// The next datagram without waiting: `Ok(None)` when none waits, `Err(())` once the
    /// queue is empty and the sender gone.
    pub fn try_recv(&mut self) -> Result<Option<Vec<u8>>, ()> {
        pop(&self.shared)
    }

    /// The next datagram; `None` once the queue is empty and the sender gone.
    /// Cancel-safe: a datagram is taken only when this returns it.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        loop {
            // Registered before looking, so an item queued in between still wakes us
            // (`notify_one` also keeps a permit when nobody waits).
            let ready = self.shared.ready.notified();
            match pop(&self.shared) {
                Ok(Some(item)) => return Some(item),
                Err(()) => return None,
                Ok(None) => ready.await,
            }
        }
    }
}

fn pop(shared: &Shared) -> Result<Option<Vec<u8>>, ()> {
    let mut items = shared.items();
    match items.pop_front() {
        Some(item) => {
            if items.is_empty() && items.capacity() > KEPT_WHEN_EMPTY {
                items.shrink_to(KEPT_WHEN_EMPTY);
            }
            Ok(Some(item))
        }
        None if shared.sender_gone.load(Ordering::Acquire) => Err(()),
        None => Ok(None),
    }
}

impl Drop for QueueReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Release);
        // What waits is never read: free it now rather than with the last sender.
        self.shared.items().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_in_order_within_capacity_and_the_end_is_seen() {
        let (tx, mut rx) = queue(2);
        tx.try_send(vec![1]).unwrap();
        tx.try_send(vec![2]).unwrap();
        assert_eq!(tx.try_send(vec![3]), Err(Refused::Full(vec![3])));
        assert_eq!(rx.recv().await, Some(vec![1]));
        assert_eq!(rx.try_recv(), Ok(Some(vec![2])));
        assert_eq!(rx.try_recv(), Ok(None));
        drop(tx);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(()));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_an_item_and_for_the_end() {
        let (tx, mut rx) = queue(8);
        let waiter = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        tx.try_send(vec![7]).unwrap();
        drop(tx);
        assert_eq!(waiter.await.unwrap(), (Some(vec![7]), None));
    }

    #[test]
    fn a_gone_receiver_refuses_and_a_drained_burst_gives_its_room_back() {
        let (tx, mut rx) = queue(1_000);
        for i in 0..1_000u32 {
            tx.try_send(i.to_le_bytes().to_vec()).unwrap();
        }
        while let Ok(Some(_)) = rx.try_recv() {}
        assert!(rx.shared.items().capacity() <= KEPT_WHEN_EMPTY);
        drop(rx);
        assert_eq!(tx.try_send(vec![1]), Err(Refused::Closed(vec![1])));
    }
}
