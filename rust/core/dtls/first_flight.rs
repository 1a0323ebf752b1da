//! Admission for the one expensive step a spoofed ClientHello can trigger.
//!
//! webrtc-dtls 0.12 generates a certificate and an ECDHE key pair for every handshake
//! before it sends its HelloVerifyRequest, so each spoofed hello costs real CPU. Run
//! first-come first-served, a burst of them keeps the runtime busy long after the
//! burst, and a real client that arrives at its end waits behind all of it, often past
//! the server's handshake timeout. So at most [`CONCURRENT`] handshakes do that first
//! step at a time, and a free turn goes to the **newest** waiter: after a burst the real
//! client is answered first, and the older spoofed entries, which the pending table
//! evicts or times out, die while waiting without costing anything.
//!
//! A turn is given back at the first datagram sent, at the end of the handshake, or after
//! [`HOLD_LIMIT`]. Waiting counts against the handshake timeout, and cancellation and the
//! deadline are checked before webrtc-dtls is polled, so evicted or expired entries cost
//! nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

/// First flights computed at once. More would not finish sooner on a small machine;
/// they would only make every other task wait longer.
pub(crate) const CONCURRENT: usize = 4;

/// How long one handshake may keep its turn. A first flight takes milliseconds; a hello
/// that webrtc-dtls waits on silently (an incomplete fragment, say) must not block the
/// others until its handshake timeout.
pub(crate) const HOLD_LIMIT: Duration = Duration::from_millis(250);

/// Waiters beyond this many trigger a sweep of the ones whose handshake already ended.
/// Live waiters are bounded by the pending table, so this bounds the list.
const SWEEP_AT: usize = 64;

#[derive(Default)]
struct State {
    busy: usize,
    /// Newest last. A closed sender is a waiter whose handshake ended meanwhile.
    waiters: Vec<oneshot::Sender<Turn>>,
}

/// The shared turn counter; cloned into every server-side handshake.
#[derive(Clone, Default)]
pub(crate) struct FirstFlightGate {
    state: Arc<Mutex<State>>,
}

/// One handshake's turn; dropping it passes the turn on.
pub(crate) struct Turn {
    gate: Option<FirstFlightGate>,
    /// Set when the turn is dropped: the handshake's first datagram went out (or the
    /// handshake ended), see [`Turn::reporting_to`].
    answered: Option<Arc<AtomicBool>>,
}

impl Turn {
    fn new(gate: FirstFlightGate) -> Self {
        Self {
            gate: Some(gate),
            answered: None,
        }
    }

    /// Makes dropping this turn set `flag`. The transport drops the turn when it sends
    /// the handshake's first datagram, the HelloVerifyRequest that carries the cookie,
    /// so a cookie echoed before the flag is set cannot be genuine.
    pub fn reporting_to(mut self, flag: Arc<AtomicBool>) -> Self {
        self.answered = Some(flag);
        self
    }

    /// Gives the slot to the next waiter now but keeps reporting: for a handshake that
    /// held its turn too long without sending.
    pub fn pass_on(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.release();
        }
    }
}

impl FirstFlightGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a turn. Cancel-safe: a waiter dropped before its turn costs nothing,
    /// and a turn handed over just as it was dropped is dropped with it, passing it on.
    pub async fn acquire(&self) -> Turn {
        loop {
            let rx = {
                let mut s = self.lock();
                if s.busy < CONCURRENT {
                    s.busy += 1;
                    return Turn::new(self.clone());
                }
                if s.waiters.len() >= SWEEP_AT {
                    s.waiters.retain(|w| !w.is_closed());
                }
                let (tx, rx) = oneshot::channel();
                s.waiters.push(tx);
                rx
            };
            if let Ok(turn) = rx.await {
                return turn;
            }
        }
    }

    /// Hands a finished turn to the newest live waiter, or frees the slot. The hand-over
    /// happens outside the lock because a refused turn is dropped, which releases again.
    fn release(&self) {
        loop {
            let next = {
                let mut s = self.lock();
                match s.waiters.pop() {
                    Some(w) => w,
                    None => {
                        s.busy -= 1;
                        return;
                    }
                }
            };
            let turn = Turn::new(self.clone());
            match next.send(turn) {
                Ok(()) => return,
                // That waiter is gone; the slot is still ours to pass on.
                Err(mut refused) => refused.gate = None,
            }
        }
    }
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Turn")
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(flag) = self.answered.take() {
            flag.store(true, Ordering::Release);
        }
        self.pass_on();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn newest_waiter_goes_first_and_dead_waiters_are_skipped() {
        let gate = FirstFlightGate::default();
        let held: Vec<Turn> = futures_turns(&gate, CONCURRENT).await;
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (g, tx) = (gate.clone(), done_tx.clone());
            tasks.push(tokio::spawn(async move {
                let turn = g.acquire().await;
                tx.send(i).unwrap();
                drop(turn);
            }));
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The middle waiter's handshake ends while it waits.
        tasks[1].abort();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        let order: Vec<i32> = [done_rx.recv().await, done_rx.recv().await]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(order, vec![2, 0]);
        assert_eq!(gate.lock().busy, 0);
    }

    #[tokio::test]
    async fn a_passed_on_turn_frees_its_slot_but_still_reports_when_dropped() {
        let gate = FirstFlightGate::default();
        let flag = Arc::new(AtomicBool::new(false));
        let mut turn = gate.acquire().await.reporting_to(flag.clone());
        turn.pass_on();
        assert_eq!(gate.lock().busy, 0);
        assert!(!flag.load(Ordering::Acquire));
        drop(turn);
        assert!(flag.load(Ordering::Acquire));
        assert_eq!(gate.lock().busy, 0);
    }

    async fn futures_turns(gate: &FirstFlightGate, n: usize) -> Vec<Turn> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(gate.acquire().await);
        }
        v
    }
}
