//! Control messages between netkit peers: joining, readiness, leaving with a reason, and
//! delivery feedback.

use super::farewell::Farewell;
use super::resume::{SECRET_LEN, Secret};

/// Protocol version carried in `Join` and `Welcome`; a mismatch is refused with a clear
/// reason. 3: the client chooses its peer id (`Join`), and deliberate ends carry a `Bye`.
/// 4: a `Pong` says how long it was held, so it can wait for the next datagram,
/// `Welcome` may carry a resumption secret (`resume.rs`), and `Ready` says whether the
/// client will use it.
pub(crate) const PROTOCOL_VERSION: u8 = 4;

/// A message on a control channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Server to client, the answer to `Join`: the id is taken, and the server's channel
    /// count and version (a client checks them too, so an older server is named as such);
    /// with the secret that resumes this peer's session when the server's `resume_window`
    /// is above 0.
    Welcome {
        id: i32,
        channel_count: u8,
        version: u8,
        secret: Option<Secret>,
    },
    /// Client to server: the welcome arrived; the server now reports the client connected.
    /// `resumes`: the client will come back over a new session if this one fails (its
    /// `resume_window` is above 0), so the server keeps its place; otherwise the server
    /// forgets its secret and ends it as without resumption.
    Ready { resumes: bool },
    /// Either way, unreliable: how many renet messages of each reliable channel this side
    /// has handed on. The sender's window advances with it.
    Delivered(Vec<(u8, u64)>),
    /// Either way, unreliable: the sender's link clock in microseconds (wrapping), sent
    /// every `PING_INTERVAL`; answered with `Pong` carrying the same value, so the sender
    /// measures the round trip itself (protocol 2).
    Ping(u32),
    /// The answer to `Ping`: its clock, and how long the answer waited for a datagram
    /// going out anyway (µs), which the pinging side takes off its sample, as QUIC takes
    /// off an acknowledgement's `ack_delay` (RFC 9002 section 5.3; protocol 4).
    Pong { clock: u32, held_us: u32 },
    /// Client to server, first thing after the DTLS handshake: the peer id the client chose
    /// in `create_client()` (as ENet's client does), and its channel count and version.
    Join {
        id: i32,
        channel_count: u8,
        version: u8,
    },
    /// Either way, reliable: why this side is ending the session, sent just before it does,
    /// so the other side's `get_last_disconnect_reason()` can say so.
    Bye(Farewell),
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Welcome {
                id,
                channel_count,
                version,
                secret,
            } => {
                let mut v = vec![1];
                v.extend_from_slice(&id.to_le_bytes());
                v.push(*channel_count);
                v.push(*version);
                if let Some(secret) = secret {
                    v.extend_from_slice(secret.as_bytes());
                }
                v
            }
            Self::Ready { resumes: false } => vec![2],
            Self::Ready { resumes: true } => vec![2, 1],
            Self::Delivered(counts) => {
                let mut v = vec![3];
                for (channel, count) in counts {
                    v.push(*channel);
                    v.extend_from_slice(&count.to_le_bytes());
                }
                v
            }
            Self::Ping(t) => [&[4][..], &t.to_le_bytes()].concat(),
            Self::Pong { clock, held_us } => {
                [&[5][..], &clock.to_le_bytes(), &held_us.to_le_bytes()].concat()
            }
            Self::Join {
                id,
                channel_count,
                version,
            } => {
                let mut v = vec![6];
                v.extend_from_slice(&id.to_le_bytes());
                v.push(*channel_count);
                v.push(*version);
                v
            }
            Self::Bye(farewell) => {
                let (code, detail) = farewell.to_wire();
                vec![7, code, detail]
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let bad = || "malformed control message".to_string();
        let (&kind, rest) = bytes.split_first().ok_or_else(bad)?;
        match kind {
            1 | 6 if rest.len() == 6 || (kind == 1 && rest.len() == 6 + SECRET_LEN) => {
                let id = i32::from_le_bytes(rest[..4].try_into().map_err(|_| bad())?);
                let (channel_count, version) = (rest[4], rest[5]);
                Ok(if kind == 1 {
                    Self::Welcome {
                        id,
                        channel_count,
                        version,
                        secret: Secret::from_bytes(&rest[6..]),
                    }
                } else {
                    Self::Join {
                        id,
                        channel_count,
                        version,
                    }
                })
            }
            7 if rest.len() == 2 => Farewell::from_wire(rest[0], rest[1])
                .map(Self::Bye)
                .ok_or_else(bad),
            2 if rest.is_empty() => Ok(Self::Ready { resumes: false }),
            2 if rest == [1] => Ok(Self::Ready { resumes: true }),
            3 if rest.len().is_multiple_of(9) => Ok(Self::Delivered(
                rest.chunks(9)
                    .map(|c| {
                        (
                            c[0],
                            u64::from_le_bytes(c[1..].try_into().expect("8 bytes")),
                        )
                    })
                    .collect(),
            )),
            4 if rest.len() == 4 => Ok(Self::Ping(u32::from_le_bytes(
                rest.try_into().map_err(|_| bad())?,
            ))),
            5 if rest.len() == 8 => Ok(Self::Pong {
                clock: u32::from_le_bytes(rest[..4].try_into().map_err(|_| bad())?),
                held_us: u32::from_le_bytes(rest[4..].try_into().map_err(|_| bad())?),
            }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        for c in [
            Control::Welcome {
                id: 123_456,
                channel_count: 4,
                version: PROTOCOL_VERSION,
                secret: None,
            },
            Control::Welcome {
                id: 7,
                channel_count: 0,
                version: PROTOCOL_VERSION,
                secret: Some(Secret::generate()),
            },
            Control::Ready { resumes: false },
            Control::Ready { resumes: true },
            Control::Delivered(vec![(0, 1), (2, u64::MAX)]),
            Control::Ping(0),
            Control::Pong {
                clock: u32::MAX,
                held_us: 7,
            },
            Control::Join {
                id: i32::MAX,
                channel_count: 32,
                version: PROTOCOL_VERSION,
            },
            Control::Bye(Farewell::Kicked),
            Control::Bye(Farewell::ChannelMismatch { server: 7 }),
        ] {
            assert_eq!(Control::decode(&c.encode()), Ok(c));
        }
        for garbage in [
            &[][..],
            &[1, 2],
            &[2, 0],
            &[3, 1],
            &[4, 1, 2],
            &[5],
            &[5, 1, 2, 3, 4],
            &[9],
        ][..]
            .iter()
            .chain(&[&[6, 1, 2, 3][..], &[7, 1], &[7, 200, 0], &[7, 1, 0, 0]])
            .chain(&[&[1, 0, 0, 0, 0, 4, 4, 9][..], &[6; 7 + SECRET_LEN][..]])
        {
            assert!(Control::decode(garbage).is_err());
        }
    }
}
