//! Certificates and keys: generating a self-signed identity, loading PEM, and the
//! SHA-256 fingerprint used for pinning.
//!
//! RSA keys need the vendored webrtc-dtls's patch (`vendor/webrtc-dtls/NETKIT-PATCH.md`).
//! PKCS#1 keys (what `CryptoKey.save_to_string()` writes for `Crypto.generate_rsa()`) are
//! wrapped in PKCS#8 for ring, and a key that does not belong to the leaf certificate is
//! refused when the server starts. `generate_self_signed` stays ECDSA P-256.

use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use ring::digest::{SHA256, digest};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use webrtc_dtls::crypto::{Certificate, CryptoPrivateKey};

/// A freshly generated identity, in the forms a node needs: PEM to store or hand to
/// Godot, and the fingerprint to give clients for pinning.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    /// The certificate as PEM.
    pub certificate_pem: String,
    /// The PKCS#8 private key as PEM.
    pub private_key_pem: String,
    /// SHA-256 of the certificate DER as colon-separated uppercase hex.
    pub sha256_fingerprint: String,
}

/// Generates an ECDSA P-256 self-signed certificate: smaller and far cheaper to sign
/// with than RSA, so it stays the default. `sans` become DNS/IP subject alt names.
pub fn generate_self_signed(common_name: &str, sans: &[String]) -> Result<SelfSigned, String> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(sans.to_vec()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok(SelfSigned {
        certificate_pem: cert.pem(),
        private_key_pem: key.serialize_pem(),
        sha256_fingerprint: fingerprint(cert.der()),
    })
}

/// SHA-256 of a DER certificate as colon-separated uppercase hex, the form browsers
/// and OpenSSL print.
pub fn fingerprint(der: &[u8]) -> String {
    let hash = digest(&SHA256, der);
    let parts: Vec<String> = hash.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    parts.join(":")
}

/// Brings a fingerprint in either accepted spelling (colon-separated, any case, or
/// plain hex) to plain lowercase hex; `None` when it is not 32 bytes of hex.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// Parses every certificate in a PEM string.
pub fn parse_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| format!("unreadable certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no CERTIFICATE block in the PEM".into());
    }
    Ok(certs)
}

/// The kind of key a server identity holds; it decides the cipher suite the server
/// offers (ECDHE-ECDSA or ECDHE-RSA, both with AES-128-GCM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256, what [`generate_self_signed`] makes.
    EcdsaP256,
    /// RSA 2048 to 4096 bits, what Godot's `Crypto.generate_rsa()` makes.
    Rsa,
}

/// Builds webrtc-dtls's identity from a certificate chain PEM and a private key PEM.
///
/// Accepts ECDSA P-256 keys as PKCS#8 or SEC1 ("EC PRIVATE KEY", which mbedTLS and so
/// Godot write) and RSA keys of 2048 to 4096 bits as PKCS#8 or PKCS#1 ("RSA PRIVATE
/// KEY", what Godot's `CryptoKey.save_to_string()` writes for `Crypto.generate_rsa()`).
/// The key must belong to the first (leaf) certificate: a mismatch would only show up
/// later as every client failing to verify the handshake signature.
pub fn load_identity(
    certificate_pem: &str,
    private_key_pem: &str,
) -> Result<(Certificate, KeyKind), String> {
    let certificate = parse_certificates(certificate_pem)?;
    let key = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => "no private key block in the PEM".to_string(),
        e => format!("unreadable private key PEM: {e}"),
    })?;
    let pkcs8 = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Sec1(k) => sec1_p256_to_pkcs8(k.secret_sec1_der()),
        PrivateKeyDer::Pkcs1(k) => pkcs1_rsa_to_pkcs8(k.secret_pkcs1_der()),
        _ => return Err("unsupported private key format".into()),
    };
    let pair = KeyPair::try_from(pkcs8.as_slice()).map_err(|e| {
        format!(
            "the private key is not a usable ECDSA P-256 key or RSA key of 2048 to 4096 bits ({e})"
        )
    })?;
    let kind = if pair.is_compatible(&PKCS_ECDSA_P256_SHA256) {
        KeyKind::EcdsaP256
    } else if pair.is_compatible(&PKCS_RSA_SHA256) {
        KeyKind::Rsa
    } else {
        return Err(
            "unsupported key type: DTLS here takes ECDSA P-256 keys (DTLSPeer.generate_self_signed()) or RSA keys of 2048 to 4096 bits (Crypto.generate_rsa())".into(),
        );
    };
    if !contains(certificate[0].as_ref(), pair.public_key_raw()) {
        return Err(
            "the private key does not belong to the certificate (the first certificate in the PEM must be the server's own, issued for this key)".into(),
        );
    }
    let private_key = CryptoPrivateKey::from_key_pair(&pair).map_err(|e| e.to_string())?;
    Ok((
        Certificate {
            certificate,
            private_key,
        },
        kind,
    ))
}

/// Whether `needle` occurs in `haystack`. A certificate carries its public key verbatim
/// (DER is canonical), so this tells whether a key pair belongs to a certificate without
/// an X.509 parser.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 envelope, since ring only reads PKCS#8.
fn pkcs1_rsa_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALG: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    pkcs8_envelope(&ALG, pkcs1)
}

/// Wraps a SEC1 EC key in a PKCS#8 envelope naming P-256, since ring only reads PKCS#8.
/// A non-P-256 key produces an envelope ring rejects, which becomes a clear error.
fn sec1_p256_to_pkcs8(sec1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { id-ecPublicKey, prime256v1 }
    const ALG: [u8; 21] = [
        0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
    ];
    pkcs8_envelope(&ALG, sec1)
}

/// PrivateKeyInfo { version 0, algorithm, OCTET STRING key } (RFC 5208).
fn pkcs8_envelope(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut inner = vec![0x02, 0x01, 0x00];
    inner.extend_from_slice(algorithm);
    inner.push(0x04);
    push_der_len(&mut inner, key.len());
    inner.extend_from_slice(key);
    let mut out = vec![0x30];
    push_der_len(&mut out, inner.len());
    out.extend_from_slice(&inner);
    out
}

fn push_der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_loads_and_fingerprint_normalizes() {
        let id = generate_self_signed("netkit", &["localhost".into()]).unwrap();
        load_identity(&id.certificate_pem, &id.private_key_pem).unwrap();
        let plain = normalize_fingerprint(&id.sha256_fingerprint).unwrap();
        assert_eq!(plain.len(), 64);
        assert_eq!(normalize_fingerprint(&plain.to_uppercase()), Some(plain));
        assert!(normalize_fingerprint("AB:CD").is_none());
    }

    #[test]
    fn sec1_key_is_accepted() {
        let id = generate_self_signed("netkit", &[]).unwrap();
        let key = PrivateKeyDer::from_pem_slice(id.private_key_pem.as_bytes()).unwrap();
        let PrivateKeyDer::Pkcs8(k) = key else {
            panic!("rcgen writes PKCS#8")
        };
        // Dig the SEC1 ECPrivateKey out of the PKCS#8 envelope: it is the OCTET STRING
        // after the algorithm identifier.
        let der = k.secret_pkcs8_der();
        let octet = der
            .windows(3)
            .position(|w| w[0] == 0x04 && w[2] == 0x30)
            .unwrap();
        let len = usize::from(der[octet + 1]);
        let sec1 = &der[octet + 2..octet + 2 + len];
        let wrapped = sec1_p256_to_pkcs8(sec1);
        assert!(KeyPair::try_from(wrapped.as_slice()).is_ok());
    }
}
