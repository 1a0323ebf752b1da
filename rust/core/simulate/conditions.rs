//! The network conditions a developer asks for, read from one syntax:
//! `latency=150ms jitter=10ms loss=5% duplicate=1% reorder=2% bandwidth=256kbit seed=7`.
//!
//! Plain keys shape what a netkit object sends; an `in:` prefix shapes what it receives
//! (`in:loss=100%`). The Dictionary form takes the same keys and values as strings or
//! numbers (`{"latency": "150ms", "in:loss": "5%"}`; a bare number is milliseconds,
//! percent, bits per second or the seed, by key). Anything unreadable is an error naming
//! the token, and then nothing applies.

use std::fmt;
use std::time::Duration;

/// What happens to traffic in one direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Direction {
    /// Added to every datagram or request.
    pub latency: Duration,
    /// Up to this much more or less than `latency`, uniformly.
    pub jitter: Duration,
    /// Share of datagrams dropped, 0.0 to 1.0.
    pub loss: f64,
    /// Share of datagrams delivered twice.
    pub duplicate: f64,
    /// Share of datagrams held back by an extra delay in `reorder_delay`.
    pub reorder: f64,
    /// The extra delay of a reordered datagram, from and to.
    pub reorder_delay: (Duration, Duration),
    /// Bits per second, or `None` for no limit.
    pub bandwidth: Option<u64>,
    /// HTTP only: share of attempts that fail (a refused connection or a 503).
    pub failure: f64,
}

impl Default for Direction {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: (Duration::from_millis(20), Duration::from_millis(60)),
            bandwidth: None,
            failure: 0.0,
        }
    }
}

impl Direction {
    /// True when nothing is changed in this direction.
    pub fn is_clean(&self) -> bool {
        self.latency.is_zero()
            && self.jitter.is_zero()
            && self.loss == 0.0
            && self.duplicate == 0.0
            && self.reorder == 0.0
            && self.bandwidth.is_none()
            && self.failure == 0.0
    }
}

/// Conditions for both directions of one netkit object (or of the whole process).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conditions {
    /// What the object sends.
    pub outbound: Direction,
    /// What the object receives (`in:` keys).
    pub inbound: Direction,
    /// Seed of the random choices, so a run can be repeated; random when absent.
    pub seed: Option<u64>,
}

impl Conditions {
    /// True when nothing is changed either way.
    pub fn is_clean(&self) -> bool {
        self.outbound.is_clean() && self.inbound.is_clean()
    }

    /// Reads the string form. An empty string means no conditions.
    pub fn parse(text: &str) -> Result<Self, ConditionsError> {
        let mut out = Self::default();
        for token in text.split_whitespace() {
            let (key, value) = token.split_once('=').ok_or_else(|| ConditionsError {
                token: token.to_owned(),
                why: "expected key=value".to_owned(),
            })?;
            out.set(key, value)?;
        }
        Ok(out)
    }

    /// Reads `(key, value)` pairs, the Dictionary form; a numeric value arrives as its text.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConditionsError> {
        let mut out = Self::default();
        for (key, value) in pairs {
            out.set(key, value)?;
        }
        Ok(out)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), ConditionsError> {
        let err = |why: &str| ConditionsError {
            token: format!("{key}={value}"),
            why: why.to_owned(),
        };
        let value = value.trim();
        if key == "seed" {
            self.seed = Some(
                value
                    .parse()
                    .map_err(|_| err("the seed is a whole number"))?,
            );
            return Ok(());
        }
        let (dir, name) = match key.strip_prefix("in:") {
            Some(name) => (&mut self.inbound, name),
            None => (&mut self.outbound, key),
        };
        match name {
            "latency" => dir.latency = duration(value).ok_or_else(|| err(DURATION))?,
            "jitter" => dir.jitter = duration(value).ok_or_else(|| err(DURATION))?,
            "loss" => dir.loss = share(value).ok_or_else(|| err(SHARE))?,
            "duplicate" => dir.duplicate = share(value).ok_or_else(|| err(SHARE))?,
            "reorder" => dir.reorder = share(value).ok_or_else(|| err(SHARE))?,
            "failure" => dir.failure = share(value).ok_or_else(|| err(SHARE))?,
            "reorder_delay" => {
                dir.reorder_delay = match value.split_once('-') {
                    Some((a, b)) => {
                        let a = duration(a).ok_or_else(|| err(RANGE))?;
                        let b = duration(b).ok_or_else(|| err(RANGE))?;
                        if b < a {
                            return Err(err(RANGE));
                        }
                        (a, b)
                    }
                    None => {
                        let d = duration(value).ok_or_else(|| err(RANGE))?;
                        (d, d)
                    }
                }
            }
            "bandwidth" => {
                let bits = bandwidth(value).ok_or_else(|| err(BANDWIDTH))?;
                dir.bandwidth = (bits > 0).then_some(bits);
            }
            _ => {
                return Err(ConditionsError {
                    token: format!("{key}={value}"),
                    why: format!("unknown key \"{key}\" (known: {KNOWN})"),
                });
            }
        }
        Ok(())
    }
}

const KNOWN: &str = "latency, jitter, loss, duplicate, reorder, reorder_delay, bandwidth, \
                     failure, seed, each but seed also with an in: prefix";
const DURATION: &str = "a duration is a number with ms or s (150ms, 0.2s); a bare number is ms";
const SHARE: &str = "a share is a percentage from 0% to 100% (5%); a bare number is percent";
const RANGE: &str = "reorder_delay is a duration or a range such as 20ms-60ms";
const BANDWIDTH: &str = "a bandwidth is a number with bit, kbit, mbit or gbit per second (256kbit); a bare number is bits";

/// A token that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionsError {
    /// The `key=value` token as given.
    pub token: String,
    /// What was expected.
    pub why: String,
}

impl fmt::Display for ConditionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read network conditions at \"{}\": {}",
            self.token, self.why
        )
    }
}

impl std::error::Error for ConditionsError {}

fn number(text: &str) -> Option<f64> {
    let n: f64 = text.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n)
}

fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (n, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1e-3)
    };
    let secs = number(n)? * scale;
    (secs <= 3600.0).then(|| Duration::from_secs_f64(secs))
}

fn share(text: &str) -> Option<f64> {
    let n = number(text.trim().strip_suffix('%').unwrap_or(text))?;
    (n <= 100.0).then_some(n / 100.0)
}

fn bandwidth(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix("/s").unwrap_or(&lower);
    let lower = lower.strip_suffix("ps").unwrap_or(lower);
    let (n, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((lower, 1.0));
    let bits = number(n)? * scale;
    (bits < 1e12).then_some(bits as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_issue_example_reads_whole() {
        let c = Conditions::parse(
            "latency=150ms jitter=10ms loss=5% duplicate=1% reorder=2% bandwidth=256kbit seed=7",
        )
        .unwrap();
        assert_eq!(c.outbound.latency, ms(150));
        assert_eq!(c.outbound.jitter, ms(10));
        assert!((c.outbound.loss - 0.05).abs() < 1e-12);
        assert!((c.outbound.duplicate - 0.01).abs() < 1e-12);
        assert!((c.outbound.reorder - 0.02).abs() < 1e-12);
        assert_eq!(c.outbound.bandwidth, Some(256_000));
        assert_eq!(c.seed, Some(7));
        assert!(c.inbound.is_clean());
    }

    #[test]
    fn in_prefix_shapes_what_is_received() {
        let c = Conditions::parse("in:loss=100% latency=0.1s").unwrap();
        assert_eq!(c.inbound.loss, 1.0);
        assert_eq!(c.outbound.latency, ms(100));
        assert_eq!(c.outbound.loss, 0.0);
    }

    #[test]
    fn bare_numbers_take_the_keys_unit_and_the_pairs_form_reads_the_same() {
        let c = Conditions::from_pairs([("latency", "80"), ("in:loss", "5"), ("bandwidth", "1e6")])
            .unwrap();
        assert_eq!(c.outbound.latency, ms(80));
        assert!((c.inbound.loss - 0.05).abs() < 1e-12);
        assert_eq!(c.outbound.bandwidth, Some(1_000_000));
        assert_eq!(
            Conditions::parse("bandwidth=2Mbit reorder_delay=10ms-30ms")
                .unwrap()
                .outbound,
            Direction {
                bandwidth: Some(2_000_000),
                reorder_delay: (ms(10), ms(30)),
                ..Direction::default()
            }
        );
    }

    #[test]
    fn empty_text_is_no_conditions() {
        assert!(Conditions::parse("  ").unwrap().is_clean());
    }

    #[test]
    fn every_error_names_its_token() {
        for (text, token) in [
            ("latency=fast", "latency=fast"),
            ("loss=5% loss=150%", "loss=150%"),
            ("lag=100ms", "lag=100ms"),
            ("loss", "loss"),
            ("latency=-5ms", "latency=-5ms"),
            ("bandwidth=lots", "bandwidth=lots"),
            ("reorder_delay=60ms-20ms", "reorder_delay=60ms-20ms"),
            ("seed=x", "seed=x"),
            ("in:seed=1", "in:seed=1"),
            ("loss=NaN%", "loss=NaN%"),
        ] {
            let err = Conditions::parse(text).unwrap_err();
            assert_eq!(err.token, token, "{text}");
            assert!(err.to_string().contains(token), "{err}");
        }
    }
}
