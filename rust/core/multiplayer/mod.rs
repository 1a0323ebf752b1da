//! Engine-free core of `DTLSMultiplayerPeer`: Godot's high-level multiplayer transfer
//! modes and channels over netkit's DTLS sessions.
//!
//! Layers, per session: DTLS (`core::dtls`, with its flood and crash bounds) → renet for
//! acknowledgements, retransmission and ordering → netkit's framing (`framing`), window
//! (`link`) and input checks (`wire_check`) → complete packets through a bounded per-peer
//! queue to the main thread (`endpoint`). A tokio task per endpoint drives it all.

mod bundle;
mod control;
mod endpoint;
mod farewell;
mod framing;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod layout;
mod link;
mod link_error;
mod pacing;
mod resume;
mod scene_auth;
mod wire_check;

pub use endpoint::{
    Delivery, Endpoint, EndpointConfig, MIN_PAYLOAD, MpEvent, PeerStats, SendRefused, Target,
};
pub use framing::MAX_UNRELIABLE_PACKET;
pub use layout::{MAX_CHANNEL_COUNT, MAX_RENET_PACKET, TransferMode};
pub use link::{LinkConfig, LinkStats};
