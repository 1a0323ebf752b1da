//! Engine-free DTLS 1.2 for the `DTLSPeer` node: a server that serves many clients on
//! one UDP socket through its own demultiplexer, and a client. webrtc-dtls does the
//! cryptography; this module decides what reaches it, bounds every wait, and reports
//! through an event channel the node drains on the main thread.

mod admission;
mod authenticate;
pub mod certs;
mod client;
pub mod config;
mod conn;
mod datagram_queue;
mod demux;
pub mod events;
mod events_gate;
mod failure;
mod final_flight;
mod first_flight;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod handshake_filter;
mod inbound;
mod port_release;
pub mod record;
mod server;
mod session;
mod socket_buffers;
pub mod stats;
mod verify;
mod wire;

pub use certs::{KeyKind, SelfSigned, generate_self_signed};
pub use client::DtlsClient;
pub use config::{
    ClientCredentials, ClientOptions, PskLookup, ServerCredentials, ServerOptions,
    ServerVerification, SessionOptions, psk_map,
};
pub use events::{DisconnectReason, DtlsEvent, PeerId, SERVER_PEER_ID, SendError, Status};
pub use port_release::{CLOSE_WAIT, PortRelease};
pub use server::DtlsServer;
pub use stats::{Stats, StatsSnapshot};
