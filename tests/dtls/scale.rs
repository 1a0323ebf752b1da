//! Many clients on one server, and a flood of half-open handshakes.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use netkit::core::dtls::DtlsEvent;
use netkit_test_support::dtls::*;

#[test]
fn hundred_clients_unique_ids_and_broadcast() {
    let id = identity();
    let mut sopts = cert_server_options(&id);
    sopts.max_clients = 128;
    sopts.session.handshake_timeout = Duration::from_secs(20);
    let (server, mut sev) = start_server(sopts);
    let mut clients = Vec::new();
    for _ in 0..100 {
        let mut copts = pinned_client_options(&id);
        copts.session.handshake_timeout = Duration::from_secs(20);
        clients.push(start_client(server.local_addr(), copts));
    }
    let mut ids = HashSet::new();
    let end = Instant::now() + Duration::from_secs(60);
    while ids.len() < 100 && Instant::now() < end {
        if let Some(DtlsEvent::PeerConnected(i)) =
            sev.wait(Duration::from_millis(100), is_connected)
        {
            assert!(i >= 2);
            assert!(ids.insert(i), "id {i} handed out twice");
        }
    }
    assert_eq!(ids.len(), 100);
    for (_, ev) in clients.iter_mut() {
        ev.wait(Duration::from_secs(10), is_connected)
            .expect("client connected");
    }
    assert_eq!(server.broadcast(b"hello all").unwrap(), 100);
    for (_, ev) in clients.iter_mut() {
        let got = ev.next_packet(Duration::from_secs(5));
        assert_eq!(
            got,
            Some(DtlsEvent::Packet {
                id: 1,
                data: b"hello all".to_vec()
            })
        );
    }
    assert_eq!(server.stats_snapshot().peers, 100);
}

#[test]
fn thousand_vanishing_hellos_leave_no_state() {
    let hello = capture_client_hello();
    let id = identity();
    let mut sopts = cert_server_options(&id);
    sopts.session.handshake_timeout = Duration::from_secs(1);
    let (server, mut sev) = start_server(sopts);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    flood(&hello, server.local_addr());
    std::thread::sleep(Duration::from_millis(300));
    let during = server.stats_snapshot();
    assert!(during.pending_handshakes <= 256, "{during:?}");
    let peak = rss_kib();
    // A real client gets in while the flood is still pending.
    // Generous timeout: this test shares two cores with the rest of the suite.
    let mut copts = pinned_client_options(&id);
    copts.session.handshake_timeout = Duration::from_secs(10);
    let (_c, mut cev) = start_client(server.local_addr(), copts);
    // Wait past the client's own timeout, so a failed handshake is reported as such
    // (ConnectionFailed) rather than as nothing at all.
    let first = cev.wait(Duration::from_secs(12), |_| true);
    assert!(
        matches!(first, Some(DtlsEvent::PeerConnected(1))),
        "a real client during the flood got {first:?}"
    );
    sev.wait(Duration::from_secs(1), is_connected)
        .expect("server saw it");
    wait_no_pending(&server);
    let after = server.stats_snapshot();
    let rss_after = rss_kib();
    eprintln!(
        "VmRSS before {before} KiB, with pending {peak} KiB, after timeout {rss_after} KiB; \
         pending during {} after {}; failed {}; dropped {}",
        during.pending_handshakes,
        after.pending_handshakes,
        after.handshakes_failed,
        after.dropped_datagrams
    );
    assert_eq!(after.pending_handshakes, 0, "{after:?}");
    assert_eq!(after.peers, 1);
    assert!(
        rss_after < before + 64 * 1024,
        "RSS grew from {before} to {rss_after} KiB"
    );
    // And it still accepts another one afterwards.
    let (_c2, _cev2, _) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    // A second flood must not grow memory further: the cost is bounded, not leaked.
    flood(&hello, server.local_addr());
    wait_no_pending(&server);
    let rss_second = rss_kib();
    eprintln!("VmRSS after a second flood and timeout: {rss_second} KiB");
    assert_eq!(server.stats_snapshot().pending_handshakes, 0);
    assert!(
        rss_second < rss_after + 16 * 1024,
        "{rss_after} -> {rss_second} KiB"
    );
}

#[test]
fn hello_for_a_lost_handshake_is_refused_without_state() {
    // A client whose pending entry expired or was evicted after the cookie exchange
    // retransmits a ClientHello with message_seq 1, which a fresh webrtc-dtls handshake
    // can never accept. The server must neither keep an entry for it nor stay silent.
    let mut hello = capture_client_hello();
    let seq_at = 13 + 4; // record header, then handshake type and length
    hello[seq_at..seq_at + 2].copy_from_slice(&1u16.to_be_bytes());
    let id = identity();
    let (server, _sev) = start_server(cert_server_options(&id));
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket.send_to(&hello, server.local_addr()).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer");
    // A plaintext fatal handshake_failure alert, smaller than the hello.
    assert_eq!((n, buf[0], buf[13], buf[14]), (15, 21, 2, 40));
    assert_eq!(server.stats_snapshot().pending_handshakes, 0);
}

#[test]
fn client_on_the_port_of_a_vanished_hello_gets_in() {
    // Ephemeral ports are reused: after a flood a real client can be handed the port of
    // a spoofed hello whose entry is still pending. It must get a handshake of its own,
    // not the one webrtc-dtls started for the stranger's hello.
    let hello = capture_client_hello();
    let id = identity();
    let (server, mut sev) = start_server(cert_server_options(&id));
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = stranger.local_addr().unwrap();
    stranger.send_to(&hello, server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.stats_snapshot().pending_handshakes, 1);
    drop(stranger);
    let mut copts = pinned_client_options(&id);
    copts.bind_address = Some(port);
    let (_c, mut cev) = start_client(server.local_addr(), copts);
    let first = cev.wait(Duration::from_secs(5), |_| true);
    assert!(
        matches!(first, Some(DtlsEvent::PeerConnected(1))),
        "the client on a reused port got {first:?}"
    );
    sev.wait(Duration::from_secs(1), is_connected)
        .expect("server saw it");
}

fn flood(hello: &[u8], to: std::net::SocketAddr) {
    // 1,000 distinct source ports (sockets are held so the kernel cannot reuse a port),
    // all closed together afterwards: the clients vanish.
    let sockets: Vec<_> = (0..1000)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, s) in sockets.iter().enumerate() {
        s.send_to(hello, to).unwrap();
        // Paced just enough that the kernel's receive buffer does not drop most of them.
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Handshake timeout is 1 s; allow scheduling slack on a busy two-core machine.
fn wait_no_pending(server: &netkit::core::dtls::DtlsServer) {
    let end = Instant::now() + Duration::from_secs(5);
    while server.stats_snapshot().pending_handshakes > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
}
