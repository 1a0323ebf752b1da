//! A throwaway certificate authority and server certificate, made fresh at every start so
//! tests need no files and the client must be told explicitly what to trust.

use std::error::Error;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

/// What the HTTPS listener needs, plus the PEM a client must trust.
pub struct Tls {
    /// Accepts TLS on a TCP stream, offering ALPN `h2` then `http/1.1`.
    pub acceptor: TlsAcceptor,
    /// PEM of the CA certificate that signed the server certificate.
    pub ca_pem: String,
}

/// Makes a CA, a server certificate for `127.0.0.1` and `localhost` signed by it, and a
/// rustls acceptor serving that certificate with the CA in its chain.
pub fn generate() -> Result<Tls, Box<dyn Error + Send + Sync>> {
    let ca_key = KeyPair::generate()?;
    let ca = ca_params().self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params()?.signed_by(&leaf_key, &ca, &ca_key)?;

    let chain = vec![leaf.der().clone(), ca.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_pem: ca.pem(),
    })
}

/// What `openssl req -x509 -newkey ... -subj /CN=localhost -addext subjectAltName=...`
/// makes: one self-signed certificate marked `basicConstraints CA:TRUE`, served as the
/// server's own certificate (no chain). Clients must trust that very certificate.
pub fn openssl_style_self_signed() -> Result<Tls, Box<dyn Error + Send + Sync>> {
    let key = KeyPair::generate()?;
    let mut params = leaf_params()?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = Vec::new();
    params.extended_key_usages = Vec::new();
    let cert = params.self_signed(&key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_pem: cert.pem(),
    })
}

/// A CA allowed to sign server certificates and nothing else of note.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "godot-netkit test CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A server certificate valid for the loopback address and `localhost`.
fn leaf_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "godot-netkit test server");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}
