//! `Netkit`: the engine singleton for process-wide things, chiefly graceful shutdown of
//! headless servers.
//!
//! Registered at `InitStage::Scene` and freed at deinit. The signal handlers
//! (`core/shutdown.rs`, signal-hook) only set an atomic flag, which is async-signal-safe; a
//! second signal while the flag is set exits at once (`register_conditional_shutdown`). The
//! singleton polls the flag from its `SceneTree.process_frame` hook and emits
//! `shutdown_requested(grace)` on the main thread with no borrow held; if the game has not
//! quit when the grace period ends, it calls `quit()` itself.

use std::time::{Duration, Instant};

use godot::classes::{Engine, Object};
use godot::global::Error;
use godot::prelude::*;

use super::monitors::MONITORS;
use super::stats_dict::stats_dict;
use crate::core::{metrics, shutdown};

/// The name GDScript uses: `Netkit.enable_graceful_shutdown()`.
pub const SINGLETON_NAME: &str = "Netkit";

/// Process-wide netkit services, available everywhere as the [Netkit] singleton.
///
/// Its main use is graceful shutdown of a headless dedicated server: call
/// [method enable_graceful_shutdown] at startup, and a SIGTERM or SIGINT (what container
/// platforms and `Ctrl+C` send) then emits [signal shutdown_requested] on the main thread,
/// so the game can save through an [HTTPPool], deregister, disconnect its [DTLSPeer]
/// clients, and then call `get_tree().quit()`. If it has not quit when the grace period
/// ends, netkit quits for it with exit code [constant GRACE_EXPIRED_EXIT_CODE] (124), so
/// an orchestrator can tell an unfinished shutdown from a clean one (0); a second signal
/// ends the process at once with exit code 1.
///
/// ```gdscript
/// func _ready() -> void:
///     Netkit.shutdown_requested.connect(_on_shutdown_requested)
///     Netkit.enable_graceful_shutdown(10.0)
///
///
/// func _on_shutdown_requested(grace_seconds: float) -> void:
///     await save_world()
///     dtls.close()
///     get_tree().quit()
/// ```
#[derive(GodotClass)]
#[class(tool, init, base = Object, rename = Netkit)]
pub struct NetkitSingleton {
    grace: Duration,
    enabled: bool,
    requested_at: Option<Instant>,
    quit_sent: bool,
    base: Base<Object>,
}

#[godot_api]
impl NetkitSingleton {
    /// Emitted once, on the main thread, when the process received SIGTERM or SIGINT after
    /// [method enable_graceful_shutdown].
    ///
    /// [param grace_seconds] is the time left before netkit quits on its own.
    #[signal]
    fn shutdown_requested(grace_seconds: f64);

    /// The exit code of the process when the grace period of
    /// [method enable_graceful_shutdown] ran out before the game quit: 124, as GNU
    /// `timeout` exits for a command that timed out. A game that quits in time exits with
    /// the code it passes to `get_tree().quit()` (0 by default).
    #[constant]
    const GRACE_EXPIRED_EXIT_CODE: i64 = shutdown::GRACE_EXPIRED_EXIT_CODE as i64;

    /// Turns SIGTERM and SIGINT into [signal shutdown_requested] (Linux, macOS and Android),
    /// instead of ending the process at once, as they do by default.
    ///
    /// [param grace_seconds] (float, default 10.0, at most 3600) bounds how long the game may
    /// take to quit after the signal (then netkit quits with exit code
    /// [constant GRACE_EXPIRED_EXIT_CODE]); calling again changes it. Returns [constant OK];
    /// [constant ERR_UNAVAILABLE] where the platform has no such signals;
    /// [constant ERR_UNCONFIGURED] when the main loop is not a [SceneTree].
    #[func]
    fn enable_graceful_shutdown(&mut self, #[opt(default = 10.0)] grace_seconds: f64) -> Error {
        if let Err(why) = shutdown::install() {
            godot_error!("Netkit: {why}");
            return Error::ERR_UNAVAILABLE;
        }
        self.grace = Duration::from_secs_f64(grace_seconds.clamp(0.0, 3600.0));
        if !self.enabled {
            if !super::frame_hook::connect(
                &self.to_gd(),
                "Netkit.poll_shutdown",
                Self::poll_shutdown,
            ) {
                godot_error!("Netkit: enable_graceful_shutdown() needs a running SceneTree");
                return Error::ERR_UNCONFIGURED;
            }
            self.enabled = true;
        }
        Error::OK
    }

    /// Returns `true` once a shutdown was requested by a signal (after
    /// [method enable_graceful_shutdown]).
    #[func]
    fn is_shutdown_requested(&self) -> bool {
        self.requested_at.is_some()
    }

    /// Returns totals over every [HTTPPool] and [DTLSPeer] in the process as a Dictionary of
    /// String to int: the figures the `netkit/*` Performance monitors show, named without
    /// the `netkit/` prefix (`http_in_flight`, `http_queued`, `dtls_peers`, ...).
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let totals = metrics::totals();
        // The same figures as the monitors, named without their "netkit/" prefix.
        stats_dict(
            MONITORS
                .iter()
                .map(|(name, read)| (name.trim_start_matches("netkit/"), read(&totals))),
        )
    }

    /// Simulates a bad network for every netkit object of the process, existing and new
    /// (DTLSPeer, DTLSMultiplayerPeer, HTTPPool with its downloads, streams and outbox,
    /// AgonesSDK), until called again; `simulate_network({})` stops it.
    ///
    /// [param conditions] takes these keys, with values as Strings or numbers:
    ///
    /// | key | value | what it does |
    /// |---|---|---|
    /// | `latency` | `"150ms"`, `"0.2s"` (a bare number: ms) | delay added to each datagram or
    /// request |
    /// | `jitter` | duration | up to this much more or less than `latency` |
    /// | `loss` | `"5%"` (a bare number: percent) | share of datagrams dropped |
    /// | `duplicate` | share | share of datagrams delivered twice |
    /// | `reorder` | share | share of datagrams held back by `reorder_delay` |
    /// | `reorder_delay` | `"20ms-60ms"` (the default) or a duration | the hold of a reordered
    /// datagram |
    /// | `bandwidth` | `"256kbit"`, `"2mbit"` (a bare number: bits per second) | a link of that
    /// rate; what would queue over 1 s is dropped |
    /// | `failure` | share | HTTP: share of attempts that fail as a refused connection or a 503 |
    /// | `seed` | a whole number | makes the random choices repeatable |
    ///
    /// Plain keys apply to what each object *sends*; an `in:` prefix applies to what it
    /// *receives* (`{"in:loss": "100%"}`). UDP conditions act on whole datagrams, handshakes
    /// included. An object's own `simulate` option (DTLSPeer and DTLSMultiplayerPeer
    /// options, [member HTTPPool.simulate]) beats these. The same syntax as one String is read at
    /// start-up from the environment variable `NETKIT_SIMULATE` or the Project Setting
    /// `netkit/debug/simulate` (in a release export only with
    /// `netkit/debug/simulate_in_release` on); this method works in every build. A line in
    /// the output says when conditions change; the monitor `netkit/simulated_drops` counts
    /// what they dropped.
    ///
    /// Returns [constant OK], or [constant ERR_INVALID_PARAMETER] with an error naming the
    /// key it could not read, and then nothing changes.
    ///
    /// ```gdscript
    /// Netkit.simulate_network({"latency": "100ms", "jitter": "20ms", "loss": "3%"})
    /// await get_tree().create_timer(60.0).timeout
    /// Netkit.simulate_network({})  # a good network again
    /// ```
    #[func]
    fn simulate_network(&mut self, conditions: VarDictionary) -> Error {
        match super::simulation::from_dictionary(&conditions) {
            Ok(c) => {
                super::simulation::set(Some(c), "Netkit.simulate_network()");
                Error::OK
            }
            Err(e) => {
                godot_error!("[netkit] Netkit.simulate_network(): {e}; nothing changed");
                Error::ERR_INVALID_PARAMETER
            }
        }
    }

    /// Returns the addon's version, e.g. `"0.1.0"`.
    #[func]
    fn get_version(&self) -> GString {
        GString::from(env!("CARGO_PKG_VERSION"))
    }
}

impl NetkitSingleton {
    /// Per-frame check, run by the frame hook with no borrow held while
    /// `shutdown_requested` is emitted (its handlers commonly free the whole scene).
    fn poll_shutdown(this: Gd<Self>) {
        let (requested_at, quit_sent, grace) = {
            let s = this.bind();
            (s.requested_at, s.quit_sent, s.grace)
        };
        match requested_at {
            None if shutdown::requested() => {
                this.clone().bind_mut().requested_at = Some(Instant::now());
                let grace = grace.as_secs_f64();
                godot_print!("[netkit] shutdown requested by signal; {grace:.1} s grace period");
                this.signals().shutdown_requested().emit(grace);
            }
            Some(at) if !quit_sent && at.elapsed() >= grace => {
                this.clone().bind_mut().quit_sent = true;
                let code = shutdown::GRACE_EXPIRED_EXIT_CODE;
                godot_warn!(
                    "[netkit] the grace period ended before the game quit; quitting now with exit code {code}"
                );
                if let Some(mut tree) = super::frame_hook::scene_tree() {
                    tree.quit_ex().exit_code(code).done();
                }
            }
            _ => {}
        }
    }
}

/// Creates and registers the singleton.
pub fn register() {
    let singleton = NetkitSingleton::new_alloc();
    Engine::singleton().register_singleton(SINGLETON_NAME, &singleton);
}

/// Unregisters and frees the singleton.
pub fn unregister() {
    let mut engine = Engine::singleton();
    if let Some(obj) = engine.get_singleton(SINGLETON_NAME) {
        engine.unregister_singleton(SINGLETON_NAME);
        obj.free();
    }
}
