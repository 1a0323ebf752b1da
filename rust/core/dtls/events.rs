//! What the DTLS core tells its node, and the small value types that go with it.

use std::fmt;

/// A peer as the node and Godot's multiplayer API see it: the server is always 1, clients
/// of a server are numbered from 2 upward and a number is never handed out twice by the
/// same server.
pub type PeerId = i32;

/// The id a client uses for the server it is connected to.
pub const SERVER_PEER_ID: PeerId = 1;

/// Why a session ended, so a game can react differently to a kick and a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The other side sent close_notify or a fatal alert.
    ClosedByPeer,
    /// This side asked for it: `disconnect_peer`, `close` or dropping the handle.
    ClosedLocally,
    /// Nothing arrived for longer than the idle timeout.
    IdleTimeout,
    /// The same address completed a fresh handshake, so the old session was retired.
    Replaced,
    /// The session broke for a reason that is neither side's deliberate choice.
    Error,
}

impl DisconnectReason {
    /// A sentence for logs and UI.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ClosedByPeer => "the peer closed the connection",
            Self::ClosedLocally => "the connection was closed on this side",
            Self::IdleTimeout => "nothing was received within the idle timeout",
            Self::Replaced => "the peer reconnected from the same address",
            Self::Error => "the connection failed",
        }
    }
}

/// Everything the node turns into signals. It carries no engine type, so it can be built
/// and checked without Godot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtlsEvent {
    /// A handshake finished; the peer can now send and receive.
    PeerConnected(PeerId),
    /// A connected peer is gone; nothing more arrives from this id.
    PeerDisconnected {
        /// Which peer.
        id: PeerId,
        /// Machine-readable cause.
        reason: DisconnectReason,
        /// Human sentence, possibly with detail from the TLS layer.
        message: String,
    },
    /// One application datagram from a connected peer.
    Packet {
        /// Which peer sent it.
        id: PeerId,
        /// The decrypted payload.
        data: Vec<u8>,
    },
    /// A client could not connect (resolution, timeout, verification, refusal).
    ConnectionFailed {
        /// Human sentence saying what went wrong.
        reason: String,
    },
}

/// Connection status in the same four states as Godot's `PacketPeerDTLS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not connected (never started, or closed cleanly).
    Disconnected = 0,
    /// A handshake is under way.
    Handshaking = 1,
    /// Packets flow.
    Connected = 2,
    /// The connection failed or broke.
    Error = 3,
}

impl Status {
    /// Reads back a status stored in an atomic as `status as u8`.
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Handshaking,
            2 => Self::Connected,
            3 => Self::Error,
            _ => Self::Disconnected,
        }
    }
}

/// Why `send` refused a payload. Sending never blocks and never truncates, so every
/// way it can fail is spelled out here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No connected peer has this id.
    UnknownPeer(PeerId),
    /// The payload does not fit in one datagram once DTLS overhead is added.
    TooLarge {
        /// Payload length given.
        len: usize,
        /// Largest payload that fits.
        max: usize,
    },
    /// The peer's outgoing queue is full; the packet was dropped and counted.
    QueueFull,
    /// The handle is closed or not connected yet.
    NotConnected,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownPeer(id) => write!(f, "no connected peer has id {id}"),
            Self::TooLarge { len, max } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds the {max}-byte datagram limit"
                )
            }
            Self::QueueFull => write!(f, "the peer's send queue is full; packet dropped"),
            Self::NotConnected => write!(f, "not connected"),
        }
    }
}

impl std::error::Error for SendError {}
