//! Why a handshake failed, in words a game developer can act on.
//!
//! webrtc-dtls reports a refusal from the other side only as "Alert is Fatal or Close
//! Notify", and its own errors in protocol terms. The alert the peer sent (read off the
//! wire by `PeerConn`) and the error are turned into a sentence that says what is wrong
//! and which option or certificate to look at (RFC 5246 §7.2.2 for what each alert means).

use webrtc_dtls::Error;

/// What this side offers, for sentences about a failed negotiation.
const OFFER: &str = "netkit offers ECDHE-ECDSA and ECDHE-RSA with AES-128-GCM for certificates (ECDSA P-256 or RSA 2048-4096 keys) and PSK with AES-128-GCM for pre-shared keys";

/// Describes a fatal alert the peer sent during the handshake. `psk` says whether this
/// side used a pre-shared key, which changes what most refusals mean.
pub(crate) fn refused_by_peer(description: u8, psk: bool) -> String {
    let why = match description {
        0 => "it closed the connection during the handshake (close_notify)".to_owned(),
        10 => "it received a message it did not expect (unexpected_message); both sides must speak DTLS 1.2".to_owned(),
        20 | 21 => "it could not decrypt or authenticate a record (bad_record_mac)".to_owned(),
        40 => format!(
            "handshake_failure: it shares no cipher suite or credential type with this side, or it is full (max_clients). {OFFER}; both sides must use certificates, or both pre-shared keys"
        ),
        42 | 43 | 46 => "it did not accept the certificate (bad or unsupported certificate); the certificate type or its signature algorithm is not one it takes".to_owned(),
        44 => "the certificate has been revoked (certificate_revoked)".to_owned(),
        45 => "the certificate has expired or is not valid yet (certificate_expired); check the certificate's dates and both machines' clocks".to_owned(),
        47 => "it rejected a handshake parameter (illegal_parameter), usually an elliptic curve or signature algorithm it does not support".to_owned(),
        48 => "it does not trust the certificate's issuer (unknown_ca): give the other side the CA certificate (for a self-signed server, the server's own certificate), or pin the fingerprint".to_owned(),
        49 => "it refused access (access_denied)".to_owned(),
        50 => "it could not parse a handshake message (decode_error)".to_owned(),
        51 if psk => "the pre-shared keys differ (decrypt_error): check \"psk\" against the server's \"psk_keys\" entry for this identity".to_owned(),
        51 => "it could not verify a handshake signature (decrypt_error): the server's private key may not belong to its certificate".to_owned(),
        70 => "it does not speak DTLS 1.2 (protocol_version)".to_owned(),
        71 => format!("insufficient_security: no cipher suite both sides accept. {OFFER}"),
        80 => "it failed internally (internal_error); its log says more".to_owned(),
        90 => "it cancelled the handshake (user_canceled)".to_owned(),
        110 => "it does not support a required extension (unsupported_extension)".to_owned(),
        115 => "it does not know this PSK identity (unknown_psk_identity): check \"psk_identity\" against the server's \"psk_keys\"".to_owned(),
        other => format!("it sent fatal alert {other}"),
    };
    format!("the peer refused the handshake: {why}")
}

/// Describes a handshake error webrtc-dtls returned on this side. `alert` is the fatal
/// alert the peer sent, if any; `psk` as in [`refused_by_peer`].
pub(crate) fn describe(err: &Error, alert: Option<u8>, psk: bool) -> String {
    match err {
        Error::ErrAlertFatalOrClose => match alert {
            Some(d) => refused_by_peer(d, psk),
            None => "the peer ended the handshake without saying why".to_owned(),
        },
        Error::ErrCipherSuiteNoIntersection => format!(
            "no cipher suite in common with the peer. {OFFER}; both sides must use certificates, or both pre-shared keys"
        ),
        Error::ErrNoAvailableSignatureSchemes | Error::ErrInvalidSignatureAlgorithm => "no signature algorithm in common: the certificate's key must be ECDSA P-256 or RSA 2048-4096 with SHA-256".to_owned(),
        Error::ErrKeySignatureMismatch | Error::ErrKeySignatureVerifyUnimplemented => "the server's handshake signature does not verify against its certificate: its private key does not belong to the certificate, or the key type is not supported".to_owned(),
        Error::ErrVerifyDataMismatch if psk => "the pre-shared keys differ: check \"psk\" against the server's \"psk_keys\" entry for this identity".to_owned(),
        Error::ErrVerifyDataMismatch => "the two sides' handshake records differ (verify data mismatch); the path may be altering datagrams".to_owned(),
        Error::ErrServerMustHaveCertificate | Error::ErrNoCertificates => {
            "the server sent no certificate".to_owned()
        }
        Error::ErrInvalidCertificate => "the server's certificate could not be parsed".to_owned(),
        Error::ErrUnsupportedProtocolVersion => "the peer does not speak DTLS 1.2".to_owned(),
        Error::ErrInvalidNamedCurve | Error::ErrInvalidEllipticCurveType => "the peer asked for an elliptic curve this side does not support (X25519, P-256 and P-384 are)".to_owned(),
        // Sentences from our own verification callbacks (verify.rs) and anything else.
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_to_check_not_just_the_alert_name() {
        let hf = describe(&Error::ErrAlertFatalOrClose, Some(40), false);
        assert!(
            hf.contains("cipher suite") && hf.contains("max_clients"),
            "{hf}"
        );
        let psk = describe(&Error::ErrAlertFatalOrClose, Some(51), true);
        assert!(psk.contains("psk_keys"), "{psk}");
        let ca = refused_by_peer(48, false);
        assert!(ca.contains("CA certificate"), "{ca}");
        let suites = describe(&Error::ErrCipherSuiteNoIntersection, None, false);
        assert!(suites.contains("ECDHE-RSA"), "{suites}");
        for d in 0..=255u8 {
            assert!(refused_by_peer(d, false).len() > 30);
        }
    }
}
