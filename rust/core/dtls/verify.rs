//! How a client decides to trust the server's certificate: against CA certificates, or a
//! pinned fingerprint. Both run as webrtc-dtls's `verify_peer_certificate` callback so
//! that every refusal is a sentence a developer can act on, not a library error name.

use std::sync::Arc;

use rustls::CertificateError;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::certs::{fingerprint, normalize_fingerprint, parse_certificates};

/// webrtc-dtls's callback type: the server's chain as sent (leaf first) and the chains it
/// verified itself (none here, since its own check is switched off).
pub(crate) type VerifyFn = Arc<
    dyn Fn(&[Vec<u8>], &[CertificateDer<'static>]) -> Result<(), webrtc_dtls::Error> + Send + Sync,
>;

fn refuse(sentence: String) -> webrtc_dtls::Error {
    webrtc_dtls::Error::Other(sentence)
}

/// Trusts a server whose chain leads to one of the CA certificates in `ca_pem` and whose
/// leaf is issued for `server_name`, or whose leaf is itself one of those certificates.
///
/// The second rule is how Godot's `TLSOptions.client(trusted_chain)` treats a self-signed
/// certificate, and `Crypto.generate_self_signed_certificate` marks its certificates as
/// CAs and names the host only in the common name, both of which a WebPKI check rejects
/// for a leaf. Trusting the exact certificate is as strict as a pin.
pub(crate) fn ca_verifier(ca_pem: &str, server_name: &str) -> Result<VerifyFn, String> {
    let cas = parse_certificates(ca_pem)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in &cas {
        roots
            .add(cert.clone())
            .map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
        format!(
            "\"{server_name}\" is not a DNS name or IP address the server certificate could be checked against; set \"server_name\""
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("unusable CA certificates: {e}"))?;
    let wanted = server_name.to_owned();
    Ok(Arc::new(move |chain: &[Vec<u8>], _| {
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| refuse("the server sent no certificate".to_owned()))?;
        if cas.iter().any(|ca| ca.as_ref() == leaf.as_slice()) {
            return Ok(());
        }
        let leaf = CertificateDer::from(leaf.clone());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect();
        webpki
            .verify_server_cert(&leaf, &intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| refuse(explain(&e, &wanted)))
    }))
}

/// Trusts exactly the leaf certificate with this SHA-256 fingerprint.
pub(crate) fn pin_verifier(sha256_fingerprint: &str) -> Result<VerifyFn, String> {
    let want = normalize_fingerprint(sha256_fingerprint)
        .ok_or("the pinned fingerprint is not 32 bytes of hex")?;
    Ok(Arc::new(move |chain: &[Vec<u8>], _| {
        let leaf = chain
            .first()
            .ok_or_else(|| refuse("the server sent no certificate".to_owned()))?;
        let got = fingerprint(leaf);
        if normalize_fingerprint(&got).unwrap_or_default() == want {
            Ok(())
        } else {
            Err(refuse(format!(
                "the server's certificate (SHA-256 {got}) does not match the pinned fingerprint \"pinned_sha256\"; the server changed its certificate, or this is not the expected server"
            )))
        }
    }))
}

/// Words a WebPKI refusal so the developer knows which option or certificate to fix.
#[allow(deprecated)] // `UnsupportedSignatureAlgorithm` is still what some paths return.
fn explain(err: &rustls::Error, server_name: &str) -> String {
    let rustls::Error::InvalidCertificate(cert) = err else {
        return format!("the server's certificate failed verification: {err}");
    };
    match cert {
        CertificateError::UnknownIssuer => "the server's certificate was not issued by any \"ca_certificate\" given; give the CA that signed it (for a self-signed server, its own certificate), or pin it with \"pinned_sha256\"".to_owned(),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
            "the server's certificate is not issued for \"{server_name}\" (checked against its subject alternative names); set \"server_name\" to a name it lists, or connect by that name"
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's certificate has expired; the server needs a new one".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the server's certificate is not valid yet; check the clocks of both machines".to_owned()
        }
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithm
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => "the server's certificate chain is signed with an algorithm that cannot be checked here (ECDSA P-256/P-384, Ed25519 and RSA 2048 bits or more with SHA-256/384/512 can); reissue it".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => "the server's certificate is not issued for server use (its extended key usage lacks serverAuth)".to_owned(),
        CertificateError::Revoked => "the server's certificate has been revoked".to_owned(),
        // webpki's CaUsedAsEndEntity reaches rustls only as an opaque `Other`.
        other if format!("{other:?}").contains("CaUsedAsEndEntity") => "the server presents a CA certificate as its own; give exactly that certificate as \"ca_certificate\" to trust it as is, or pin it with \"pinned_sha256\"".to_owned(),
        other => format!("the server's certificate failed verification ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};

    fn ca_marked_self_signed(common_name: &str) -> rcgen::Certificate {
        // What Godot's Crypto makes: CA flag set, the host only in the common name.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.self_signed(&key).unwrap()
    }

    #[test]
    fn exact_trusted_certificate_is_accepted_and_others_are_explained() {
        let godot_like = ca_marked_self_signed("localhost");
        let verify = ca_verifier(&godot_like.pem(), "localhost").unwrap();
        assert!(verify(&[godot_like.der().to_vec()], &[]).is_ok());

        // Another self-signed certificate, as a different Godot server would have.
        let stranger = ca_marked_self_signed("localhost");
        let err = verify(&[stranger.der().to_vec()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ca_certificate\""), "{err}");
    }

    #[test]
    fn wrong_name_says_which_option_to_set() {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["game.example".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let verify = ca_verifier(&ca.pem(), "other.example").unwrap();
        let err = verify(&[leaf.der().to_vec()], &[]).unwrap_err().to_string();
        assert!(err.contains("\"server_name\""), "{err}");
        let verify = ca_verifier(&ca.pem(), "game.example").unwrap();
        assert!(verify(&[leaf.der().to_vec()], &[]).is_ok());
    }

    #[test]
    fn pin_mismatch_names_both_fingerprint_and_option() {
        let cert = ca_marked_self_signed("x");
        let verify = pin_verifier(&"00".repeat(32)).unwrap();
        let err = verify(&[cert.der().to_vec()], &[]).unwrap_err().to_string();
        assert!(err.contains("pinned_sha256") && err.contains(&fingerprint(cert.der())));
    }
}
