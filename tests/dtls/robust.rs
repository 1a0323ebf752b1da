//! Hostile and unlucky networks: garbage from a connected address, a client that dies
//! and comes back on the same port, and a relay that loses, reorders and duplicates.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netkit::core::dtls::{DisconnectReason, DtlsEvent, DtlsServer};
use netkit::core::runtime;
use netkit_test_support::dtls::*;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;
use webrtc_dtls::cipher_suite::CipherSuiteId;
use webrtc_dtls::config::Config;
use webrtc_dtls::conn::DTLSConn;

fn record(content: u8, epoch: u16, seq: u64, body: &[u8]) -> Vec<u8> {
    let mut v = vec![content, 0xfe, 0xfd];
    v.extend_from_slice(&epoch.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes()[2..]);
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn raw_cert_config() -> Config {
    Config {
        insecure_skip_verify: true,
        cipher_suites: vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256],
        ..Default::default()
    }
}

fn raw_psk_config() -> Config {
    Config {
        psk: Some(Arc::new(|_: &[u8]| Ok(b"sixteen byte key".to_vec()))),
        psk_identity_hint: Some(b"player".to_vec()),
        cipher_suites: vec![CipherSuiteId::Tls_Psk_With_Aes_128_Gcm_Sha256],
        ..Default::default()
    }
}

/// A webrtc-dtls client on a socket the test keeps, so it can also send raw datagrams
/// from the very same address.
fn raw_client(server: SocketAddr, bind: &str, config: Config) -> (Arc<UdpSocket>, Arc<DTLSConn>) {
    runtime::handle().block_on(async {
        let sock = UdpSocket::bind(bind).await.unwrap();
        sock.connect(server).await.unwrap();
        let sock = Arc::new(sock);
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            DTLSConn::new(sock.clone(), config, true, None),
        )
        .await
        .unwrap()
        .unwrap();
        (sock, Arc::new(conn))
    })
}

fn raw_roundtrip(
    server: &DtlsServer,
    sev: &mut Events,
    peer: i32,
    conn: &Arc<DTLSConn>,
    tag: &[u8],
) {
    runtime::handle().block_on(conn.write(tag, None)).unwrap();
    let got = sev.next_packet(Duration::from_secs(3));
    assert_eq!(
        got,
        Some(DtlsEvent::Packet {
            id: peer,
            data: tag.to_vec()
        })
    );
    server.send(peer, b"back").unwrap();
    let mut buf = [0u8; 64];
    let n = runtime::handle()
        .block_on(conn.read(&mut buf, Some(Duration::from_secs(3))))
        .unwrap();
    assert_eq!(&buf[..n], b"back");
}

fn garbage(hello: &[u8]) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut out: Vec<Vec<u8>> = (0..50)
        .map(|i| (0..(i * 13 % 300 + 1)).map(|_| rng.random()).collect())
        .collect();
    let full = record(23, 1, 500, &[0x55; 48]);
    out.push(full[..30].to_vec()); // truncated encrypted record
    out.push(record(23, 1, 501, &[1, 2, 3, 4, 5])); // too short for GCM
    out.push(record(23, 3, 502, &[0; 48])); // unknown epoch
    out.push(record(23, 0, 503, b"plaintext app data"));
    out.push(record(21, 0, 504, &[2, 40])); // forged plaintext fatal alert
    out.push(record(21, 0, 505, &[1, 0])); // forged plaintext close_notify
    out.push(record(99, 1, 506, &[0; 48])); // unknown content type
    out.push(record(22, 1, 507, &[9; 48])); // undecryptable handshake record
    out.push(full.clone()); // well-formed but undecryptable app data
    out.push(vec![0xAB; 9000]); // oversize datagram
    out.push(hello.to_vec()); // a second ClientHello from the connected address
    out.push(Vec::new());
    out
}

#[test]
fn garbage_is_ignored_while_session_keeps_working() {
    let hello = capture_client_hello();
    let id = identity();
    let mut sopts = cert_server_options(&id);
    sopts.session.handshake_timeout = Duration::from_millis(800);
    let (server, mut sev) = start_server(sopts);
    let (sock, conn) = raw_client(server.local_addr(), "127.0.0.1:0", raw_cert_config());
    let Some(DtlsEvent::PeerConnected(peer)) = sev.wait(Duration::from_secs(3), is_connected)
    else {
        panic!("no connection")
    };
    for g in garbage(&hello) {
        let _ = runtime::handle().block_on(sock.send(&g));
    }
    std::thread::sleep(Duration::from_millis(200));
    raw_roundtrip(&server, &mut sev, peer, &conn, b"still alive");
    // Let the replacement handshake the forged hello started time out, then check again.
    std::thread::sleep(Duration::from_millis(1200));
    raw_roundtrip(&server, &mut sev, peer, &conn, b"alive later");
    let left = sev.collect_for(Duration::from_millis(50));
    assert!(
        left.iter()
            .all(|e| !matches!(e, DtlsEvent::PeerDisconnected { .. })),
        "{left:?}"
    );
    let s = server.stats_snapshot();
    assert_eq!((s.peers, s.pending_handshakes), (1, 0), "{s:?}");
}

#[test]
fn psk_session_survives_forged_records() {
    let mut keys = std::collections::HashMap::new();
    keys.insert(b"player".to_vec(), b"sixteen byte key".to_vec());
    let mut sopts =
        netkit::core::dtls::ServerOptions::new(netkit::core::dtls::ServerCredentials::Psk {
            lookup: netkit::core::dtls::psk_map(keys),
            identity_hint: None,
        });
    sopts.session = fast_session();
    let (server, mut sev) = start_server(sopts);
    let (sock, conn) = raw_client(server.local_addr(), "127.0.0.1:0", raw_psk_config());
    let Some(DtlsEvent::PeerConnected(peer)) = sev.wait(Duration::from_secs(3), is_connected)
    else {
        panic!("no connection")
    };
    for g in [
        record(23, 1, 501, &[1, 2, 3, 4, 5]),
        record(21, 0, 504, &[2, 40]),
        record(23, 0, 503, b"plaintext app data"),
        record(23, 1, 900, &[0x55; 48]),
    ] {
        runtime::handle().block_on(sock.send(&g)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    raw_roundtrip(&server, &mut sev, peer, &conn, b"psk alive");
}

#[test]
fn abruptly_dead_client_reconnects_from_same_port() {
    let id = identity();
    let (server, mut sev) = start_server(cert_server_options(&id));
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let (sock, conn) = raw_client(server.local_addr(), &bind, raw_cert_config());
    let Some(DtlsEvent::PeerConnected(old)) = sev.wait(Duration::from_secs(3), is_connected) else {
        panic!("no connection")
    };
    // Die without close_notify.
    drop(conn);
    drop(sock);
    std::thread::sleep(Duration::from_millis(100));
    let mut copts = pinned_client_options(&id);
    copts.bind_address = Some(bind.parse().unwrap());
    let (client, mut cev) = start_client(server.local_addr(), copts);
    cev.wait(Duration::from_secs(5), is_connected)
        .expect("reconnected");
    let Some(DtlsEvent::PeerConnected(new)) = sev.wait(Duration::from_secs(3), is_connected) else {
        panic!("server saw no reconnection")
    };
    assert_ne!(old, new);
    let gone = sev
        .wait(Duration::from_secs(2), |e| {
            matches!(e, DtlsEvent::PeerDisconnected { .. })
        })
        .expect("old session retired");
    assert!(
        matches!(gone, DtlsEvent::PeerDisconnected { id, reason: DisconnectReason::Replaced, .. } if id == old)
    );
    client.send(1, b"again").unwrap();
    assert!(sev.got_packet(new, b"again", Duration::from_secs(3)));
    assert_eq!(server.stats_snapshot().peers, 1);
}

/// Forwards between one client and the server, dropping 20 %, duplicating 10 % and
/// holding back 10 % until the next datagram (reordering).
async fn lossy_relay(server: SocketAddr) -> SocketAddr {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(server).await.unwrap();
    let addr = front.local_addr().unwrap();
    tokio::spawn(async move {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut client: Option<SocketAddr> = None;
        let (mut held_up, mut held_down): (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
        let (mut a, mut b) = (vec![0u8; 9000], vec![0u8; 9000]);
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { continue };
                    client = Some(from);
                    for d in mangle(&mut rng, &a[..n], &mut held_up) {
                        let _ = back.send(&d).await;
                    }
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { continue };
                    let Some(to) = client else { continue };
                    for d in mangle(&mut rng, &b[..n], &mut held_down) {
                        let _ = front.send_to(&d, to).await;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(30)) => return,
            }
        }
    });
    addr
}

fn mangle(rng: &mut rand::rngs::StdRng, d: &[u8], held: &mut Option<Vec<u8>>) -> Vec<Vec<u8>> {
    let roll: f64 = rng.random();
    let mut out = Vec::new();
    if roll < 0.2 {
        // lost
    } else if roll < 0.3 {
        out.push(d.to_vec());
        out.push(d.to_vec());
    } else if roll < 0.4 && held.is_none() {
        *held = Some(d.to_vec());
        return out;
    } else {
        out.push(d.to_vec());
    }
    if let Some(h) = held.take() {
        out.push(h);
    }
    out
}

#[test]
fn lossy_relay_handshake_completes_and_duplicates_are_delivered_once() {
    let id = identity();
    let mut sopts = cert_server_options(&id);
    sopts.session.handshake_timeout = Duration::from_secs(20);
    let (server, mut sev) = start_server(sopts);
    let relay = runtime::handle().block_on(lossy_relay(server.local_addr()));
    let mut copts = pinned_client_options(&id);
    copts.session.handshake_timeout = Duration::from_secs(20);
    let (client, mut cev) = start_client(relay, copts);
    cev.wait(Duration::from_secs(20), is_connected)
        .expect("handshake through the relay");
    let Some(DtlsEvent::PeerConnected(peer)) = sev.wait(Duration::from_secs(5), is_connected)
    else {
        panic!("server saw no connection")
    };
    for i in 0..100u32 {
        client.send(1, format!("up {i}").as_bytes()).unwrap();
        server.send(peer, format!("down {i}").as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    for (events, label) in [(&mut sev, "server"), (&mut cev, "client")] {
        let got: Vec<Vec<u8>> = events
            .collect_for(Duration::from_millis(700))
            .into_iter()
            .filter_map(|e| match e {
                DtlsEvent::Packet { data, .. } => Some(data),
                _ => None,
            })
            .collect();
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "{label} received a duplicate");
        assert!(got.len() >= 50, "{label} received only {}", got.len());
        eprintln!("{label}: {} of 100 delivered, none twice", got.len());
    }
}

#[test]
fn panic_inside_a_handshake_ends_only_that_peer() {
    // The PSK lookup runs inside webrtc-dtls's handshake, on the peer's task: a panic
    // there is the closest a test can get to a webrtc-dtls bug.
    let lookup: netkit::core::dtls::PskLookup = Arc::new(|identity: &[u8]| {
        if identity == b"boom" {
            panic!("lookup exploded");
        }
        Some(b"sixteen byte key".to_vec())
    });
    let mut sopts =
        netkit::core::dtls::ServerOptions::new(netkit::core::dtls::ServerCredentials::Psk {
            lookup,
            identity_hint: None,
        });
    sopts.session = fast_session();
    let (server, mut sev) = start_server(sopts);
    let (_ok, _okev, _peer) = connect_pair(&server, &mut sev, psk_client_with(b"player"));
    let mut bad = psk_client_with(b"boom");
    bad.session.handshake_timeout = Duration::from_secs(1);
    let (_bad, mut bev) = start_client(server.local_addr(), bad);
    assert!(
        bev.wait(Duration::from_secs(3), |e| matches!(
            e,
            DtlsEvent::ConnectionFailed { .. }
        ))
        .is_some()
    );
    let (_ok2, _ok2ev, _peer2) = connect_pair(&server, &mut sev, psk_client_with(b"player"));
    let s = server.stats_snapshot();
    assert_eq!((s.peers, s.pending_handshakes), (2, 0), "{s:?}");
}

fn psk_client_with(identity: &[u8]) -> netkit::core::dtls::ClientOptions {
    let mut o =
        netkit::core::dtls::ClientOptions::new(netkit::core::dtls::ClientCredentials::Psk {
            identity: identity.to_vec(),
            key: b"sixteen byte key".to_vec(),
        });
    o.session = fast_session();
    o
}

/// Dropping a server frees its port before the drop returns, as ENet's close does, so a
/// server started again on the same port at once binds; with a client connected and
/// another one stalled mid-handshake (its path blacked out after its first flights), the
/// cases whose tasks end last. Before, that bind failed with "address in use" every time.
#[test]
fn a_dropped_server_frees_its_port_before_the_drop_returns() {
    use netkit_test_support::relay::{PathConfig, Relay};
    let id = identity();
    for round in 0..8u64 {
        let (server, mut events) = start_server(cert_server_options(&id));
        let addr = server.local_addr();
        let (_connected, _, _) = connect_pair(&server, &mut events, pinned_client_options(&id));
        let relay = Relay::start(addr, PathConfig::clean());
        let (_stalled, _) = start_client(relay.addr, pinned_client_options(&id));
        std::thread::sleep(Duration::from_millis(3 + round * 4));
        relay.black_out(Duration::from_secs(30));
        let port = server.port_release();
        drop(server);
        assert!(port.is_released(), "round {round}: the socket is closed");
        let again = std::net::UdpSocket::bind(addr);
        assert!(again.is_ok(), "round {round}: bind {addr} again: {again:?}");
    }
}
