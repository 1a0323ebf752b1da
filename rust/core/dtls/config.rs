//! Options for servers and clients, with safe defaults, and their translation into a
//! webrtc-dtls `Config`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use webrtc_dtls::cipher_suite::CipherSuiteId;
use webrtc_dtls::config::Config;

use super::certs::{fingerprint, load_identity, normalize_fingerprint};
use super::record::GCM_RECORD_OVERHEAD;
use super::trust::chain_verifier;

/// Looks up the pre-shared key for a client's PSK identity; `None` refuses the client.
pub type PskLookup = Arc<dyn Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// Builds a [`PskLookup`] from a fixed identity → key table, the common case.
pub fn psk_map(keys: HashMap<Vec<u8>, Vec<u8>>) -> PskLookup {
    Arc::new(move |identity| keys.get(identity).cloned())
}

/// How a server proves who it is.
#[derive(Clone)]
pub enum ServerCredentials {
    /// An ECDSA P-256 certificate chain and its private key, both PEM.
    Certificate {
        /// Leaf first, then any intermediates.
        certificate_pem: String,
        /// PKCS#8 or SEC1 private key.
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
    /// Largest datagram this side sends, DTLS overhead included.
    pub mtu: usize,
    /// Outgoing packets that may wait per peer before `send` reports `QueueFull`.
    pub send_queue: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            keepalive_interval: None,
            mtu: 1200,
            send_queue: 256,
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
        mtu: session.mtu,
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
            config.certificates = vec![load_identity(certificate_pem, private_key_pem)?];
            // The default list includes CBC suites that panic on short records.
            config.cipher_suites = vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256];
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
            config.cipher_suites = vec![CipherSuiteId::Tls_Ecdhe_Ecdsa_With_Aes_128_Gcm_Sha256];
            match verification {
                ServerVerification::CaChain {
                    ca_pem,
                    server_name,
                } => {
                    // The shared verifier (core/trust.rs) instead of webrtc-dtls's own
                    // webpki check, which refuses a trusted self-signed certificate marked
                    // CA:TRUE (OpenSSL's default). The handshake signature is still checked
                    // by webrtc-dtls before this callback runs.
                    let verifier = chain_verifier(ca_pem, server_name)?;
                    config.insecure_skip_verify = true;
                    config.verify_peer_certificate = Some(verifier);
                    config.server_name = server_name.clone();
                }
                ServerVerification::Pinned { sha256_fingerprint } => {
                    let want = normalize_fingerprint(sha256_fingerprint)
                        .ok_or("the pinned fingerprint is not 32 bytes of hex")?;
                    // Chain checks are replaced by the pin, which is stricter for a
                    // self-signed server: only this exact leaf is accepted.
                    config.insecure_skip_verify = true;
                    config.verify_peer_certificate = Some(Arc::new(move |certs, _| {
                        let leaf = certs.first().ok_or(webrtc_dtls::Error::ErrNoCertificates)?;
                        let got = normalize_fingerprint(&fingerprint(leaf)).unwrap_or_default();
                        if got == want {
                            Ok(())
                        } else {
                            Err(webrtc_dtls::Error::Other(
                                "server certificate does not match the pinned fingerprint"
                                    .to_owned(),
                            ))
                        }
                    }));
                }
                ServerVerification::InsecureSkipVerify => config.insecure_skip_verify = true,
            }
        }
    }
    Ok(config)
}
