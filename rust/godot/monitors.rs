//! Performance monitors (the debugger's Monitors tab) and, for headless servers where no
//! debugger watches, an optional periodic one-line stats log.

use std::cell::{Cell, OnceCell};
use std::time::{Duration, Instant};

use godot::classes::{DisplayServer, Performance};
use godot::prelude::*;

use super::project_settings::{STATS_LOG_INTERVAL, get_f64};
use crate::core::metrics::{self, Totals};

/// Reads one figure out of the totals.
pub type Reader = fn(&Totals) -> u64;

/// Every monitor: its name and how to read it from the totals.
pub const MONITORS: &[(&str, Reader)] = &[
    ("netkit/http_in_flight", |t| t.http_in_flight),
    ("netkit/http_queued", |t| t.http_queued),
    ("netkit/http_succeeded", |t| t.http_succeeded),
    ("netkit/http_failed", |t| t.http_failed),
    ("netkit/http_outbox_pending", |t| t.outbox_pending),
    ("netkit/http_outbox_delivered", |t| t.outbox_delivered),
    ("netkit/http_outbox_dead_letters", |t| t.outbox_dead_letters),
    ("netkit/dtls_peers", |t| t.dtls_peers),
    ("netkit/dtls_pending_handshakes", |t| t.dtls_pending),
    ("netkit/dtls_packets_in", |t| t.dtls_packets_in),
    ("netkit/dtls_packets_out", |t| t.dtls_packets_out),
    ("netkit/dtls_dropped_fragments", |t| {
        t.dtls_dropped_fragments
    }),
];

/// Adds the custom monitors (idempotent, since an editor reload may register twice).
pub fn register() {
    let mut performance = Performance::singleton();
    for (name, read) in MONITORS {
        let id = StringName::from(*name);
        if performance.has_custom_monitor(&id) {
            continue;
        }
        let read = *read;
        let callable = Callable::from_fn(*name, move |_args| read(&metrics::totals()) as i64);
        performance.add_custom_monitor(&id, &callable);
    }
}

/// Removes the monitors when the extension unloads.
pub fn unregister() {
    let mut performance = Performance::singleton();
    for (name, _) in MONITORS {
        let id = StringName::from(*name);
        if performance.has_custom_monitor(&id) {
            performance.remove_custom_monitor(&id);
        }
    }
}

thread_local! {
    static LAST_LOG: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The log interval, read once: `None` when off or not headless. Reading a setting
    /// and the display server every frame would put that work on the per-frame path.
    static LOG_INTERVAL: OnceCell<Option<Duration>> = const { OnceCell::new() };
}

/// Called every frame by the nodes (on the main thread; Godot 4.3 has no per-frame hook
/// for extensions): prints the totals every `netkit/debug/stats_log_interval` seconds
/// when running headless. The setting is read at the first call.
pub fn maybe_log() {
    let interval = LOG_INTERVAL.with(|cell| {
        *cell.get_or_init(|| {
            let secs = get_f64(STATS_LOG_INTERVAL, 0.0);
            let headless = DisplayServer::singleton().get_name() == "headless";
            (secs > 0.0 && headless).then(|| Duration::from_secs_f64(secs.min(1e6)))
        })
    });
    let Some(interval) = interval else { return };
    let now = Instant::now();
    let due = LAST_LOG.with(|last| match last.get() {
        Some(at) if now.duration_since(at) < interval => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        let t = metrics::totals();
        godot_print!(
            "[netkit] http in_flight={} queued={} ok={} failed={} outbox_pending={} outbox_dead_letters={} | dtls peers={} pending={} in={} out={}",
            t.http_in_flight,
            t.http_queued,
            t.http_succeeded,
            t.http_failed,
            t.outbox_pending,
            t.outbox_dead_letters,
            t.dtls_peers,
            t.dtls_pending,
            t.dtls_packets_in,
            t.dtls_packets_out
        );
    }
}
