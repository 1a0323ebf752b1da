//! Waiting for something to become true, with a deadline, the one way every test does it.

use std::time::{Duration, Instant};

/// Polls `cond` every 2 ms until it holds (true) or `within` passes (false).
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
