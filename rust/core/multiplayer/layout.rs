//! How Godot's (channel, transfer mode) pairs map onto renet channels, and the sizes every
//! renet packet is built to respect.
//!
//! Channels: 0 reliable control (joining and leaving), 1 unreliable control (delivery
//! feedback, pings), then per Godot channel `c` (0 and the custom channels
//! 1..=`channel_count`, at most 32): `2+3c` reliable-ordered, `3+3c` unreliable, `4+3c`
//! unreliable-ordered (renet has no such mode: an unreliable channel plus the fragment
//! sequence number, delivering only packets newer, by RFC 1982 serial arithmetic, than the
//! newest delivered). Every renet message is at most `CHUNK` (1,150) bytes, so renet never
//! slices; renet packs small messages up to its 1,200-byte slice size behind a header of at
//! most 12 bytes, so a datagram payload can reach 1,212 bytes, and with DTLS's 37 bytes
//! (`GCM_RECORD_OVERHEAD`) the `mtu` must be at least 1,249. An unreliable packet is at
//! most 255 fragments (291,720 bytes).

use std::time::Duration;

use renet::{ChannelConfig, ConnectionConfig, SendType};

/// Godot's `MultiplayerPeer.TransferMode`, with Godot's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransferMode {
    /// May be lost, duplicated away or reordered.
    Unreliable = 0,
    /// May be lost, but never delivered after a newer one on the same channel.
    UnreliableOrdered = 1,
    /// Arrives exactly once, in order per channel.
    Reliable = 2,
}

impl TransferMode {
    /// Godot's integer back into a mode; unknown values are `None`.
    pub fn from_godot(value: i64) -> Option<Self> {
        match value {
            0 => Some(Self::Unreliable),
            1 => Some(Self::UnreliableOrdered),
            2 => Some(Self::Reliable),
            _ => None,
        }
    }
}

/// The reliable control channel (ids, readiness).
pub(crate) const CONTROL_RELIABLE: u8 = 0;
/// The unreliable control channel (delivery feedback).
pub(crate) const CONTROL_UNRELIABLE: u8 = 1;
/// Custom channels a game may use besides channel 0 (Godot's `transfer_channel` 1..=N):
/// three renet channels each, and renet numbers channels with a `u8`.
pub const MAX_CHANNEL_COUNT: usize = 32;

/// Largest renet message netkit creates. renet splits messages over 1,200 bytes into its
/// own slices; netkit never lets it (it frames and fragments itself, see `framing`), so
/// renet's slice packets never appear on the wire and are refused when they do.
pub(crate) const CHUNK: usize = 1150;
/// Largest datagram payload renet can produce from messages of at most [`CHUNK`] bytes:
/// renet packs small messages until they exceed its 1,200-byte slice size, behind a header
/// of at most 12 bytes (type, 8-byte sequence varint, channel, message count). Ack packets
/// (at most 64 ranges) stay below 1,050 bytes.
pub const MAX_RENET_PACKET: usize = 1200 + 12;
/// renet messages a sender may have on one reliable channel that the receiver has not yet
/// handed on; the receiver refuses message ids further ahead, which bounds what renet
/// buffers out of order (see `wire_check`).
pub(crate) const WINDOW: u64 = 64;

/// Which renet channel carries what, for a given number of custom channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Godot channels, including channel 0: `channel_count + 1`.
    pub godot_channels: usize,
}

/// What a renet channel id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    ControlReliable,
    ControlUnreliable,
    Data { channel: usize, mode: TransferMode },
}

impl Layout {
    pub fn new(channel_count: usize) -> Self {
        Self {
            godot_channels: channel_count.min(MAX_CHANNEL_COUNT) + 1,
        }
    }

    /// Number of renet channels in use.
    pub fn renet_channels(self) -> usize {
        2 + 3 * self.godot_channels
    }

    /// The renet channel for a Godot channel and mode.
    pub fn lane_id(self, channel: usize, mode: TransferMode) -> u8 {
        let offset = match mode {
            TransferMode::Reliable => 0,
            TransferMode::Unreliable => 1,
            TransferMode::UnreliableOrdered => 2,
        };
        (2 + 3 * channel + offset) as u8
    }

    /// What a renet channel id stands for, or `None` if this layout has no such channel.
    pub fn lane(self, id: u8) -> Option<Lane> {
        let id = id as usize;
        if id >= self.renet_channels() {
            return None;
        }
        Some(match id {
            0 => Lane::ControlReliable,
            1 => Lane::ControlUnreliable,
            _ => {
                let channel = (id - 2) / 3;
                let mode = match (id - 2) % 3 {
                    0 => TransferMode::Reliable,
                    1 => TransferMode::Unreliable,
                    _ => TransferMode::UnreliableOrdered,
                };
                Lane::Data { channel, mode }
            }
        })
    }

    /// True for renet channels with acknowledgements and retransmission.
    pub fn is_reliable(self, id: u8) -> bool {
        matches!(
            self.lane(id),
            Some(
                Lane::ControlReliable
                    | Lane::Data {
                        mode: TransferMode::Reliable,
                        ..
                    }
            )
        )
    }

    /// The renet configuration: the same channels in both directions. Reliable channels
    /// hold one message more than the [`WINDOW`] of [`CHUNK`]-byte messages; renet ends a
    /// link whose sender goes past it, so the link also checks renet's room before handing
    /// it a message (its acknowledgements can lag the window's feedback). Unreliable
    /// channels drop beyond `unreliable_bytes`.
    pub fn connection_config(self, resend: Duration, unreliable_bytes: usize) -> ConnectionConfig {
        let channels: Vec<ChannelConfig> = (0..self.renet_channels() as u8)
            .map(|id| {
                if self.is_reliable(id) {
                    ChannelConfig {
                        channel_id: id,
                        max_memory_usage_bytes: (WINDOW as usize + 1) * CHUNK,
                        send_type: SendType::ReliableOrdered {
                            resend_time: resend,
                        },
                    }
                } else {
                    ChannelConfig {
                        channel_id: id,
                        max_memory_usage_bytes: unreliable_bytes,
                        send_type: SendType::Unreliable,
                    }
                }
            })
            .collect();
        ConnectionConfig {
            // Pacing comes from the window, not from renet's per-call byte budget.
            available_bytes_per_tick: u64::MAX / 2,
            server_channels_config: channels.clone(),
            client_channels_config: channels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_round_trip() {
        let layout = Layout::new(3);
        assert_eq!(layout.renet_channels(), 14);
        for channel in 0..4 {
            for mode in [
                TransferMode::Reliable,
                TransferMode::Unreliable,
                TransferMode::UnreliableOrdered,
            ] {
                let id = layout.lane_id(channel, mode);
                assert_eq!(layout.lane(id), Some(Lane::Data { channel, mode }));
                assert_eq!(layout.is_reliable(id), mode == TransferMode::Reliable);
            }
        }
        assert_eq!(layout.lane(14), None);
        assert!(layout.is_reliable(CONTROL_RELIABLE));
        assert!(!layout.is_reliable(CONTROL_UNRELIABLE));
        assert!(Layout::new(MAX_CHANNEL_COUNT).renet_channels() <= 256);
    }
}
