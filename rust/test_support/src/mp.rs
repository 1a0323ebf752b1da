//! Helpers for the multiplayer core tests: endpoints with test credentials, event waiting,
//! and a lossy UDP relay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netkit::core::dtls::{
    ClientCredentials, ClientOptions, SelfSigned, ServerCredentials, ServerOptions,
    ServerVerification, generate_self_signed,
};
use netkit::core::multiplayer::{Endpoint, EndpointConfig, MpEvent};
use netkit::core::runtime;
use rand::{Rng, SeedableRng};
use tokio::net::UdpSocket;

pub fn identity() -> SelfSigned {
    generate_self_signed("netkit-test", &["localhost".to_owned()]).unwrap()
}

pub fn server_options(id: &SelfSigned) -> ServerOptions {
    let mut o = ServerOptions::new(ServerCredentials::Certificate {
        certificate_pem: id.certificate_pem.clone(),
        private_key_pem: id.private_key_pem.clone(),
    });
    o.session.mtu = 1400;
    o.session.handshake_timeout = Duration::from_secs(20);
    o.session.send_queue = 1024;
    o
}

pub fn client_options(id: &SelfSigned) -> ClientOptions {
    let mut o = ClientOptions::new(ClientCredentials::Certificate(ServerVerification::Pinned {
        sha256_fingerprint: id.sha256_fingerprint.clone(),
    }));
    o.session.mtu = 1400;
    o.session.handshake_timeout = Duration::from_secs(20);
    o.session.send_queue = 1024;
    o
}

pub fn start_server(id: &SelfSigned, config: EndpointConfig) -> Endpoint {
    Endpoint::server("127.0.0.1:0".parse().unwrap(), server_options(id), config).unwrap()
}

/// A server on 127.0.0.1 with these DTLS `options` (from [`server_options`], changed) and
/// the default multiplayer configuration.
pub fn start_server_with(options: ServerOptions) -> Endpoint {
    Endpoint::server(
        "127.0.0.1:0".parse().unwrap(),
        options,
        EndpointConfig::default(),
    )
    .unwrap()
}

pub fn start_client(addr: SocketAddr, id: &SelfSigned, config: EndpointConfig) -> Endpoint {
    Endpoint::client("127.0.0.1", addr.port(), client_options(id), config).unwrap()
}

/// Takes events until `pred` matches one (returned) or `within` passes; the others are
/// appended to `seen`.
pub fn wait_for(
    ep: &Endpoint,
    seen: &mut Vec<MpEvent>,
    within: Duration,
    pred: impl Fn(&MpEvent) -> bool,
) -> Option<MpEvent> {
    let end = Instant::now() + within;
    loop {
        while let Some(e) = ep.next_event() {
            if pred(&e) {
                return Some(e);
            }
            seen.push(e);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Connects a client and returns (client, its id: chosen by the client, taken by the server).
pub fn join(
    server: &Endpoint,
    id: &SelfSigned,
    to: SocketAddr,
    config: EndpointConfig,
) -> (Endpoint, i32) {
    let client = start_client(to, id, config);
    let chosen = client.unique_id();
    assert!(chosen >= 2, "a client has its id from the start: {chosen}");
    let mut seen = Vec::new();
    match wait_for(&client, &mut seen, Duration::from_secs(20), |e| {
        matches!(e, MpEvent::PeerConnected(_) | MpEvent::ConnectionFailed(_))
    }) {
        Some(MpEvent::PeerConnected(1)) => {}
        other => panic!("client did not join: {other:?} after {seen:?}"),
    }
    assert_eq!(client.unique_id(), chosen, "the id never changes");
    wait_for(
        server,
        &mut seen,
        Duration::from_secs(20),
        |e| matches!(e, MpEvent::PeerConnected(n) if *n == chosen),
    )
    .expect("server reports the client connected under the id it chose");
    (client, chosen)
}

/// A relay between one client and a server: drops `loss`, duplicates `dup` and holds back
/// `reorder` of the datagrams (a held one goes out after the next). `blackhole` drops
/// everything from the client while set.
pub struct Relay {
    pub addr: SocketAddr,
    pub blackhole: Arc<AtomicBool>,
}

pub fn lossy_relay(server: SocketAddr, loss: f64, dup: f64, reorder: f64, seed: u64) -> Relay {
    let blackhole = Arc::new(AtomicBool::new(false));
    let hole = blackhole.clone();
    let addr = runtime::handle().block_on(async move {
        let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        back.connect(server).await.unwrap();
        let addr = front.local_addr().unwrap();
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut client: Option<SocketAddr> = None;
            let (mut held_up, mut held_down) = (None, None);
            let (mut a, mut b) = (vec![0u8; 9000], vec![0u8; 9000]);
            let mut mangle = move |d: &[u8], held: &mut Option<Vec<u8>>| -> Vec<Vec<u8>> {
                let roll: f64 = rng.random();
                let mut out = Vec::new();
                if roll < loss {
                } else if roll < loss + dup {
                    out.push(d.to_vec());
                    out.push(d.to_vec());
                } else if roll < loss + dup + reorder && held.is_none() {
                    *held = Some(d.to_vec());
                    return out;
                } else {
                    out.push(d.to_vec());
                }
                out.extend(held.take());
                out
            };
            loop {
                tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { continue };
                        client = Some(from);
                        if hole.load(Ordering::Relaxed) { continue }
                        for d in mangle(&a[..n], &mut held_up) {
                            let _ = back.send(&d).await;
                        }
                    }
                    r = back.recv(&mut b) => {
                        let Ok(n) = r else { continue };
                        let Some(to) = client else { continue };
                        for d in mangle(&b[..n], &mut held_down) {
                            let _ = front.send_to(&d, to).await;
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_secs(60)) => return,
                }
            }
        });
        addr
    });
    Relay { addr, blackhole }
}
