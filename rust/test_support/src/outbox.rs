//! What the outbox's core tests (`outbox.rs`, `outbox_faults.rs`) share: a scratch folder
//! per test, a pool that retries quickly, and waiting helpers.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::time::Duration;

use netkit::core::events::Budget;
use netkit::core::http::outbox::{Outbox, OutboxEvent, Write};
use netkit::core::http::{HttpPool, PoolSettings};

/// How long any wait in these tests may take before it fails.
pub const WITHIN: Duration = Duration::from_secs(60);
/// A max age no test reaches.
pub const DAY: Duration = Duration::from_secs(86_400);
/// Entries committed before `submit` returns, as `request_durable` does by default.
pub const SYNC: Write = Write::BeforeReturn;

/// A folder for one test's store, unique per test and run, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "netkit-outbox-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The store file in it.
    pub fn file(&self) -> PathBuf {
        self.0.join("outbox.redb")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A pool that retries within milliseconds, so outages end quickly in tests.
pub fn pool() -> HttpPool {
    HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(300),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        ..PoolSettings::default()
    })
}

/// A loopback port with nothing listening on it (connections are refused).
pub fn free_port() -> SocketAddr {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Waits until `cond` holds, for at most [`WITHIN`]; fails the test naming `what` if not.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    assert!(
        crate::wait::wait_until(WITHIN, cond),
        "timed out waiting for {what}"
    );
}

/// Waits until `n` outbox events arrived (delivered, dead-lettered, or store errors, which
/// a test that expects none checks for), for at most [`WITHIN`].
pub fn wait_events(outbox: &Outbox, n: usize) -> Vec<OutboxEvent> {
    let mut got = Vec::new();
    let arrived = crate::wait::wait_until(WITHIN, || {
        got.extend(outbox.drain(Budget::default()));
        got.len() >= n
    });
    assert!(
        arrived,
        "only {} of {n} outbox events within {WITHIN:?}: {got:?}",
        got.len()
    );
    got
}
