//! Session resumption (issue 23): a player whose address changes (Wi-Fi to mobile data, a
//! NAT rebinding) or whose path goes dark for a moment keeps its peer id and its reliable
//! messages. The [`Link`](super::link::Link) (renet's state, the channels, what is not
//! acknowledged yet) outlives the DTLS session: a new DTLS session that presents the peer's
//! resumption secret is bound to the old link, and both sides' renet resends what the other
//! has not acknowledged, so reliable messages still arrive exactly once and in order.
//!
//! This file holds the policy, as plain data and pure functions: the secret, the datagrams a
//! new session carries before it is bound to a link ([`Opening`]), and the server's
//! [`verdict`] on a `Resume`. The endpoint drives it (`endpoint.rs`).
//!
//! Openings travel outside renet: until the server has bound the new session, it cannot know
//! which link's renet sequence numbers apply, and a fresh link would refuse the old one's
//! message ids. Their first byte (0xC1 to 0xC3) is neither a renet packet type (0 to 4) nor a
//! bundle (0xB0). They are unreliable, so the client repeats its `Resume` every
//! [`RESUME_REPEAT`] until answered, and the server answers a repeat on the session it has
//! already bound with the current secret again.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use subtle::ConstantTimeEq;

use super::control::PROTOCOL_VERSION;

/// Bytes of a resumption secret: 128 random bits, from the thread's CSPRNG (ChaCha, seeded
/// by the operating system).
pub(crate) const SECRET_LEN: usize = 16;

/// How often a client sends its `Resume` again while the server has not answered.
pub(crate) const RESUME_REPEAT: Duration = Duration::from_millis(250);

/// How long a client waits after a failed resumption handshake before it tries again (the
/// window still bounds the whole).
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(500);

/// A peer's resumption secret. Compared in constant time; never printed (`Debug` hides it).
#[derive(Clone)]
pub(crate) struct Secret([u8; SECRET_LEN]);

impl Secret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rand::rng().fill(&mut bytes);
        Self(bytes)
    }

    /// The secret in `bytes`, which must be exactly [`SECRET_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

impl PartialEq for Secret {
    /// Constant time: how long a comparison takes says nothing about how much matched.
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Why the server refused a `Resume`; sent back in [`Opening::Refused`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server's `resume_window` is 0: it keeps no place for anyone.
    NotOffered,
    /// The client speaks another netkit protocol version; carries the server's.
    VersionMismatch { server: u8 },
    /// No peer with that id: it never existed, or its window ran out and it was
    /// disconnected.
    UnknownPeer,
    /// The secret is not the peer's.
    WrongSecret,
    /// The secret was the peer's but a resumption already used it (a replay).
    SecretReused,
    /// The peer has been silent for longer than the resume window.
    Expired,
}

impl Refusal {
    fn code(self) -> (u8, u8) {
        match self {
            Self::NotOffered => (1, 0),
            Self::VersionMismatch { server } => (2, server),
            Self::UnknownPeer => (3, 0),
            Self::WrongSecret => (4, 0),
            Self::SecretReused => (5, 0),
            Self::Expired => (6, 0),
        }
    }

    fn from_code(code: u8, detail: u8) -> Option<Self> {
        Some(match (code, detail) {
            (1, 0) => Self::NotOffered,
            (2, server) => Self::VersionMismatch { server },
            (3, 0) => Self::UnknownPeer,
            (4, 0) => Self::WrongSecret,
            (5, 0) => Self::SecretReused,
            (6, 0) => Self::Expired,
            _ => return None,
        })
    }

    /// The sentence a refused client (or a server's log) shows.
    pub fn describe(self) -> String {
        let what = match self {
            Self::NotOffered => {
                "the server does not resume sessions (its \"resume_window\" is 0)".to_owned()
            }
            Self::VersionMismatch { server } => format!(
                "the server speaks netkit multiplayer protocol {server}, this client {PROTOCOL_VERSION}"
            ),
            Self::UnknownPeer => {
                "the server has no such peer (it left, or its resume window ran out)".to_owned()
            }
            Self::WrongSecret => "the resumption secret is wrong".to_owned(),
            Self::SecretReused => {
                "the resumption secret was already used (a secret is good for one resumption)"
                    .to_owned()
            }
            Self::Expired => "the resume window ran out (option \"resume_window\")".to_owned(),
        };
        format!("the server refused to resume the session: {what}")
    }
}

/// A datagram of a DTLS session before it is bound to a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// Client to server, first thing on its new session: bind me to peer `id`'s link.
    Resume {
        id: i32,
        version: u8,
        secret: Secret,
    },
    /// Server to client: bound; the secret for the next resumption (the old one is spent).
    Resumed { secret: Secret },
    /// Server to client: not bound, and why; the server then closes the new session.
    Refused(Refusal),
}

const RESUME: u8 = 0xC1;
const RESUMED: u8 = 0xC2;
const REFUSED: u8 = 0xC3;

impl Opening {
    /// True when `datagram` is an opening rather than link traffic.
    pub fn is_opening(datagram: &[u8]) -> bool {
        matches!(datagram.first(), Some(&(RESUME..=REFUSED)))
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Resume {
                id,
                version,
                secret,
            } => {
                let mut v = vec![RESUME, *version];
                v.extend_from_slice(&id.to_le_bytes());
                v.extend_from_slice(secret.as_bytes());
                v
            }
            Self::Resumed { secret } => [&[RESUMED][..], secret.as_bytes()].concat(),
            Self::Refused(refusal) => {
                let (code, detail) = refusal.code();
                vec![REFUSED, code, detail]
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let bad = || "malformed resumption message".to_owned();
        let (&kind, rest) = bytes.split_first().ok_or_else(bad)?;
        match kind {
            RESUME if rest.len() == 5 + SECRET_LEN => Ok(Self::Resume {
                version: rest[0],
                id: i32::from_le_bytes(rest[1..5].try_into().map_err(|_| bad())?),
                secret: Secret::from_bytes(&rest[5..]).ok_or_else(bad)?,
            }),
            RESUMED => Ok(Self::Resumed {
                secret: Secret::from_bytes(rest).ok_or_else(bad)?,
            }),
            REFUSED if rest.len() == 2 => Refusal::from_code(rest[0], rest[1])
                .map(Self::Refused)
                .ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

/// What the server knows of the peer a `Resume` names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place<'a> {
    /// The secret that resumes it now.
    pub secret: &'a Secret,
    /// The secret its last resumption spent, if any.
    pub previous: Option<&'a Secret>,
    /// Time since a datagram from it last decrypted.
    pub silent_for: Duration,
    /// The `Resume` came on the session this peer is already bound to: a repeat of the
    /// `Resume` that bound it, whose answer was lost.
    pub this_session: bool,
}

/// The server's answer to a `Resume`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Bind the new session to the peer's link and give it a new secret.
    Accept,
    /// Already bound to this session: answer again with the current secret.
    Repeat,
    /// Close the new session with this reason; the peer's own session is untouched.
    Refuse(Refusal),
}

/// The server's decision on `Resume{version, secret}` for a peer (`place`, `None` when no
/// peer has the id) given its own `window` (0: resumption off). The real peer is never
/// touched by a refusal; a secret is good once (replaced at each resumption), and it is
/// bound to this server instance and this id because it is kept only there.
pub(crate) fn verdict(
    version: u8,
    secret: &Secret,
    window: Duration,
    place: Option<Place<'_>>,
) -> Verdict {
    if window.is_zero() {
        return Verdict::Refuse(Refusal::NotOffered);
    }
    if version != PROTOCOL_VERSION {
        return Verdict::Refuse(Refusal::VersionMismatch {
            server: PROTOCOL_VERSION,
        });
    }
    let Some(place) = place else {
        return Verdict::Refuse(Refusal::UnknownPeer);
    };
    if place.this_session {
        return Verdict::Repeat;
    }
    if place.silent_for > window {
        return Verdict::Refuse(Refusal::Expired);
    }
    if place.secret == secret {
        Verdict::Accept
    } else if place.previous == Some(secret) {
        Verdict::Refuse(Refusal::SecretReused)
    } else {
        Verdict::Refuse(Refusal::WrongSecret)
    }
}

/// How a side watches a peer's silence when resumption is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Silence {
    /// Datagrams arrive: nothing to do.
    Flowing,
    /// Silent for `resume_after`: report `session_interrupted` (a client also starts a new
    /// handshake).
    Interrupted,
    /// Silent beyond `resume_window`: disconnect with a reason saying so.
    WindowRanOut,
}

/// Where a peer silent for `silent_for` stands, by `resume_after` and `resume_window`.
pub(crate) fn silence(silent_for: Duration, resume_after: Duration, window: Duration) -> Silence {
    if silent_for >= window {
        Silence::WindowRanOut
    } else if silent_for >= resume_after {
        Silence::Interrupted
    } else {
        Silence::Flowing
    }
}

/// The reason a peer whose window ran out is disconnected with; `other` is "the client" or
/// "the server".
pub(crate) fn window_ran_out(other: &str, window: Duration) -> String {
    format!(
        "the connection to {other} was interrupted and not resumed within the resume window ({:.1} s, option \"resume_window\")",
        window.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(20);

    fn place<'a>(secret: &'a Secret, previous: Option<&'a Secret>) -> Place<'a> {
        Place {
            secret,
            previous,
            silent_for: Duration::from_secs(3),
            this_session: false,
        }
    }

    #[test]
    fn secrets_are_random_compare_by_value_and_never_print() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b, "two draws of 128 bits differ");
        assert_eq!(a, a.clone());
        let shown = format!("{a:?} {:?}", Opening::Resumed { secret: a.clone() });
        assert!(!shown.contains(&format!("{:?}", a.as_bytes())), "{shown}");
        assert!(shown.contains("redacted"));
        let mut one_bit = *a.as_bytes();
        one_bit[SECRET_LEN - 1] ^= 1;
        assert_ne!(a, Secret::from_bytes(&one_bit).unwrap());
        assert!(Secret::from_bytes(&[0; SECRET_LEN - 1]).is_none());
    }

    #[test]
    fn openings_survive_the_wire_and_are_told_apart_from_link_traffic() {
        let s = Secret::generate();
        for o in [
            Opening::Resume {
                id: i32::MAX,
                version: PROTOCOL_VERSION,
                secret: s.clone(),
            },
            Opening::Resumed { secret: s },
            Opening::Refused(Refusal::SecretReused),
            Opening::Refused(Refusal::VersionMismatch { server: 9 }),
        ] {
            let bytes = o.encode();
            assert!(Opening::is_opening(&bytes));
            assert_eq!(Opening::decode(&bytes), Ok(o));
        }
        // renet packets (types 0 to 4) and bundles (0xB0) are link traffic.
        for link in [&[0u8, 1][..], &[4], &[0xB0, 0, 1, 2], &[]] {
            assert!(!Opening::is_opening(link));
        }
        for garbage in [
            &[0xC1][..],
            &[0xC1, 3, 0, 0, 0, 0],
            &[0xC2, 1, 2],
            &[0xC3, 9, 0],
            &[0xC3, 1],
        ] {
            assert!(Opening::decode(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn the_right_secret_within_the_window_resumes() {
        let s = Secret::generate();
        let v = PROTOCOL_VERSION;
        assert_eq!(verdict(v, &s, W, Some(place(&s, None))), Verdict::Accept);
        // A peer still connected (from another address) resumes the same way: the secret
        // is the proof, not the silence.
        let connected = Place {
            silent_for: Duration::ZERO,
            ..place(&s, None)
        };
        assert_eq!(verdict(v, &s, W, Some(connected)), Verdict::Accept);
    }

    #[test]
    fn forged_replayed_stale_and_unknown_are_refused_with_their_reason() {
        let (now, spent, forged) = (Secret::generate(), Secret::generate(), Secret::generate());
        let v = PROTOCOL_VERSION;
        let p = place(&now, Some(&spent));
        assert_eq!(
            verdict(v, &forged, W, Some(p)),
            Verdict::Refuse(Refusal::WrongSecret)
        );
        assert_eq!(
            verdict(v, &spent, W, Some(p)),
            Verdict::Refuse(Refusal::SecretReused)
        );
        let stale = Place {
            silent_for: W + Duration::from_millis(1),
            ..p
        };
        assert_eq!(
            verdict(v, &now, W, Some(stale)),
            Verdict::Refuse(Refusal::Expired)
        );
        assert_eq!(
            verdict(v, &now, W, None),
            Verdict::Refuse(Refusal::UnknownPeer)
        );
        assert_eq!(
            verdict(v, &now, Duration::ZERO, Some(p)),
            Verdict::Refuse(Refusal::NotOffered)
        );
        assert_eq!(
            verdict(v + 1, &now, W, Some(p)),
            Verdict::Refuse(Refusal::VersionMismatch { server: v })
        );
        for r in [
            Refusal::WrongSecret,
            Refusal::SecretReused,
            Refusal::Expired,
            Refusal::UnknownPeer,
            Refusal::NotOffered,
        ] {
            assert!(r.describe().starts_with("the server refused to resume"));
        }
        assert!(Refusal::SecretReused.describe().contains("already used"));
    }

    /// A repeat of the `Resume` that bound this very session is answered again, whatever
    /// secret it carries (the one it carried was spent by binding), since only the client
    /// holding this session's keys can send on it.
    #[test]
    fn a_repeated_resume_on_the_bound_session_is_answered_again() {
        let (now, spent) = (Secret::generate(), Secret::generate());
        let p = Place {
            this_session: true,
            ..place(&now, Some(&spent))
        };
        assert_eq!(
            verdict(PROTOCOL_VERSION, &spent, W, Some(p)),
            Verdict::Repeat
        );
    }

    #[test]
    fn silence_turns_into_an_interruption_then_an_end() {
        let (after, window) = (Duration::from_secs(2), W);
        assert_eq!(
            silence(Duration::from_millis(1999), after, window),
            Silence::Flowing
        );
        assert_eq!(silence(after, after, window), Silence::Interrupted);
        assert_eq!(
            silence(window - Duration::from_millis(1), after, window),
            Silence::Interrupted
        );
        assert_eq!(silence(window, after, window), Silence::WindowRanOut);
        assert!(window_ran_out("the client", window).contains("resume_window"));
    }
}
