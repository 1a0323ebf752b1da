//! Bad networks on demand: latency, jitter, loss, duplication, reordering and bandwidth
//! limits applied by netkit itself to what its objects send and receive, on every
//! platform and with no change to the game.
//!
//! Conditions come from one syntax ([`conditions`]); each datagram's fate is a pure
//! function of them, a seeded random source and the instant ([`shaper`]). The process-wide
//! conditions live here (set from `NETKIT_SIMULATE`, the Project Setting
//! `netkit/debug/simulate` or `Netkit.simulate_network()`); an object's own `simulate`
//! option beats them. Objects notice a change through [`generation`], one atomic load per
//! datagram when nothing is simulated.

pub mod conditions;
pub mod http;
pub mod shaper;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand::SeedableRng;
use rand::rngs::StdRng;

pub use conditions::{Conditions, ConditionsError, Direction};
pub use shaper::{DropCause, Fate, Shaper};

static PROCESS: RwLock<Option<Arc<Conditions>>> = RwLock::new(None);
/// Bumped at every change of the process-wide conditions; 0 until the first.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// Datagrams and requests dropped or failed on purpose, for the monitor.
static DROPS: AtomicU64 = AtomicU64::new(0);

/// The random source of seeded HTTP conditions, with its seed: HTTP attempts draw from
/// one sequence per seed, so a run that makes its requests in the same order repeats.
static SEEDED: Mutex<Option<(u64, StdRng)>> = Mutex::new(None);

/// Runs `f` with the random source for `seed`, started again when the seed changes.
pub fn with_seeded_rng<R>(seed: u64, f: impl FnOnce(&mut StdRng) -> R) -> R {
    let mut guard = SEEDED.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().map(|(s, _)| *s) != Some(seed) {
        *guard = Some((seed, StdRng::seed_from_u64(seed)));
    }
    f(&mut guard.as_mut().expect("set above").1)
}

/// Starts the seeded sequence again (new conditions were set).
pub fn restart_seeded() {
    *SEEDED.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Sets (or, with `None` or clean conditions, clears) the process-wide conditions.
pub fn set_process(conditions: Option<Conditions>) {
    restart_seeded();
    let conditions = conditions.filter(|c| !c.is_clean()).map(Arc::new);
    *PROCESS.write().unwrap_or_else(|p| p.into_inner()) = conditions;
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The process-wide conditions, if any.
pub fn process() -> Option<Arc<Conditions>> {
    PROCESS.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Changes whenever the process-wide conditions change.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// What applies to an object: its own conditions, else the process's.
pub fn effective(own: Option<&Arc<Conditions>>) -> Option<Arc<Conditions>> {
    match own {
        Some(c) => Some(c.clone()),
        None => process(),
    }
}

/// Counts one datagram or request dropped or failed on purpose.
pub fn count_drop() {
    DROPS.fetch_add(1, Ordering::Relaxed);
}

/// Datagrams and requests dropped or failed on purpose since the process started.
pub fn drops() -> u64 {
    DROPS.load(Ordering::Relaxed)
}
