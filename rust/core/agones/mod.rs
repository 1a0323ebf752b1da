//! An engine-free client of the Agones SDK sidecar's REST API
//! (`http://127.0.0.1:$AGONES_SDK_HTTP_PORT`): lifecycle and metadata calls that retry
//! while the sidecar starts, health pings sent from the runtime while the main loop shows
//! life, and the `/watch/gameserver` stream. See ARCHITECTURE.md, "AgonesSDK".

mod calls;
mod client;
mod counts_lists;
mod endpoint;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod health;
mod liveness;
mod roster;
mod watch;

use std::time::Duration;

pub use calls::{MAX_WAITING_CALLS, SdkCall};
pub use client::{AgonesClient, ClientOptions};
pub use counts_lists::{
    Counter, CounterUpdate, CountsCall, LIST_MAX_CAPACITY, ListState, ListUpdate, Refusal, Subject,
    explain, refusal,
};
pub use endpoint::{DEFAULT_PORT, Endpoint, PORT_ENV, env_port, resolve};
pub use health::{HealthControl, HealthCounts, MIN_INTERVAL};
pub use liveness::Liveness;
pub use roster::{PlayerRoster, RosterAction, RosterAnswer, RosterCall};
pub use watch::{LineBuffer, MAX_LINE_BYTES, MAX_WAITING_RECORDS};

/// What the background tasks report to the node (finished calls and pings come through
/// the HTTP pools' own events).
#[derive(Clone, Debug, PartialEq)]
pub enum AgonesEvent {
    /// The watch stream delivered a GameServer record that differs from the previous one.
    GameServer(serde_json::Value),
    /// The watch stream broke or could not connect; it keeps reconnecting. Sent once per
    /// outage.
    WatchLost(String),
    /// The watch stream delivers again after a `WatchLost`.
    WatchRestored,
    /// Health pings stopped: the main loop had not run for `frame_age`, more than the
    /// tolerance.
    HealthPaused {
        /// How old the last frame stamp was when the ping was skipped.
        frame_age: Duration,
    },
    /// Health pings resumed after a pause that lasted `paused_for`.
    HealthResumed {
        /// How long no ping was sent.
        paused_for: Duration,
    },
}
