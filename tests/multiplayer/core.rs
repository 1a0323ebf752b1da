//! The multiplayer core (renet over netkit's DTLS) against real DTLS sessions on
//! 127.0.0.1, directly and through a relay that loses, duplicates and reorders.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netkit::core::multiplayer::{
    Endpoint, EndpointConfig, LinkConfig, MpEvent, Target, TransferMode,
};
use netkit_test_support::mp::*;

fn packets(ep: &netkit::core::multiplayer::Endpoint, events: &mut Vec<MpEvent>) {
    while let Some(e) = ep.next_event() {
        events.push(e);
    }
}

/// (channel, mode) -> payloads in arrival order.
fn by_lane(events: &[MpEvent]) -> HashMap<(usize, TransferMode), Vec<Vec<u8>>> {
    let mut out: HashMap<_, Vec<_>> = HashMap::new();
    for e in events {
        if let MpEvent::Packet {
            channel,
            mode,
            data,
            ..
        } = e
        {
            out.entry((*channel, *mode)).or_default().push(data.clone());
        }
    }
    out
}

fn numbered(tag: u8, i: u32) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&i.to_le_bytes());
    v
}

#[test]
fn lossy_relay_reliable_exactly_once_in_order_ordered_never_backwards_and_64k_intact() {
    let id = identity();
    let server = start_server(&id, EndpointConfig::default());
    let relay = lossy_relay(server.local_addr().unwrap(), 0.20, 0.05, 0.10, 7);
    let (client, cid) = join(&server, &id, relay.addr, EndpointConfig::default());
    let big: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    const N: u32 = 1000;
    for i in 0..N {
        for ch in [0usize, 3] {
            client
                .send(
                    Target::Peer(1),
                    ch,
                    TransferMode::Reliable,
                    numbered(ch as u8, i),
                )
                .unwrap();
            server
                .send(
                    Target::Peer(cid),
                    ch,
                    TransferMode::Reliable,
                    numbered(ch as u8, i),
                )
                .unwrap();
        }
        client
            .send(
                Target::Peer(1),
                1,
                TransferMode::UnreliableOrdered,
                numbered(9, i),
            )
            .unwrap();
        if i == N / 2 {
            client
                .send(Target::Peer(1), 2, TransferMode::Reliable, big.clone())
                .unwrap();
        }
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(60);
    let complete = |events: &[MpEvent], lanes: &[usize]| {
        let got = by_lane(events);
        lanes
            .iter()
            .all(|ch| got.get(&(*ch, TransferMode::Reliable)).map_or(0, Vec::len) >= N as usize)
    };
    while Instant::now() < end
        && !(complete(&at_server, &[0, 3])
            && complete(&at_client, &[0, 3])
            && by_lane(&at_server).contains_key(&(2, TransferMode::Reliable)))
    {
        packets(&server, &mut at_server);
        packets(&client, &mut at_client);
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    packets(&server, &mut at_server);
    packets(&client, &mut at_client);
    for (label, events) in [("server", &at_server), ("client", &at_client)] {
        let got = by_lane(events);
        for ch in [0usize, 3] {
            let want: Vec<Vec<u8>> = (0..N).map(|i| numbered(ch as u8, i)).collect();
            let have = got
                .get(&(ch, TransferMode::Reliable))
                .cloned()
                .unwrap_or_default();
            assert_eq!(have.len(), want.len(), "{label} channel {ch}: count");
            assert!(
                have == want,
                "{label} channel {ch}: order or content differs"
            );
        }
    }
    let got = by_lane(&at_server);
    assert_eq!(
        got[&(2, TransferMode::Reliable)],
        vec![big],
        "64 KB message"
    );
    let ordered: Vec<u32> = got
        .get(&(1, TransferMode::UnreliableOrdered))
        .map(|v| {
            v.iter()
                .map(|d| u32::from_le_bytes(d[1..5].try_into().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        ordered.windows(2).all(|w| w[0] < w[1]),
        "unreliable-ordered went backwards"
    );
    assert!(
        ordered.len() > (N / 2) as usize,
        "only {} unreliable-ordered arrived",
        ordered.len()
    );
    let stats = server.peer_stats(cid).expect("stats for the client");
    assert!(
        stats.link.rtt > 0.0 && stats.bytes_received > 0,
        "{stats:?}"
    );
    eprintln!(
        "through the lossy relay: {} unreliable-ordered of {N} delivered; server's view of the client: {stats:?}",
        ordered.len()
    );
    drop(client);
}

#[test]
fn ids_are_random_unique_and_broadcast_reaches_everyone_but_the_excluded() {
    let id = identity();
    let server = start_server(&id, EndpointConfig::default());
    let addr = server.local_addr().unwrap();
    let (a, ida) = join(&server, &id, addr, EndpointConfig::default());
    let (b, idb) = join(&server, &id, addr, EndpointConfig::default());
    assert_ne!(ida, idb);
    for n in [ida, idb] {
        assert!(n >= 2, "id {n}");
    }
    assert_eq!(
        (a.unique_id(), b.unique_id(), server.unique_id()),
        (ida, idb, 1)
    );
    server
        .send(
            Target::AllBut(ida),
            0,
            TransferMode::Reliable,
            b"not a".to_vec(),
        )
        .unwrap();
    server
        .send(Target::All, 0, TransferMode::Reliable, b"all".to_vec())
        .unwrap();
    let mut seen = Vec::new();
    let got_b = wait_for(
        &b,
        &mut seen,
        Duration::from_secs(5),
        |e| matches!(e, MpEvent::Packet { data, .. } if data == b"all"),
    );
    assert!(got_b.is_some());
    assert!(
        seen.iter()
            .any(|e| matches!(e, MpEvent::Packet { data, from: 1, .. } if data == b"not a"))
    );
    let mut seen_a = Vec::new();
    wait_for(
        &a,
        &mut seen_a,
        Duration::from_secs(5),
        |e| matches!(e, MpEvent::Packet { data, .. } if data == b"all"),
    )
    .expect("a got the broadcast");
    assert!(
        !seen_a
            .iter()
            .any(|e| matches!(e, MpEvent::Packet { data, .. } if data == b"not a"))
    );
    // A client leaving is reported to the server with its id.
    drop(a);
    wait_for(
        &server,
        &mut Vec::new(),
        Duration::from_secs(5),
        |e| matches!(e, MpEvent::PeerDisconnected { id, .. } if *id == ida),
    )
    .expect("server saw a leave");
}

#[test]
fn peer_that_stops_acknowledging_is_disconnected_with_a_reason_and_memory_stays_bounded() {
    let id = identity();
    let config = EndpointConfig {
        link: LinkConfig {
            ack_timeout: Duration::from_secs(2),
            send_buffer: 1 << 20,
            ..LinkConfig::default()
        },
        ..EndpointConfig::default()
    };
    let server = start_server(&id, config.clone());
    let relay = lossy_relay(server.local_addr().unwrap(), 0.0, 0.0, 0.0, 1);
    let (_client, cid) = join(&server, &id, relay.addr, config);
    relay
        .blackhole
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let mut max_queued = 0;
    let mut reason = None;
    while started.elapsed() < Duration::from_secs(10) && reason.is_none() {
        let _ = server.send(
            Target::Peer(cid),
            0,
            TransferMode::Reliable,
            vec![7; 10_000],
        );
        if let Some(s) = server.peer_stats(cid) {
            max_queued = max_queued.max(s.link.queued_reliable_bytes);
        }
        while let Some(e) = server.next_event() {
            if let MpEvent::PeerDisconnected { id, reason: r } = e
                && id == cid
            {
                reason = Some(r);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let reason = reason.expect("the silent client was disconnected");
    assert!(
        reason.contains("acknowledged no reliable data") || reason.contains("send_buffer"),
        "{reason}"
    );
    assert!(max_queued <= 1 << 20, "queued {max_queued} bytes");
    eprintln!(
        "after {:?}: {reason}; at most {max_queued} bytes queued",
        started.elapsed()
    );
}

#[test]
fn channel_count_mismatch_and_refused_connections_fail_with_reasons() {
    let id = identity();
    let server = start_server(&id, EndpointConfig::default());
    let addr = server.local_addr().unwrap();
    let other = EndpointConfig {
        link: LinkConfig {
            channel_count: 7,
            ..LinkConfig::default()
        },
        ..EndpointConfig::default()
    };
    let client = start_client(addr, &id, other);
    match wait_for(&client, &mut Vec::new(), Duration::from_secs(10), |e| {
        matches!(e, MpEvent::ConnectionFailed(_))
    }) {
        Some(MpEvent::ConnectionFailed(r)) => assert!(
            r.contains("the server uses channel_count 4 and this client 7"),
            "{r}"
        ),
        other => panic!("{other:?}"),
    }
    server.set_refuse_new_connections(true);
    let client = start_client(addr, &id, EndpointConfig::default());
    let failed = wait_for(&client, &mut Vec::new(), Duration::from_secs(10), |e| {
        matches!(e, MpEvent::ConnectionFailed(_) | MpEvent::PeerConnected(_))
    });
    match failed {
        Some(MpEvent::ConnectionFailed(r)) => {
            assert!(r.contains("refuses new connections"), "{r}")
        }
        other => panic!("{other:?}"),
    }
}

/// The rule of ENet's server, kept: a client is the id it chose, and a second client that
/// chose an id already connected is refused with a reason that says so (forced here by
/// connecting the same endpoint id twice, which random ids make vanishingly rare).
#[test]
fn a_client_keeps_the_id_it_chose_and_a_taken_id_is_refused() {
    let id = identity();
    let server = start_server(&id, EndpointConfig::default());
    let addr = server.local_addr().unwrap();
    let (first, chosen) = join(&server, &id, addr, EndpointConfig::default());
    let second = Endpoint::client_with_id(
        "127.0.0.1",
        addr.port(),
        client_options(&id),
        EndpointConfig::default(),
        chosen,
    )
    .unwrap();
    match wait_for(&second, &mut Vec::new(), Duration::from_secs(10), |e| {
        matches!(e, MpEvent::ConnectionFailed(_) | MpEvent::PeerConnected(_))
    }) {
        Some(MpEvent::ConnectionFailed(r)) => {
            assert!(
                r.contains(&format!("already has a peer with id {chosen}")),
                "{r}"
            )
        }
        other => panic!("{other:?}"),
    }
    drop(first);
}

/// The server's kick reaches the client as a kick, graceful or forced, and the client's
/// reason says so.
#[test]
fn a_kick_is_reported_to_the_client_as_a_kick() {
    let id = identity();
    let server = start_server(&id, EndpointConfig::default());
    let addr = server.local_addr().unwrap();
    for force in [false, true] {
        let (client, chosen) = join(&server, &id, addr, EndpointConfig::default());
        server.disconnect_peer(chosen, force);
        match wait_for(&client, &mut Vec::new(), Duration::from_secs(10), |e| {
            matches!(e, MpEvent::PeerDisconnected { .. })
        }) {
            Some(MpEvent::PeerDisconnected { id: 1, reason }) => {
                assert!(reason.contains("a kick"), "forced {force}: {reason}")
            }
            other => panic!("forced {force}: {other:?}"),
        }
    }
}

/// A megabyte each way at once on one reliable channel (a save going up while a snapshot
/// comes down) arrives both ways, and the link lives on.
#[test]
fn a_megabyte_each_way_at_once_arrives_both_ways() {
    let id = identity();
    let server = start_server(&id, EndpointConfig::default());
    let addr = server.local_addr().unwrap();
    let (client, chosen) = join(&server, &id, addr, EndpointConfig::default());
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 241) as u8).collect();
    client
        .send(Target::Peer(1), 2, TransferMode::Reliable, big.clone())
        .unwrap();
    server
        .send(Target::Peer(chosen), 2, TransferMode::Reliable, big.clone())
        .unwrap();
    let (mut at_server, mut at_client) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        packets(&server, &mut at_server);
        packets(&client, &mut at_client);
        let done = |events: &[MpEvent]| {
            events
                .iter()
                .any(|e| matches!(e, MpEvent::Packet { data, .. } if *data == big))
        };
        let gone = |events: &[MpEvent]| {
            events
                .iter()
                .find(|e| matches!(e, MpEvent::PeerDisconnected { .. }))
                .map(|e| format!("{e:?}"))
        };
        assert_eq!(gone(&at_server), None, "the server lost the client");
        assert_eq!(gone(&at_client), None, "the client lost the server");
        if done(&at_server) && done(&at_client) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("a megabyte did not arrive both ways within 30 s");
}

/// A server restarts and its players all come back at once: 300 clients start connecting
/// in the same instant, and each gets a reliable message through to the server. A client
/// whose handshake fails (the server's handshake gate is full, say) tries again, as a game
/// would. The bench (`--suite mp-scale`) reports how long 1,000 take.
#[test]
fn a_reconnect_storm_of_300_clients_each_gets_a_reliable_message_through() {
    const CLIENTS: usize = 300;
    let id = identity();
    let mut options = server_options(&id);
    options.max_clients = CLIENTS;
    let server = start_server_with(options);
    let addr = server.local_addr().unwrap();
    let started = Instant::now();
    let mut clients: Vec<Endpoint> = (0..CLIENTS)
        .map(|_| start_client(addr, &id, EndpointConfig::default()))
        .collect();
    let mut retries = 0;
    let mut delivered = std::collections::HashSet::new();
    let deadline = started + Duration::from_secs(300);
    while delivered.len() < CLIENTS && Instant::now() < deadline {
        for (i, client) in clients.iter_mut().enumerate() {
            while let Some(e) = client.next_event() {
                match e {
                    MpEvent::PeerConnected(1) => client
                        .send(
                            Target::All,
                            0,
                            TransferMode::Reliable,
                            numbered(9, i as u32),
                        )
                        .unwrap(),
                    MpEvent::ConnectionFailed(_) | MpEvent::PeerDisconnected { .. } => {
                        retries += 1;
                        *client = start_client(addr, &id, EndpointConfig::default());
                        break;
                    }
                    _ => {}
                }
            }
        }
        while let Some(e) = server.next_event() {
            if let MpEvent::Packet { data, .. } = e {
                assert_eq!(data[0], 9, "{data:?}");
                delivered.insert(u32::from_le_bytes(data[1..5].try_into().unwrap()));
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!(
        "{} of {CLIENTS} clients got a message through in {:.1?} ({retries} reconnects)",
        delivered.len(),
        started.elapsed()
    );
    assert_eq!(delivered.len(), CLIENTS, "every client got through");
}

/// Slower timers must not mean slower failure detection: an idle link (no game data)
/// stays up for several idle timeouts on its pings alone, and when the client goes silent
/// the server reports it gone through the idle timeout.
#[test]
fn an_idle_link_stays_up_and_a_silent_peer_is_noticed_through_the_idle_timeout() {
    const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
    let id = identity();
    let mut options = server_options(&id);
    options.session.idle_timeout = IDLE_TIMEOUT;
    let server = start_server_with(options);
    let relay = lossy_relay(server.local_addr().unwrap(), 0.0, 0.0, 0.0, 1);
    let mut client_opts = client_options(&id);
    client_opts.session.idle_timeout = IDLE_TIMEOUT;
    let client = Endpoint::client(
        "127.0.0.1",
        relay.addr.port(),
        client_opts,
        EndpointConfig::default(),
    )
    .unwrap();
    let cid = client.unique_id();
    match wait_for(&client, &mut Vec::new(), Duration::from_secs(20), |e| {
        matches!(e, MpEvent::PeerConnected(_) | MpEvent::ConnectionFailed(_))
    }) {
        Some(MpEvent::PeerConnected(1)) => {}
        other => panic!("the client did not join: {other:?}"),
    }
    wait_for(
        &server,
        &mut Vec::new(),
        Duration::from_secs(20),
        |e| matches!(e, MpEvent::PeerConnected(n) if *n == cid),
    )
    .expect("the server reports the client");

    let mut seen = Vec::new();
    let early = wait_for(&server, &mut seen, IDLE_TIMEOUT * 3, |e| {
        matches!(e, MpEvent::PeerDisconnected { .. })
    });
    assert!(
        early.is_none(),
        "an idle, live client was dropped: {early:?}"
    );
    let early = wait_for(&client, &mut seen, Duration::ZERO, |e| {
        matches!(e, MpEvent::PeerDisconnected { .. })
    });
    assert!(
        early.is_none(),
        "an idle, live server was dropped: {early:?}"
    );

    relay
        .blackhole
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let silent_from = Instant::now();
    let gone = wait_for(&server, &mut seen, IDLE_TIMEOUT * 10, |e| {
        matches!(e, MpEvent::PeerDisconnected { .. })
    });
    match gone {
        Some(MpEvent::PeerDisconnected { id, reason }) => {
            assert_eq!(id, cid);
            assert!(reason.contains("idle timeout"), "{reason}");
            eprintln!(
                "silent client reported after {:.2?} (idle_timeout {IDLE_TIMEOUT:?}): {reason}",
                silent_from.elapsed()
            );
        }
        other => panic!("the silent client was never reported: {other:?}"),
    }
}

/// Clients refused at once (a full server) all hear it, with a reason naming
/// `max_clients`, however soon the refusal comes: one that arrives before the endpoint's
/// task first runs must not wait for a wake-up that already happened (the deterministic
/// check of that is `core::events`' `events_queued_before_the_waker_wake_it`).
#[test]
fn every_client_of_a_full_server_hears_the_refusal() {
    let id = identity();
    let mut options = server_options(&id);
    options.max_clients = 1;
    let server = start_server_with(options);
    let addr = server.local_addr().unwrap();
    let (_first, _) = join(&server, &id, addr, EndpointConfig::default());
    for round in 0..4 {
        let refused: Vec<Endpoint> = (0..40)
            .map(|_| start_client(addr, &id, EndpointConfig::default()))
            .collect();
        for (i, client) in refused.iter().enumerate() {
            match wait_for(client, &mut Vec::new(), Duration::from_secs(12), |e| {
                matches!(e, MpEvent::ConnectionFailed(_) | MpEvent::PeerConnected(_))
            }) {
                Some(MpEvent::ConnectionFailed(r)) => assert!(r.contains("max_clients"), "{r}"),
                other => panic!("round {round}, client {i} of a full server: {other:?}"),
            }
        }
    }
}

/// A peer that completes DTLS and then never joins (keeping its session alive with
/// keepalives) holds a `max_clients` slot only until the join timeout: the game can neither
/// see nor kick it, so the endpoint ends it.
#[test]
fn a_peer_that_never_joins_gives_its_slot_back_within_the_join_timeout() {
    let id = identity();
    let mut options = server_options(&id);
    options.max_clients = 1;
    let server = start_server_with(options);
    let addr = server.local_addr().unwrap();
    let (tx, _squatter_events) = netkit::core::events::channel();
    let mut squatter_options = client_options(&id);
    squatter_options.session.keepalive_interval = Some(Duration::from_millis(300));
    let squatter =
        netkit::core::dtls::DtlsClient::connect("127.0.0.1", addr.port(), squatter_options, tx)
            .unwrap();
    let end = Instant::now() + Duration::from_secs(40);
    while squatter.status() != netkit::core::dtls::Status::Connected {
        assert!(
            Instant::now() < end,
            "the squatter's DTLS handshake completes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let squatting = Instant::now();
    loop {
        assert!(
            Instant::now() < end,
            "a real client never got the slot back"
        );
        let client = start_client(addr, &id, EndpointConfig::default());
        match wait_for(&client, &mut Vec::new(), Duration::from_secs(12), |e| {
            matches!(e, MpEvent::PeerConnected(_) | MpEvent::ConnectionFailed(_))
        }) {
            Some(MpEvent::PeerConnected(1)) => break,
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    assert!(
        squatting.elapsed() < Duration::from_secs(25),
        "freed by the 10 s join timeout, not later: {:?}",
        squatting.elapsed()
    );
    drop(squatter);
}
