//! Which server certificates to trust, shared by `HTTPPool.trusted_ca_pem` and DTLSPeer's
//! `ca_certificate`: a chain to a trusted certificate (checked by webpki), or a server
//! certificate that is itself one of the certificates the game said to trust.
//!
//! The second case exists because `openssl req -x509` (OpenSSL's default self-signed
//! certificate, and what most development servers run) marks its certificate
//! `basicConstraints CA:TRUE`. webpki refuses a CA certificate as a server certificate
//! (`CaUsedAsEndEntity`), even when it is the very certificate that was trusted; OpenSSL
//! and mbedTLS (so Godot's HTTPRequest and PacketPeerDTLS) accept it, because a trusted
//! certificate is a trust anchor and needs no chain. We accept it the same way, and still
//! check its dates, its host name and (when it has one) its extended key usage.
//!
//! For DTLS the same verifier runs as webrtc-dtls's `verify_peer_certificate` callback,
//! with webrtc-dtls's own webpki check off (it still checks the handshake signature).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A rustls server-certificate verifier: webpki against the roots, plus exact matches of
/// the certificates the game trusted (see the module docs).
#[derive(Debug)]
pub struct TrustVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    trusted: Vec<CertificateDer<'static>>,
}

impl TrustVerifier {
    /// Trusts the certificates in `pem` (named `property` in error messages), plus the
    /// bundled public roots when `public_roots` is true. An empty `pem` with public roots
    /// trusts the public roots only; an empty `pem` without them is an error.
    pub fn new(
        pem: &str,
        property: &str,
        public_roots: bool,
        provider: Arc<CryptoProvider>,
    ) -> Result<TrustVerifier, String> {
        let mut roots = if public_roots {
            RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }
        } else {
            RootCertStore::empty()
        };
        let trusted = if pem.trim().is_empty() && public_roots {
            Vec::new()
        } else {
            parse_pem(pem, property)?
        };
        for cert in &trusted {
            roots.add(cert.clone()).map_err(|e| {
                format!("{property} holds a certificate that cannot be used as a trust anchor: {e}")
            })?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{property} cannot be used: {e}"))?;
        Ok(TrustVerifier { webpki, trusted })
    }

    /// True when the game gave certificates of its own (not only the public roots).
    pub fn has_own_certificates(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// Verifies a certificate list as a server sent it (leaf first) for `server_name`, for
    /// protocols that verify outside rustls (DTLS). The handshake signature is the
    /// protocol's business.
    pub fn verify_chain(&self, der_chain: &[Vec<u8>], server_name: &str) -> Result<(), String> {
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| format!("'{server_name}' is not a valid server name"))?;
        let certs: Vec<CertificateDer<'_>> = der_chain
            .iter()
            .map(|d| CertificateDer::from(d.as_slice()))
            .collect();
        let (leaf, intermediates) = certs
            .split_first()
            .ok_or("the server sent no certificate")?;
        self.verify_server_cert(leaf, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn parse_pem(pem: &str, property: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        certs.push(cert.map_err(|e| format!("{property} could not be read: {e}"))?);
    }
    if certs.is_empty() {
        return Err(format!(
            "{property} holds no certificate: expected one or more '-----BEGIN CERTIFICATE-----' blocks"
        ));
    }
    Ok(certs)
}

/// The checks a trusted certificate presented as the server's own still has to pass:
/// its validity dates, the name, and an extended key usage that allows a TLS server.
fn check_trusted_leaf(
    leaf: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let bad_encoding = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|_| bad_encoding())?;
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now_secs < cert.validity().not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now_secs > cert.validity().not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    if let Ok(Some(eku)) = cert.extended_key_usage()
        && !(eku.value.server_auth || eku.value.any)
    {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::InvalidPurpose,
        ));
    }
    let parsed = ParsedCertificate::try_from(leaf)?;
    verify_server_name(&parsed, server_name)
}

impl ServerCertVerifier for TrustVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(err) => {
                if !self
                    .trusted
                    .iter()
                    .any(|t| t.as_ref() == end_entity.as_ref())
                {
                    // webpki stops at "CA used as end entity" before looking for an issuer;
                    // for a certificate nobody trusted the useful truth is "unknown issuer".
                    if format!("{err:?}").contains("CaUsedAsEndEntity") {
                        return Err(rustls::Error::InvalidCertificate(
                            CertificateError::UnknownIssuer,
                        ));
                    }
                    return Err(err);
                }
                check_trusted_leaf(end_entity, server_name, now)?;
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// What `openssl req -x509` makes: self-signed, `basicConstraints CA:TRUE`.
    fn openssl_style(names: &[&str]) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    fn der(pem: &str) -> Vec<u8> {
        parse_pem(pem, "x").unwrap()[0].to_vec()
    }

    #[test]
    fn trusted_ca_marked_leaf_is_accepted_for_its_name_only() {
        let pem = openssl_style(&["localhost"]);
        let verifier = TrustVerifier::new(&pem, "ca_certificate", false, provider()).unwrap();
        verifier.verify_chain(&[der(&pem)], "localhost").unwrap();
        let wrong = verifier
            .verify_chain(&[der(&pem)], "evil.example.com")
            .unwrap_err();
        assert!(wrong.contains("not valid for name"), "{wrong}");
        let other = openssl_style(&["localhost"]);
        let untrusted = verifier
            .verify_chain(&[der(&other)], "localhost")
            .unwrap_err();
        assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    }

    #[test]
    fn bad_pem_names_the_property() {
        let err = TrustVerifier::new("garbage", "trusted_ca_pem", true, provider()).unwrap_err();
        assert!(err.contains("trusted_ca_pem holds no certificate"), "{err}");
        assert!(TrustVerifier::new("", "trusted_ca_pem", true, provider()).is_ok());
    }
}
