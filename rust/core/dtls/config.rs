//! Options for servers and clients, with safe defaults, and their translation into a
//! webrtc-dtls `Config`.
//!
//! Cipher suites are pinned to AES-GCM: `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` or
//! `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256` by the server key's type (clients offer both),
//! and `TLS_PSK_WITH_AES_128_GCM_SHA256` for PSK. webrtc-dtls's server takes the first
//! suite the client offers from its list without looking at its key, so a server offers
//! only its key's suite.
//!
//! webrtc-dtls's `mtu` is the size of a handshake fragment without the record and handshake
//! headers (at 1200 its certificate datagrams were 1225 bytes), so it gets `mtu` minus the
//! record header, handshake header, GCM nonce and tag (49 bytes): every datagram netkit
//! sends is at most `mtu` (1176 at 1200 with a three-certificate chain, measured through a
//! relay that drops anything larger). `send_queue` defaults to 1024 datagrams, for bursts
//! of a thousand packets in one frame.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use webrtc_dtls::cipher_suite::CipherSuiteId;
use webrtc_dtls::config::Config;

use super::certs::{KeyKind, load_identity};
use super::record::GCM_RECORD_OVERHEAD;
use super::verify::{ca_verifier, pin_verifier};

/// What a handshake record adds around a fragment of a handshake message: the record
/// header, the handshake header (RFC 6347 §4.2.2) and, for the encrypted Finished, the
/// GCM nonce and tag. webrtc-dtls's `mtu` is the fragment size, not the datagram size,
/// so it gets `mtu` minus this and every datagram stays within `mtu`.
pub(crate) const HANDSHAKE_RECORD_OVERHEAD: usize = GCM_RECORD_OVERHEAD + 12;

/// The certificate suites: ECDHE with AES-128-GCM, signed with ECDSA or RSA. The CBC
/// suites in webrtc-dtls's default list panic on short records, so they are never offered.
const CERT_SUITES: [CipherSuiteId; 2] = [
    CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
    CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_128_Gcm_Sha256,
];

/// Looks up the pre-shared key for a client's PSK identity; `None` refuses the client.
pub type PskLookup = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Builds a [`PskLookup`] from a fixed identity → key table, the common case.
pub fn psk_map(keys: HashMap<Vec<u8>, Vec<u8>>) -> PskLookup {
    Arc::new(move |identity| keys.get(identity).cloned())
}

/// How a server proves who it is.
#[derive(Clone)]
pub enum ServerCredentials {
    /// A certificate chain and its private key, both PEM: ECDSA P-256 or RSA 2048 to
    /// 4096 bits.
    Certificate {
        /// Leaf first, then any intermediates.
        certificate_pem: String,
        /// PKCS#8, SEC1 (EC) or PKCS#1 (RSA) private key.
        private_key_pem: String,
    },
    /// Pre-shared keys, looked up by the identity each client presents.
    Psk {
        /// Identity → key.
        lookup: PskLookup,
        /// Optional hint sent to clients.
        identity_hint: Option<Vec<u8>>,
    },
}

impl fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Certificate { .. } => f.write_str("ServerCredentials::Certificate"),
            Self::Psk { .. } => f.write_str("ServerCredentials::Psk"),
        }
    }
}

/// How a client decides to trust a server's certificate. There is deliberately no
/// `Default`: the caller has to choose, and skipping verification is spelled out.
#[derive(Clone, Debug)]
pub enum ServerVerification {
    /// Verify the chain against these CA certificates (PEM) and the name in the leaf.
    /// A certificate given here that the server presents as its own is trusted as is,
    /// like a pin, as Godot's `TLSOptions.client(trusted_chain)` does for a self-signed
    /// certificate.
    CaChain {
        /// One or more trusted CA certificates.
        ca_pem: String,
        /// DNS name or IP the leaf must be issued for.
        server_name: String,
    },
    /// Accept exactly the leaf certificate with this SHA-256 fingerprint (colon-separated
    /// hex in any case, or plain hex).
    Pinned {
        /// The expected fingerprint.
        sha256_fingerprint: String,
    },
    /// Accept any certificate. Encrypts but does not authenticate; the node warns.
    InsecureSkipVerify,
}

/// How a client authenticates the session.
#[derive(Clone, Debug)]
pub enum ClientCredentials {
    /// Certificate-based server authentication.
    Certificate(ServerVerification),
    /// Pre-shared key.
    Psk {
        /// Identity sent to the server.
        identity: Vec<u8>,
        /// The shared key.
        key: Vec<u8>,
    },
}

/// Timing and sizing shared by both sides.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// A handshake not finished in this time fails (webrtc-dtls has no timeout itself).
    pub handshake_timeout: Duration,
    /// A session that receives nothing for this long ends with `IdleTimeout`.
    pub idle_timeout: Duration,
    /// When set, an empty application-data record is sent after this much silence.
    /// Off by default: mbedTLS (Godot's `PacketPeerDTLS`) rejects a connection after
    /// four consecutive empty records, so enable it only between netkit peers.
    pub keepalive_interval: Option<Duration>,
    /// Largest datagram this side sends, DTLS overhead included; handshake flights are
    /// fragmented to fit.
    pub mtu: usize,
    /// Outgoing packets that may wait per peer before `send` reports `QueueFull`.
    pub send_queue: usize,
    /// Incoming datagrams that may wait per connected peer for decryption, so a burst
    /// sent in one frame arrives whole; beyond it (or beyond `inbound_queue` × the
    /// larger of `mtu` and 1500 bytes) datagrams are dropped and counted in
    /// `Stats::inbound_drops`. Handshakes get a small fixed queue instead.
    pub inbound_queue: usize,
    /// Received packets that may wait per peer for the node to deliver them. Peers take
    /// turns, so a peer sending faster than the game reads fills only its own queue;
    /// what it sends beyond is dropped and counted in `dispatch_drops`. Connects and
    /// disconnects are never dropped.
    pub dispatch_queue: usize,
    /// This object's own simulated network conditions (its `"simulate"` option), which
    /// beat the process-wide ones; `None` follows the process.
    pub simulate: Option<std::sync::Arc<crate::core::simulate::Conditions>>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            keepalive_interval: None,
            mtu: 1200,
            send_queue: 1024,
            inbound_queue: 1024,
            // A burst of 1,000 packets in one frame, twice over, arrives complete.
            dispatch_queue: 2048,
            simulate: None,
        }
    }
}

impl SessionOptions {
    /// Largest application payload that fits one record in one datagram.
    pub fn max_payload(&self) -> usize {
        self.mtu.saturating_sub(GCM_RECORD_OVERHEAD)
    }
}

/// Everything a server needs.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Certificate or PSK.
    pub credentials: ServerCredentials,
    /// Timing and sizes.
    pub session: SessionOptions,
    /// Connected clients allowed at once; further ClientHellos get a fatal alert.
    pub max_clients: usize,
    /// Handshakes allowed in flight at once, bounding memory under a hello flood.
    pub max_pending_handshakes: usize,
}

impl ServerOptions {
    /// Defaults around the given credentials.
    pub fn new(credentials: ServerCredentials) -> Self {
        Self {
            credentials,
            session: SessionOptions::default(),
            max_clients: 32,
            max_pending_handshakes: 256,
        }
    }
}

/// Everything a client needs.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Verification mode or PSK.
    pub credentials: ClientCredentials,
    /// Timing and sizes.
    pub session: SessionOptions,
    /// Local address to send from; `None` picks an ephemeral port. A fixed port lets a
    /// restarted client come back from the same address.
    pub bind_address: Option<std::net::SocketAddr>,
}

impl ClientOptions {
    /// Defaults around the given credentials.
    pub fn new(credentials: ClientCredentials) -> Self {
        Self {
            credentials,
            session: SessionOptions::default(),
            bind_address: None,
        }
    }
}

fn base_config(session: &SessionOptions) -> Config {
    Config {
        mtu: session.mtu.saturating_sub(HANDSHAKE_RECORD_OVERHEAD).max(1),
        // Retransmit faster than the 1 s default so lossy links finish well within the
        // handshake timeout.
        flight_interval: Duration::from_millis(500),
        ..Default::default()
    }
}

/// Translates server options into a webrtc-dtls config.
pub(crate) fn server_config(options: &ServerOptions) -> Result<Config, String> {
    let mut config = base_config(&options.session);
    match &options.credentials {
        ServerCredentials::Certificate {
            certificate_pem,
            private_key_pem,
        } => {
            let (identity, kind) = load_identity(certificate_pem, private_key_pem)?;
            config.certificates = vec![identity];
            // webrtc-dtls picks the first suite the client offers from this list without
            // looking at the key, so offer only the one this key can sign for.
            config.cipher_suites = vec![match kind {
                KeyKind::EcdsaP256 => CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256,
                KeyKind::Rsa => CipherSuiteId::Tls_Ecdhe_Rsa_With_Aes_128_Gcm_Sha256,
            }];
        }
        ServerCredentials::Psk {
            lookup,
            identity_hint,
        } => {
            let lookup = lookup.clone();
            config.psk = Some(Arc::new(move |identity: &[u8]| {
                lookup(identity)
                    .ok_or_else(|| webrtc_dtls::Error::Other("unknown PSK identity".to_owned()))
            }));
            config.psk_identity_hint = identity_hint.clone();
            config.cipher_suites = vec![CipherSuiteId::Tls_Psk_With_Aes_128_Gcm_Sha256];
        }
    }
    Ok(config)
}

/// Translates client options into a webrtc-dtls config.
pub(crate) fn client_config(options: &ClientOptions) -> Result<Config, String> {
    let mut config = base_config(&options.session);
    match &options.credentials {
        ClientCredentials::Psk { identity, key } => {
            let key = key.clone();
            config.psk = Some(Arc::new(move |_hint: &[u8]| Ok(key.clone())));
            config.psk_identity_hint = Some(identity.clone());
            config.cipher_suites = vec![CipherSuiteId::Tls_Psk_With_Aes_128_Gcm_Sha256];
        }
        ClientCredentials::Certificate(verification) => {
            config.cipher_suites = CERT_SUITES.to_vec();
            // Chain and pin checks run in our callback, which words every failure so a
            // developer can act on it; webrtc-dtls's own check would only be skipped.
            config.insecure_skip_verify = true;
            match verification {
                ServerVerification::CaChain {
                    ca_pem,
                    server_name,
                } => {
                    config.verify_peer_certificate = Some(ca_verifier(ca_pem, server_name)?);
                    config.server_name = server_name.clone();
                }
                ServerVerification::Pinned { sha256_fingerprint } => {
                    config.verify_peer_certificate = Some(pin_verifier(sha256_fingerprint)?);
                }
                ServerVerification::InsecureSkipVerify => {}
            }
        }
    }
    Ok(config)
}
