//! The main loop's proof of life: a timestamp the node writes every frame and the health
//! task reads from the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A shared "last frame seen" stamp. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Liveness {
    origin: Instant,
    /// Milliseconds from `origin` to the last stamp.
    last_ms: Arc<AtomicU64>,
}

impl Default for Liveness {
    fn default() -> Self {
        Self::new()
    }
}

impl Liveness {
    /// A stamp that reads as "seen just now".
    pub fn new() -> Liveness {
        Liveness {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records that the main loop ran now (one atomic store: cheap enough for every frame).
    pub fn stamp(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Time since the last stamp.
    pub fn age(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_grows_until_stamped() {
        let live = Liveness::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(live.age() >= Duration::from_millis(25));
        live.clone().stamp();
        assert!(live.age() < Duration::from_millis(25));
    }
}
