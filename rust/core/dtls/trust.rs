//! The DTLS side of `ca_certificate`: webrtc-dtls's certificate callback backed by the
//! verifier HTTPPool uses too (`core/trust.rs`), so both accept the same certificates,
//! including a trusted self-signed one marked CA:TRUE.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use crate::core::trust::TrustVerifier;

/// webrtc-dtls's `verify_peer_certificate` callback (its own alias is crate-private).
pub(crate) type VerifyPeer = Arc<
    dyn Fn(&[Vec<u8>], &[CertificateDer<'static>]) -> Result<(), webrtc_dtls::Error> + Send + Sync,
>;

/// A callback that accepts the server's certificate list when it chains to a certificate
/// in `ca_pem`, or is one of them, and is valid for `server_name`.
pub(crate) fn chain_verifier(ca_pem: &str, server_name: &str) -> Result<VerifyPeer, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = TrustVerifier::new(ca_pem, "ca_certificate", false, provider)?;
    let name = server_name.to_owned();
    Ok(Arc::new(move |certs: &[Vec<u8>], _| {
        verifier.verify_chain(certs, &name).map_err(|e| {
            webrtc_dtls::Error::Other(format!(
                "the server's certificate is not trusted by ca_certificate: {e}"
            ))
        })
    }))
}
