//! Checks the AES-GCM tag of incoming records before webrtc-dtls sees them, for PSK
//! sessions only.
//!
//! webrtc-dtls answers any record that fails to decrypt under a PSK suite with a fatal
//! alert and ends the session, so one forged datagram with a spoofed source address
//! would disconnect a player. Cert-based suites just drop such records, so they skip
//! this. The keys are derived exactly as RFC 5246 §6.3 says, from the master secret
//! and randoms webrtc-dtls gives through `State::session_secrets` (a netkit patch).

use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use webrtc_dtls::conn::DTLSConn;

use super::record::{CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE, Record};

/// TLS_PSK_WITH_AES_128_GCM_SHA256.
const PSK_AES_128_GCM: u16 = 0x00a8;
const KEY_LEN: usize = 16;
const FIXED_IV_LEN: usize = 4;
const EXPLICIT_NONCE_LEN: usize = 8;
const TAG_LEN: usize = 16;

/// The peer's write key, able to tell a genuine record from a forged one.
pub(crate) struct RecordAuthenticator {
    key: LessSafeKey,
    fixed_iv: [u8; FIXED_IV_LEN],
}

impl std::fmt::Debug for RecordAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordAuthenticator")
    }
}

/// TLS 1.2 PRF with SHA-256 (RFC 5246 §5).
fn prf_sha256(secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut label_seed = label.to_vec();
    label_seed.extend_from_slice(seed);
    let mut a = hmac::sign(&key, &label_seed).as_ref().to_vec();
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        let mut input = a.clone();
        input.extend_from_slice(&label_seed);
        out.extend_from_slice(hmac::sign(&key, &input).as_ref());
        a = hmac::sign(&key, &a).as_ref().to_vec();
    }
    out.truncate(len);
    out
}

impl RecordAuthenticator {
    /// Derives the peer's write key from a finished PSK session; `None` for other
    /// suites or if the exported state has an unexpected shape (then records are not
    /// pre-checked, which is webrtc-dtls's own behaviour).
    pub async fn for_psk_session(dtls: &DTLSConn, is_client: bool) -> Option<Self> {
        let s = dtls.connection_state().await.session_secrets().await.ok()?;
        if s.cipher_suite_id != PSK_AES_128_GCM || s.master_secret.len() != 48 {
            return None;
        }
        let (client_random, server_random) = if is_client {
            (s.local_random, s.remote_random)
        } else {
            (s.remote_random, s.local_random)
        };
        let mut seed = server_random.to_vec();
        seed.extend_from_slice(&client_random);
        let block = prf_sha256(
            &s.master_secret,
            b"key expansion",
            &seed,
            2 * KEY_LEN + 2 * FIXED_IV_LEN,
        );
        // client_write_key, server_write_key, client_write_IV, server_write_IV.
        let (key, iv) = if is_client {
            (
                &block[KEY_LEN..2 * KEY_LEN],
                &block[2 * KEY_LEN + FIXED_IV_LEN..],
            )
        } else {
            (
                &block[..KEY_LEN],
                &block[2 * KEY_LEN..2 * KEY_LEN + FIXED_IV_LEN],
            )
        };
        Some(Self {
            key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key).ok()?),
            fixed_iv: iv.try_into().ok()?,
        })
    }

    /// True when the record decrypts under the peer's key. Records that are not
    /// encrypted application, alert or handshake records are left to the filter.
    pub fn authentic(&self, record: &Record<'_>) -> bool {
        if record.epoch == 0
            || !matches!(
                record.content_type,
                CONTENT_ALERT | CONTENT_HANDSHAKE | CONTENT_APPLICATION_DATA
            )
        {
            return true;
        }
        let Some(sealed) = record.body.get(EXPLICIT_NONCE_LEN..) else {
            return false;
        };
        let Some(plain_len) = sealed.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let mut nonce = [0u8; 12];
        nonce[..FIXED_IV_LEN].copy_from_slice(&self.fixed_iv);
        nonce[FIXED_IV_LEN..].copy_from_slice(&record.body[..EXPLICIT_NONCE_LEN]);
        let mut aad = [0u8; 13];
        aad[..2].copy_from_slice(&record.epoch.to_be_bytes());
        aad[2..8].copy_from_slice(&record.sequence.to_be_bytes()[2..]);
        aad[8] = record.content_type;
        aad[9..11].copy_from_slice(&record.raw[1..3]);
        aad[11..13].copy_from_slice(&(plain_len as u16).to_be_bytes());
        let mut buf = sealed.to_vec();
        self.key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prf_matches_rfc_test_vector() {
        // Widely published TLS 1.2 PRF SHA-256 vector (IETF TLS WG mailing list).
        let secret = [
            0x9b, 0xbe, 0x43, 0x6b, 0xa9, 0x40, 0xf0, 0x17, 0xb1, 0x76, 0x52, 0x84, 0x9a, 0x71,
            0xdb, 0x35,
        ];
        let seed = [
            0xa0, 0xba, 0x9f, 0x93, 0x6c, 0xda, 0x31, 0x18, 0x27, 0xa6, 0xf7, 0x96, 0xff, 0xd5,
            0x19, 0x8c,
        ];
        let out = prf_sha256(&secret, b"test label", &seed, 100);
        assert_eq!(&out[..4], &[0xe3, 0xf2, 0x29, 0xba]);
        assert_eq!(out.len(), 100);
    }
}
