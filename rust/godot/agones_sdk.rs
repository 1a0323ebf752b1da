//! `AgonesSDK`: the node a dedicated server talks to Agones through.
//!
//! Calls return an `HTTPTask` (awaited like `HTTPPool.request()`), `get_game_server()` too,
//! with the record as `HTTPResponse.json`; the latest record is the `last_game_server`
//! property (a property named `game_server` would clash with the method's getter).
//! `ready()` is registered under that name next to Node's `ready` signal; calling it works
//! (`await agones.ready().completed`, tested). SIGTERM stays with the `Netkit` singleton;
//! this node only adds `shutdown()` (the flow is in docs/DEPLOY.md, tested by
//! `tests/agones/sigterm.rs`).

mod counts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use godot::classes::notify::NodeNotification;
use godot::classes::{INode, Node};
use godot::prelude::*;

use super::frame_hook::FrameBudget;
use super::http_response::HttpResponse;
use super::http_task::HttpTask;
use super::json_variant::json_to_variant;
use super::stats_dict::stats_dict;
use crate::core::agones::{
    AgonesClient, AgonesEvent, ClientOptions, Endpoint, RosterCall, SdkCall, env_port, resolve,
};
use crate::core::http::{ErrorKind, Response};

/// "Not running under Agones" is said once per process, however many nodes find out.
static ABSENT_REPORTED: AtomicBool = AtomicBool::new(false);

/// Most calls, records and reports delivered per frame; the rest wait for the next frame.
const DELIVER_PER_FRAME: i64 = 64;

/// A dedicated server's link to its [Agones](https://agones.dev) fleet, through the SDK sidecar.
///
/// It talks to the sidecar's REST API on `127.0.0.1:$AGONES_SDK_HTTP_PORT`.
///
/// ```gdscript
/// var agones := AgonesSDK.new()
/// add_child(agones)                  # health pings start now
/// agones.game_server_changed.connect(func(gs): print(gs.status.state))
/// var res: HTTPResponse = await agones.ready().completed
/// if not res.ok: push_warning(res.error_message)
/// ```
///
/// Every call returns an [HTTPTask], completed exactly once on the main thread with an
/// [HTTPResponse] ([member HTTPResponse.ok], [member HTTPResponse.error],
/// [member HTTPResponse.error_message], [member HTTPResponse.json]), like
/// [method HTTPPool.request].
/// Calls reach the sidecar in the order they were made, one at a time; at most 1024 wait,
/// and one more completes at once with [constant HTTPResponse.ERR_QUEUE_FULL], unsent.
/// Every failure's [member HTTPResponse.error_message] begins with the call, e.g.
/// `get_counter('rooms'): ...`. While the sidecar is starting
/// (Agones may start it after the game) lifecycle, metadata, Counter and List calls are
/// retried for about 30 s before they fail with [constant HTTPResponse.ERR_CONNECT].
///
/// Counters and Lists (beta: [method get_counter], [method update_counter],
/// [method get_list], [method add_list_value], ...) are what Fleets allocate and autoscale
/// on; [method track_players]
/// keeps a List in step with the multiplayer peers. The sidecar's refusals ("does not
/// exist", "is full", ...) end a call at once with [constant HTTPResponse.ERR_HTTP_STATUS] and a
/// sentence.
///
/// Health pings are sent by a background thread every [member health_interval] seconds, as
/// long as the main loop ran within the last [member health_tolerance] seconds: a long frame does
/// not
/// get the server killed, a deadlocked game stops pinging and Agones replaces it.
///
/// Outside Agones (no `AGONES_SDK_HTTP_PORT` and nothing listening on 127.0.0.1:9358) the
/// node says so once in the log; calls then complete at once with
/// [constant HTTPResponse.ERR_CONNECT] and nothing is sent. SIGTERM is handled by
/// [method Netkit.enable_graceful_shutdown]; see
/// `res://addons/netkit/docs/DEPLOY.md` (shipped with the addon) for the combined flow.
#[derive(GodotClass)]
#[class(init, base = Node, rename = AgonesSDK)]
pub struct AgonesSdk {
    /// The SDK's REST port. `0` (default) means `AGONES_SDK_HTTP_PORT`, which Agones sets,
    /// else 9358 if an SDK server listens there. Read when the node enters the tree (or at
    /// the first call); later changes have no effect.
    #[export(range = (0.0, 65535.0))]
    port: i64,
    /// Follow `GET /watch/gameserver` and emit [signal game_server_changed]. Read
    /// when the node enters the tree.
    #[export]
    #[init(val = true)]
    watch_enabled: bool,
    /// Send health pings (`POST /health`). Turn off only with
    /// `health.disabled: true` in the GameServer spec, or Agones marks the server Unhealthy.
    // A "Health" group whose prefix leaves "Enabled", "Interval", "Tolerance", as Camera2D
    // groups its "position_smoothing_" properties; the group is last because a property
    // without the prefix would end it.
    #[export_group(name = "Health", prefix = "health_")]
    #[export]
    #[init(val = true)]
    health_enabled: bool,
    /// Seconds between health pings, at least 0.05. Keep it below the
    /// GameServer's `health.periodSeconds` (the addon's docs/DEPLOY.md uses 5).
    #[export(range = (0.05, 60.0, 0.05, or_greater, suffix = "s"))]
    #[init(val = 2.0)]
    health_interval: f64,
    /// Seconds the main loop may go without a frame before pings stop.
    /// Longer than any frame the game may legitimately take (a level load); a main thread
    /// stuck for longer stops pinging, and Agones marks the server Unhealthy after
    /// `periodSeconds * failureThreshold` more seconds.
    #[export(range = (0.1, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 5.0)]
    health_tolerance: f64,
    /// What stands for a peer in the List [method track_players] keeps: unset (default), the
    /// peer id as a String; set, what it returns when called with the peer id, as a String
    /// (e.g. an account id: `func(id): return accounts[id]`). Each value must be non-empty
    /// and held by one peer at a time; a peer whose value breaks that is not added (a
    /// warning says so). Called when the peer connects.
    #[var]
    #[init(val = Callable::invalid())]
    player_value: Callable,
    /// The last GameServer record seen (from the watch stream or [method get_game_server]), as
    /// Agones' REST API writes it: `object_meta` (`name`, `labels`, `annotations`, ...),
    /// `spec`, `status` (`state`, `address`, `ports`, `players`, ...); 64-bit numbers
    /// are Strings there. Empty until the first record.
    #[var(no_set)]
    last_game_server: VarDictionary,
    client: Option<AgonesClient>,
    hooked: bool,
    /// Calls waiting for their answer.
    tasks: HashMap<u64, Pending>,
    /// What `track_players()` set up.
    tracking: Option<counts::Tracking>,
    pings_ok: u64,
    pings_failed: u64,
    /// Whether the last ping got through, so a failure streak is logged once.
    ping_ok_last: bool,
    updates: u64,
    base: Base<Node>,
}

/// A call on its way: the game's own (answered through its task), or one `track_players`
/// made (answered to the roster).
enum Pending {
    /// The call, `None` for one refused before it became a call.
    Task(Gd<HttpTask>, Option<SdkCall>),
    /// With the number of the `track_players()` that made it: a call of a replaced
    /// tracking is not answered to its successor.
    Roster(u64, RosterCall),
}

/// One thing to hand to GDScript, taken under a short borrow and emitted with none held.
enum Delivery {
    Call(Gd<HttpTask>, Gd<HttpResponse>),
    Changed(VarDictionary),
}

#[godot_api]
impl INode for AgonesSdk {
    fn ready(&mut self) {
        self.client();
        // Delivery follows the processing flag like HTTPPool's (set_process(false) holds
        // results back); the liveness stamp does not (see `deliver`).
        self.base_mut().set_process(true);
    }

    fn on_notification(&mut self, what: NodeNotification) {
        if what == NodeNotification::PREDELETE {
            self.end_pending_tasks();
        }
    }
}

#[godot_api]
impl AgonesSdk {
    /// Emitted when the watch stream delivers a GameServer record that differs from the
    /// previous one (state changes, labels, annotations, players, ...). [param game_server] has
    /// the shape of [member last_game_server].
    #[signal]
    fn game_server_changed(game_server: VarDictionary);

    /// Marks the server Ready to be allocated (`POST /ready`). Returns an [HTTPTask].
    #[func(rename = ready)]
    fn sdk_ready(&mut self) -> Gd<HttpTask> {
        self.call(SdkCall::Ready)
    }

    /// Marks the server Allocated (`POST /allocate`): for games that allocate themselves;
    /// a GameServerAllocation from a matchmaker is the usual way.
    #[func]
    fn allocate(&mut self) -> Gd<HttpTask> {
        self.call(SdkCall::Allocate)
    }

    /// Marks the server Reserved for `seconds` (`POST /reserve`): it is neither allocated
    /// nor scaled down meanwhile, then returns to Ready. `0` reserves until the next state
    /// change. A negative value completes with
    /// [constant HTTPResponse.ERR_INVALID_REQUEST].
    #[func]
    fn reserve(&mut self, seconds: i64) -> Gd<HttpTask> {
        self.call(SdkCall::Reserve(seconds))
    }

    /// Tells Agones the session is over (`POST /shutdown`): the pod is deleted, and the
    /// process receives SIGTERM. Save first; see the addon's docs/DEPLOY.md.
    #[func]
    fn shutdown(&mut self) -> Gd<HttpTask> {
        self.call(SdkCall::Shutdown)
    }

    /// Sets the label `agones.dev/sdk-<key>` on the GameServer (`PUT /metadata/label`),
    /// e.g. for allocation selectors. Kubernetes' rules apply and are checked here: `key`
    /// 1 to 59 characters of `A-Z a-z 0-9 - _ .` ending in a letter or digit; `value`
    /// empty or up to 63 such characters, beginning and ending with a letter or digit.
    /// Anything else completes with [constant HTTPResponse.ERR_INVALID_REQUEST] and is not
    /// sent.
    #[func]
    fn set_label(&mut self, key: GString, value: GString) -> Gd<HttpTask> {
        self.call(SdkCall::SetLabel(key.to_string(), value.to_string()))
    }

    /// Sets the annotation `agones.dev/sdk-<key>` (`PUT /metadata/annotation`). `key`
    /// follows the same rule as in [method set_label]; `value` is free text.
    #[func]
    fn set_annotation(&mut self, key: GString, value: GString) -> Gd<HttpTask> {
        self.call(SdkCall::SetAnnotation(key.to_string(), value.to_string()))
    }

    /// Reads the GameServer record (`GET /gameserver`). The task's [member HTTPResponse.json] is
    /// the record as a Dictionary (see [member last_game_server]), which is also stored
    /// there.
    #[func]
    fn get_game_server(&mut self) -> Gd<HttpTask> {
        self.call(SdkCall::GetGameServer)
    }

    /// Alpha (Agones feature gate `PlayerTracking`): records a connected player
    /// (`POST /alpha/player/connect`). `json.bool` is `false` when the id was already
    /// connected; beyond the capacity the call fails. Sent once, never retried.
    #[func]
    fn player_connect(&mut self, player_id: GString) -> Gd<HttpTask> {
        self.call(SdkCall::PlayerConnect(player_id.to_string()))
    }

    /// Alpha: records that a player left (`POST /alpha/player/disconnect`); `json.bool` is
    /// `false` when the id was not connected. Sent once, never retried.
    #[func]
    fn player_disconnect(&mut self, player_id: GString) -> Gd<HttpTask> {
        self.call(SdkCall::PlayerDisconnect(player_id.to_string()))
    }

    /// Alpha: sets the player capacity (`PUT /alpha/player/capacity`), 0 or more.
    #[func]
    fn set_player_capacity(&mut self, count: i64) -> Gd<HttpTask> {
        self.call(SdkCall::SetPlayerCapacity(count))
    }

    /// True when a sidecar is expected (the port is set, `AGONES_SDK_HTTP_PORT` is set, or
    /// an SDK server listens on 127.0.0.1:9358); false outside Agones.
    #[func]
    fn is_under_agones(&mut self) -> bool {
        matches!(self.client().endpoint(), Endpoint::Sidecar { .. })
    }

    /// Counters: `pings_sent`, `pings_ok`, `pings_failed`, `pings_skipped` (ticks without
    /// a ping because the main loop had not run within [member health_tolerance]),
    /// `calls_pending`, `game_server_updates`, and for [method track_players]:
    /// `players_tracked` (peers whose value is in the List or on its way there) and
    /// `players_waiting` (peers that connected while the List was full, added when there is
    /// room).
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let counts = self
            .client
            .as_ref()
            .map(|c| c.health_counts())
            .unwrap_or_default();
        stats_dict([
            ("pings_sent", counts.sent),
            ("pings_ok", self.pings_ok),
            ("pings_failed", self.pings_failed),
            ("pings_skipped", counts.skipped),
            ("calls_pending", self.tasks.len() as u64),
            ("game_server_updates", self.updates),
            ("players_tracked", self.tracked_counts().0),
            ("players_waiting", self.tracked_counts().1),
        ])
    }
}

impl AgonesSdk {
    fn options(&self) -> ClientOptions {
        ClientOptions {
            health_enabled: self.health_enabled,
            health_interval: secs(self.health_interval),
            health_tolerance: secs(self.health_tolerance),
            watch: self.watch_enabled,
            ..ClientOptions::default()
        }
    }

    /// The client, created on first use: finds the sidecar and starts pings and watch.
    fn client(&mut self) -> &AgonesClient {
        if self.client.is_none() {
            let port = u16::try_from(self.port).unwrap_or(0);
            let endpoint = resolve(port, env_port().as_deref());
            match &endpoint {
                Endpoint::Sidecar { port, source } => {
                    godot_print!("[netkit] AgonesSDK: SDK sidecar at 127.0.0.1:{port} ({source})");
                }
                Endpoint::Absent(why) => {
                    if !ABSENT_REPORTED.swap(true, Ordering::Relaxed) {
                        godot_print!("[netkit] AgonesSDK: {why}");
                    }
                }
            }
            self.client = Some(AgonesClient::new(endpoint, self.options()));
            if !self.hooked {
                self.hooked =
                    super::frame_hook::connect(&self.to_gd(), "AgonesSDK.deliver", Self::deliver);
            }
        }
        self.client.as_ref().expect("just created")
    }

    fn call(&mut self, call: SdkCall) -> Gd<HttpTask> {
        let client = self.client();
        let id = client.call(&call);
        let task = HttpTask::create(id, client.cancel_handle(id));
        self.tasks
            .insert(id, Pending::Task(task.clone(), Some(call)));
        task
    }

    /// Once per frame, from `SceneTree.process_frame`, with no borrow held while signals
    /// are emitted (a handler may free this node or its parent).
    fn deliver(mut this: Gd<Self>) {
        // The proof of life comes first and does not depend on pausing or processing:
        // the main loop ran, whatever the node's own state.
        if !this.bind_mut().stamp_and_count_pings() {
            return;
        }
        if !super::frame_hook::should_deliver(&this) {
            return;
        }
        // Calls and records are few; a fixed count without a time limit is its budget.
        let mut budget = FrameBudget::start(DELIVER_PER_FRAME, 0);
        while budget.allows() {
            let Some(delivery) = this.bind_mut().take_next() else {
                break;
            };
            budget.spend();
            match delivery {
                Delivery::Call(mut task, response) => {
                    task.bind_mut().set_response(response.clone());
                    task.signals().completed().emit(&response);
                }
                Delivery::Changed(record) => {
                    this.signals().game_server_changed().emit(&record);
                }
            }
            if !this.is_instance_valid() {
                return;
            }
        }
    }

    /// Stamps the liveness clock, applies the health properties and counts finished
    /// pings (nothing is emitted for them). False when there is no client.
    fn stamp_and_count_pings(&mut self) -> bool {
        let (enabled, interval, tolerance) = (
            self.health_enabled,
            secs(self.health_interval),
            secs(self.health_tolerance),
        );
        let Some(client) = &self.client else {
            return false;
        };
        client.mark_alive();
        client.set_health(enabled, interval, tolerance);
        while let Some(ping) = client.next_ping_event() {
            if ping.response.ok() {
                if !self.ping_ok_last && self.pings_failed > 0 {
                    let again = if self.pings_ok > 0 { " again" } else { "" };
                    godot_print!("[netkit] AgonesSDK: health pings reach the sidecar{again}");
                }
                self.pings_ok += 1;
                self.ping_ok_last = true;
            } else {
                if self.ping_ok_last {
                    godot_warn!(
                        "[netkit] AgonesSDK: a health ping failed: {}",
                        ping.response.error_message
                    );
                }
                self.pings_failed += 1;
                self.ping_ok_last = false;
            }
        }
        true
    }

    /// The next finished call or changed record; reports are logged on the way.
    fn take_next(&mut self) -> Option<Delivery> {
        while let Some(mut event) = self.client.as_ref()?.next_call_event() {
            let task = match self.tasks.remove(&event.id) {
                None => continue,
                Some(Pending::Roster(generation, call)) => {
                    self.roster_answered(generation, &call, event.response);
                    continue;
                }
                Some(Pending::Task(task, call)) => {
                    match &call {
                        Some(SdkCall::GetGameServer) if event.response.ok() => {
                            if let Some(record) =
                                event.response.json.as_ref().filter(|v| v.is_object())
                            {
                                self.last_game_server =
                                    json_to_variant(record).to::<VarDictionary>();
                            }
                        }
                        Some(SdkCall::Counts(counts)) => {
                            self.counts_answered(counts, &mut event.response)
                        }
                        _ => {}
                    }
                    if let Some(call) = &call {
                        call.describe_failure(&mut event.response);
                    }
                    task
                }
            };
            let response = HttpResponse::from_core(event.id, event.response);
            return Some(Delivery::Call(task, response));
        }
        let client = self.client.as_ref()?;
        while let Some(event) = client.next_event() {
            match event {
                AgonesEvent::GameServer(record) => {
                    self.updates += 1;
                    let dict = json_to_variant(&record).try_to::<VarDictionary>().ok()?;
                    self.last_game_server = dict.clone();
                    return Some(Delivery::Changed(dict));
                }
                // Before the first record the sidecar may simply not be up yet (Agones
                // can start it after the game): that is news, not a warning.
                AgonesEvent::WatchLost(why) if self.updates == 0 => {
                    godot_print!("[netkit] AgonesSDK: waiting for the SDK sidecar: {why}");
                }
                AgonesEvent::WatchLost(why) => {
                    godot_warn!(
                        "[netkit] AgonesSDK: watch stream interrupted, reconnecting: {why}"
                    );
                }
                AgonesEvent::WatchRestored => {
                    godot_print!("[netkit] AgonesSDK: watch stream connected");
                }
                AgonesEvent::HealthPaused { frame_age } => godot_warn!(
                    "[netkit] AgonesSDK: health pings paused: the main loop has not run for {:.1} s (health_tolerance {:.1} s)",
                    frame_age.as_secs_f64(),
                    self.health_tolerance
                ),
                AgonesEvent::HealthResumed { paused_for } => godot_print!(
                    "[netkit] AgonesSDK: health pings resumed after a {:.1} s pause",
                    paused_for.as_secs_f64()
                ),
            }
        }
        None
    }

    /// At PREDELETE: stops the client (its calls are aborted) and ends every awaited task
    /// with `ERR_CANCELLED` from a deferred call, so no handler runs inside this
    /// notification's borrow and no `await` is left hanging (as `HTTPPool` does).
    fn end_pending_tasks(&mut self) {
        self.client = None;
        self.stop_tracking();
        let tasks: Vec<(u64, Gd<HttpTask>)> = self
            .tasks
            .drain()
            .filter_map(|(id, pending)| match pending {
                Pending::Task(task, _) => Some((id, task)),
                Pending::Roster(..) => None,
            })
            .collect();
        if tasks.is_empty() {
            return;
        }
        let mut pending = Some(tasks);
        let finish = Callable::from_fn("AgonesSDK.cancel_freed", move |_args| {
            for (id, mut task) in pending.take().unwrap_or_default() {
                if task.bind().is_done() {
                    continue;
                }
                let response = HttpResponse::from_core(
                    id,
                    Response::failed(
                        ErrorKind::Cancelled,
                        "the AgonesSDK node was freed before the call finished",
                        "",
                    ),
                );
                task.bind_mut().set_response(response.clone());
                task.signals().completed().emit(&response);
            }
            Variant::nil()
        });
        finish.call_deferred(&[]);
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 1e6)
    } else {
        0.0
    })
}
