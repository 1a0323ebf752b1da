//! Checks every datagram before renet parses it, so a hostile peer cannot reach renet code
//! paths netkit never uses or make renet buffer without bound.
//!
//! renet trusts its peer more than a server on the internet can: a slice whose index is
//! beyond its slice count panics, slices of one message that disagree on their count
//! corrupt its memory accounting, and reliable message ids far ahead are buffered with
//! zero-length messages costing nothing against the memory limit. Netkit never sends
//! slices (it frames and fragments itself) nor empty messages, and never runs more than
//! `WINDOW` messages ahead of what the receiver handed on, so anything else is refused
//! and ends the link.

use super::layout::{CHUNK, Layout, WINDOW};

/// What a checked datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only acknowledgements.
    Ack,
    /// Messages on a reliable channel: the sender waits for their acknowledgement before
    /// it resends, so it goes out at once.
    Reliable,
    /// Messages on an unreliable channel (game data, delivery feedback, pings): nothing
    /// is resent, so their acknowledgement may wait for the next packet going that way.
    Unreliable,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.buf.split_first().ok_or_else(truncated)?;
        self.buf = rest;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// A QUIC variable-length integer (RFC 9000 section 16), renet's encoding.
    fn varint(&mut self) -> Result<u64, String> {
        let first = self.u8()?;
        let len = 1usize << (first >> 6);
        let mut v = u64::from(first & 0x3f);
        for _ in 1..len {
            v = (v << 8) | u64::from(self.u8()?);
        }
        Ok(v)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        if self.buf.len() < n {
            return Err(truncated());
        }
        self.buf = &self.buf[n..];
        Ok(())
    }
}

fn truncated() -> String {
    "truncated packet".into()
}

/// Checks one datagram against the layout and the receive windows (`delivered[ch]` is the
/// number of messages already handed on from reliable renet channel `ch`).
pub(crate) fn check(datagram: &[u8], layout: Layout, delivered: &[u64]) -> Result<Kind, String> {
    let mut r = Reader { buf: datagram };
    let kind = r.u8()?;
    match kind {
        0 | 1 => {
            let reliable = kind == 0;
            r.varint()?;
            let channel = r.u8()?;
            if layout.lane(channel).is_none() || layout.is_reliable(channel) != reliable {
                return Err(format!("message on unknown channel {channel}"));
            }
            let count = r.u16()?;
            if count == 0 {
                return Err("empty packet".into());
            }
            for _ in 0..count {
                if reliable {
                    let id = r.varint()?;
                    let base = delivered[channel as usize];
                    if id >= base.saturating_add(WINDOW) {
                        return Err(format!(
                            "reliable message {id} on channel {channel} is beyond the window (next expected {base})"
                        ));
                    }
                }
                let len = r.varint()?;
                if len == 0 || len > CHUNK as u64 {
                    return Err(format!("message of {len} bytes on channel {channel}"));
                }
                r.skip(len as usize)?;
            }
            Ok(if reliable {
                Kind::Reliable
            } else {
                Kind::Unreliable
            })
        }
        // renet validates acknowledgement ranges itself before using them.
        4 => Ok(Kind::Ack),
        2 | 3 => Err("sliced messages are not part of netkit's protocol".into()),
        other => Err(format!("unknown packet type {other}")),
    }
}

/// The renet channel of a message packet that [`check`] accepted; `None` for an
/// acknowledgement.
pub(crate) fn channel(packet: &[u8]) -> Option<u8> {
    let mut r = Reader { buf: packet };
    if !matches!(r.u8().ok()?, 0 | 1) {
        return None;
    }
    r.varint().ok()?;
    r.u8().ok()
}

/// The channel and message ids of a reliable renet packet this side produced, for
/// counting resends; `None` for any other packet.
pub(crate) fn reliable_ids(packet: &[u8]) -> Option<(u8, Vec<u64>)> {
    let mut r = Reader { buf: packet };
    if r.u8().ok()? != 0 {
        return None;
    }
    r.varint().ok()?;
    let channel = r.u8().ok()?;
    let count = r.u16().ok()?;
    let mut ids = Vec::with_capacity(count as usize);
    for _ in 0..count {
        ids.push(r.varint().ok()?);
        let len = r.varint().ok()?;
        r.skip(len as usize).ok()?;
    }
    Some((channel, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reliable(channel: u8, id: u8, len: usize) -> Vec<u8> {
        let mut p = vec![0, 5, channel, 0, 1, id];
        p.push(len as u8);
        p.extend(std::iter::repeat_n(1u8, len));
        p
    }

    #[test]
    fn refuses_what_netkit_never_sends() {
        let layout = Layout::new(1);
        let delivered = vec![0u64; layout.renet_channels()];
        assert_eq!(
            check(&reliable(2, 3, 10), layout, &delivered),
            Ok(Kind::Reliable)
        );
        assert!(
            check(&reliable(2, 3, 0), layout, &delivered).is_err(),
            "empty"
        );
        assert!(
            check(&reliable(3, 3, 10), layout, &delivered).is_err(),
            "wrong kind"
        );
        assert!(
            check(&reliable(50, 3, 10), layout, &delivered).is_err(),
            "unknown"
        );
        assert!(check(&reliable(2, 63, 10), layout, &delivered).is_ok());
        assert!(
            check(&reliable(2, 0x3f, 10)[..8], layout, &delivered).is_err(),
            "short"
        );
        let mut far = reliable(2, 0, 10);
        far[5] = 0x40; // two-byte varint 0x40_40 = 16448
        far.insert(6, 0x40);
        assert!(check(&far, layout, &delivered).is_err(), "beyond window");
        assert!(
            check(&[2, 0, 2, 0, 0, 1, 1, 1, 9], layout, &delivered).is_err(),
            "slice"
        );
        assert!(check(&[], layout, &delivered).is_err());
        assert_eq!(check(&[4, 0, 0, 0, 0], layout, &delivered), Ok(Kind::Ack));
    }
}
