//! Builds the shared reqwest client: rustls with ring and bundled Mozilla roots, so the
//! same code works on Linux, in a headless server and on Android (no OpenSSL, no
//! platform verifier that needs JNI set up).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::settings::PoolSettings;

/// Creates a client for `settings`; fails with a sentence when `trusted_ca_pem` is unusable.
pub(crate) fn build_client(settings: &PoolSettings) -> Result<reqwest::Client, String> {
    let tls = tls_config(settings)?;
    let redirect = if settings.max_redirects == 0 {
        reqwest::redirect::Policy::none()
    } else {
        reqwest::redirect::Policy::limited(settings.max_redirects)
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(settings.connect_timeout)
        .redirect(redirect)
        .user_agent(settings.user_agent.clone())
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .tcp_nodelay(true)
        .gzip(true)
        .brotli(true)
        .deflate(true)
        // Games run behind whatever the player's OS says; a proxy from the environment of
        // a dedicated server would surprise more than help.
        .no_proxy()
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))
}

fn tls_config(settings: &PoolSettings) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let mut config = if settings.verify_tls {
        builder
            .with_root_certificates(root_store(&settings.trusted_ca_pem)?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    // Offer HTTP/2 first: servers that speak it multiplex every request on one connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn root_store(extra_pem: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if extra_pem.trim().is_empty() {
        return Ok(roots);
    }
    let mut reader = extra_pem.as_bytes();
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut reader) {
        let cert = cert.map_err(|e| format!("trusted_ca_pem could not be read: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("trusted_ca_pem holds a certificate rustls rejects: {e}"))?;
        added += 1;
    }
    if added == 0 {
        return Err(
            "trusted_ca_pem holds no certificate: expected one or more '-----BEGIN CERTIFICATE-----' blocks"
                .to_string(),
        );
    }
    Ok(roots)
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
