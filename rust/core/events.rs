//! The one-way road from background tasks to a node: a queue whose receiving end the
//! node drains on the main thread, a bounded amount per frame.
//!
//! Events arrive in lanes. [`EventSender::send`] uses a shared lane, whose length is
//! bounded by the work the node admitted (HTTP requests). A source that can produce
//! without bound, such as a DTLS peer, gets a lane of its own ([`EventSender::lane`]):
//! what it [offers](LaneSender::offer) beyond the lane's limit is refused (the caller
//! counts it), what it [sends](LaneSender::send) (connects, disconnects) always goes in,
//! and the node takes one event from each lane that has one in turn, so one flooding
//! peer fills only its own lane and waits only for itself.
//!
//! The shared lane has no limit of its own: its length is bounded by what the node admitted
//! (`max_concurrent + max_queued` requests). The node takes events one at a time at the
//! start of each frame, within its frame budget (`godot/frame_hook.rs`), so handler time
//! counts against the budget too; what is left waits for the next frame.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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

/// The lane of [`EventSender::send`].
const SHARED_LANE: u64 = 0;

/// One source's events, in the order it produced them.
#[derive(Debug)]
struct Lane<T> {
    /// Each event with whether it counts against `limit`.
    events: VecDeque<(T, bool)>,
    /// Events in `events` that were offered (and so may be refused when full).
    offered: usize,
    limit: usize,
    /// Live [`LaneSender`]s; a lane with none is removed once empty.
    senders: usize,
    /// Already in the turn order.
    in_turn: bool,
}

impl<T> Lane<T> {
    fn new(limit: usize, senders: usize) -> Self {
        Self {
            events: VecDeque::new(),
            offered: 0,
            limit,
            senders,
            in_turn: false,
        }
    }
}

#[derive(Debug)]
struct State<T> {
    lanes: HashMap<u64, Lane<T>>,
    /// Lanes that hold events, in the order they get their next turn.
    turns: VecDeque<u64>,
    next_lane: u64,
    len: usize,
    /// False once the node's end is gone: sends are refused and nothing is kept.
    open: bool,
    /// Woken on every queued event, for a receiver that is a tokio task rather than a
    /// frame loop (see `EventQueue::wake_on_event`).
    waker: Option<Arc<Notify>>,
}

impl<T> State<T> {
    fn push(&mut self, lane: u64, event: T, offered: bool) -> Push {
        if !self.open {
            return Push::Gone;
        }
        let Some(l) = self.lanes.get_mut(&lane) else {
            return Push::Gone;
        };
        if offered {
            if l.offered >= l.limit {
                return Push::Full;
            }
            l.offered += 1;
        }
        l.events.push_back((event, offered));
        if !l.in_turn {
            l.in_turn = true;
            self.turns.push_back(lane);
        }
        self.len += 1;
        if let Some(waker) = &self.waker {
            waker.notify_one();
        }
        Push::Queued
    }

    fn pop(&mut self) -> Option<T> {
        let id = self.turns.pop_front()?;
        let lane = self.lanes.get_mut(&id)?;
        let (event, offered) = lane.events.pop_front()?;
        if offered {
            lane.offered -= 1;
        }
        self.len -= 1;
        if !lane.events.is_empty() {
            self.turns.push_back(id);
        } else {
            lane.in_turn = false;
            if lane.senders == 0 && id != SHARED_LANE {
                self.lanes.remove(&id);
            }
        }
        Some(event)
    }
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic elsewhere must not silence every later event.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What happened to an event handed to a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// It waits for the node.
    Queued,
    /// The lane already holds its limit of offered events; this one was dropped.
    Full,
    /// The node is gone; dropped on purpose (nothing is delivered to a freed node).
    Gone,
}

/// The sending end, held by background tasks. Sending never blocks.
#[derive(Debug)]
pub struct EventSender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for EventSender<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<T> EventSender<T> {
    /// Sends an event on the shared lane, which has no limit; returns false when the
    /// node is gone, in which case the event is dropped on purpose.
    pub fn send(&self, event: T) -> bool {
        self.shared.lock().push(SHARED_LANE, event, false) == Push::Queued
    }

    /// Opens a lane for one source: at most `limit` offered events wait in it, and it
    /// gets its turn beside every other lane. It goes away when its last sender is
    /// dropped and its events are taken.
    pub fn lane(&self, limit: usize) -> LaneSender<T> {
        let mut state = self.shared.lock();
        state.next_lane += 1;
        let id = state.next_lane;
        state.lanes.insert(id, Lane::new(limit, 1));
        LaneSender {
            shared: self.shared.clone(),
            id,
        }
    }
}

/// The sending end of one source's lane.
#[derive(Debug)]
pub struct LaneSender<T> {
    shared: Arc<Shared<T>>,
    id: u64,
}

impl<T> LaneSender<T> {
    /// Queues an event that must not be lost (it does not count against the limit).
    pub fn send(&self, event: T) -> Push {
        self.shared.lock().push(self.id, event, false)
    }

    /// Queues an event unless the lane already holds its limit of offered events.
    pub fn offer(&self, event: T) -> Push {
        self.shared.lock().push(self.id, event, true)
    }

    /// True when an [offer](LaneSender::offer) would be queued now (or the node is
    /// gone, so it would not be refused as full): for a source that waits for room
    /// instead of dropping.
    pub fn has_room(&self) -> bool {
        let state = self.shared.lock();
        state
            .lanes
            .get(&self.id)
            .is_none_or(|l| l.offered < l.limit)
    }
}

impl<T> Clone for LaneSender<T> {
    fn clone(&self) -> Self {
        if let Some(lane) = self.shared.lock().lanes.get_mut(&self.id) {
            lane.senders += 1;
        }
        Self {
            shared: self.shared.clone(),
            id: self.id,
        }
    }
}

impl<T> Drop for LaneSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let remove = match state.lanes.get_mut(&self.id) {
            Some(lane) => {
                lane.senders -= 1;
                lane.senders == 0 && lane.events.is_empty()
            }
            None => false,
        };
        if remove {
            state.lanes.remove(&self.id);
        }
    }
}

/// The receiving end, owned by the node and drained on the main thread.
#[derive(Debug)]
pub struct EventQueue<T> {
    shared: Arc<Shared<T>>,
}

/// Creates a connected sender and queue.
pub fn channel<T>() -> (EventSender<T>, EventQueue<T>) {
    let mut lanes = HashMap::new();
    lanes.insert(SHARED_LANE, Lane::new(usize::MAX, 0));
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            lanes,
            turns: VecDeque::new(),
            next_lane: SHARED_LANE,
            len: 0,
            open: true,
            waker: None,
        }),
    });
    (
        EventSender {
            shared: shared.clone(),
        },
        EventQueue { shared },
    )
}

impl<T> EventQueue<T> {
    /// Makes every event queued from now on wake `waker` (`notify_one`, which keeps one
    /// permit when nobody waits, so no wake-up is lost). For a tokio task that drains this
    /// queue: it can sleep until an event comes instead of polling the queue. Events
    /// already queued wake it at once: their sender started first and woke nobody (a
    /// refusal can arrive before the draining task first runs).
    pub fn wake_on_event(&self, waker: Arc<Notify>) {
        let mut shared = self.shared.lock();
        if shared.len > 0 {
            waker.notify_one();
        }
        shared.waker = Some(waker);
    }

    /// Takes events, one per lane in turn, until the queue is empty or the budget is
    /// spent.
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
            match self.next() {
                Some(event) => out.push(event),
                None => break,
            }
        }
        out
    }

    /// Takes the next event, if any (for callers that budget per event): the oldest
    /// event of the lane whose turn it is. Each source's events come in the order it
    /// sent them; sources take turns.
    pub fn next(&self) -> Option<T> {
        self.shared.lock().pop()
    }

    /// Number of events waiting.
    pub fn len(&self) -> usize {
        self.shared.lock().len
    }

    /// True when no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Drop for EventQueue<T> {
    fn drop(&mut self) {
        let dropped = {
            let mut state = self.shared.lock();
            state.open = false;
            state.len = 0;
            state.turns.clear();
            // Keep the lanes (senders still count themselves) but free their events.
            state
                .lanes
                .values_mut()
                .map(|l| {
                    l.offered = 0;
                    l.in_turn = false;
                    std::mem::take(&mut l.events)
                })
                .collect::<Vec<_>>()
        };
        // Events are freed outside the lock: their destructors may be arbitrary.
        drop(dropped);
    }
}

#[cfg(test)]
mod tests {
    /// An event queued before the waker was set still wakes it: a task that waits for the
    /// waker without draining first would otherwise sleep on an event that is already there.
    #[test]
    fn events_queued_before_the_waker_wake_it() {
        use futures_util::FutureExt;
        let (tx, queue) = channel::<u32>();
        tx.send(7);
        let waker = Arc::new(Notify::new());
        queue.wake_on_event(waker.clone());
        assert!(
            waker.notified().now_or_never().is_some(),
            "the waiting task is woken for the event queued before"
        );
        assert_eq!(queue.next(), Some(7));
        let quiet = Arc::new(Notify::new());
        queue.wake_on_event(quiet.clone());
        assert!(
            quiet.notified().now_or_never().is_none(),
            "an empty queue wakes nobody"
        );
    }

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
        let lane = tx.lane(4);
        drop(rx);
        assert!(!tx.send(1));
        assert_eq!(lane.send(1), Push::Gone);
        assert_eq!(lane.offer(1), Push::Gone);
    }

    #[test]
    fn a_full_lane_refuses_offers_but_never_sends_and_costs_only_itself() {
        let (tx, rx) = channel();
        let flood = tx.lane(3);
        let quiet = tx.lane(3);
        assert_eq!(flood.send("flood connected"), Push::Queued);
        for _ in 0..3 {
            assert_eq!(flood.offer("flood packet"), Push::Queued);
        }
        assert_eq!(flood.offer("flood packet"), Push::Full);
        assert_eq!(flood.send("flood disconnected"), Push::Queued);
        assert_eq!(quiet.offer("quiet packet"), Push::Queued);
        assert_eq!(rx.len(), 6);
        // Turns alternate, each lane in its own order: the quiet lane waits for one
        // event of the flooding lane, not for all of them.
        let got: Vec<_> = std::iter::from_fn(|| rx.next()).collect();
        assert_eq!(
            got,
            vec![
                "flood connected",
                "quiet packet",
                "flood packet",
                "flood packet",
                "flood packet",
                "flood disconnected",
            ]
        );
        // Taking events makes room again.
        assert_eq!(flood.offer("flood packet"), Push::Queued);
    }

    #[test]
    fn lanes_go_away_when_their_senders_are_gone_and_they_are_empty() {
        let (tx, rx) = channel::<u32>();
        let a = tx.lane(8);
        let b = a.clone();
        assert_eq!(a.offer(1), Push::Queued);
        drop(a);
        drop(b);
        assert_eq!(
            rx.shared.lock().lanes.len(),
            2,
            "shared lane plus the undrained one"
        );
        assert_eq!(rx.next(), Some(1));
        assert_eq!(rx.shared.lock().lanes.len(), 1);
        assert!(rx.is_empty());
        for _ in 0..1000 {
            drop(tx.lane(1));
        }
        assert_eq!(rx.shared.lock().lanes.len(), 1);
    }
}
