//! The engine-free core: runtime, event channel, HTTP, DTLS and JSON.
//!
//! Nothing under this module may import the `godot` crate (a test enforces it): it runs on
//! background threads, where no Godot type may go.

pub mod agones;
pub mod dtls;
pub mod events;
pub mod http;
pub mod metrics;
pub mod multiplayer;
pub mod runtime;
pub mod shutdown;
pub mod simulate;
pub mod trust;
pub mod units;
