//! `AgonesSDK`'s Counters and Lists (Agones' beta `CountsAndLists`), and
//! `track_players()`, which keeps a List in step with the multiplayer peers through the
//! policy in `core::agones::roster`.

use godot::classes::MultiplayerApi;
use godot::global::{Error, type_string};
use godot::prelude::*;

use super::{AgonesSdk, Pending};
use crate::core::agones::{
    CounterUpdate, CountsCall, ListState, ListUpdate, PlayerRoster, RosterAction, RosterAnswer,
    RosterCall, SdkCall, Subject, explain, refusal,
};
use crate::core::http::{ErrorKind, Response};
use crate::godot::http_task::HttpTask;

/// What `track_players()` set up: the policy, the MultiplayerAPI it listens to and the
/// handlers to disconnect when it stops.
pub(super) struct Tracking {
    /// Which `track_players()` call this is (1, 2, ...).
    generation: u64,
    roster: PlayerRoster,
    multiplayer: Gd<MultiplayerApi>,
    handlers: [(&'static str, Callable); 2],
}

#[godot_api(secondary)]
impl AgonesSdk {
    /// Beta (Agones `CountsAndLists`): reads a Counter (`GET /v1beta1/counters/<name>`).
    ///
    /// The task's [member HTTPResponse.json] is `{"name": String, "count": int, "capacity": int}`.
    /// A Counter not declared under `spec.counters` of the GameServer completes with
    /// [constant HTTPResponse.ERR_HTTP_STATUS] (status 500, the sidecar's way of refusing)
    /// and an [member HTTPResponse.error_message] saying it does not exist.
    #[func]
    fn get_counter(&mut self, name: GString) -> Gd<HttpTask> {
        self.call(SdkCall::Counts(CountsCall::GetCounter(name.to_string())))
    }

    /// Beta: changes a Counter (`PATCH /v1beta1/counters/<name>`) and returns the task.
    ///
    /// `changes` holds any of `count` (int, the new count), `capacity` (int, the new
    /// capacity) and `count_diff` (int, added to the count; negative subtracts); the
    /// sidecar applies them in that order: capacity, count, count_diff. The response's
    /// `json` is the Counter after the change, as in [method get_counter].
    ///
    /// Errors: a count that would leave `0..capacity` completes with
    /// [constant HTTPResponse.ERR_HTTP_STATUS] and
    /// "would leave the range 0 to its capacity", an undeclared Counter with "does not
    /// exist" (nothing changes in either case). An empty `changes`, an unknown key, a
    /// value that is not an integer, or a negative `count` or `capacity` completes with
    /// [constant HTTPResponse.ERR_INVALID_REQUEST] and is not sent.
    #[func]
    fn update_counter(&mut self, name: GString, changes: VarDictionary) -> Gd<HttpTask> {
        match counter_update(&changes) {
            Ok(update) => self.call(SdkCall::Counts(CountsCall::UpdateCounter(
                name.to_string(),
                update,
            ))),
            Err(why) => self.rejected(format!("update_counter('{name}'): {why}")),
        }
    }

    /// Beta: adds `amount` (default 1, at least 1) to a Counter, as
    /// `update_counter(name, {"count_diff": amount})` does (and its messages say
    /// [method update_counter]). Fails with "would leave the range" beyond the capacity.
    #[func]
    fn increment_counter(
        &mut self,
        name: GString,
        #[opt(default = 1)] amount: i64,
    ) -> Gd<HttpTask> {
        self.count_by(name, amount, 1, "increment_counter")
    }

    /// Beta: subtracts `amount` (default 1, at least 1) from a Counter, as
    /// `update_counter(name, {"count_diff": -amount})` does. Fails with "would leave the
    /// range" below 0.
    #[func]
    fn decrement_counter(
        &mut self,
        name: GString,
        #[opt(default = 1)] amount: i64,
    ) -> Gd<HttpTask> {
        self.count_by(name, amount, -1, "decrement_counter")
    }

    /// Beta: reads a List (`GET /v1beta1/lists/<name>`).
    ///
    /// The task's [member HTTPResponse.json] is
    /// `{"name": String, "capacity": int, "values": Array[String]}`, values in the order
    /// they were added. A List not declared under
    /// `spec.lists` completes with [constant HTTPResponse.ERR_HTTP_STATUS] and "does not exist".
    #[func]
    fn get_list(&mut self, name: GString) -> Gd<HttpTask> {
        self.call(SdkCall::Counts(CountsCall::GetList(name.to_string())))
    }

    /// Beta: changes a List (`PATCH /v1beta1/lists/<name>`); `json` is the List after it.
    ///
    /// `changes` holds `capacity` (int, 0 to 1000) and/or `values` (Array or
    /// PackedStringArray of Strings, which **replaces every value** in the List; use
    /// [method add_list_value] and [method remove_list_value] to change one). Values beyond a
    /// lowered
    /// capacity are dropped by the sidecar, from the end. An empty `changes`, an unknown
    /// key or a capacity outside 0 to 1000 completes with
    /// [constant HTTPResponse.ERR_INVALID_REQUEST] and is not sent; an undeclared List with
    /// [constant HTTPResponse.ERR_HTTP_STATUS] and "does not exist".
    #[func]
    fn update_list(&mut self, name: GString, changes: VarDictionary) -> Gd<HttpTask> {
        match list_update(&changes) {
            Ok(update) => self.call(SdkCall::Counts(CountsCall::UpdateList(
                name.to_string(),
                update,
            ))),
            Err(why) => self.rejected(format!("update_list('{name}'): {why}")),
        }
    }

    /// Beta: appends `value` to a List (`POST /v1beta1/lists/<name>:addValue`); `json` is
    /// the List after it.
    ///
    /// Completes with [constant HTTPResponse.ERR_HTTP_STATUS] and "is full" when the List holds
    /// `capacity`
    /// values, "is already in" when `value` is there already, "does not exist" for an
    /// undeclared List; an empty `value` with
    /// [constant HTTPResponse.ERR_INVALID_REQUEST].
    #[func]
    fn add_list_value(&mut self, name: GString, value: GString) -> Gd<HttpTask> {
        self.call(SdkCall::Counts(CountsCall::AddListValue(
            name.to_string(),
            value.to_string(),
        )))
    }

    /// Beta: removes `value` from a List (`POST /v1beta1/lists/<name>:removeValue`); `json`
    /// is the List after it. Completes with [constant HTTPResponse.ERR_HTTP_STATUS] and "is not in"
    /// when the
    /// value is not there, "does not exist" for an undeclared List.
    #[func]
    fn remove_list_value(&mut self, name: GString, value: GString) -> Gd<HttpTask> {
        self.call(SdkCall::Counts(CountsCall::RemoveListValue(
            name.to_string(),
            value.to_string(),
        )))
    }

    /// Beta: keeps the Agones List `list` (default `"players"`) in step with the peers of
    /// `multiplayer`, so Fleet and GameServerAllocation selectors and the fleet autoscaler
    /// see the players without game code (see the addon's docs/DEPLOY.md).
    ///
    /// A peer is added when [param multiplayer] emits [signal MultiplayerAPI.peer_connected]
    /// (with [SceneMultiplayer]'s authentication, only once it is authenticated) and removed
    /// at [signal MultiplayerAPI.peer_disconnected]
    /// (it left, timed out, or was kicked). Peers connected already are added right after
    /// this call returns (so [member player_value] may use this node). The
    /// value stored is the peer id as a String, or what [member player_value] makes
    /// of it (e.g. an account id).
    ///
    /// When the List is full (its capacity as last read from the sidecar), the
    /// [member MultiplayerPeer.refuse_new_connections] of the [member
    /// MultiplayerAPI.multiplayer_peer]
    /// is set, and cleared when a player leaves or the capacity is raised with
    /// [method update_list]. A peer that got in
    /// while the List was full is added as soon as there is room. Problems (the List does
    /// not exist, the sidecar cannot be reached) are logged as warnings.
    ///
    /// Calling it again replaces the previous tracking (values already added stay).
    /// Returns [constant ERR_INVALID_PARAMETER] (and logs why) when [param multiplayer] is null
    /// or [param list]
    /// cannot be a List name.
    ///
    /// ```gdscript
    /// agones.track_players(multiplayer)          # peer ids in the List "players"
    /// agones.player_value = func(id): return accounts[id]   # or account ids
    /// ```
    #[func]
    fn track_players(
        &mut self,
        multiplayer: Option<Gd<MultiplayerApi>>,
        #[opt(default = "players")] list: GString,
    ) -> Error {
        let Some(mut multiplayer) = multiplayer else {
            godot_error!("[netkit] AgonesSDK.track_players: the MultiplayerAPI is null");
            return Error::ERR_INVALID_PARAMETER;
        };
        let list = list.to_string();
        if let Err(why) = CountsCall::GetList(list.clone()).request() {
            godot_error!("[netkit] AgonesSDK.track_players: {why}");
            return Error::ERR_INVALID_PARAMETER;
        }
        let generation = self.tracking.as_ref().map_or(0, |t| t.generation) + 1;
        self.stop_tracking();
        self.client();
        let (roster, actions) = PlayerRoster::new(&list);
        let node = self.to_gd().instance_id();
        let joined = Callable::from_fn("AgonesSDK.peer_connected", move |args| {
            if let (Some(id), Ok(mut node)) =
                (peer_id(args), Gd::<AgonesSdk>::try_from_instance_id(node))
            {
                // The map runs with no borrow of the node held: it may call into it.
                let map = node.bind().player_value.clone();
                let value = peer_value(&map, id);
                node.bind_mut().peer_joined(id, value);
            }
            Variant::nil()
        });
        let left = Callable::from_fn("AgonesSDK.peer_disconnected", move |args| {
            if let (Some(id), Ok(mut node)) =
                (peer_id(args), Gd::<AgonesSdk>::try_from_instance_id(node))
            {
                node.bind_mut().peer_left(id);
            }
            Variant::nil()
        });
        let handlers = [("peer_connected", joined), ("peer_disconnected", left)];
        for (signal, handler) in &handlers {
            multiplayer.connect(*signal, handler);
        }
        let peers: Vec<i64> = multiplayer
            .get_peers()
            .as_slice()
            .iter()
            .map(|id| i64::from(*id))
            .collect();
        self.tracking = Some(Tracking {
            generation,
            roster,
            multiplayer,
            handlers,
        });
        self.run_roster(actions);
        if !peers.is_empty() {
            // The peers connected already are added right after this call, not inside it:
            // `player_value` may call into this node, which is bound until it returns.
            let add_connected = Callable::from_fn("AgonesSDK.add_connected", move |_args| {
                if let Ok(node) = Gd::<AgonesSdk>::try_from_instance_id(node) {
                    add_connected_peers(node, generation, &peers);
                }
                Variant::nil()
            });
            add_connected.call_deferred(&[]);
        }
        Error::OK
    }
}

impl AgonesSdk {
    fn count_by(&mut self, name: GString, amount: i64, sign: i64, call: &str) -> Gd<HttpTask> {
        if amount < 1 {
            return self.rejected(format!(
                "{call}('{name}'): the amount must be 1 or more, not {amount}"
            ));
        }
        self.call(SdkCall::Counts(CountsCall::UpdateCounter(
            name.to_string(),
            CounterUpdate {
                count_diff: sign * amount,
                ..CounterUpdate::default()
            },
        )))
    }

    /// A task that fails at once with `ERR_INVALID_REQUEST` and `why`, sending nothing.
    fn rejected(&mut self, why: String) -> Gd<HttpTask> {
        let client = self.client();
        let id = client.reject(why);
        let task = HttpTask::create(id, client.cancel_handle(id));
        self.tasks.insert(id, Pending::Task(task.clone(), None));
        task
    }

    /// A game's own Counter/List call ended: the answer becomes numbers and sentences, and
    /// a List answer about the tracked List updates the roster.
    pub(super) fn counts_answered(&mut self, call: &CountsCall, response: &mut Response) {
        explain(call, response);
        if call.subject() == Subject::List
            && response.ok()
            && let Some(state) = response.json.as_ref().and_then(ListState::from_json)
            && let Some(tracking) = &mut self.tracking
        {
            let actions = tracking.roster.observe(&state);
            self.run_roster(actions);
        }
    }

    /// One of the roster's own calls ended.
    pub(super) fn roster_answered(
        &mut self,
        generation: u64,
        call: &RosterCall,
        mut response: Response,
    ) {
        let Some(tracking) = self
            .tracking
            .as_mut()
            .filter(|t| t.generation == generation)
        else {
            return;
        };
        let list = tracking.roster.list().to_string();
        let counts = match call {
            RosterCall::Get => CountsCall::GetList(list),
            RosterCall::Add { value, .. } => CountsCall::AddListValue(list, value.clone()),
            RosterCall::Remove { value } => CountsCall::RemoveListValue(list, value.clone()),
        };
        explain(&counts, &mut response);
        SdkCall::Counts(counts.clone()).describe_failure(&mut response);
        let answer = if response.ok() {
            match response.json.as_ref().and_then(ListState::from_json) {
                Some(state) => RosterAnswer::List(state),
                None => RosterAnswer::Failed(response.error_message),
            }
        } else if response.error == ErrorKind::HttpStatus {
            let said = response
                .json
                .as_ref()
                .and_then(|v| v.get("message"))
                .and_then(|m| m.as_str())
                .unwrap_or("");
            RosterAnswer::Refused(refusal(&counts, said), response.error_message)
        } else {
            RosterAnswer::Failed(response.error_message)
        };
        let actions = tracking.roster.answered(call, answer);
        self.run_roster(actions);
    }

    fn peer_joined(&mut self, peer: i64, value: String) {
        if let Some(tracking) = &mut self.tracking {
            let actions = tracking.roster.connected(peer, value);
            self.run_roster(actions);
        }
    }

    fn peer_left(&mut self, peer: i64) {
        if let Some(tracking) = &mut self.tracking {
            let actions = tracking.roster.disconnected(peer);
            self.run_roster(actions);
        }
    }

    /// Carries out the roster's actions: calls go into the ordered queue like the game's,
    /// the refusal goes to the multiplayer peer in use now.
    fn run_roster(&mut self, actions: Vec<RosterAction>) {
        for action in actions {
            let Some(tracking) = &self.tracking else {
                return;
            };
            let generation = tracking.generation;
            let list = tracking.roster.list().to_string();
            let (counts, call) = match action {
                RosterAction::GetList => (CountsCall::GetList(list), RosterCall::Get),
                RosterAction::Add { peer, value } => (
                    CountsCall::AddListValue(list, value.clone()),
                    RosterCall::Add { peer, value },
                ),
                RosterAction::Remove { value } => (
                    CountsCall::RemoveListValue(list, value.clone()),
                    RosterCall::Remove { value },
                ),
                RosterAction::Refuse(refuse) => {
                    if let Some(mut peer) = tracking.multiplayer.get_multiplayer_peer() {
                        peer.set_refuse_new_connections(refuse);
                    }
                    if refuse {
                        godot_print!(
                            "[netkit] AgonesSDK: the List '{list}' is full; refusing new connections"
                        );
                    } else {
                        godot_print!(
                            "[netkit] AgonesSDK: the List '{list}' has room; accepting connections"
                        );
                    }
                    continue;
                }
                RosterAction::Warn(why) => {
                    godot_warn!("[netkit] AgonesSDK: {why}");
                    continue;
                }
            };
            let id = self.client().call(&SdkCall::Counts(counts));
            self.tasks.insert(id, Pending::Roster(generation, call));
        }
    }

    /// Disconnects `track_players()` from its MultiplayerAPI.
    pub(super) fn stop_tracking(&mut self) {
        if let Some(mut tracking) = self.tracking.take() {
            for (signal, handler) in &tracking.handlers {
                if tracking.multiplayer.is_connected(*signal, handler) {
                    tracking.multiplayer.disconnect(*signal, handler);
                }
            }
        }
    }

    /// `(players_tracked, players_waiting)`.
    pub(super) fn tracked_counts(&self) -> (u64, u64) {
        self.tracking.as_ref().map_or((0, 0), |t| {
            (t.roster.tracked() as u64, t.roster.waiting() as u64)
        })
    }
}

/// Adds the peers that were connected when `track_players()` call number `generation`
/// began, with no borrow of the node held while `player_value` runs; skipped when another
/// call replaced that tracking, and for each peer that left meanwhile (its
/// `peer_disconnected` came before it was known).
fn add_connected_peers(mut node: Gd<AgonesSdk>, generation: u64, peers: &[i64]) {
    for &id in peers {
        let (current, still_there, map) = {
            let sdk = node.bind();
            let Some(tracking) = sdk.tracking.as_ref() else {
                return;
            };
            let still_there = tracking
                .multiplayer
                .get_peers()
                .as_slice()
                .iter()
                .any(|p| i64::from(*p) == id);
            (
                tracking.generation == generation,
                still_there,
                sdk.player_value.clone(),
            )
        };
        if !current {
            return;
        }
        if still_there {
            let value = peer_value(&map, id);
            node.bind_mut().peer_joined(id, value);
        }
    }
}

fn peer_id(args: &[&Variant]) -> Option<i64> {
    args.first()?.try_to::<i64>().ok()
}

/// What stands for `peer` in the List: the peer id, or what `map` makes of it.
fn peer_value(map: &Callable, peer: i64) -> String {
    if !map.is_valid() {
        return peer.to_string();
    }
    let value = map.call(&[peer.to_variant()]);
    match value.get_type() {
        VariantType::NIL => String::new(),
        VariantType::STRING => value.to::<GString>().to_string(),
        VariantType::STRING_NAME => value.to::<StringName>().to_string(),
        _ => value.stringify().to_string(),
    }
}

/// Reads `update_counter`'s Dictionary.
fn counter_update(changes: &VarDictionary) -> Result<CounterUpdate, String> {
    let mut update = CounterUpdate::default();
    for (key, value) in changes.iter_shared() {
        let key = key.stringify().to_string();
        let n = integer(&key, &value)?;
        match key.as_str() {
            "count" => update.count = Some(n),
            "capacity" => update.capacity = Some(n),
            "count_diff" => update.count_diff = n,
            _ => {
                return Err(format!(
                    "'{key}' is not a Counter field (use count, capacity, count_diff)"
                ));
            }
        }
    }
    Ok(update)
}

/// Reads `update_list`'s Dictionary.
fn list_update(changes: &VarDictionary) -> Result<ListUpdate, String> {
    let mut update = ListUpdate::default();
    for (key, value) in changes.iter_shared() {
        let key = key.stringify().to_string();
        match key.as_str() {
            "capacity" => update.capacity = Some(integer(&key, &value)?),
            "values" => update.values = Some(strings(&value)?),
            _ => {
                return Err(format!(
                    "'{key}' is not a List field (use capacity, values)"
                ));
            }
        }
    }
    Ok(update)
}

/// An int, or a float with no fraction (JSON and some editors give floats).
fn integer(key: &str, value: &Variant) -> Result<i64, String> {
    match value.get_type() {
        VariantType::INT => Ok(value.to::<i64>()),
        VariantType::FLOAT => {
            let f = value.to::<f64>();
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Ok(f as i64)
            } else {
                Err(format!("{key} must be an integer, not {f}"))
            }
        }
        _ => Err(format!("{key} must be an integer, not {}", shown(value))),
    }
}

/// A value as a message shows it, with its type: the String "3" printed bare would read
/// as the integer it is refused for not being.
fn shown(value: &Variant) -> String {
    match value.get_type() {
        VariantType::STRING | VariantType::STRING_NAME => {
            format!("the String \"{}\"", value.stringify())
        }
        other => format!("{} {}", type_string(other.ord() as i64), value.stringify()),
    }
}

/// An Array of Strings or a PackedStringArray (checked by type: Godot would turn a
/// String or an Array of numbers into a PackedStringArray without a word).
fn strings(value: &Variant) -> Result<Vec<String>, String> {
    match value.get_type() {
        VariantType::PACKED_STRING_ARRAY => {
            let packed = value.to::<PackedStringArray>();
            return Ok(packed.as_slice().iter().map(|s| s.to_string()).collect());
        }
        VariantType::ARRAY => {}
        _ => {
            return Err(format!(
                "values must be an Array of Strings, not {}",
                shown(value)
            ));
        }
    }
    value
        .to::<VarArray>()
        .iter_shared()
        .map(|v| match v.get_type() {
            VariantType::STRING | VariantType::STRING_NAME => Ok(v.stringify().to_string()),
            _ => Err(format!("values must be Strings, not {}", shown(&v))),
        })
        .collect()
}
