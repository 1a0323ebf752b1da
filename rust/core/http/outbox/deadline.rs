//! How long one outbox attempt is waited for before it is given up as hung, from the
//! answer times the backend has shown (no clock here: durations in, a duration out).
//!
//! A backend that reads a call and never answers it would otherwise hold one of the
//! [`OUTBOX_CONCURRENCY`](super::OUTBOX_CONCURRENCY) delivery slots for the whole pool
//! `timeout` (30 s by default), and eight such calls stop delivery altogether. An attempt
//! still unanswered at its deadline is given up: its connection is dropped, its slot freed,
//! and the entry is tried again after the usual backoff with the same `Idempotency-Key`,
//! so a backend that did apply the hung call recognises the repeat. The deadline follows
//! RFC 6298's retransmission timer in spirit:
//!
//! - it is [`FACTOR`] times the slowest of the last [`WINDOW`] answers (any status, since
//!   a 503 took the backend as long to give), at least [`MIN_DEADLINE`], at most the
//!   pool's `timeout`. The slowest, not an average: a backend that answers one call in
//!   twenty after 1.5 s is slow, not hung, and is waited for. The floor is shorter than
//!   RFC 6298's 1 s minimum RTO: a hung call costs its slot for the whole deadline, so with
//!   one call in ten hanging a 1 s floor let eight slots deliver under 50 saves/s from a
//!   backend that takes thousands; a call given up too early costs one repeat, which the
//!   key makes harmless, and the doubling below still waits for it;
//! - before [`MIN_SAMPLES`] answers nothing is known, and the pool's `timeout` applies;
//! - an entry whose attempt was given up waits twice as long on its next attempt (RFC 6298
//!   section 5.5), up to the pool's `timeout`: a backend that has become slow for every
//!   call is still waited for, and its first answer raises the deadline for all entries;
//! - a given-up attempt gives no answer time (Karn's algorithm, RFC 6298 section 3).

use std::collections::VecDeque;
use std::time::Duration;

/// Answers remembered.
pub const WINDOW: usize = 64;
/// Answers needed before the deadline is derived from them.
pub const MIN_SAMPLES: usize = 8;
/// The deadline over the slowest remembered answer.
pub const FACTOR: u32 = 4;
/// The shortest deadline: several times a healthy backend's answer on a local network or
/// a kept-alive connection (tens of ms), well under RFC 6298's 1 s (see the module docs).
pub const MIN_DEADLINE: Duration = Duration::from_millis(250);

/// The answer times of the last [`WINDOW`] answered attempts of one outbox.
#[derive(Clone, Debug, Default)]
pub struct AnswerTimes {
    recent: VecDeque<Duration>,
}

impl AnswerTimes {
    /// An attempt got an answer (any HTTP status) `took` after it was sent.
    pub fn answered(&mut self, took: Duration) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(took);
    }

    /// How long the next attempt of an entry may go unanswered, given the pool's `timeout`
    /// and how many of that entry's attempts were given up as hung in this run.
    pub fn deadline(&self, timeout: Duration, given_up: u32) -> Duration {
        if self.recent.len() < MIN_SAMPLES {
            return timeout;
        }
        let slowest = self.recent.iter().max().copied().unwrap_or_default();
        let base = slowest.saturating_mul(FACTOR).max(MIN_DEADLINE);
        base.saturating_mul(1u32 << given_up.min(16)).min(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn seen(times: &[u64]) -> AnswerTimes {
        let mut t = AnswerTimes::default();
        for &n in times {
            t.answered(ms(n));
        }
        t
    }

    #[test]
    fn with_too_few_answers_the_pools_timeout_applies() {
        assert_eq!(AnswerTimes::default().deadline(TIMEOUT, 0), TIMEOUT);
        assert_eq!(seen(&[5; MIN_SAMPLES - 1]).deadline(TIMEOUT, 0), TIMEOUT);
        assert_eq!(seen(&[5; MIN_SAMPLES]).deadline(TIMEOUT, 0), MIN_DEADLINE);
    }

    #[test]
    fn a_fast_backend_gives_the_minimum_so_a_hung_call_frees_its_slot_within_a_quarter_second() {
        let t = seen(&[3; 100]);
        assert_eq!(t.deadline(TIMEOUT, 0), MIN_DEADLINE);
    }

    #[test]
    fn one_slow_answer_among_fast_ones_keeps_slow_answers_waited_for() {
        // A backend answering one call in twenty after 1.5 s: the 1.5 s calls must not be
        // given up, for as long as one of them is among the remembered answers.
        let mut t = seen(&[4; 40]);
        t.answered(ms(1_500));
        for _ in 0..WINDOW - 1 {
            t.answered(ms(4));
            assert_eq!(t.deadline(TIMEOUT, 0), ms(6_000));
        }
        // Forgotten after WINDOW faster answers.
        t.answered(ms(4));
        assert_eq!(t.deadline(TIMEOUT, 0), MIN_DEADLINE);
    }

    #[test]
    fn a_given_up_entry_waits_twice_as_long_each_time_up_to_the_timeout() {
        let t = seen(&[10; 20]);
        let got: Vec<Duration> = (0..10).map(|n| t.deadline(TIMEOUT, n)).collect();
        let want: Vec<Duration> = [
            250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(got, want);
        assert_eq!(t.deadline(TIMEOUT, u32::MAX), TIMEOUT, "no overflow");
    }

    #[test]
    fn the_deadline_never_exceeds_the_pools_timeout() {
        let t = seen(&[20_000; 10]);
        assert_eq!(t.deadline(TIMEOUT, 0), TIMEOUT);
        assert_eq!(
            t.deadline(ms(500), 0),
            ms(500),
            "a timeout under the minimum wins"
        );
    }

    #[test]
    fn a_backend_that_became_slow_for_every_call_raises_the_deadline_once_it_answers() {
        let mut t = seen(&[5; 30]);
        assert_eq!(t.deadline(TIMEOUT, 0), MIN_DEADLINE);
        // Its calls now take 12 s: given up six times (0.25 s to 8 s), waited for at 16 s.
        assert!(t.deadline(TIMEOUT, 5) < ms(12_000));
        assert!(t.deadline(TIMEOUT, 6) > ms(12_000));
        t.answered(ms(12_000));
        assert_eq!(
            t.deadline(TIMEOUT, 0),
            TIMEOUT,
            "every entry now waits for it"
        );
    }
}
