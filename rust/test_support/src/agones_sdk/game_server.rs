//! The GameServer record one test SDK server holds, and the state changes the SDK calls
//! make to it, as Agones documents them (see the module docs of `agones_sdk`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The prefix Agones puts in front of every label and annotation set through the SDK.
pub const METADATA_PREFIX: &str = "agones.dev/sdk-";

/// The lifecycle states a GameServer goes through with the SDK (Agones'
/// `GameServerState` values, spelled as Agones spells them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsState {
    /// The pod is scheduled; the game has not called Ready yet.
    Scheduled,
    /// The game called Ready; the controller has not moved it to Ready yet.
    RequestReady,
    /// Ready for allocation.
    Ready,
    /// Allocated to a match (by the game itself or a GameServerAllocation).
    Allocated,
    /// Reserved: not allocatable, not scaled down, for a number of seconds.
    Reserved,
    /// The game called Shutdown; the pod is being deleted.
    Shutdown,
}

impl GsState {
    /// The name in `status.state`.
    pub fn name(self) -> &'static str {
        match self {
            GsState::Scheduled => "Scheduled",
            GsState::RequestReady => "RequestReady",
            GsState::Ready => "Ready",
            GsState::Allocated => "Allocated",
            GsState::Reserved => "Reserved",
            GsState::Shutdown => "Shutdown",
        }
    }
}

/// The record itself. Serialized the way the SDK's REST gateway (grpc-gateway) does it:
/// proto field names in snake_case, 64-bit integers as JSON strings, 32-bit as numbers.
#[derive(Clone, Debug)]
pub struct GameServer {
    /// `object_meta.name`.
    pub name: String,
    /// Bumped on every change (`object_meta.resource_version`).
    pub resource_version: u64,
    /// `object_meta.creation_timestamp`, Unix seconds.
    pub created: u64,
    /// `object_meta.labels`.
    pub labels: BTreeMap<String, String>,
    /// `object_meta.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `status.state`.
    pub state: GsState,
    /// `status.players.capacity` (alpha player tracking).
    pub player_capacity: i64,
    /// `status.players.ids`, in connection order.
    pub players: Vec<String>,
    /// Incremented by every Reserve, so a Reserve timer knows whether it is still current.
    pub reserve_generation: u64,
    /// The UDP port published in `status.ports`.
    pub game_port: u16,
    /// `status.counters`: name → (count, capacity).
    pub counters: BTreeMap<String, (i64, i64)>,
    /// `status.lists`: name → (capacity, values).
    pub lists: BTreeMap<String, (i64, Vec<String>)>,
}

/// The Counter every test GameServer declares, as a Fleet template would.
pub const DEFAULT_COUNTER: (&str, i64, i64) = ("rooms", 0, 10);
/// The List every test GameServer declares (name, capacity).
pub const DEFAULT_LIST: (&str, i64) = ("players", 8);

impl GameServer {
    /// A fresh record in state Scheduled.
    pub fn new(name: String, game_port: u16) -> GameServer {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        GameServer {
            name,
            resource_version: 1,
            created,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            state: GsState::Scheduled,
            player_capacity: 0,
            players: Vec::new(),
            reserve_generation: 0,
            game_port,
            counters: BTreeMap::from([(
                DEFAULT_COUNTER.0.to_owned(),
                (DEFAULT_COUNTER.1, DEFAULT_COUNTER.2),
            )]),
            lists: BTreeMap::from([(DEFAULT_LIST.0.to_owned(), (DEFAULT_LIST.1, Vec::new()))]),
        }
    }

    /// Moves to `state`. Shutdown is final: the pod is going away, and nothing the game
    /// says afterwards brings it back (the call itself still succeeds, as in Agones).
    /// Returns whether the state changed.
    pub fn set_state(&mut self, state: GsState) -> bool {
        if self.state == GsState::Shutdown || self.state == state {
            return false;
        }
        self.state = state;
        self.resource_version += 1;
        true
    }

    /// Sets a label under the SDK prefix.
    pub fn set_label(&mut self, key: &str, value: &str) {
        self.labels
            .insert(format!("{METADATA_PREFIX}{key}"), value.to_owned());
        self.resource_version += 1;
    }

    /// Sets an annotation under the SDK prefix.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        self.annotations
            .insert(format!("{METADATA_PREFIX}{key}"), value.to_owned());
        self.resource_version += 1;
    }

    /// The record as `GET /gameserver` returns it.
    pub fn to_json(&self) -> Value {
        let map = |m: &BTreeMap<String, String>| {
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect::<Map<_, _>>(),
            )
        };
        let counters: Map<String, Value> = self
            .counters
            .iter()
            .map(|(name, (count, capacity))| {
                (
                    name.clone(),
                    json!({ "count": count.to_string(), "capacity": capacity.to_string() }),
                )
            })
            .collect();
        let lists: Map<String, Value> = self
            .lists
            .iter()
            .map(|(name, (capacity, values))| {
                (
                    name.clone(),
                    json!({ "capacity": capacity.to_string(), "values": values }),
                )
            })
            .collect();
        json!({
            "object_meta": {
                "name": self.name,
                "namespace": "default",
                "uid": format!("uid-{}", self.name),
                "resource_version": self.resource_version.to_string(),
                "generation": "1",
                "creation_timestamp": self.created.to_string(),
                "annotations": map(&self.annotations),
                "labels": map(&self.labels),
            },
            "spec": {
                "health": {
                    "disabled": false,
                    "period_seconds": 5,
                    "failure_threshold": 3,
                    "initial_delay_seconds": 5,
                }
            },
            "status": {
                "state": self.state.name(),
                "address": "127.0.0.1",
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "ports": [{"name": "default", "port": self.game_port}],
                "players": {
                    "count": self.players.len().to_string(),
                    "capacity": self.player_capacity.to_string(),
                    "ids": self.players,
                },
                "counters": counters,
                "lists": lists,
            },
        })
    }
}
