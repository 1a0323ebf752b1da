//! How many reliable messages a link may have in flight at once, across its data
//! channels: enough to fill the path, not so many that a narrow path's queue overflows.
//! In flight means sent and not yet acknowledged by renet (its memory still holds them),
//! so a message delivered out of order behind a lost one no longer counts.
//!
//! As BBR does, the rule follows what the path delivers rather than what it loses: the
//! delivery rate (messages the peer reported handed on, per second, the highest of the
//! last second's samples) times the lowest round trip seen in the last ten seconds (plus
//! the time an acknowledgement may wait), is what the path holds; twice that is allowed
//! in flight, never fewer than [`MIN_FLIGHT`]. Random loss does not shrink it (a lossy
//! but wide path keeps its rate, where halving on each loss, as TCP Reno does, would
//! crawl: renet has no fast retransmit), and since the allowance is twice what was
//! delivered, it doubles each round trip while the sender has more to send, as slow start
//! does. Behind a narrow link the rate is the link's, so about one path's worth waits in
//! its queue instead of a whole window. No I/O and no clock: the link passes instants.

use std::collections::VecDeque;
use std::time::Duration;

/// Messages allowed in flight before the first estimates: about TCP's initial window of
/// ten segments (RFC 6928), raised to the receiver's feedback batch (`FEEDBACK_BATCH` in
/// `link.rs`), so the first flight's feedback comes at once instead of after its delay.
pub(crate) const INITIAL_FLIGHT: u64 = 4;
/// Least messages in flight whatever the estimates say (about 4.6 KB of 1,150-byte
/// messages): enough to keep a slow path busy and to recover from a rate sample taken
/// while the game sent little.
pub(crate) const MIN_FLIGHT: u64 = 4;
/// How long a delivery-rate sample counts towards the maximum.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// How long the lowest round trip holds before newer samples replace it (a route change).
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// Shortest interval a rate sample is taken over: feedback comes in batches (a repeat
/// right after a report, a batch as soon as it fills), and over a short interval one
/// batch reads as a rate the path never had.
const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(250);

/// The estimates behind the allowance.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    /// (when, messages per second), newest last, within `RATE_WINDOW`.
    rates: VecDeque<(Duration, f64)>,
    /// The delivered total and instant the current rate sample started from.
    mark: Option<(Duration, u64)>,
    /// (when, seconds) of the lowest round trip in `MIN_RTT_WINDOW`.
    min_rtt: Option<(Duration, f64)>,
}

impl Pacer {
    /// A round-trip sample, seconds, taken at `now`; `quiet` when the link had no reliable
    /// data in flight, so no queue of its own was in the sample. The lowest sample stands
    /// until a lower one, or, once ten seconds old, a quiet one (a route change): a sample
    /// taken under load measures this link's own queue, and taking it as the path's round
    /// trip would let the allowance, and with it the queue, grow without end.
    pub fn on_rtt(&mut self, now: Duration, rtt: f64, quiet: bool) {
        if !rtt.is_finite() || rtt < 0.0 {
            return;
        }
        let expired = self
            .min_rtt
            .is_some_and(|(at, _)| now.saturating_sub(at) > MIN_RTT_WINDOW);
        if (expired && quiet) || self.min_rtt.is_none_or(|(_, m)| rtt <= m) {
            self.min_rtt = Some((now, rtt));
        }
    }

    /// The peer's delivery feedback: `delivered` messages handed on in all, at `now`.
    /// `busy` says whether the link had more to send than it was allowed (only then does
    /// the rate measure the path and not the game).
    pub fn on_delivered(&mut self, now: Duration, delivered: u64, busy: bool) {
        let Some((since, from)) = self.mark else {
            self.mark = Some((now, delivered));
            return;
        };
        let elapsed = now.saturating_sub(since);
        if elapsed < MIN_SAMPLE_INTERVAL {
            return;
        }
        let rate = delivered.saturating_sub(from) as f64 / elapsed.as_secs_f64();
        self.mark = Some((now, delivered));
        while self
            .rates
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > RATE_WINDOW)
        {
            self.rates.pop_front();
        }
        // A sample taken while the game sent less than allowed says nothing of the path,
        // unless it is all there is.
        if busy || self.rates.is_empty() {
            self.rates.push_back((now, rate));
        }
    }

    /// How long the last of a full allowance takes to be acknowledged: the lowest round
    /// trip, the acknowledgement's delay, and the allowance's time through the path at
    /// the delivery rate. A resend timer shorter than this resends what is only queued
    /// (`None` until both estimates exist).
    pub fn drain_time(&self, ack_delay: Duration) -> Option<Duration> {
        let (_, rtt) = self.min_rtt?;
        let rate = self.rates.iter().map(|(_, r)| *r).fold(0.0, f64::max);
        if rate <= 0.0 {
            return None;
        }
        let secs = rtt + ack_delay.as_secs_f64() + self.allowance(ack_delay) as f64 / rate;
        secs.is_finite()
            .then(|| Duration::from_secs_f64(secs.min(60.0)))
    }

    /// Messages allowed in flight now. `ack_delay` is how long the peer may hold its
    /// acknowledgement back: a message counts as in flight until it arrives, so the time a
    /// message is in flight is the round trip plus that delay.
    pub fn allowance(&self, ack_delay: Duration) -> u64 {
        let rate = self
            .rates
            .iter()
            .map(|(_, r)| *r)
            .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
        let (Some((_, rtt)), Some(rate)) = (self.min_rtt, rate) else {
            return INITIAL_FLIGHT;
        };
        let flight = 2.0 * rate * (rtt + ack_delay.as_secs_f64());
        if !flight.is_finite() {
            return INITIAL_FLIGHT;
        }
        // Less a hair, so 300.00000000000006 messages allow 300.
        ((flight - 1e-9).ceil() as u64).max(MIN_FLIGHT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_initial_allowance_holds_until_both_estimates_exist() {
        let mut p = Pacer::default();
        assert_eq!(p.allowance(Duration::ZERO), INITIAL_FLIGHT);
        p.on_rtt(ms(0), 0.1, true);
        assert_eq!(p.allowance(Duration::ZERO), INITIAL_FLIGHT);
        p.on_delivered(ms(0), 0, true);
        p.on_delivered(ms(250), 250, true);
        assert_eq!(p.allowance(Duration::ZERO), 200);
    }

    /// 28 messages a second (a 256 kbit/s path of 1,150-byte messages) with a 40 ms base
    /// round trip: about two paths' worth, never below the floor.
    #[test]
    fn a_narrow_path_allows_twice_what_it_holds_and_never_below_the_floor() {
        let mut p = Pacer::default();
        p.on_rtt(ms(0), 0.04, true);
        for i in 0..=10u64 {
            p.on_delivered(ms(250 * i), 7 * i, true);
        }
        assert_eq!(p.allowance(Duration::ZERO), MIN_FLIGHT);
        let mut wide = Pacer::default();
        wide.on_rtt(ms(0), 0.1, true);
        for i in 0..=10u64 {
            wide.on_delivered(ms(250 * i), 250 * i, true);
        }
        assert_eq!(
            wide.allowance(Duration::ZERO),
            200,
            "1,000 messages/s over 100 ms, doubled"
        );
        assert_eq!(
            wide.allowance(ms(50)),
            300,
            "the acknowledgement's delay counts as time in flight"
        );
    }

    /// Round trips grow while a queue fills; the allowance keeps the lowest one seen, until
    /// a quiet sample comes when it is ten seconds old.
    #[test]
    fn the_lowest_round_trip_holds_until_a_quiet_sample_ten_seconds_later() {
        let mut p = Pacer::default();
        p.on_rtt(ms(0), 0.02, true);
        p.on_rtt(ms(1_000), 0.5, true);
        assert_eq!(p.min_rtt.unwrap().1, 0.02);
        p.on_rtt(ms(11_000), 0.3, false);
        assert_eq!(
            p.min_rtt.unwrap().1,
            0.02,
            "a sample under load is the link's own queue"
        );
        p.on_rtt(ms(12_000), 0.3, true);
        assert_eq!(
            p.min_rtt.unwrap().1,
            0.3,
            "a new route's round trip takes over"
        );
    }

    /// A game that sends little must not shrink what a later burst may use: samples taken
    /// while not busy are ignored once a busy one exists.
    #[test]
    fn quiet_samples_do_not_shrink_the_allowance() {
        let mut p = Pacer::default();
        p.on_rtt(ms(0), 0.1, true);
        p.on_delivered(ms(0), 0, true);
        p.on_delivered(ms(250), 125, true);
        let busy = p.allowance(Duration::ZERO);
        p.on_delivered(ms(500), 126, false);
        p.on_delivered(ms(750), 127, false);
        assert_eq!(p.allowance(Duration::ZERO), busy);
        // A second later the busy sample has aged out, and what the game sends rules.
        p.on_delivered(ms(1_600), 135, true);
        assert!(p.allowance(Duration::ZERO) < busy);
    }

    #[test]
    fn nonsense_samples_are_ignored() {
        let mut p = Pacer::default();
        p.on_rtt(ms(0), f64::NAN, true);
        p.on_rtt(ms(0), -1.0, true);
        assert!(p.min_rtt.is_none());
        p.on_rtt(ms(0), 0.05, true);
        p.on_delivered(ms(0), 100, true);
        p.on_delivered(ms(5), 10_000, true);
        assert!(
            p.rates.is_empty(),
            "a sample over 5 ms is too short to read"
        );
    }
}
