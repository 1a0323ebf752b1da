//! Just enough DTLS 1.2 record parsing for the demultiplexer to route and filter
//! datagrams before webrtc-dtls sees them (RFC 6347 §4.1 and §4.2.2).
//!
//! Nothing here decrypts. The point is to keep malformed, out-of-place and plaintext
//! records away from webrtc-dtls, which treats some of them as fatal for the session.
//!
//! Dropped here: datagrams that do not parse as DTLS records, anything over 8 KiB, unknown
//! content types, epochs above 1, encrypted ChangeCipherSpec, plaintext application data,
//! encrypted records too short for a GCM tag, and after the handshake plaintext alerts and
//! ClientHellos (plaintext handshake records stay allowed so a lost final flight can be
//! retransmitted).

/// Size of a DTLS record header: type, version, epoch, sequence number, length.
pub const RECORD_HEADER_LEN: usize = 13;
/// Per-record overhead of AES-GCM in DTLS 1.2: header, explicit nonce and tag.
pub const GCM_RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + 8 + 16;
/// Datagrams larger than this are dropped unread; no DTLS peer of ours sends them.
pub const MAX_DATAGRAM: usize = 8 * 1024;

/// ChangeCipherSpec content type.
pub const CONTENT_CCS: u8 = 20;
/// Alert content type.
pub const CONTENT_ALERT: u8 = 21;
/// Handshake content type.
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Application data content type.
pub const CONTENT_APPLICATION_DATA: u8 = 23;

const HANDSHAKE_HEADER_LEN: usize = 12;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
/// Smallest body an encrypted GCM record can have (explicit nonce + tag).
const MIN_ENCRYPTED_BODY: usize = 8 + 16;

/// One record inside a datagram, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Content type byte (20..=23 for records we accept).
    pub content_type: u8,
    /// Epoch: 0 before ChangeCipherSpec, 1 after the first handshake.
    pub epoch: u16,
    /// 48-bit record sequence number.
    pub sequence: u64,
    /// The record body (ciphertext when epoch > 0).
    pub body: &'a [u8],
    /// Header and body together, for re-assembling filtered datagrams.
    pub raw: &'a [u8],
}

/// Splits a datagram into records. Returns `None` if any record is truncated or the
/// version bytes are not DTLS, because a datagram that lies about its framing is not
/// worth partially trusting.
pub fn split(datagram: &[u8]) -> Option<Vec<Record<'_>>> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        if rest.len() < RECORD_HEADER_LEN {
            return None;
        }
        // DTLS versions are 0xfeXX (1.0 = fefe, 1.2 = fefd).
        if rest[1] != 0xfe {
            return None;
        }
        let epoch = u16::from_be_bytes([rest[3], rest[4]]);
        let mut seq = [0u8; 8];
        seq[2..].copy_from_slice(&rest[5..11]);
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let end = RECORD_HEADER_LEN.checked_add(len)?;
        if rest.len() < end {
            return None;
        }
        out.push(Record {
            content_type: rest[0],
            epoch,
            sequence: u64::from_be_bytes(seq),
            body: &rest[RECORD_HEADER_LEN..end],
            raw: &rest[..end],
        });
        rest = &rest[end..];
    }
    Some(out)
}

/// What the demultiplexer needs to know about a ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHelloInfo {
    /// Handshake message sequence (0 for a first hello, 1+ after HelloVerifyRequest).
    pub message_seq: u16,
    /// Length of the cookie; non-zero means the client answered a HelloVerifyRequest,
    /// which proves it receives datagrams at its source address.
    pub cookie_len: usize,
    /// The client's random: the same in a retransmitted hello, different when the
    /// client (or someone using its address) starts a new handshake.
    pub random: [u8; 32],
}

/// Recognises a plaintext ClientHello (epoch 0) and reads its cookie length. Returns
/// `None` for anything else, including fragments that do not start at offset 0.
pub fn client_hello(record: &Record<'_>) -> Option<ClientHelloInfo> {
    if record.content_type != CONTENT_HANDSHAKE || record.epoch != 0 {
        return None;
    }
    let b = record.body;
    if b.len() < HANDSHAKE_HEADER_LEN || b[0] != HANDSHAKE_CLIENT_HELLO {
        return None;
    }
    let message_seq = u16::from_be_bytes([b[4], b[5]]);
    if b[6..9] != [0, 0, 0] {
        return None;
    }
    let body = &b[HANDSHAKE_HEADER_LEN..];
    // client_version(2) + random(32), then session_id<0..32>, then cookie<0..255>.
    let random: [u8; 32] = body.get(2..34)?.try_into().ok()?;
    let sid_len = usize::from(*body.get(34)?);
    let cookie_at = 35 + sid_len;
    let cookie_len = usize::from(*body.get(cookie_at)?);
    if body.len() < cookie_at + 1 + cookie_len {
        return None;
    }
    Some(ClientHelloInfo {
        message_seq,
        cookie_len,
        random,
    })
}

/// Finds the first ClientHello in a datagram.
pub fn find_client_hello(datagram: &[u8]) -> Option<ClientHelloInfo> {
    split(datagram)?.iter().find_map(client_hello)
}

/// Whether a record may reach webrtc-dtls, given whether the session's handshake has
/// completed. The rules exist because webrtc-dtls ends a session on a plaintext alert,
/// on plaintext application data, on unknown content types and (for PSK suites) on any
/// record that fails to decrypt.
pub fn admit(record: &Record<'_>, established: bool) -> bool {
    let known = matches!(
        record.content_type,
        CONTENT_CCS | CONTENT_ALERT | CONTENT_HANDSHAKE | CONTENT_APPLICATION_DATA
    );
    if !known || record.epoch > 1 {
        return false;
    }
    if record.epoch >= 1 && record.content_type == CONTENT_CCS {
        // No renegotiation here, so an encrypted ChangeCipherSpec is never genuine, and
        // webrtc-dtls would act on it by bumping the remote epoch.
        return false;
    }
    if record.epoch >= 1 && record.body.len() < MIN_ENCRYPTED_BODY {
        // Too short to hold a GCM nonce and tag: never valid, and a decrypt failure
        // would be fatal for PSK sessions.
        return false;
    }
    if record.epoch == 0 {
        if record.content_type == CONTENT_APPLICATION_DATA {
            return false;
        }
        if established {
            // After the handshake the genuine peer encrypts alerts; a plaintext one is
            // forged. Handshake and CCS records stay allowed so a retransmitted final
            // flight still gets our retransmission; ClientHellos are the demux's job.
            if record.content_type == CONTENT_ALERT || client_hello(record).is_some() {
                return false;
            }
        }
    }
    true
}

/// Rebuilds a datagram from the records that [`admit`] lets through; `None` when nothing
/// is left or the datagram is malformed.
pub fn filter(datagram: &[u8], established: bool) -> Option<Vec<u8>> {
    let records = split(datagram)?;
    if records.iter().all(|r| admit(r, established)) {
        return Some(datagram.to_vec());
    }
    let mut out = Vec::with_capacity(datagram.len());
    for r in records.iter().filter(|r| admit(r, established)) {
        out.extend_from_slice(r.raw);
    }
    (!out.is_empty()).then_some(out)
}

/// Splits a datagram into its epoch-0 records and the rest, for routing a reconnecting
/// client's new handshake away from its old session.
pub fn split_by_epoch(datagram: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let records = split(datagram)?;
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    for r in records {
        if r.epoch == 0 {
            plain.extend_from_slice(r.raw);
        } else {
            sealed.extend_from_slice(r.raw);
        }
    }
    Some((plain, sealed))
}

/// A plaintext fatal alert record answering a ClientHello we refuse (server full). It
/// is smaller than any ClientHello, so refusing cannot be used for amplification.
pub fn refusal_alert(sequence: u64) -> [u8; RECORD_HEADER_LEN + 2] {
    let seq = sequence.to_be_bytes();
    [
        CONTENT_ALERT,
        0xfe,
        0xfd,
        0,
        0,
        seq[2],
        seq[3],
        seq[4],
        seq[5],
        seq[6],
        seq[7],
        0,
        2,
        2,  // fatal
        40, // handshake_failure
    ]
}

/// The description byte of a plaintext fatal alert, if the record is one. Used by the
/// client to fail fast with a reason instead of waiting for the handshake timeout.
pub fn plaintext_fatal_alert(record: &Record<'_>) -> Option<u8> {
    (record.content_type == CONTENT_ALERT
        && record.epoch == 0
        && record.body.len() == 2
        && record.body[0] == 2)
        .then(|| record.body[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content: u8, epoch: u16, seq: u64, body: &[u8]) -> Vec<u8> {
        let mut v = vec![content, 0xfe, 0xfd];
        v.extend_from_slice(&epoch.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes()[2..]);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn hello(cookie: &[u8], message_seq: u16) -> Vec<u8> {
        let mut body = vec![0xfe, 0xfd];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0); // session id
        body.push(cookie.len() as u8);
        body.extend_from_slice(cookie);
        body.extend_from_slice(&[0, 2, 0xc0, 0x2b, 1, 0]);
        let len = (body.len() as u32).to_be_bytes();
        let mut hs = vec![HANDSHAKE_CLIENT_HELLO, len[1], len[2], len[3]];
        hs.extend_from_slice(&message_seq.to_be_bytes());
        hs.extend_from_slice(&[0, 0, 0, len[1], len[2], len[3]]);
        hs.extend_from_slice(&body);
        record(CONTENT_HANDSHAKE, 0, message_seq.into(), &hs)
    }

    #[test]
    fn parses_client_hello_with_and_without_cookie() {
        let h = hello(&[], 0);
        assert_eq!(
            find_client_hello(&h),
            Some(ClientHelloInfo {
                message_seq: 0,
                cookie_len: 0,
                random: [7; 32],
            })
        );
        let h = hello(&[1; 20], 1);
        assert_eq!(find_client_hello(&h).map(|c| c.cookie_len), Some(20));
    }

    #[test]
    fn truncated_or_foreign_input_is_rejected_without_panic() {
        let h = hello(&[1; 20], 1);
        for cut in 0..h.len() {
            assert!(find_client_hello(&h[..cut]).is_none(), "cut at {cut}");
        }
        assert!(split(&[0x16, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
        for seed in 0..200u32 {
            let junk: Vec<u8> = (0..seed).map(|i| (i * 31 + seed) as u8).collect();
            let _ = filter(&junk, true);
            let _ = find_client_hello(&junk);
        }
    }

    #[test]
    fn established_filter_drops_forgeable_records() {
        let plain_alert = record(CONTENT_ALERT, 0, 9, &[2, 40]);
        assert!(filter(&plain_alert, true).is_none());
        assert!(filter(&plain_alert, false).is_some());
        let short = record(CONTENT_APPLICATION_DATA, 1, 3, &[0; 10]);
        assert!(filter(&short, true).is_none());
        let future = record(CONTENT_APPLICATION_DATA, 5, 3, &[0; 40]);
        assert!(filter(&future, true).is_none());
        let unknown = record(99, 1, 3, &[0; 40]);
        assert!(filter(&unknown, true).is_none());
        let app = record(CONTENT_APPLICATION_DATA, 1, 3, &[0; 40]);
        let mut mixed = plain_alert.clone();
        mixed.extend_from_slice(&app);
        assert_eq!(filter(&mixed, true), Some(app.clone()));
        assert!(filter(&hello(&[], 0), true).is_none());
        assert!(filter(&hello(&[], 0), false).is_some());
    }

    #[test]
    fn split_by_epoch_separates_new_handshake_from_old_session() {
        let mut d = hello(&[], 0);
        let app = record(CONTENT_APPLICATION_DATA, 1, 3, &[0; 40]);
        d.extend_from_slice(&app);
        let (plain, sealed) = split_by_epoch(&d).unwrap();
        assert_eq!(plain, hello(&[], 0));
        assert_eq!(sealed, app);
    }

    #[test]
    fn refusal_alert_is_a_plaintext_fatal_alert() {
        let a = refusal_alert(42);
        let recs = split(&a).unwrap();
        assert_eq!(recs[0].sequence, 42);
        assert_eq!(plaintext_fatal_alert(&recs[0]), Some(40));
    }
}
