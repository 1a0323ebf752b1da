//! The one-way road from background tasks to a node: a channel whose receiving end the
//! node drains on the main thread, a bounded amount per frame.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, unbounded};

/// How much of the queue one frame may deliver. Whatever is left waits for the next frame,
/// in order, so a burst of results cannot stretch a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// At most this many events per drain; 0 means no count limit.
    pub max_events: usize,
    /// Stop draining once this much time has passed; zero means no time limit.
    pub max_time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_events: 256,
            max_time: Duration::from_micros(2_000),
        }
    }
}

/// The sending end, held by background tasks. Sending never blocks: the channel is
/// unbounded, and its length is bounded by the work the node admitted.
#[derive(Debug)]
pub struct EventSender<T> {
    tx: Sender<T>,
}

impl<T> Clone for EventSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T> EventSender<T> {
    /// Sends an event; returns false when the node is gone, in which case the event is
    /// dropped on purpose (nothing is delivered to a freed node).
    pub fn send(&self, event: T) -> bool {
        self.tx.send(event).is_ok()
    }
}

/// The receiving end, owned by the node and drained on the main thread.
#[derive(Debug)]
pub struct EventQueue<T> {
    rx: Receiver<T>,
}

/// Creates a connected sender and queue.
pub fn channel<T>() -> (EventSender<T>, EventQueue<T>) {
    let (tx, rx) = unbounded();
    (EventSender { tx }, EventQueue { rx })
}

impl<T> EventQueue<T> {
    /// Takes events in order until the queue is empty or the budget is spent.
    pub fn drain(&self, budget: Budget) -> Vec<T> {
        let started = Instant::now();
        let mut out = Vec::new();
        loop {
            if budget.max_events != 0 && out.len() >= budget.max_events {
                break;
            }
            if !budget.max_time.is_zero() && !out.is_empty() && started.elapsed() >= budget.max_time
            {
                break;
            }
            match self.rx.try_recv() {
                Ok(event) => out.push(event),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        out
    }

    /// Takes the next event, if any (for callers that budget per event).
    pub fn next(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Number of events waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True when no event waits.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_respects_count_and_keeps_order() {
        let (tx, rx) = channel();
        for i in 0..10 {
            assert!(tx.send(i));
        }
        let budget = Budget {
            max_events: 4,
            max_time: Duration::ZERO,
        };
        assert_eq!(rx.drain(budget), vec![0, 1, 2, 3]);
        assert_eq!(rx.drain(budget), vec![4, 5, 6, 7]);
        assert_eq!(rx.drain(budget), vec![8, 9]);
        assert!(rx.drain(budget).is_empty());
    }

    #[test]
    fn send_after_queue_dropped_reports_gone() {
        let (tx, rx) = channel::<u32>();
        drop(rx);
        assert!(!tx.send(1));
    }
}
