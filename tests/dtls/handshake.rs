//! Handshakes, verification modes, limits and clean endings over real loopback UDP.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use netkit::core::dtls::{
    ClientCredentials, ClientOptions, DisconnectReason, DtlsEvent, SendError, ServerCredentials,
    ServerOptions, ServerVerification, Status, psk_map,
};
use netkit_test_support::dtls::*;

fn failed(e: &DtlsEvent) -> bool {
    matches!(e, DtlsEvent::ConnectionFailed { .. })
}

#[test]
fn handshake_and_echo() {
    let id = identity();
    let (server, mut sev) = start_server(cert_server_options(&id));
    let (client, mut cev, peer) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    assert!(peer >= 2);
    assert_eq!(client.status(), Status::Connected);
    assert_eq!(client.peer_address(1), Some(server.local_addr()));
    assert!(server.peer_address(peer).is_some());
    client.send(1, b"ping").unwrap();
    let got = sev.next_packet(Duration::from_secs(3));
    assert_eq!(
        got,
        Some(DtlsEvent::Packet {
            id: peer,
            data: b"ping".to_vec()
        })
    );
    server.send(peer, b"pong").unwrap();
    let got = cev.next_packet(Duration::from_secs(3));
    assert_eq!(
        got,
        Some(DtlsEvent::Packet {
            id: 1,
            data: b"pong".to_vec()
        })
    );
    let s = server.stats_snapshot();
    assert_eq!(
        (s.peers, s.handshakes_ok, s.packets_in, s.packets_out),
        (1, 1, 1, 1)
    );
}

#[test]
fn pinned_fingerprint_wrong_fails() {
    let id = identity();
    let other = identity();
    let (server, _sev) = start_server(cert_server_options(&id));
    // Plain lowercase hex is accepted as well as the colon form.
    let mut opts = pinned_client_options(&other);
    opts.credentials = ClientCredentials::Certificate(ServerVerification::Pinned {
        sha256_fingerprint: other.sha256_fingerprint.replace(':', "").to_lowercase(),
    });
    let (client, mut cev) = start_client(server.local_addr(), opts);
    let e = cev
        .wait(Duration::from_secs(5), failed)
        .expect("verification must fail");
    assert!(format!("{e:?}").contains("fingerprint") || format!("{e:?}").contains("handshake"));
    assert_eq!(client.status(), Status::Error);
}

#[test]
fn ca_chain_right_and_missing() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let mut sopts = ServerOptions::new(ServerCredentials::Certificate {
        certificate_pem: leaf.pem(),
        private_key_pem: leaf_key.serialize_pem(),
    });
    sopts.session = fast_session();
    let (server, mut sev) = start_server(sopts);

    let mut copts = ClientOptions::new(ClientCredentials::Certificate(
        ServerVerification::CaChain {
            ca_pem: ca.pem(),
            server_name: "localhost".into(),
        },
    ));
    copts.session = fast_session();
    let (_ok, _cev, _id) = connect_pair(&server, &mut sev, copts.clone());

    // A CA that did not sign the server's certificate.
    let other_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other_ca = other_params.self_signed(&other_key).unwrap();
    copts.credentials = ClientCredentials::Certificate(ServerVerification::CaChain {
        ca_pem: other_ca.pem(),
        server_name: "localhost".into(),
    });
    let (_bad, mut bev) = start_client(server.local_addr(), copts);
    assert!(bev.wait(Duration::from_secs(5), failed).is_some());
}

fn psk_server() -> ServerOptions {
    let mut keys = HashMap::new();
    keys.insert(b"player".to_vec(), b"sixteen byte key".to_vec());
    let mut o = ServerOptions::new(ServerCredentials::Psk {
        lookup: psk_map(keys),
        identity_hint: None,
    });
    o.session = fast_session();
    o
}

pub fn psk_client(key: &[u8]) -> ClientOptions {
    let mut o = ClientOptions::new(ClientCredentials::Psk {
        identity: b"player".to_vec(),
        key: key.to_vec(),
    });
    o.session = fast_session();
    o
}

#[test]
fn psk_right_and_wrong() {
    let (server, mut sev) = start_server(psk_server());
    let (client, mut cev, peer) = connect_pair(&server, &mut sev, psk_client(b"sixteen byte key"));
    client.send(1, b"hi").unwrap();
    assert!(sev.got_packet(peer, b"hi", Duration::from_secs(3)));
    // Both directions pass the client's and server's own record authentication.
    server.send(peer, b"ho").unwrap();
    assert!(cev.got_packet(1, b"ho", Duration::from_secs(3)));
    let (_bad, mut bev) = start_client(server.local_addr(), psk_client(b"wrong key wrong!"));
    assert!(bev.wait(Duration::from_secs(5), failed).is_some());
}

#[test]
fn silent_port_fails_within_handshake_timeout() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut opts = pinned_client_options(&identity());
    opts.session.handshake_timeout = Duration::from_millis(800);
    let started = Instant::now();
    let (client, mut cev) = start_client(silent.local_addr().unwrap(), opts);
    let e = cev.wait(Duration::from_secs(3), failed).expect("must fail");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(format!("{e:?}").contains("800 ms"), "{e:?}");
    assert_eq!(client.status(), Status::Error);
}

#[test]
fn oversized_payload_and_unknown_peer_error() {
    let id = identity();
    let (server, mut sev) = start_server(cert_server_options(&id));
    let (client, _cev, peer) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    let max = client.max_payload();
    assert_eq!(max, 1200 - 37);
    assert!(client.send(1, &vec![0; max]).is_ok());
    assert_eq!(
        client.send(1, &vec![0; max + 1]),
        Err(SendError::TooLarge { len: max + 1, max })
    );
    assert!(matches!(
        server.send(peer, &vec![0; 5000]),
        Err(SendError::TooLarge { .. })
    ));
    assert_eq!(server.send(999, b"x"), Err(SendError::UnknownPeer(999)));
    assert_eq!(client.send(5, b"x"), Err(SendError::UnknownPeer(5)));
}

#[test]
fn max_clients_refuses_cleanly() {
    let id = identity();
    let mut opts = cert_server_options(&id);
    opts.max_clients = 1;
    let (server, mut sev) = start_server(opts);
    let (_first, _fev, _) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    let started = Instant::now();
    let (_second, mut second_ev) = start_client(server.local_addr(), pinned_client_options(&id));
    let e = second_ev
        .wait(Duration::from_secs(5), failed)
        .expect("refused");
    // The refusal is an alert, so it arrives long before the 3 s handshake timeout.
    assert!(started.elapsed() < Duration::from_secs(2), "{e:?}");
    assert_eq!(server.stats_snapshot().peers, 1);
}

#[test]
fn close_is_seen_promptly_both_ways() {
    let id = identity();
    let (server, mut sev) = start_server(cert_server_options(&id));
    let (client, mut cev, peer) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    client.close();
    let e = sev
        .wait(Duration::from_secs(2), |e| {
            matches!(e, DtlsEvent::PeerDisconnected { .. })
        })
        .expect("server sees the close");
    assert!(
        matches!(e, DtlsEvent::PeerDisconnected { id, reason: DisconnectReason::ClosedByPeer, .. } if id == peer)
    );
    // After close the client reports nothing more.
    assert!(cev.collect_for(Duration::from_millis(200)).is_empty());

    let (_client2, mut cev2, peer2) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    assert!(server.disconnect_peer(peer2));
    let e = cev2
        .wait(Duration::from_secs(2), |e| {
            matches!(e, DtlsEvent::PeerDisconnected { .. })
        })
        .expect("client sees the kick");
    assert!(matches!(
        e,
        DtlsEvent::PeerDisconnected {
            reason: DisconnectReason::ClosedByPeer,
            ..
        }
    ));
    assert!(
        sev.wait(Duration::from_secs(2), |e| matches!(
            e,
            DtlsEvent::PeerDisconnected {
                reason: DisconnectReason::ClosedLocally,
                ..
            }
        ))
        .is_some()
    );

    let (_client3, mut cev3, _) = connect_pair(&server, &mut sev, pinned_client_options(&id));
    drop(server);
    assert!(
        cev3.wait(Duration::from_secs(2), |e| matches!(
            e,
            DtlsEvent::PeerDisconnected { .. }
        ))
        .is_some()
    );
    assert!(sev.collect_for(Duration::from_millis(200)).is_empty());
}

#[test]
fn idle_timeout_fires() {
    let id = identity();
    let mut sopts = cert_server_options(&id);
    sopts.session.idle_timeout = Duration::from_millis(700);
    let (server, mut sev) = start_server(sopts);
    let mut copts = pinned_client_options(&id);
    copts.session.idle_timeout = Duration::from_secs(30);
    let (_client, mut cev, _peer) = connect_pair(&server, &mut sev, copts);
    let started = Instant::now();
    let e = sev
        .wait(Duration::from_secs(3), |e| {
            matches!(e, DtlsEvent::PeerDisconnected { .. })
        })
        .expect("idle timeout");
    assert!(matches!(
        e,
        DtlsEvent::PeerDisconnected {
            reason: DisconnectReason::IdleTimeout,
            ..
        }
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server said close_notify on the way out.
    assert!(
        cev.wait(Duration::from_secs(2), |e| matches!(
            e,
            DtlsEvent::PeerDisconnected { .. }
        ))
        .is_some()
    );
}

#[test]
fn keepalive_holds_an_idle_session_open() {
    let id = identity();
    let mut sopts = cert_server_options(&id);
    sopts.session.idle_timeout = Duration::from_millis(800);
    let (server, mut sev) = start_server(sopts);
    let mut copts = pinned_client_options(&id);
    copts.session.keepalive_interval = Some(Duration::from_millis(200));
    let (_client, _cev, _peer) = connect_pair(&server, &mut sev, copts);
    let events = sev.collect_for(Duration::from_millis(2000));
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(server.stats_snapshot().peers, 1);
}

/// RSA keys, as Godot's `Crypto.generate_rsa()` makes them (PKCS#1 PEM), serve with
/// ECDHE-RSA; ECDSA stays what `generate_self_signed` makes.
#[test]
fn rsa_server_keys_both_sizes_and_pkcs1_or_pkcs8() {
    for (key, out) in [
        (RSA2048_PKCS8, RSA2048_PKCS1),
        (RSA2048_PKCS8, RSA2048_PKCS8),
        (RSA4096_PKCS8, RSA4096_PKCS8),
    ] {
        let id = self_signed_with(key, out);
        let (server, mut sev) = start_server(cert_server_options(&id));
        let (client, mut cev, peer) = connect_pair(&server, &mut sev, pinned_client_options(&id));
        client.send(1, b"rsa up").unwrap();
        assert!(sev.got_packet(peer, b"rsa up", Duration::from_secs(3)));
        server.send(peer, b"rsa down").unwrap();
        assert!(cev.got_packet(1, b"rsa down", Duration::from_secs(3)));
    }
}
