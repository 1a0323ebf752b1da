//! Helpers shared by the DTLS integration tests: quick options, event waiting, a
//! captured ClientHello for flood tests, RSA test keys and certificate chains, and a
//! relay that plays a bad network path (relay.rs).

pub use crate::relay;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netkit::core::dtls::{
    ClientCredentials, ClientOptions, DtlsClient, DtlsEvent, DtlsServer, PeerId, SelfSigned,
    ServerCredentials, ServerOptions, ServerVerification, SessionOptions, generate_self_signed,
};
use netkit::core::events::{Budget, EventQueue, channel};

/// Short timeouts so failures show up in seconds.
pub fn fast_session() -> SessionOptions {
    SessionOptions {
        handshake_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(5),
        ..SessionOptions::default()
    }
}

pub fn identity() -> SelfSigned {
    generate_self_signed("netkit-test", &["localhost".to_owned()]).unwrap()
}

pub fn cert_server_options(id: &SelfSigned) -> ServerOptions {
    let mut o = ServerOptions::new(ServerCredentials::Certificate {
        certificate_pem: id.certificate_pem.clone(),
        private_key_pem: id.private_key_pem.clone(),
    });
    o.session = fast_session();
    o
}

pub fn pinned_client_options(id: &SelfSigned) -> ClientOptions {
    let mut o = ClientOptions::new(ClientCredentials::Certificate(ServerVerification::Pinned {
        sha256_fingerprint: id.sha256_fingerprint.clone(),
    }));
    o.session = fast_session();
    o
}

/// Collects events from a queue and waits for matching ones.
pub struct Events {
    queue: EventQueue<DtlsEvent>,
    pub seen: Vec<DtlsEvent>,
}

impl Events {
    pub fn new(queue: EventQueue<DtlsEvent>) -> Self {
        Self {
            queue,
            seen: Vec::new(),
        }
    }

    fn pump(&mut self) {
        self.seen.extend(self.queue.drain(Budget {
            max_events: 0,
            max_time: Duration::ZERO,
        }));
    }

    /// Waits until an event matching `pred` arrives (consuming it), or the time runs out.
    pub fn wait(
        &mut self,
        within: Duration,
        pred: impl Fn(&DtlsEvent) -> bool,
    ) -> Option<DtlsEvent> {
        let end = Instant::now() + within;
        loop {
            self.pump();
            if let Some(i) = self.seen.iter().position(&pred) {
                return Some(self.seen.remove(i));
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets time pass and returns everything that arrived.
    /// The next packet event within `limit` (other events are skipped).
    pub fn next_packet(&mut self, limit: Duration) -> Option<DtlsEvent> {
        self.wait(limit, |e| matches!(e, DtlsEvent::Packet { .. }))
    }

    /// True when `data` from peer `id` arrives within `limit` (other events are skipped).
    pub fn got_packet(&mut self, id: PeerId, data: &[u8], limit: Duration) -> bool {
        let wanted = DtlsEvent::Packet {
            id,
            data: data.to_vec(),
        };
        self.wait(limit, |e| *e == wanted).is_some()
    }

    pub fn collect_for(&mut self, d: Duration) -> Vec<DtlsEvent> {
        std::thread::sleep(d);
        self.pump();
        std::mem::take(&mut self.seen)
    }
}

pub fn start_server(options: ServerOptions) -> (DtlsServer, Events) {
    let (tx, rx) = channel();
    let server = DtlsServer::bind("127.0.0.1:0".parse().unwrap(), options, tx).unwrap();
    (server, Events::new(rx))
}

pub fn start_client(addr: SocketAddr, options: ClientOptions) -> (DtlsClient, Events) {
    let (tx, rx) = channel();
    let client = DtlsClient::connect(&addr.ip().to_string(), addr.port(), options, tx).unwrap();
    (client, Events::new(rx))
}

pub fn is_connected(e: &DtlsEvent) -> bool {
    matches!(e, DtlsEvent::PeerConnected(_))
}

/// Connects a client and waits for both sides to see it; returns the server's id for it.
pub fn connect_pair(
    server: &DtlsServer,
    server_events: &mut Events,
    options: ClientOptions,
) -> (DtlsClient, Events, i32) {
    let (client, mut events) = start_client(server.local_addr(), options);
    events
        .wait(Duration::from_secs(5), is_connected)
        .expect("client connected");
    let Some(DtlsEvent::PeerConnected(id)) =
        server_events.wait(Duration::from_secs(5), is_connected)
    else {
        panic!("server saw no connection")
    };
    (client, events, id)
}

/// Captures the first datagram a client sends: a real ClientHello without cookie.
pub fn capture_client_hello() -> Vec<u8> {
    let trap = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    trap.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let id = identity();
    let (_client, _events) = start_client(trap.local_addr().unwrap(), pinned_client_options(&id));
    let mut buf = [0u8; 2048];
    let (n, _) = trap.recv_from(&mut buf).unwrap();
    buf[..n].to_vec()
}

pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A 2048-bit RSA test key as PKCS#1 ("RSA PRIVATE KEY"), the form Godot's
/// `CryptoKey.save_to_string()` writes. Generated once with openssl; test use only.
pub const RSA2048_PKCS1: &str = include_str!("rsa2048.key.pem");
/// The same key as PKCS#8, the form rcgen signs with.
pub const RSA2048_PKCS8: &str = include_str!("rsa2048.pk8.pem");
/// A 4096-bit RSA test key as PKCS#8.
pub const RSA4096_PKCS8: &str = include_str!("rsa4096.pk8.pem");

/// A self-signed certificate for `key_pem` (PKCS#8) naming "localhost", with its key
/// given as `key_out` (any PEM form of the same key) and its fingerprint.
pub fn self_signed_with(key_pem: &str, key_out: &str) -> SelfSigned {
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    SelfSigned {
        certificate_pem: cert.pem(),
        private_key_pem: key_out.to_owned(),
        sha256_fingerprint: netkit::core::dtls::certs::fingerprint(cert.der()),
    }
}

/// A three-certificate chain, as a server behind a real CA sends it: an RSA-4096 root,
/// an ECDSA intermediate and an RSA-2048 leaf for "localhost". Returns (leaf +
/// intermediate + root PEM, leaf key PEM, root PEM).
pub fn three_certificate_chain() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};
    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, name.to_owned());
        p
    };
    let root_key = KeyPair::from_pem(RSA4096_PKCS8).unwrap();
    let root = ca("netkit test root").self_signed(&root_key).unwrap();
    let mid_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mid = ca("netkit test intermediate")
        .signed_by(&mid_key, &root, &root_key)
        .unwrap();
    let leaf_key = KeyPair::from_pem(RSA2048_PKCS8).unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &mid, &mid_key)
        .unwrap();
    (
        format!("{}{}{}", leaf.pem(), mid.pem(), root.pem()),
        RSA2048_PKCS1.to_owned(),
        root.pem(),
    )
}
