//! When to try again and how long to wait: exponential backoff with full jitter, capped,
//! and the server's `Retry-After` when it gives one.
//!
//! Retried: connect errors, timeouts and the statuses 408, 429, 500, 502, 503 and 504, and
//! only for idempotent methods or requests with an `Idempotency-Key` header (a
//! non-idempotent failure says in its message how to allow retries). The wait before retry
//! *n* is uniform in `[0, min(retry_max_delay, retry_base_delay * 2^(n-1))]` (full jitter).
//! A `Retry-After` (seconds or an HTTP date) is waited for instead, unless it exceeds
//! `retry_max_delay`: then the response is returned with a sentence saying so rather than
//! stalling a game for minutes.

use std::time::{Duration, SystemTime};

use rand::Rng;

use super::request::{Method, RequestSpec};

/// The retry knobs of one request, copied from the pool's settings when it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Extra attempts after the first.
    pub max_retries: u32,
    /// Base of the exponential backoff.
    pub base_delay: Duration,
    /// Cap of the backoff and of an honoured `Retry-After`.
    pub max_delay: Duration,
    /// No retry begins later than this after the first attempt began.
    pub window: Option<Duration>,
}

impl RetryPolicy {
    /// Whether a retry that begins after `wait`, `elapsed` after the first attempt began,
    /// is still inside the window.
    pub fn within_window(&self, elapsed: Duration, wait: Duration) -> bool {
        self.window
            .is_none_or(|window| elapsed.saturating_add(wait) <= window)
    }
}

/// Statuses that say "try again later" rather than "you asked for something wrong".
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A request may be repeated without harm when its method is idempotent or the caller
/// made it so with an `Idempotency-Key` header.
pub fn is_idempotent(spec: &RequestSpec) -> bool {
    matches!(
        spec.method,
        Method::Get | Method::Head | Method::Put | Method::Delete | Method::Options | Method::Trace
    ) || spec.header("idempotency-key").is_some()
}

/// The wait before retry number `retry` (1-based): a uniformly random time in
/// `[0, min(max, base * 2^(retry-1))]`. Full jitter keeps a crowd of clients that failed
/// together from coming back together.
pub fn backoff_delay(policy: &RetryPolicy, retry: u32) -> Duration {
    let exp = retry.saturating_sub(1).min(30);
    let ceiling = policy
        .base_delay
        .saturating_mul(1u32 << exp)
        .min(policy.max_delay);
    if ceiling.is_zero() {
        return Duration::ZERO;
    }
    let nanos = rand::rng().random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64);
    Duration::from_nanos(nanos)
}

/// Reads `Retry-After` as delta-seconds or an HTTP date; `None` when absent or unreadable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(1e9)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            window: None,
        }
    }

    #[test]
    fn no_retry_begins_after_the_window() {
        let mut p = policy();
        let s = Duration::from_secs;
        assert!(p.within_window(s(3600), s(1)), "no window, no limit");
        p.window = Some(s(30));
        assert!(p.within_window(s(20), s(1)));
        assert!(
            p.within_window(s(29), s(1)),
            "beginning at the window's end is in"
        );
        assert!(!p.within_window(s(30), Duration::from_millis(1)));
        assert!(!p.within_window(s(10), s(25)), "the wait counts");
        assert!(!p.within_window(Duration::MAX, s(1)), "no overflow");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = policy();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = backoff_delay(&p, 1);
            assert!(d <= Duration::from_millis(100));
            seen.insert(d);
        }
        assert!(seen.len() > 100, "jitter should spread delays");
        for _ in 0..200 {
            assert!(backoff_delay(&p, 20) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        let later = now + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later), now).unwrap();
        assert!(d >= Duration::from_secs(118) && d <= Duration::from_secs(120));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn idempotency() {
        let mut spec = RequestSpec {
            method: Method::Post,
            url: "http://x/".into(),
            headers: vec![],
            body: Default::default(),
            final_500: false,
        };
        assert!(!is_idempotent(&spec));
        spec.headers.push(("Idempotency-Key".into(), "abc".into()));
        assert!(is_idempotent(&spec));
        spec.method = Method::Get;
        spec.headers.clear();
        assert!(is_idempotent(&spec));
    }
}
