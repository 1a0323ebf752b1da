//! Performance monitors (the debugger's Monitors tab) and, for headless servers where no
//! debugger watches, an optional periodic one-line stats log.
//!
//! The monitors sum `core/metrics.rs`'s registry when the debugger asks.
//! `netkit/debug/stats_log_interval` (seconds, 0 = off) prints the same figures as one line
//! periodically; Godot's API has no per-frame hook for extensions, so the nodes' frame
//! hooks drive that log.

use std::cell::{Cell, OnceCell, RefCell};
use std::time::{Duration, Instant};

use godot::classes::{DisplayServer, Performance};
use godot::prelude::*;

use super::project_settings::{STATS_LOG_INTERVAL, get};
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
    ("netkit/simulated_drops", |t| t.simulated_drops),
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
    /// The log interval and when it was read: `None` when off. Read again every
    /// `REREAD` (a script may change the setting at run time), not every frame.
    static LOG_INTERVAL: Cell<Option<(Option<Duration>, Instant)>> = const { Cell::new(None) };
    static HEADLESS: OnceCell<bool> = const { OnceCell::new() };
    /// The stats log's connection to the SceneTree's `process_frame`, once made.
    static HOOK: RefCell<Option<Callable>> = const { RefCell::new(None) };
}

/// How often the interval setting is read again.
const REREAD: Duration = Duration::from_secs(1);
/// Deferred calls to wait for a SceneTree at startup before giving up (a custom
/// `MainLoop` has none, and then no log).
const HOOK_ATTEMPTS: u32 = 100;

/// Connects the stats log to the SceneTree's `process_frame` once the main loop exists
/// (called at extension load outside the editor, when it does not yet: the connection is
/// made from a deferred call). The log is the process's, not a node's: it prints while any netkit
/// object with figures lives (a DTLSMultiplayerPeer is a RefCounted that no frame hook
/// drives, an idle HTTPPool connects none), and stays quiet otherwise.
pub fn hook_stats_log() {
    hook_attempt(HOOK_ATTEMPTS);
}

fn hook_attempt(left: u32) {
    if HOOK.with_borrow(Option::is_some) || left == 0 {
        return;
    }
    let Some(mut tree) = super::frame_hook::scene_tree() else {
        Callable::from_fn("netkit_hook_stats_log", move |_args| {
            hook_attempt(left - 1);
            Variant::nil()
        })
        .call_deferred(&[]);
        return;
    };
    let log = Callable::from_fn("netkit_stats_log", |_args| {
        maybe_log();
        Variant::nil()
    });
    tree.connect("process_frame", &log);
    HOOK.set(Some(log));
}

/// Disconnects the stats log when the extension unloads, so the SceneTree never calls
/// into a library that is gone.
pub fn unhook_stats_log() {
    let Some(log) = HOOK.take() else { return };
    if let Some(mut tree) = super::frame_hook::scene_tree()
        && tree.is_connected("process_frame", &log)
    {
        tree.disconnect("process_frame", &log);
    }
}

/// The stats log interval, `None` when off or not headless.
fn log_interval(now: Instant) -> Option<Duration> {
    if let Some((interval, at)) = LOG_INTERVAL.get()
        && now.duration_since(at) < REREAD
    {
        return interval;
    }
    let headless =
        HEADLESS.with(|h| *h.get_or_init(|| DisplayServer::singleton().get_name() == "headless"));
    let secs = get(STATS_LOG_INTERVAL, 0.0_f64);
    let interval = (secs > 0.0 && headless).then(|| Duration::from_secs_f64(secs.min(1e6)));
    LOG_INTERVAL.set(Some((interval, now)));
    interval
}

/// Called every frame on the main thread by the hook above: prints the totals every
/// `netkit/debug/stats_log_interval` seconds when running headless and some netkit object
/// with figures is alive.
fn maybe_log() {
    let now = Instant::now();
    let Some(interval) = log_interval(now) else {
        return;
    };
    match LAST_LOG.get() {
        Some(at) if now.duration_since(at) < interval => return,
        _ => LAST_LOG.set(Some(now)),
    }
    if !metrics::any_source() {
        return;
    }
    let t = metrics::totals();
    godot_print!(
        "[netkit] http in_flight={} queued={} ok={} failed={} outbox_pending={} outbox_dead_letters={} | dtls peers={} pending={} in={} out={} | mp peers={} bytes_in={} bytes_out={} resent={}",
        t.http_in_flight,
        t.http_queued,
        t.http_succeeded,
        t.http_failed,
        t.outbox_pending,
        t.outbox_dead_letters,
        t.dtls_peers,
        t.dtls_pending,
        t.dtls_packets_in,
        t.dtls_packets_out,
        t.mp_peers,
        t.mp_bytes_in,
        t.mp_bytes_out,
        t.mp_resent,
    );
}
