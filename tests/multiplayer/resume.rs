//! Session resumption (issue 23) against real endpoints on loopback: a client behind the
//! test relay changes address (127.0.0.2 to 127.0.0.3, new ports) or goes dark, and keeps
//! its peer id and every reliable message; a window that runs out ends the session with a
//! reason on both sides; forged resumptions are refused while the real peer plays on.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use netkit::core::dtls::{DtlsClient, DtlsEvent, SelfSigned};
use netkit::core::events::channel;
use netkit::core::multiplayer::{Endpoint, EndpointConfig, MpEvent, Target, TransferMode};
use netkit_test_support::mp::*;
use netkit_test_support::relay::{PathConfig, Relay};

fn resuming(window_secs: f64) -> EndpointConfig {
    EndpointConfig {
        resume_window: Duration::from_secs_f64(window_secs),
        ..EndpointConfig::default()
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn numbered(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

/// A server and a client that joined it through a clean relay forwarding from 127.0.0.2,
/// and the server's identity.
fn setup(config: EndpointConfig) -> (Endpoint, Relay, Endpoint, i32, SelfSigned) {
    let id = identity();
    let server = start_server(&id, config.clone());
    let relay = Relay::start_from(server.local_addr().unwrap(), PathConfig::clean(), ip(2));
    let (client, cid) = join(&server, &id, relay.addr, config);
    let seen = server.peer_stats(cid).and_then(|s| s.address).unwrap();
    assert_eq!(
        seen.ip(),
        ip(2),
        "the server sees the relay's first address"
    );
    (server, relay, client, cid, id)
}

/// A server of `max_clients` slots, and a clean relay to it forwarding from 127.0.0.2.
fn small_server(id: &SelfSigned, max_clients: usize, config: &EndpointConfig) -> (Endpoint, Relay) {
    let mut options = server_options(id);
    options.max_clients = max_clients;
    let server = Endpoint::server("127.0.0.1:0".parse().unwrap(), options, config.clone()).unwrap();
    let relay = Relay::start_from(server.local_addr().unwrap(), PathConfig::clean(), ip(2));
    (server, relay)
}

fn drain(ep: &Endpoint, events: &mut Vec<MpEvent>) {
    while let Some(e) = ep.next_event() {
        events.push(e);
    }
}

fn reliable(events: &[MpEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            MpEvent::Packet { data, mode, .. } if *mode == TransferMode::Reliable => {
                Some(data.clone())
            }
            _ => None,
        })
        .collect()
}

fn count(events: &[MpEvent], pred: impl Fn(&MpEvent) -> bool) -> usize {
    events.iter().filter(|e| pred(e)).count()
}

const N: u32 = 1000;

/// Sends `N` reliable messages each way, a few per millisecond, calling `disturb` once a
/// third of them are out; then waits until both sides have all of them (or 60 s).
fn exchange(
    server: &Endpoint,
    client: &Endpoint,
    cid: i32,
    disturb: impl FnOnce(),
) -> (Vec<MpEvent>, Vec<MpEvent>) {
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    let mut disturb = Some(disturb);
    for i in 0..N {
        if i == N / 3 {
            (disturb.take().unwrap())();
        }
        client
            .send(Target::Peer(1), 1, TransferMode::Reliable, numbered(i))
            .unwrap();
        server
            .send(Target::Peer(cid), 1, TransferMode::Reliable, numbered(i))
            .unwrap();
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(10));
            drain(server, &mut at_server);
            drain(client, &mut at_client);
        }
    }
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end
        && (reliable(&at_server).len() < N as usize || reliable(&at_client).len() < N as usize)
    {
        drain(server, &mut at_server);
        drain(client, &mut at_client);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Anything extra (a duplicate) would show up now.
    std::thread::sleep(Duration::from_millis(300));
    drain(server, &mut at_server);
    drain(client, &mut at_client);
    (at_server, at_client)
}

/// Every reliable message exactly once and in order, both ways; no disconnect; one
/// interruption and one resumption on each side; the same id throughout.
fn assert_resumed_intact(
    server: &Endpoint,
    client: &Endpoint,
    cid: i32,
    at_server: &[MpEvent],
    at_client: &[MpEvent],
) {
    let want: Vec<Vec<u8>> = (0..N).map(numbered).collect();
    for (side, events, other) in [("server", at_server, cid), ("client", at_client, 1)] {
        let got = reliable(events);
        assert_eq!(got.len(), want.len(), "{side}: reliable messages received");
        assert!(got == want, "{side}: order or content differs");
        let ends: Vec<&MpEvent> = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    MpEvent::PeerDisconnected { .. }
                        | MpEvent::PeerConnected(_)
                        | MpEvent::ConnectionFailed(_)
                )
            })
            .collect();
        assert!(ends.is_empty(), "{side} saw {ends:?}");
        assert_eq!(
            count(
                events,
                |e| matches!(e, MpEvent::SessionInterrupted(x) if *x == other)
            ),
            1,
            "{side}: one interruption of peer {other}"
        );
        assert_eq!(
            count(
                events,
                |e| matches!(e, MpEvent::SessionResumed(x) if *x == other)
            ),
            1,
            "{side}: one resumption of peer {other}"
        );
    }
    assert_eq!(client.unique_id(), cid, "the client keeps its id");
    let stats = server
        .peer_stats(cid)
        .expect("the server still knows the client");
    assert_eq!((stats.interruptions, stats.resumptions), (1, 1));
    let back = client
        .peer_stats(1)
        .expect("the client still knows the server");
    assert_eq!((back.interruptions, back.resumptions), (1, 1));
}

#[test]
fn a_client_that_changes_address_keeps_its_id_and_every_reliable_message() {
    let (server, relay, client, cid, _) = setup(resuming(20.0));
    let moved = Instant::now();
    let (at_server, at_client) = exchange(&server, &client, cid, || relay.move_to(ip(3)));
    assert_resumed_intact(&server, &client, cid, &at_server, &at_client);
    let now_at = server.peer_stats(cid).and_then(|s| s.address).unwrap();
    assert_eq!(
        now_at.ip(),
        ip(3),
        "the server follows the client to its new address"
    );
    eprintln!(
        "1,000 each way across an address change in {:.2?}",
        moved.elapsed()
    );
}

#[test]
fn a_five_second_blackout_is_an_interruption_not_a_disconnect() {
    let (server, relay, client, cid, _) = setup(resuming(20.0));
    let (at_server, at_client) = exchange(&server, &client, cid, || {
        relay.black_out(Duration::from_secs(5))
    });
    assert_resumed_intact(&server, &client, cid, &at_server, &at_client);
}

/// Past the window both sides give up, each with a reason that says so (a shorter window
/// and blackout than the 20 s and 30 s, the same rule).
#[test]
fn a_blackout_longer_than_the_window_disconnects_both_sides_with_a_reason() {
    let config = EndpointConfig {
        resume_after: Duration::from_secs(1),
        ..resuming(3.0)
    };
    let (server, relay, client, cid, _) = setup(config);
    relay.black_out(Duration::from_secs(6));
    let started = Instant::now();
    for (side, ep, other) in [("server", &server, cid), ("client", &client, 1)] {
        let mut seen = Vec::new();
        match wait_for(ep, &mut seen, Duration::from_secs(15), |e| {
            matches!(e, MpEvent::PeerDisconnected { .. })
        }) {
            Some(MpEvent::PeerDisconnected { id, reason }) => {
                assert_eq!(id, other, "{side}");
                assert!(reason.contains("resume window"), "{side}: {reason}");
                eprintln!("{side} after {:.2?}: {reason}", started.elapsed());
            }
            other => panic!("{side} never gave up: {other:?} after {seen:?}"),
        }
        assert_eq!(
            count(&seen, |e| matches!(e, MpEvent::SessionInterrupted(_))),
            1,
            "{side}: interrupted first"
        );
        assert_eq!(count(&seen, |e| matches!(e, MpEvent::SessionResumed(_))), 0);
    }
    // Within the window plus the time to notice, not after the DTLS idle timeout.
    assert!(started.elapsed() < Duration::from_secs(12));
}

/// Reliable data the game sends to an interrupted peer waits, bounded: beyond
/// `send_buffer` the peer ends with that reason, however long the window.
#[test]
fn an_interrupted_peer_whose_send_buffer_fills_is_disconnected_with_that_reason() {
    let mut config = resuming(20.0);
    config.link.send_buffer = 256 << 10;
    let (server, relay, _client, cid, _) = setup(config);
    relay.black_out(Duration::from_secs(30));
    let mut seen = Vec::new();
    wait_for(&server, &mut seen, Duration::from_secs(10), |e| {
        matches!(e, MpEvent::SessionInterrupted(_))
    })
    .expect("the server notices the silence");
    let started = Instant::now();
    let message = vec![7u8; 10_000];
    let gone = (0..1000).find_map(|_| {
        let _ = server.send(
            Target::Peer(cid),
            0,
            TransferMode::Reliable,
            message.clone(),
        );
        match wait_for(&server, &mut seen, Duration::from_millis(5), |e| {
            matches!(e, MpEvent::PeerDisconnected { .. })
        }) {
            Some(MpEvent::PeerDisconnected { reason, .. }) => Some(reason),
            _ => None,
        }
    });
    let reason = gone.expect("the peer was disconnected");
    assert!(reason.contains("send_buffer"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "at the buffer's limit, not the window's"
    );
}

/// Peers whose DTLS session ended hold no `max_clients` slot while they keep their place,
/// so places are bounded by `max_clients` too: with one slot, a second peer that vanishes
/// while the first waits is disconnected as before resumption existed.
#[test]
fn places_kept_for_vanished_peers_are_bounded_by_max_clients() {
    let config = EndpointConfig {
        resume_after: Duration::from_secs(1),
        ..resuming(20.0)
    };
    let id = identity();
    let mut options = server_options(&id);
    options.max_clients = 1;
    options.session.idle_timeout = Duration::from_secs(3);
    let server = Endpoint::server("127.0.0.1:0".parse().unwrap(), options, config.clone()).unwrap();
    let to = server.local_addr().unwrap();
    let mut seen = Vec::new();
    let vanish = |relay: &Relay, cid: i32, seen: &mut Vec<MpEvent>| {
        relay.black_out(Duration::from_secs(60));
        wait_for(
            &server,
            seen,
            Duration::from_secs(10),
            |e| matches!(e, MpEvent::PeerDisconnected { id, .. } if *id == cid),
        )
    };
    let first_relay = Relay::start(to, PathConfig::clean());
    let (_first, first) = join(&server, &id, first_relay.addr, config.clone());
    assert!(
        vanish(&first_relay, first, &mut seen).is_none(),
        "the first keeps its place past the idle timeout: {seen:?}"
    );
    let second_relay = Relay::start(to, PathConfig::clean());
    let (_second, second) = join(&server, &id, second_relay.addr, config);
    match vanish(&second_relay, second, &mut seen) {
        Some(MpEvent::PeerDisconnected { reason, .. }) => {
            assert!(reason.contains("idle timeout"), "{reason}")
        }
        other => panic!("the second kept a place beyond max_clients: {other:?} {seen:?}"),
    }
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, MpEvent::PeerDisconnected { id, .. } if *id == first)),
        "the first still waits"
    );
}

/// Waits up to 5 s for `ep` to receive `payload`: whether it came, and the events before.
/// Sends `data` to peer `to` on reliable channel 0.
fn send_reliable(ep: &Endpoint, to: i32, data: &[u8]) {
    ep.send(Target::Peer(to), 0, TransferMode::Reliable, data.to_vec())
        .unwrap();
}

fn receives(ep: &Endpoint, payload: &[u8]) -> (bool, Vec<MpEvent>) {
    let mut seen = Vec::new();
    let got = wait_for(
        ep,
        &mut seen,
        Duration::from_secs(5),
        |e| matches!(e, MpEvent::Packet { data, .. } if data == payload),
    );
    (got.is_some(), seen)
}

/// A raw DTLS session to the server (verified as a netkit client would) whose first
/// datagram is `opening`; returns the openings the server answered with and whether it
/// then closed the session.
fn present(server: &Endpoint, id: &SelfSigned, opening: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let (tx, rx) = channel();
    let port = server.local_addr().unwrap().port();
    let raw = DtlsClient::connect("127.0.0.1", port, client_options(id), tx).unwrap();
    let mut answers = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    let mut closed = false;
    while Instant::now() < end && !closed {
        while let Some(e) = rx.next() {
            match e {
                // A full server may end the session at once: then nothing is sent.
                DtlsEvent::PeerConnected(_) => {
                    let _ = raw.send(1, opening);
                }
                // Openings only (0xC1 to 0xC3): the server's link pings a new session too.
                DtlsEvent::Packet { data, .. } if (0xC1..=0xC3).contains(&data[0]) => {
                    answers.push(data)
                }
                DtlsEvent::Packet { .. } => {}
                DtlsEvent::PeerDisconnected { .. } | DtlsEvent::ConnectionFailed { .. } => {
                    closed = true
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (answers, closed)
}

/// netkit's `Resume` as it goes on the wire (`core/multiplayer/resume.rs`): 0xC1, the
/// protocol version, the peer id (little-endian) and the 16-byte secret.
fn resume_bytes(version: u8, peer: i32, secret: [u8; 16]) -> Vec<u8> {
    let mut v = vec![0xC1, version];
    v.extend_from_slice(&peer.to_le_bytes());
    v.extend_from_slice(&secret);
    v
}

/// The server's refusal with its code: 2 version, 3 unknown peer, 4 wrong secret.
fn refusal(code: u8, detail: u8) -> Vec<Vec<u8>> {
    vec![vec![0xC3, code, detail]]
}

/// Forged secrets for a connected peer, unknown ids and another protocol version are each
/// refused on the attacker's own session, which the server then closes; the real peer
/// neither notices nor stops, and the server reports nothing.
#[test]
fn forged_and_unknown_resumptions_are_refused_and_the_real_peer_plays_on() {
    let (server, _relay, client, cid, id) = setup(resuming(20.0));
    let mut guesses = 0;
    for attempt in 0..5u8 {
        let (answers, closed) = present(&server, &id, &resume_bytes(4, cid, [attempt; 16]));
        assert_eq!(
            answers,
            refusal(4, 0),
            "a forged secret is refused as wrong"
        );
        assert!(closed, "and the session that presented it is closed");
        guesses += 1;
    }
    let (answers, closed) = present(&server, &id, &resume_bytes(4, cid ^ 0x55, [9; 16]));
    assert_eq!((answers, closed), (refusal(3, 0), true), "no such peer");
    let (answers, closed) = present(&server, &id, &resume_bytes(3, cid, [9; 16]));
    assert_eq!(
        (answers, closed),
        (refusal(2, 4), true),
        "an older protocol"
    );

    // The real peer plays on, uninterrupted, and the server reported nobody else.
    send_reliable(&server, cid, b"still here");
    send_reliable(&client, 1, b"me too");
    let (got, at_client) = receives(&client, b"still here");
    assert!(got, "the client still hears the server: {at_client:?}");
    let (got, at_server) = receives(&server, b"me too");
    assert!(got, "the server still hears the client: {at_server:?}");
    for (side, events) in [("server", &at_server), ("client", &at_client)] {
        assert!(
            events.iter().all(|e| matches!(e, MpEvent::Packet { .. })),
            "{side} saw more than packets after {guesses} forged resumptions: {events:?}"
        );
    }
    let stats = server.peer_stats(cid).unwrap();
    assert_eq!((stats.interruptions, stats.resumptions), (0, 0));
    assert_eq!(stats.address.unwrap().ip(), ip(2), "the peer was not moved");
}

/// An attacker on the path records everything the client sends while it resumes (its new
/// handshake and its `Resume`), then replays it to the server from another address: the
/// secret is inside DTLS records no other session can decrypt, so nothing binds, nothing
/// is reported, and the real peer plays on from where it resumed.
#[test]
fn a_recorded_resumption_replayed_from_another_address_binds_nothing() {
    let (server, relay, client, cid, _) = setup(resuming(20.0));
    relay.record_up();
    relay.move_to(ip(3));
    let mut seen = Vec::new();
    wait_for(&server, &mut seen, Duration::from_secs(10), |e| {
        matches!(e, MpEvent::SessionResumed(_))
    })
    .expect("the client resumed at its new address");
    let recorded = relay.recorded();
    assert!(
        recorded.len() >= 4,
        "a handshake and a Resume: {}",
        recorded.len()
    );
    let server_addr = server.local_addr().unwrap();
    let attacker = std::net::UdpSocket::bind((ip(4), 0)).unwrap();
    for round in 0..3 {
        for d in &recorded {
            attacker.send_to(d, server_addr).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(300 * (round + 1)));
    }
    send_reliable(&client, 1, b"after");
    let (got, after) = receives(&server, b"after");
    assert!(got, "the real client still reaches the server: {after:?}");
    assert!(
        after.iter().all(|e| matches!(e, MpEvent::Packet { .. })),
        "the replay made the server report something: {after:?}"
    );
    let stats = server.peer_stats(cid).unwrap();
    assert_eq!(stats.resumptions, 1, "only the real resumption");
    assert_eq!(
        stats.address.unwrap().ip(),
        ip(3),
        "bound where the client is"
    );
}

/// A server with `resume_window` 0 refuses every resumption, and a client with it 0 gets
/// no secret: today's behaviour.
#[test]
fn with_the_window_at_zero_nothing_resumes() {
    let (server, _relay, _client, cid, id) = setup(EndpointConfig::default());
    let (answers, closed) = present(&server, &id, &resume_bytes(4, cid, [1; 16]));
    assert_eq!((answers, closed), (refusal(1, 0), true));
}

/// A full server (every `max_clients` slot taken) still lets a player who changed address
/// back in: its old DTLS session, silent since the move, must not keep the slot the new
/// handshake needs until the DTLS idle timeout (15 s), longer than this 8 s window.
#[test]
fn a_client_that_moves_on_a_full_server_resumes_within_the_window() {
    let config = EndpointConfig {
        resume_after: Duration::from_secs(1),
        ..resuming(8.0)
    };
    let id = identity();
    let (server, relay) = small_server(&id, 1, &config);
    let (client, cid) = join(&server, &id, relay.addr, config);
    relay.move_to(ip(3));
    let mut seen = Vec::new();
    let got = wait_for(&server, &mut seen, Duration::from_secs(12), |e| {
        matches!(
            e,
            MpEvent::SessionResumed(_) | MpEvent::PeerDisconnected { .. }
        )
    });
    assert!(
        matches!(got, Some(MpEvent::SessionResumed(x)) if x == cid),
        "the moved client is back in its slot: {got:?} after {seen:?}"
    );
    send_reliable(&client, 1, b"back");
    let (arrived, after) = receives(&server, b"back");
    assert!(arrived, "{after:?}");
    let at = server.peer_stats(cid).and_then(|s| s.address).unwrap();
    assert_eq!(at.ip(), ip(3));
}

/// A client that moves again and again (a phone flapping between networks) resumes every
/// time with its reliable messages intact, and leaves nothing behind: the sessions it
/// left hold no `max_clients` slot.
#[test]
fn a_client_that_moves_over_and_over_resumes_every_time_and_leaves_nothing_behind() {
    const MOVES: u32 = 30;
    let config = EndpointConfig {
        resume_after: Duration::from_millis(400),
        ..resuming(20.0)
    };
    let id = identity();
    let (server, relay) = small_server(&id, 2, &config);
    let (client, cid) = join(&server, &id, relay.addr, config);
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    for m in 0..MOVES {
        relay.move_to(ip(2 + (m % 2 + 1) as u8));
        client
            .send(Target::Peer(1), 0, TransferMode::Reliable, numbered(m))
            .unwrap();
        server
            .send(Target::Peer(cid), 0, TransferMode::Reliable, numbered(m))
            .unwrap();
        let resumed = |e: &MpEvent| matches!(e, MpEvent::SessionResumed(_));
        let before = count(&at_server, resumed);
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end && count(&at_server, resumed) == before {
            drain(&server, &mut at_server);
            drain(&client, &mut at_client);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            count(&at_server, resumed),
            before + 1,
            "move {m}: {at_server:?}"
        );
    }
    let want: Vec<Vec<u8>> = (0..MOVES).map(numbered).collect();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end && (reliable(&at_server) != want || reliable(&at_client) != want) {
        drain(&server, &mut at_server);
        drain(&client, &mut at_client);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        reliable(&at_server),
        want,
        "server: every message once, in order"
    );
    assert_eq!(
        reliable(&at_client),
        want,
        "client: every message once, in order"
    );
    for (side, events) in [("server", &at_server), ("client", &at_client)] {
        assert!(
            !events.iter().any(|e| matches!(
                e,
                MpEvent::PeerDisconnected { .. } | MpEvent::PeerConnected(_)
            )),
            "{side}: {events:?}"
        );
    }
    let stats = server.peer_stats(cid).unwrap();
    assert_eq!(stats.resumptions, u64::from(MOVES));
    // A second client still joins a server of two slots: the sessions the moves left are
    // gone, not counted until their idle timeout.
    let (_other, other) = join(&server, &id, server.local_addr().unwrap(), resuming(20.0));
    assert!(server.peer_stats(other).is_some());
}

/// A flood of handshakes, each presenting a `Resume` with a guessed secret for a connected
/// peer, more of them than the server has slots: each is refused or turned away like any
/// handshake on a full server, the real peer plays on unaware, and once the flood is over
/// every slot is free again for a real player.
#[test]
fn a_flood_of_guessed_resumptions_costs_handshakes_and_leaves_the_real_peer_alone() {
    const FLOOD: usize = 24;
    let config = resuming(20.0);
    let id = identity();
    let (server, relay) = small_server(&id, 4, &config);
    let (client, cid) = join(&server, &id, relay.addr, config.clone());
    let answers: Vec<(Vec<Vec<u8>>, bool)> = std::thread::scope(|scope| {
        let flood: Vec<_> = (0..FLOOD)
            .map(|n| {
                let (server, id) = (&server, &id);
                scope.spawn(move || {
                    let mut secret: [u8; 16] = rand::random();
                    secret[0] = n as u8;
                    present(server, id, &resume_bytes(4, cid, secret))
                })
            })
            .collect();
        flood.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (answers, closed) in &answers {
        assert!(*closed, "every flooding session ends");
        assert!(
            answers.is_empty() || *answers == refusal(4, 0),
            "refused as a wrong secret or not admitted at all: {answers:?}"
        );
    }
    let refused = answers.iter().filter(|(a, _)| !a.is_empty()).count();
    assert!(refused >= 1, "some guesses reached the secret check");
    send_reliable(&server, cid, b"still here");
    let (got, at_client) = receives(&client, b"still here");
    assert!(got, "{at_client:?}");
    let mut at_server = Vec::new();
    drain(&server, &mut at_server);
    assert!(
        at_server.is_empty(),
        "the server reported the flood to the game: {at_server:?}"
    );
    let stats = server.peer_stats(cid).unwrap();
    assert_eq!((stats.interruptions, stats.resumptions), (0, 0));
    // Three real players fill the rest of the server: the flood holds no slot.
    let others: Vec<_> = (0..3)
        .map(|_| join(&server, &id, server.local_addr().unwrap(), config.clone()))
        .collect();
    assert_eq!(others.len(), 3);
    eprintln!("{refused} of {FLOOD} flooding handshakes reached the secret check");
}

/// A server that keeps places and a client that will not come back (its `resume_window`
/// 0): the server must not tell the game the peer is interrupted nor hold it for the
/// window, since nothing will resume it; it ends as without resumption (`ack_timeout`, or
/// the idle timeout), with the reason that says so.
#[test]
fn a_client_without_resumption_is_not_kept_by_a_server_with_it() {
    let id = identity();
    let server = start_server(&id, resuming(20.0));
    let relay = Relay::start_from(server.local_addr().unwrap(), PathConfig::clean(), ip(2));
    let (_client, cid) = join(&server, &id, relay.addr, EndpointConfig::default());
    relay.black_out(Duration::from_secs(60));
    let mut seen = Vec::new();
    let end = wait_for(&server, &mut seen, Duration::from_secs(40), |e| {
        matches!(e, MpEvent::PeerDisconnected { .. })
    });
    assert!(
        !seen
            .iter()
            .any(|e| matches!(e, MpEvent::SessionInterrupted(_))),
        "the server reported an interruption nothing will resume: {seen:?}"
    );
    match end {
        Some(MpEvent::PeerDisconnected { id, reason }) => {
            assert_eq!(id, cid);
            assert!(!reason.contains("resume_window"), "{reason}");
        }
        other => panic!("the peer did not end: {other:?} {seen:?}"),
    }
}
