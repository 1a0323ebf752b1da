//! Why a multiplayer session ended, in words the game can show or log: the deliberate
//! reasons one side sends the other in a `Bye`, and how each side words an end that came
//! without one (the DTLS close, silence, a protocol error). No I/O: tested as plain data.
//!
//! A deliberate end carries a reliable `Bye` first: `Kicked`, or `RefusedAtAuthentication`
//! when SceneMultiplayer was still authenticating the peer (`scene_auth.rs`), `Refused`,
//! `IdTaken`, a mismatch; the receiver ends the session at once, worded by the `Bye`.
//! Without one, `describe_dtls_end` words the end by how DTLS saw it: close_notify is "the
//! server closed the connection" (its `close()`, or it quit), silence is "went silent ...
//! idle timeout", and link errors say "protocol violation". A local close sends what was
//! queued (the `Bye`) before close_notify (`core/dtls/session.rs`), as ENet flushes its
//! disconnect.

use super::super::dtls::DisconnectReason;
use super::control::PROTOCOL_VERSION;

/// A deliberate end, sent in `Control::Bye` just before the sender ends the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Farewell {
    /// The server's `disconnect_peer()` (a kick), after the peer was admitted.
    Kicked,
    /// The server's `disconnect_peer()` while SceneMultiplayer's authentication of the peer
    /// was under way: its `auth_callback` refused it, or `auth_timeout` passed.
    RefusedAtAuthentication,
    /// The server refuses new connections (`refuse_new_connections`).
    Refused,
    /// Another connected peer already has the id the client chose.
    IdTaken,
    /// The server's `channel_count` differs from the client's; carries the server's.
    ChannelMismatch { server: u8 },
    /// The server speaks another netkit protocol version; carries the server's.
    VersionMismatch { server: u8 },
}

impl Farewell {
    /// Code and detail bytes on the wire.
    pub fn to_wire(self) -> (u8, u8) {
        match self {
            Self::Kicked => (1, 0),
            Self::RefusedAtAuthentication => (2, 0),
            Self::Refused => (3, 0),
            Self::IdTaken => (4, 0),
            Self::ChannelMismatch { server } => (5, server),
            Self::VersionMismatch { server } => (6, server),
        }
    }

    /// The inverse of `to_wire`; `None` for a code this version does not know.
    pub fn from_wire(code: u8, detail: u8) -> Option<Self> {
        Some(match (code, detail) {
            (1, 0) => Self::Kicked,
            (2, 0) => Self::RefusedAtAuthentication,
            (3, 0) => Self::Refused,
            (4, 0) => Self::IdTaken,
            (5, server) => Self::ChannelMismatch { server },
            (6, server) => Self::VersionMismatch { server },
            _ => return None,
        })
    }

    /// The sentence the client shows; `own_id` and `own_channels` are the client's.
    pub fn describe(self, own_id: i32, own_channels: usize) -> String {
        match self {
            Self::Kicked => {
                "the server disconnected this peer (disconnect_peer() on the server: a kick)".into()
            }
            Self::RefusedAtAuthentication => "the server refused this peer during authentication (its auth_callback refused it, or auth_timeout passed)".into(),
            Self::Refused => "the server refuses new connections (refuse_new_connections is set)".into(),
            Self::IdTaken => format!(
                "the server already has a peer with id {own_id}, the random id this client chose; connect again with a new DTLSMultiplayerPeer"
            ),
            Self::ChannelMismatch { server } => format!(
                "the server uses channel_count {server} and this client {own_channels}; give both the same \"channel_count\" option"
            ),
            Self::VersionMismatch { server } => format!(
                "the server speaks netkit multiplayer protocol {server}, this client {PROTOCOL_VERSION}; use the same netkit version on both"
            ),
        }
    }
}

/// Which side is wording the end: a client speaks of "the server", a server of "the client".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Server,
    Client,
}

/// How a session's end is worded when the peer sent no `Bye` before it: DTLS's own end
/// (`reason`, with `message` its detail), seen from `side`.
pub(crate) fn describe_dtls_end(side: Side, reason: DisconnectReason, message: &str) -> String {
    let other = match side {
        Side::Server => "the client",
        Side::Client => "the server",
    };
    match reason {
        DisconnectReason::ClosedByPeer => match side {
            Side::Client => {
                "the server closed the connection (close() on the server, or the server quit)"
                    .into()
            }
            Side::Server => "the client closed the connection".into(),
        },
        DisconnectReason::IdleTimeout => format!(
            "{other} went silent: nothing arrived within the idle timeout (option \"idle_timeout\"); it may have crashed or lost its network"
        ),
        DisconnectReason::ClosedLocally => "disconnected by this side".into(),
        DisconnectReason::Replaced | DisconnectReason::Error => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_farewell_survives_the_wire_and_unknown_codes_do_not() {
        for f in [
            Farewell::Kicked,
            Farewell::RefusedAtAuthentication,
            Farewell::Refused,
            Farewell::IdTaken,
            Farewell::ChannelMismatch { server: 0 },
            Farewell::VersionMismatch { server: 9 },
        ] {
            let (code, detail) = f.to_wire();
            assert_eq!(Farewell::from_wire(code, detail), Some(f));
        }
        for (code, detail) in [(0, 0), (1, 1), (7, 0), (255, 255)] {
            assert_eq!(Farewell::from_wire(code, detail), None);
        }
    }

    /// The five endings a game must tell apart read differently (issue: kicked, refused at
    /// authentication, server closed, server gone silent, protocol error).
    #[test]
    fn a_client_tells_every_kind_of_end_apart() {
        let texts = [
            Farewell::Kicked.describe(5, 4),
            Farewell::RefusedAtAuthentication.describe(5, 4),
            describe_dtls_end(Side::Client, DisconnectReason::ClosedByPeer, ""),
            describe_dtls_end(Side::Client, DisconnectReason::IdleTimeout, ""),
            describe_dtls_end(
                Side::Client,
                DisconnectReason::Error,
                "protocol violation by the peer: bad bundle",
            ),
        ];
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert!(texts[0].contains("kick"));
        assert!(texts[1].contains("authentication"));
        assert!(texts[2].contains("server closed"));
        assert!(texts[3].contains("silent"));
        assert!(texts[4].contains("protocol violation"));
        assert!(Farewell::IdTaken.describe(77, 4).contains("77"));
        assert!(
            Farewell::ChannelMismatch { server: 2 }
                .describe(5, 4)
                .contains("channel_count 2 and this client 4")
        );
    }
}
