//! How a client decides to trust the server's certificate: against CA certificates, or a
//! pinned fingerprint. Both run as webrtc-dtls's `verify_peer_certificate` callback so
//! that every refusal is a sentence a developer can act on, not a library error name.
//!
//! A certificate given as `ca_certificate` that the server presents as its own is trusted
//! as is (dates and name still checked, by its subject alternative names or, without any,
//! its common name), as mbedTLS does: Godot's `generate_self_signed_certificate` marks
//! certificates as CAs and names the host only in the common name, which a WebPKI check
//! refuses for a leaf. Other chains go through rustls's WebPKI verifier (`core/trust.rs`).

use std::net::IpAddr;
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
            return check_trusted_as_is(leaf, &wanted).map_err(refuse);
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

/// Checks a certificate the client trusts as is, as mbedTLS (and so Godot) does: it must
/// be within its validity period and issued for `server_name`, by its subject alternative
/// names or, when it has none (Godot's certificates), its common name.
fn check_trusted_as_is(der: &[u8], server_name: &str) -> Result<(), String> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| "the server's certificate could not be parsed".to_owned())?;
    if !cert.validity().is_valid() {
        return Err("the server's certificate has expired or is not valid yet; check its dates and both machines' clocks".to_owned());
    }
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    if dns.is_empty() && ips.is_empty() {
        dns.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_ascii_lowercase),
        );
    }
    let wanted = server_name.trim_end_matches('.').to_ascii_lowercase();
    let issued_for = match wanted.parse::<IpAddr>() {
        Ok(ip) => ips.contains(&ip) || dns.contains(&wanted),
        Err(_) => dns.iter().any(|pattern| dns_matches(pattern, &wanted)),
    };
    if issued_for {
        Ok(())
    } else {
        Err(format!(
            "the server's certificate is not issued for \"{server_name}\" (it names {}); set \"server_name\" to one of those, or connect by that name",
            dns.iter()
                .map(String::as_str)
                .chain(ips.iter().map(|_| "an IP address"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// DNS name matching with a wildcard in the leftmost label only (RFC 6125 §6.4.3).
fn dns_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail == rest),
        None => pattern == name,
    }
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
        // Trusted as is, but still only for the name it carries.
        let elsewhere = ca_verifier(&godot_like.pem(), "evil.example").unwrap();
        let err = verify_err(&elsewhere, &godot_like);
        assert!(
            err.contains("\"server_name\"") && err.contains("localhost"),
            "{err}"
        );

        // Another self-signed certificate, as a different Godot server would have.
        let stranger = ca_marked_self_signed("localhost");
        let err = verify(&[stranger.der().to_vec()], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"ca_certificate\""), "{err}");
    }

    fn verify_err(verify: &VerifyFn, cert: &rcgen::Certificate) -> String {
        verify(&[cert.der().to_vec()], &[]).unwrap_err().to_string()
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_matches("*.example.com", "game.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
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
