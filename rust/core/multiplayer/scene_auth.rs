//! What SceneMultiplayer's own authentication exchange, seen from below, says about a peer:
//! whether a `disconnect_peer()` of it is a kick or a refusal at authentication. The
//! MultiplayerPeer contract has one `disconnect_peer` for both, and SceneMultiplayer calls it
//! for an `auth_callback` refusal and an `auth_timeout` alike, so the peer tells them apart by
//! the packets it carries.
//!
//! SceneMultiplayer (modules/multiplayer/scene_multiplayer.cpp) sends authentication as
//! `[NETWORK_COMMAND_SYS, SYS_COMMAND_AUTH, data...]` (`send_auth`) and marks its side
//! complete with the two bytes `[NETWORK_COMMAND_SYS, SYS_COMMAND_AUTH]` (`complete_auth`);
//! a peer is admitted once both sides sent that mark.

/// `SceneMultiplayer::NETWORK_COMMAND_SYS`.
const NETWORK_COMMAND_SYS: u8 = 7;
/// `SceneMultiplayer::CMD_MASK`: the command is the low three bits of the first byte.
const CMD_MASK: u8 = 7;
/// `SceneMultiplayer::SYS_COMMAND_AUTH`.
const SYS_COMMAND_AUTH: u8 = 0;

/// One peer's authentication as far as its packets show it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AuthWatch {
    /// Any authentication packet went either way: SceneMultiplayer authenticates this peer.
    seen: bool,
    /// This side sent its completion mark.
    local_done: bool,
    /// The peer sent its completion mark.
    remote_done: bool,
}

impl AuthWatch {
    /// A packet this side sends to the peer.
    pub fn sent(&mut self, packet: &[u8]) {
        if let Some(done) = auth_packet(packet) {
            self.seen = true;
            self.local_done |= done;
        }
    }

    /// A packet the peer sent.
    pub fn received(&mut self, packet: &[u8]) {
        if let Some(done) = auth_packet(packet) {
            self.seen = true;
            self.remote_done |= done;
        }
    }

    /// True while an authentication is under way and not complete on both sides: a
    /// disconnect now is a refusal, not a kick.
    pub fn in_progress(&self) -> bool {
        self.seen && !(self.local_done && self.remote_done)
    }
}

/// `Some(true)` for a completion mark, `Some(false)` for authentication data, `None` for any
/// other packet.
fn auth_packet(packet: &[u8]) -> Option<bool> {
    match packet {
        [first, SYS_COMMAND_AUTH, rest @ ..] if first & CMD_MASK == NETWORK_COMMAND_SYS => {
            Some(rest.is_empty())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_authenticating_from_the_first_auth_packet_until_both_marks() {
        let mut w = AuthWatch::default();
        assert!(
            !w.in_progress(),
            "no authentication seen: a disconnect is a kick"
        );
        w.sent(&[0, 1, 2, 3]); // an RPC
        assert!(!w.in_progress());
        w.received(&[7, 0, b't', b'o', b'k']); // the client's credentials
        assert!(w.in_progress());
        w.sent(&[7, 0]); // the server completes
        assert!(w.in_progress(), "the client has not completed yet");
        w.received(&[7, 0]);
        assert!(!w.in_progress(), "admitted: a disconnect now is a kick");
    }

    #[test]
    fn other_sys_commands_and_short_packets_are_not_authentication() {
        let mut w = AuthWatch::default();
        for p in [
            &[][..],
            &[7],
            &[7, 1, 0, 0, 0, 0],
            &[7, 3, 1, 2, 3, 4, 9],
            &[6, 0],
        ] {
            w.sent(p);
            w.received(p);
        }
        assert!(!w.in_progress());
        // Flags in the high bits keep the command.
        w.received(&[0x17, 0, 1]);
        assert!(w.in_progress());
    }
}
