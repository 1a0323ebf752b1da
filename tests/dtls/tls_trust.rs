//! A trusted certificate that is itself the server's certificate, marked CA:TRUE the way
//! `openssl req -x509` marks it, accepted by both HTTPPool (`trusted_ca_pem`) and DTLSPeer
//! (`ca_certificate`), with the host name still checked; and TLS errors that do not tell
//! the user to set what they already set.

use std::time::{Duration, Instant};

use netkit::core::dtls::{
    ClientCredentials, ClientOptions, DtlsEvent, ServerCredentials, ServerOptions,
    ServerVerification,
};
use netkit::core::events::Budget;
use netkit::core::http::{ErrorKind, HttpPool, Method, PoolSettings, RequestSpec, Response};
use netkit_test_support::dtls::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, PKCS_ECDSA_P256_SHA256};

fn get(pool: &HttpPool, url: String) -> Response {
    let id = pool.submit(Ok(RequestSpec {
        method: Method::Get,
        url,
        headers: vec![],
        body: Default::default(),
        final_500: false,
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "request did not finish");
        if let Some(event) = pool.drain(Budget::default()).into_iter().next() {
            assert_eq!(event.id, id);
            return event.response;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn pool(trusted_ca_pem: &str) -> HttpPool {
    HttpPool::new(PoolSettings {
        trusted_ca_pem: trusted_ca_pem.to_owned(),
        max_retries: 2,
        ..PoolSettings::default()
    })
}

#[test]
fn http_pool_accepts_a_trusted_openssl_style_certificate() {
    let srv = netkit_test_support::http_server::start_blocking();
    let res = get(
        &pool(&srv.self_signed_pem),
        format!("{}/json", srv.self_signed_url),
    );
    assert!(res.ok(), "{}", res.error_message);
    assert_eq!(res.http_version, "HTTP/2");

    // Not trusted at all: the advice is to set trusted_ca_pem.
    let res = get(&pool(""), format!("{}/json", srv.self_signed_url));
    assert_eq!(res.error, ErrorKind::Tls, "{}", res.error_message);
    assert_eq!(res.attempts, 1, "a TLS failure is not retried");
    assert!(
        res.error_message.contains("put its certificate"),
        "{}",
        res.error_message
    );

    // trusted_ca_pem set, to something else: the message must not say "set it".
    let res = get(&pool(&srv.ca_pem), format!("{}/json", srv.self_signed_url));
    assert_eq!(res.error, ErrorKind::Tls, "{}", res.error_message);
    assert!(
        res.error_message.contains("trusted_ca_pem is set"),
        "{}",
        res.error_message
    );
    assert!(
        !res.error_message.contains("put its certificate"),
        "{}",
        res.error_message
    );
}

/// An OpenSSL-style self-signed ECDSA P-256 identity for `names` (CA:TRUE, no EKU).
fn openssl_style(names: &[&str]) -> (String, String) {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
}

fn dtls_client(ca_pem: &str, server_name: &str) -> ClientOptions {
    let mut options = ClientOptions::new(ClientCredentials::Certificate(
        ServerVerification::CaChain {
            ca_pem: ca_pem.to_owned(),
            server_name: server_name.to_owned(),
        },
    ));
    options.session = fast_session();
    options
}

#[test]
fn dtls_accepts_a_trusted_openssl_style_certificate_for_its_name_only() {
    let (cert, key) = openssl_style(&["localhost", "127.0.0.1"]);
    let mut sopts = ServerOptions::new(ServerCredentials::Certificate {
        certificate_pem: cert.clone(),
        private_key_pem: key,
    });
    sopts.session = fast_session();
    let (server, mut sev) = start_server(sopts);

    let (_ok, _cev, _id) = connect_pair(&server, &mut sev, dtls_client(&cert, "localhost"));
    let (_ok_ip, _cev_ip, _id_ip) =
        connect_pair(&server, &mut sev, dtls_client(&cert, "127.0.0.1"));

    let failed = |e: &DtlsEvent| matches!(e, DtlsEvent::ConnectionFailed { .. });
    let (_wrong_name, mut wev) =
        start_client(server.local_addr(), dtls_client(&cert, "evil.example.com"));
    let event = wev
        .wait(Duration::from_secs(5), failed)
        .expect("a certificate for another name must be refused");
    let text = format!("{event:?}");
    assert!(
        text.contains("not issued for") && text.contains("evil.example.com"),
        "the reason names the host the certificate is not for: {text}"
    );

    let (other, _) = openssl_style(&["localhost"]);
    let (_untrusted, mut uev) = start_client(server.local_addr(), dtls_client(&other, "localhost"));
    assert!(
        uev.wait(Duration::from_secs(5), failed).is_some(),
        "a certificate that is not the trusted one must be refused"
    );
}
