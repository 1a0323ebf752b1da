//! What simulated conditions do to one HTTP attempt: wait before it is sent (`latency`,
//! `jitter`, and a request body's time through `bandwidth`), wait before its answer is
//! delivered (`in:latency`, `in:jitter`), pace the answer's body to `in:bandwidth`
//! ([`BodyPace`]), or fail it as a refused connection or a `503` (`failure`), which the
//! pool's retry policy then sees like a real one. No I/O and no clock: the caller passes
//! the random source and the instants.

use std::time::{Duration, Instant};

use rand::Rng;

use super::conditions::{Conditions, Direction};

/// How a simulated failure looks to the retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpFailure {
    /// The connection was refused: `ERR_CONNECT`.
    Refused,
    /// The server answered `503 Service Unavailable`.
    Unavailable,
}

/// The fate of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpFate {
    /// Wait before sending.
    pub before: Duration,
    /// Wait before delivering the answer.
    pub after: Duration,
    /// Fail the attempt instead of sending it.
    pub failure: Option<HttpFailure>,
}

/// Paces a body to a bandwidth: the time each chunk must wait so the bytes so far never
/// arrive faster than the limit.
#[derive(Clone, Copy, Debug)]
pub struct BodyPace {
    bits_per_s: u64,
    started: Instant,
    bytes: u64,
}

impl BodyPace {
    /// A pace of `bits_per_s` from `now`.
    pub fn new(bits_per_s: u64, now: Instant) -> Self {
        Self {
            bits_per_s: bits_per_s.max(1),
            started: now,
            bytes: 0,
        }
    }

    /// How long to wait, at `now`, after `n` more bytes arrived.
    pub fn wait_after(&mut self, n: usize, now: Instant) -> Duration {
        self.bytes += n as u64;
        let due = self.started + transmit_time(self.bytes, self.bits_per_s);
        due.saturating_duration_since(now)
    }
}

/// How long `bytes` take through `bits_per_s`.
pub fn transmit_time(bytes: u64, bits_per_s: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 8.0 / bits_per_s.max(1) as f64)
}

/// Judges one attempt under `conditions`.
pub fn judge_attempt(conditions: &Conditions, rng: &mut impl Rng) -> HttpFate {
    let failure_share = conditions.outbound.failure.max(conditions.inbound.failure);
    let failure = (failure_share > 0.0 && rng.random_bool(failure_share.min(1.0))).then(|| {
        if rng.random_bool(0.5) {
            HttpFailure::Refused
        } else {
            HttpFailure::Unavailable
        }
    });
    HttpFate {
        before: delay(&conditions.outbound, rng),
        after: delay(&conditions.inbound, rng),
        failure,
    }
}

fn delay(d: &Direction, rng: &mut impl Rng) -> Duration {
    if d.jitter.is_zero() {
        return d.latency;
    }
    let j = d.jitter.as_secs_f64();
    Duration::from_secs_f64((d.latency.as_secs_f64() + rng.random_range(-j..=j)).max(0.0))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn latency_each_way_and_failures_at_their_share_split_between_both_kinds() {
        let c = Conditions::parse("latency=200ms in:latency=50ms failure=50%").unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let fates: Vec<HttpFate> = (0..2_000).map(|_| judge_attempt(&c, &mut rng)).collect();
        assert!(fates.iter().all(|f| f.before == Duration::from_millis(200)));
        assert!(fates.iter().all(|f| f.after == Duration::from_millis(50)));
        let refused = fates
            .iter()
            .filter(|f| f.failure == Some(HttpFailure::Refused))
            .count();
        let unavailable = fates
            .iter()
            .filter(|f| f.failure == Some(HttpFailure::Unavailable))
            .count();
        assert!((400..=600).contains(&refused), "{refused}");
        assert!((400..=600).contains(&unavailable), "{unavailable}");
    }

    /// 256 kbit/s is 32,000 bytes a second: a body arriving at once in 8,000-byte chunks
    /// waits a quarter second per chunk, and a body that arrives slower waits nothing.
    #[test]
    fn a_body_is_paced_to_the_bandwidth() {
        let start = Instant::now();
        let mut pace = BodyPace::new(256_000, start);
        assert_eq!(pace.wait_after(8_000, start), Duration::from_millis(250));
        assert_eq!(pace.wait_after(8_000, start), Duration::from_millis(500));
        let later = start + Duration::from_secs(2);
        assert_eq!(pace.wait_after(8_000, later), Duration::ZERO);
        assert_eq!(
            transmit_time(1_000_000, 256_000),
            Duration::from_micros(31_250_000)
        );
    }

    #[test]
    fn clean_conditions_change_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        let fate = judge_attempt(&Conditions::default(), &mut rng);
        assert_eq!(
            fate,
            HttpFate {
                before: Duration::ZERO,
                after: Duration::ZERO,
                failure: None
            }
        );
    }
}
