//! The demultiplexer's admission rules as plain data: what happens to a datagram given
//! what the table knows of its address and whether it carries a ClientHello, and which
//! handshake gives way when the table of pending handshakes is full. No socket, no task,
//! no clock of its own: `demux.rs` carries the verdicts out.
//!
//! An entry counts as *verified* once its client echoes a cookie **after** our
//! HelloVerifyRequest went out (the first-flight turn sets a flag when the transport sends
//! the handshake's first datagram; a cookie "echoed" earlier is forged, and a wrong one
//! makes webrtc-dtls abort at once, ending the entry). When the table is full a new hello
//! evicts: (1) if verified entries fill at least 3/4 of the table, the one verified longest
//! ago, provided that was more than 1 s ago (a real handshake needs two round trips after
//! the cookie; a stalled one is what is left after that); otherwise (2) the oldest
//! unverified entry; if neither exists the hello is dropped (the client resends). A
//! message_seq-0 hello with a new client random replaces an entry that is neither verified
//! nor connected: the client restarted, or took over the port of a spoofed or vanished
//! hello.
//!
//! `tests/dtls/half_open.rs` sends from 300 addresses that echo the cookie and go silent,
//! more than the table holds, at the default 10 s timeout: before this rule a player's
//! connect failed after its 5 s timeout in every run; with it players connect in 10 to 160
//! ms (loaded two-core machine, debug build) and the table never exceeds 256.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::record::ClientHelloInfo;

/// Verified handshakes may fill at most this share (numerator, denominator) of the
/// pending table before the one verified longest ago gives way.
pub(super) const VERIFIED_SHARE: (usize, usize) = (3, 4);
/// How long a verified handshake may stall before it can be evicted: a real one needs two
/// round trips after the cookie.
pub(super) const VERIFIED_GRACE: Duration = Duration::from_secs(1);

/// What the table holds for a datagram's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Known {
    /// Nothing.
    Unknown,
    /// A handshake in progress: whether the client proved its address (echoed our cookie),
    /// whether our HelloVerifyRequest went out, and the random of the hello it began with.
    Handshaking {
        verified: bool,
        answered: bool,
        random: [u8; 32],
    },
    /// A connected session; `replacing` when a second handshake from this address runs.
    Connected { replacing: bool },
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// A new first hello (another random) from an address whose handshake never proved
    /// itself: the client restarted, or took over a port an earlier owner (spoofed or
    /// gone) left an entry on. That entry belongs to the old hello: end it and judge the
    /// datagram again as from an unknown address.
    Restart,
    /// To the address's handshake; `verify` marks the address proven now (the client
    /// echoed the cookie after our HelloVerifyRequest went out: it receives there).
    ToHandshake { verify: bool },
    /// To the connected session.
    ToSession,
    /// A ClientHello from a connected address (a forgery, or the client restarted): the
    /// encrypted records go to the session (their handshake part to the replacement too),
    /// the plaintext ones as `plaintext` says. The session runs on and is replaced only if
    /// the new handshake completes, which needs the cookie exchange a spoofer cannot do.
    Split { plaintext: Plaintext },
    /// Nothing to do with it: counted as dropped.
    Drop,
    /// Refused with one plaintext alert, so the client fails at once and can start over:
    /// the server is full, or the hello continues a handshake the server no longer has.
    Refuse,
    /// A first hello from a new address: start its handshake (if the pending table has
    /// room).
    New,
}

/// What becomes of the plaintext records of a hello from a connected address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Plaintext {
    /// To the replacement handshake under way.
    ToReplacement,
    /// Start a replacement handshake for them (if the pending table has room).
    StartReplacement,
    /// Dropped: the hello continues a lost handshake, which can never complete, and the
    /// address belongs to a live session, so no alert either.
    Drop,
}

/// The routing rules. `hello` is the datagram's first ClientHello, if any; `full` says
/// the server has `max_clients` sessions.
pub(super) fn route(known: Known, hello: Option<ClientHelloInfo>, full: bool) -> Route {
    match known {
        Known::Handshaking {
            verified: false,
            random,
            ..
        } if hello.is_some_and(|h| h.message_seq == 0 && h.random != random) => Route::Restart,
        Known::Handshaking {
            verified, answered, ..
        } => Route::ToHandshake {
            verify: !verified && answered && hello.is_some_and(|h| h.cookie_len > 0),
        },
        Known::Connected { replacing } => match hello {
            None if !replacing => Route::ToSession,
            _ if replacing => Route::Split {
                plaintext: Plaintext::ToReplacement,
            },
            Some(h) if continues_lost_handshake(h) => Route::Split {
                plaintext: Plaintext::Drop,
            },
            _ => Route::Split {
                plaintext: Plaintext::StartReplacement,
            },
        },
        Known::Unknown => match hello {
            None => Route::Drop,
            Some(h) if full || continues_lost_handshake(h) => Route::Refuse,
            Some(_) => Route::New,
        },
    }
}

/// A ClientHello sent after a HelloVerifyRequest (message_seq above 0) whose handshake
/// the server no longer has: it timed out or was evicted while the client was answering.
/// A new webrtc-dtls handshake accepts only message_seq 0 first, and the client only
/// ever retransmits this hello, so an entry created for it could never complete; it
/// would only hold a pending slot until its timeout, again at each retransmission.
fn continues_lost_handshake(hello: ClientHelloInfo) -> bool {
    hello.message_seq != 0
}

/// One address of the table, as the eviction rule sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub addr: SocketAddr,
    pub connected: bool,
    /// When the client proved its address, if it did.
    pub verified: Option<Instant>,
    pub created: Instant,
}

/// Which pending handshake gives way when the table is full (`None`: none may).
///
/// Unverified entries cost a spoofer nothing, so the oldest of them goes first. But a
/// client that echoed the cookie and then went silent would hold its entry until the
/// handshake timeout, and a few hundred such addresses would fill the table with entries
/// that are never evicted. So verified entries may fill at most [`VERIFIED_SHARE`] of the
/// table before the one verified longest ago gives way, provided it had
/// [`VERIFIED_GRACE`] to finish.
pub(super) fn victim(
    entries: impl Iterator<Item = Candidate> + Clone,
    max_pending: usize,
    now: Instant,
) -> Option<SocketAddr> {
    let verified = |c: &Candidate| c.verified.filter(|_| !c.connected);
    let verified_count = entries.clone().filter_map(|c| verified(&c)).count();
    let share = (max_pending * VERIFIED_SHARE.0 / VERIFIED_SHARE.1).max(1);
    let stalled = (verified_count >= share)
        .then(|| {
            entries
                .clone()
                .filter_map(|c| verified(&c).map(|at| (c.addr, at)))
                .filter(|(_, at)| now.saturating_duration_since(*at) >= VERIFIED_GRACE)
                .min_by_key(|(_, at)| *at)
                .map(|(a, _)| a)
        })
        .flatten();
    stalled.or_else(|| {
        entries
            .filter(|c| !c.connected && c.verified.is_none())
            .min_by_key(|c| c.created)
            .map(|c| c.addr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(message_seq: u16, cookie_len: usize, random: u8) -> Option<ClientHelloInfo> {
        Some(ClientHelloInfo {
            message_seq,
            cookie_len,
            random: [random; 32],
        })
    }

    fn handshaking(verified: bool, answered: bool) -> Known {
        Known::Handshaking {
            verified,
            answered,
            random: [1; 32],
        }
    }

    #[test]
    fn unknown_addresses_need_a_first_hello_and_room() {
        assert_eq!(route(Known::Unknown, None, false), Route::Drop);
        assert_eq!(route(Known::Unknown, hello(0, 0, 1), false), Route::New);
        assert_eq!(
            route(Known::Unknown, hello(0, 0, 1), true),
            Route::Refuse,
            "full"
        );
        assert_eq!(
            route(Known::Unknown, hello(1, 32, 1), false),
            Route::Refuse,
            "a hello that continues a lost handshake is refused, so the client starts over"
        );
    }

    #[test]
    fn a_handshake_is_proven_by_a_cookie_echoed_after_our_request_only() {
        let cookie = hello(1, 32, 1);
        assert_eq!(
            route(handshaking(false, true), cookie, false),
            Route::ToHandshake { verify: true }
        );
        assert_eq!(
            route(handshaking(false, false), cookie, false),
            Route::ToHandshake { verify: false },
            "before our HelloVerifyRequest went out anyone could claim the address"
        );
        assert_eq!(
            route(handshaking(false, true), hello(0, 0, 1), false),
            Route::ToHandshake { verify: false },
            "a retransmitted first hello proves nothing"
        );
        assert_eq!(
            route(handshaking(true, true), None, false),
            Route::ToHandshake { verify: false },
            "already proven"
        );
    }

    #[test]
    fn a_new_first_hello_restarts_only_an_unproven_handshake() {
        let other = hello(0, 0, 2);
        assert_eq!(
            route(handshaking(false, true), other, false),
            Route::Restart
        );
        assert_eq!(
            route(handshaking(true, true), other, false),
            Route::ToHandshake { verify: false },
            "a proven handshake is not thrown away by a hello anyone could spoof"
        );
        assert_eq!(
            route(handshaking(false, true), hello(0, 0, 1), false),
            Route::ToHandshake { verify: false },
            "the same random is a retransmission"
        );
    }

    #[test]
    fn a_hello_from_a_connected_address_never_touches_the_session() {
        let connected = Known::Connected { replacing: false };
        assert_eq!(route(connected, None, true), Route::ToSession);
        assert_eq!(
            route(connected, hello(0, 0, 9), true),
            Route::Split {
                plaintext: Plaintext::StartReplacement
            },
            "a full server still lets a connected client reconnect"
        );
        assert_eq!(
            route(connected, hello(1, 32, 9), false),
            Route::Split {
                plaintext: Plaintext::Drop
            }
        );
        let replacing = Known::Connected { replacing: true };
        for h in [None, hello(0, 0, 9), hello(1, 32, 9)] {
            assert_eq!(
                route(replacing, h, false),
                Route::Split {
                    plaintext: Plaintext::ToReplacement
                }
            );
        }
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    #[test]
    fn the_oldest_unverified_handshake_gives_way_first() {
        let t0 = Instant::now();
        let table = [
            Candidate {
                addr: addr(1),
                connected: false,
                verified: None,
                created: at(t0, 30),
            },
            Candidate {
                addr: addr(2),
                connected: false,
                verified: None,
                created: at(t0, 10),
            },
            Candidate {
                addr: addr(3),
                connected: false,
                verified: Some(at(t0, 5)),
                created: at(t0, 0),
            },
            Candidate {
                addr: addr(4),
                connected: true,
                verified: Some(at(t0, 1)),
                created: at(t0, 0),
            },
        ];
        assert_eq!(
            victim(table.iter().copied(), 8, at(t0, 5000)),
            Some(addr(2))
        );
    }

    #[test]
    fn stalled_verified_handshakes_give_way_past_their_share_and_grace() {
        let t0 = Instant::now();
        let verified = |n, ms| Candidate {
            addr: addr(n),
            connected: false,
            verified: Some(at(t0, ms)),
            created: at(t0, 0),
        };
        let unverified = Candidate {
            addr: addr(9),
            connected: false,
            verified: None,
            created: at(t0, 100),
        };
        // Three verified of four pending: the share (three quarters) is reached.
        let table = [
            verified(1, 200),
            verified(2, 100),
            verified(3, 300),
            unverified,
        ];
        assert_eq!(
            victim(table.iter().copied(), 4, at(t0, 1_150)),
            Some(addr(2)),
            "verified longest ago, past its grace"
        );
        assert_eq!(
            victim(table.iter().copied(), 4, at(t0, 1_000)),
            Some(addr(9)),
            "within the grace the unverified one goes instead"
        );
        assert_eq!(
            victim(table.iter().copied(), 8, at(t0, 10_000)),
            Some(addr(9)),
            "below the share verified entries are kept"
        );
        assert_eq!(
            victim([verified(1, 0)].into_iter(), 8, at(t0, 10_000)),
            None,
            "nothing may go"
        );
    }
}
