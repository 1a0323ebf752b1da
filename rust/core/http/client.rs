//! Builds the shared reqwest client: rustls with ring and bundled Mozilla roots, so the
//! same code works on Linux, in a headless server and on Android (no OpenSSL, no
//! platform verifier that needs JNI set up). Certificates from `trusted_ca_pem` are
//! checked by the verifier shared with DTLS (`core/trust.rs`).
//!
//! reqwest runs with `rustls-no-provider` and a preconfigured rustls `ClientConfig` on the
//! *ring* provider with `webpki-roots`, plus `trusted_ca_pem`; the platform-verifier crate
//! is compiled by reqwest's feature but never called. ALPN offers `h2` then `http/1.1`.
//! `verify_tls = false` installs a verifier that accepts any certificate but still checks
//! handshake signatures. TLS error messages advise setting `trusted_ca_pem` only when it is
//! empty; when it is set they say it does not hold the server's certificate or CA.
//!
//! Three clients per pool (`Clients`): `pooled` for requests, `fresh` for stale-connection
//! resends, `identity` for downloads. hyper's own head limits are set above the pool's
//! (`http1_max_headers` 512; an HTTP/2 header list of 1 MiB; hyper's HTTP/1.1 buffer takes
//! any head below 408 KiB), so the pool's check, with its sentence, refuses first. Idle
//! connections expire after `pool_idle_timeout` (default 4 s, below the 5 s after which
//! Node.js and Apache close them).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::settings::PoolSettings;
use crate::core::trust::TrustVerifier;

/// Most header fields a response may carry. Godot's HTTPRequest takes at least 302; hyper's
/// default is 100. Each HTTP/1.1 response parse reserves room for this many (about 24 KiB).
pub const MAX_RESPONSE_HEADERS: usize = 512;

/// Most bytes a response's header fields may take, counted as on the wire in HTTP/1.1:
/// name, value and 4 bytes (`": "` and CRLF) per field. Checked by the pool itself for
/// every protocol (exec.rs), so the bound is the same over HTTP/1.1 and HTTP/2; the
/// protocol limits below it are set higher so they never refuse first.
pub const MAX_RESPONSE_HEAD_BYTES: usize = 256 * 1024;

/// HTTP/2's header-list limit (RFC 9113 counts 32 bytes per field on top of name and
/// value), set well above [`MAX_RESPONSE_HEAD_BYTES`] so that the pool's own check, with its
/// clear message, refuses first; h2 refuses beyond it with a bare protocol error, and keeps
/// decoding memory bounded. hyper's HTTP/1.1 read buffer likewise accepts any head below
/// 408 KiB and refuses larger ones with a parse error the pool maps to the same kind.
const H2_MAX_HEADER_LIST: u32 = 1024 * 1024;

/// The clients one pool sends through. `pooled` keeps connections alive and carries every
/// attempt; `fresh` keeps no idle connection, so a request sent through it always opens a
/// new one: that is where a request goes again when a reused keep-alive connection turned
/// out to be closing (see `exec.rs`). Both are cheap handles to shared state.
#[derive(Clone)]
pub(crate) struct Clients {
    pub pooled: reqwest::Client,
    pub fresh: reqwest::Client,
    /// Keeps connections alive like `pooled` but decodes no content coding: downloads use
    /// it, since they count, resume and hash the file's own bytes. reqwest decodes gzip,
    /// Brotli and deflate whenever a response declares them, even when the request asked
    /// for `identity`, and then hides the `Content-Encoding`; through this client the
    /// download sees it and refuses the answer instead of writing something else.
    pub identity: reqwest::Client,
    /// The game set `trusted_ca_pem` (error messages then say something else than "set it").
    pub own_ca: bool,
    /// The pool's own simulated network conditions, if it has some.
    pub simulate: Option<std::sync::Arc<crate::core::simulate::Conditions>>,
}

/// Creates the clients for `settings`; fails with a sentence when `trusted_ca_pem` is unusable.
pub(crate) fn build_clients(settings: &PoolSettings) -> Result<Clients, String> {
    survive_sigpipe();
    if settings.simulate.as_ref().is_some_and(|c| c.seed.is_some()) {
        // New seeded conditions of the pool's own: their sequence starts again.
        crate::core::simulate::restart_seeded();
    }
    let (tls, own_ca) = tls_config(settings)?;
    let pooled = builder(settings, tls.clone())
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .pool_idle_timeout(settings.pool_idle_timeout)
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
    let identity = builder(settings, tls.clone())
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .pool_idle_timeout(settings.pool_idle_timeout)
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
    let fresh = builder(settings, tls)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
    Ok(Clients {
        pooled,
        fresh,
        identity,
        own_ca,
        simulate: settings.simulate.clone(),
    })
}

/// A write to a TCP socket the server already closed raises SIGPIPE, whose default action
/// ends the process: the whole game (a TLS hello sent to a plain HTTP port that answered
/// 400 and closed is enough). Rust programs ignore SIGPIPE from `main`, but netkit is a
/// library loaded into Godot, so the pool installs a handler that does nothing before it
/// opens any connection; the write then fails with EPIPE, which becomes a normal error.
fn survive_sigpipe() {
    #[cfg(unix)]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
            // Failure leaves the default action in place: nothing better to do.
            let _ = signal_hook::flag::register(signal_hook::consts::SIGPIPE, flag);
        });
    }
}

fn builder(settings: &PoolSettings, tls: rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(settings.connect_timeout)
        // Redirects are followed in exec.rs, which decides what crosses to another origin.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(settings.user_agent.clone())
        .http1_max_headers(MAX_RESPONSE_HEADERS)
        .http2_max_header_list_size(H2_MAX_HEADER_LIST)
        .tcp_nodelay(true)
        .gzip(true)
        .brotli(true)
        .deflate(true)
        // Games run behind whatever the player's OS says; a proxy from the environment of
        // a dedicated server would surprise more than help.
        .no_proxy()
}

fn tls_config(settings: &PoolSettings) -> Result<(rustls::ClientConfig, bool), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let (mut config, own_ca) = if settings.verify_tls {
        let verifier =
            TrustVerifier::new(&settings.trusted_ca_pem, "trusted_ca_pem", true, provider)?;
        let own_ca = verifier.has_own_certificates();
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        (config, own_ca)
    } else {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        (config, false)
    };
    // Offer HTTP/2 first: servers that speak it multiplex every request on one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, own_ca))
}

/// The verifier behind `verify_tls = false`: accepts any certificate but still checks
/// handshake signatures, so the connection is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
