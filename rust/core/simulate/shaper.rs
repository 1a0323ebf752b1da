//! What happens to one datagram under a [`Direction`]'s conditions: dropped, or delivered
//! once or twice after some delay. No I/O and no clock: the caller passes the instant, so
//! every rule is tested with made-up times.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::conditions::Direction;

/// Longest a bandwidth limit queues: a datagram that would wait longer to go out is dropped
/// (a router's full buffer), so memory and delay stay bounded.
pub const QUEUE_LIMIT: Duration = Duration::from_secs(1);

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropCause {
    /// `loss`.
    Loss,
    /// The bandwidth limit's queue was full.
    Queue,
}

/// The fate of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Drop(DropCause),
    /// Deliver after the first delay, and again after the second when duplicated.
    Deliver(Duration, Option<Duration>),
}

/// One direction's conditions with their random source and bandwidth queue.
#[derive(Debug)]
pub struct Shaper {
    direction: Direction,
    rng: StdRng,
    /// When the bandwidth limit's queue is empty again.
    busy_until: Option<Instant>,
}

impl Shaper {
    /// A shaper for `direction`; `seed` makes its choices repeatable.
    pub fn new(direction: Direction, seed: Option<u64>) -> Self {
        Self {
            direction,
            rng: match seed {
                Some(s) => StdRng::seed_from_u64(s),
                None => StdRng::from_os_rng(),
            },
            busy_until: None,
        }
    }

    /// The conditions this shaper applies.
    pub fn direction(&self) -> &Direction {
        &self.direction
    }

    /// Judges a datagram of `len` bytes handed over at `now`.
    pub fn judge(&mut self, len: usize, now: Instant) -> Fate {
        let d = &self.direction;
        if d.loss > 0.0 && self.rng.random_bool(d.loss.min(1.0)) {
            return Fate::Drop(DropCause::Loss);
        }
        // Serialisation behind the bandwidth limit: the datagram leaves when the queue ahead
        // of it has gone, and occupies the link for its own length.
        let mut queued = Duration::ZERO;
        if let Some(bits_per_s) = d.bandwidth {
            let start = self.busy_until.filter(|b| *b > now).unwrap_or(now);
            let wait = start - now;
            if wait > QUEUE_LIMIT {
                return Fate::Drop(DropCause::Queue);
            }
            let transmit = Duration::from_secs_f64(len as f64 * 8.0 / bits_per_s as f64);
            self.busy_until = Some(start + transmit);
            queued = wait + transmit;
        }
        let duplicate = d.duplicate;
        let first = queued + self.delay();
        let second = (duplicate > 0.0 && self.rng.random_bool(duplicate.min(1.0)))
            .then(|| queued + self.delay());
        Fate::Deliver(first, second)
    }

    /// Latency with jitter, plus the reorder hold for the share that gets one.
    fn delay(&mut self) -> Duration {
        let d = &self.direction;
        let mut delay = d.latency;
        if !d.jitter.is_zero() {
            let j = d.jitter.as_secs_f64();
            let offset = self.rng.random_range(-j..=j);
            delay = Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0));
        }
        if d.reorder > 0.0 && self.rng.random_bool(d.reorder.min(1.0)) {
            let (lo, hi) = d.reorder_delay;
            delay += if hi > lo {
                Duration::from_secs_f64(self.rng.random_range(lo.as_secs_f64()..=hi.as_secs_f64()))
            } else {
                lo
            };
        }
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn shaper(d: Direction) -> Shaper {
        Shaper::new(d, Some(7))
    }

    #[test]
    fn latency_alone_delays_every_datagram_by_it() {
        let mut s = shaper(Direction {
            latency: ms(100),
            ..Direction::default()
        });
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(s.judge(100, now), Fate::Deliver(ms(100), None));
        }
    }

    #[test]
    fn loss_drops_about_its_share_and_a_seed_repeats_the_choices() {
        let d = Direction {
            loss: 0.2,
            ..Direction::default()
        };
        let now = Instant::now();
        let run = |seed| {
            let mut s = Shaper::new(d.clone(), Some(seed));
            (0..10_000)
                .map(|_| s.judge(10, now) == Fate::Drop(DropCause::Loss))
                .collect::<Vec<_>>()
        };
        let dropped = run(1).iter().filter(|d| **d).count();
        assert!((1_800..=2_200).contains(&dropped), "{dropped}");
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn jitter_stays_within_its_range_around_the_latency() {
        let mut s = shaper(Direction {
            latency: ms(50),
            jitter: ms(10),
            ..Direction::default()
        });
        let now = Instant::now();
        let delays: Vec<Duration> = (0..1_000)
            .map(|_| match s.judge(10, now) {
                Fate::Deliver(d, None) => d,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(delays.iter().all(|d| *d >= ms(40) && *d <= ms(60)));
        assert!(delays.iter().any(|d| *d < ms(45)) && delays.iter().any(|d| *d > ms(55)));
    }

    #[test]
    fn duplicates_and_reorders_come_at_their_rates() {
        let mut s = shaper(Direction {
            duplicate: 0.5,
            reorder: 0.5,
            reorder_delay: (ms(20), ms(60)),
            ..Direction::default()
        });
        let now = Instant::now();
        let (mut dup, mut held) = (0, 0);
        for _ in 0..2_000 {
            match s.judge(10, now) {
                Fate::Deliver(first, second) => {
                    dup += usize::from(second.is_some());
                    held += usize::from(first >= ms(20));
                    assert!(first <= ms(60));
                }
                Fate::Drop(_) => panic!("no loss configured"),
            }
        }
        assert!((800..=1_200).contains(&dup), "{dup}");
        assert!((800..=1_200).contains(&held), "{held}");
    }

    /// 256 kbit/s: a 1,000-byte datagram takes 31.25 ms on the link; a burst queues behind
    /// itself, and once a second's worth waits, the rest is dropped.
    #[test]
    fn bandwidth_serialises_a_burst_and_drops_beyond_the_queue_limit() {
        let mut s = shaper(Direction {
            bandwidth: Some(256_000),
            ..Direction::default()
        });
        let now = Instant::now();
        assert_eq!(
            s.judge(1_000, now),
            Fate::Deliver(Duration::from_micros(31_250), None)
        );
        assert_eq!(
            s.judge(1_000, now),
            Fate::Deliver(Duration::from_micros(62_500), None)
        );
        let mut delivered = 2;
        let mut dropped = 0;
        for _ in 0..100 {
            match s.judge(1_000, now) {
                Fate::Deliver(..) => delivered += 1,
                Fate::Drop(cause) => {
                    assert_eq!(cause, DropCause::Queue);
                    dropped += 1;
                }
            }
        }
        // A second of queue holds 32 datagrams, plus the one being sent.
        assert_eq!(delivered, 33);
        assert_eq!(dropped, 69);
        // Later the queue has drained and datagrams pass again.
        assert_eq!(
            s.judge(1_000, now + Duration::from_secs(5)),
            Fate::Deliver(Duration::from_micros(31_250), None)
        );
    }
}
