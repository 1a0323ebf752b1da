//! Handshake fragments that webrtc-dtls would choke on, dropped before it sees them
//! (RFC 6347 §4.2.3 says what a fragment is; this file says how many we let through).
//!
//! webrtc-dtls 0.12 buffers every handshake fragment it receives and reassembles a
//! message with a function that calls itself once per chained fragment, rescanning the
//! whole buffer at each step, on every record. Fragments that carry no data do not count
//! against its 2 MB buffer limit, and fragments of a message it is not waiting for stay
//! buffered for the connection's life. So one sender, spoofed or not (plaintext
//! handshake records are not authenticated), could overflow a worker thread's stack with
//! 30,000 empty fragments sent highest offset first, and pin the workers for seconds
//! with a few thousand sent lowest offset first. A patched webrtc-dtls is not needed:
//! every fragment passes through our record layer first, where this filter keeps, per
//! peer, what it already let through, and drops:
//! - fragments that cannot be part of a valid message: framing that does not add up,
//!   no data inside a non-empty message, offset plus length past the message, a length
//!   or type that differs from an earlier fragment of the same message, a message
//!   longer than [`MAX_MESSAGE_LEN`] or a message_seq above [`MAX_MESSAGE_SEQ`];
//! - beyond the bounds: more than [`MAX_FRAGMENTS_PER_MESSAGE`] distinct fragments of
//!   one message (which bounds overlaps too), more than [`MAX_FRAGMENTS`] fragments or
//!   `max_bytes` fragment bytes per peer, more than [`MAX_SEALED_RECORDS`] encrypted
//!   handshake records per peer.
//!
//! The bounds are far above what a real handshake uses, retransmissions included (a
//! handshake is a handful of messages with message_seq below 10, each a few fragments),
//! and far below what makes webrtc-dtls's reassembly costly. Encrypted handshake
//! records cannot be inspected before decryption; only the genuine peer can produce
//! ones that decrypt, and the only one a DTLS 1.2 handshake has is Finished (sent again
//! when a flight is lost), so a per-peer count bounds them.

use super::record::{CONTENT_HANDSHAKE, Record, split};
use super::stats::Stats;

/// Length of a handshake message header (RFC 6347 §4.2.2).
const HEADER_LEN: usize = 12;
/// Longest handshake message accepted. Certificate chains are the long ones; a few
/// kilobytes in practice.
pub(crate) const MAX_MESSAGE_LEN: u32 = 64 * 1024;
/// Highest message_seq accepted. A full handshake numbers each side's messages from 0
/// and ends below 10; there is no renegotiation.
pub(crate) const MAX_MESSAGE_SEQ: u16 = 32;
/// Distinct fragments (offset and length) of one message. A 64 KiB message at a 1,200
/// byte MTU is 56 fragments; a resend with a smaller MTU adds new ones.
pub(crate) const MAX_FRAGMENTS_PER_MESSAGE: usize = 64;
/// Fragments let through per peer, retransmitted copies included.
pub(crate) const MAX_FRAGMENTS: usize = 1024;
/// Encrypted handshake records let through per peer (Finished and its resends).
pub(crate) const MAX_SEALED_RECORDS: usize = 64;
/// Fragment bytes per peer on a server: everything a client sends in a handshake
/// (hellos, key exchange) is well under a kilobyte a flight.
pub(crate) const SERVER_MAX_BYTES: usize = 64 * 1024;
/// Fragment bytes per peer on a client: the server's flights carry its certificate
/// chain, possibly sent many times over a lossy path.
pub(crate) const CLIENT_MAX_BYTES: usize = 1024 * 1024;

/// One fragment's header, as RFC 6347 §4.2.2 lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fragment {
    msg_type: u8,
    length: u32,
    message_seq: u16,
    offset: u32,
    fragment_length: u32,
}

/// What was let through for one message_seq.
#[derive(Clone, Debug)]
struct Message {
    seq: u16,
    msg_type: u8,
    length: u32,
    /// Distinct (offset, length) pairs seen.
    ranges: Vec<(u32, u32)>,
}

/// Per-peer bookkeeping of the handshake fragments let through to webrtc-dtls.
#[derive(Debug)]
pub(crate) struct HandshakeFilter {
    max_bytes: usize,
    messages: Vec<Message>,
    fragments: usize,
    bytes: usize,
    sealed: usize,
}

impl HandshakeFilter {
    /// For a server's view of one client.
    pub fn for_server() -> Self {
        Self::with_byte_limit(SERVER_MAX_BYTES)
    }

    /// For a client's view of its server.
    pub fn for_client() -> Self {
        Self::with_byte_limit(CLIENT_MAX_BYTES)
    }

    fn with_byte_limit(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            messages: Vec::new(),
            fragments: 0,
            bytes: 0,
            sealed: 0,
        }
    }

    /// The datagram without the handshake records this peer may not send, or `None`
    /// when nothing is left. Every dropped record's fragments are counted in
    /// `stats.dropped_fragments`. A datagram that does not split into records is
    /// passed on whole: the record filter drops it, and it holds no fragment anyway.
    pub fn admit(&mut self, datagram: Vec<u8>, stats: &Stats) -> Option<Vec<u8>> {
        let Some(records) = split(&datagram) else {
            return Some(datagram);
        };
        let mut dropped = 0u64;
        let kept: Vec<&Record<'_>> = records
            .iter()
            .filter(|r| match self.judge(r) {
                Ok(()) => true,
                Err(n) => {
                    dropped += n;
                    false
                }
            })
            .collect();
        if dropped == 0 {
            drop(records);
            return Some(datagram);
        }
        Stats::add(&stats.dropped_fragments, dropped);
        let out: Vec<u8> = kept.iter().flat_map(|r| r.raw.iter().copied()).collect();
        (!out.is_empty()).then_some(out)
    }

    /// Panics unless every per-peer bound holds (for the fuzz target).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn assert_bounds(&self) {
        assert!(
            self.fragments <= MAX_FRAGMENTS,
            "fragments over MAX_FRAGMENTS"
        );
        assert!(
            self.bytes <= self.max_bytes,
            "fragment bytes over the limit"
        );
        assert!(
            self.sealed <= MAX_SEALED_RECORDS,
            "sealed records over the limit"
        );
        for m in &self.messages {
            assert!(m.seq <= MAX_MESSAGE_SEQ && m.length <= MAX_MESSAGE_LEN);
            assert!(
                m.ranges.len() <= MAX_FRAGMENTS_PER_MESSAGE,
                "{} fragments of message {} let through",
                m.ranges.len(),
                m.seq
            );
            assert!(m.ranges.iter().all(|&(offset, len)| u64::from(offset) + u64::from(len) <= u64::from(m.length)));
        }
    }

    /// Lets a record through (and accounts for it) or says how many fragments it held.
    /// A record goes whole or not at all, as webrtc-dtls reads it.
    fn judge(&mut self, record: &Record<'_>) -> Result<(), u64> {
        if record.content_type != CONTENT_HANDSHAKE {
            return Ok(());
        }
        if record.epoch > 0 {
            if self.sealed >= MAX_SEALED_RECORDS {
                return Err(1);
            }
            self.sealed += 1;
            return Ok(());
        }
        let fragments = parse(record.body).ok_or(1u64)?;
        let count = fragments.len() as u64;
        let bytes: usize = fragments.iter().map(|f| f.fragment_length as usize).sum();
        if self.fragments + fragments.len() > MAX_FRAGMENTS || self.bytes + bytes > self.max_bytes {
            return Err(count);
        }
        // Each fragment is judged against the ones before it in the same record too: two
        // fragments of one new message with different lengths, or more than the
        // per-message bound, in a single record must not pass because the message was
        // unknown when the record arrived (found by the fuzz target dtls_handshake_filter).
        let before = self.messages.clone();
        for f in &fragments {
            if !self.fits(f) {
                self.messages = before;
                return Err(count);
            }
            self.remember(f);
        }
        self.fragments += fragments.len();
        self.bytes += bytes;
        Ok(())
    }

    /// Whether a well-framed fragment can belong to a valid message, given what was
    /// let through before.
    fn fits(&self, f: &Fragment) -> bool {
        let end = u64::from(f.offset) + u64::from(f.fragment_length);
        let shape_ok = f.length <= MAX_MESSAGE_LEN
            && f.message_seq <= MAX_MESSAGE_SEQ
            && end <= u64::from(f.length)
            // An empty fragment is only the whole of an empty message (ServerHelloDone).
            && (f.fragment_length > 0 || (f.length == 0 && f.offset == 0));
        if !shape_ok {
            return false;
        }
        match self.messages.iter().find(|m| m.seq == f.message_seq) {
            None => true,
            Some(m) => {
                m.msg_type == f.msg_type
                    && m.length == f.length
                    && (m.ranges.contains(&(f.offset, f.fragment_length))
                        || m.ranges.len() < MAX_FRAGMENTS_PER_MESSAGE)
            }
        }
    }

    fn remember(&mut self, f: &Fragment) {
        let range = (f.offset, f.fragment_length);
        match self.messages.iter_mut().find(|m| m.seq == f.message_seq) {
            Some(m) => {
                if !m.ranges.contains(&range) {
                    m.ranges.push(range);
                }
            }
            None => self.messages.push(Message {
                seq: f.message_seq,
                msg_type: f.msg_type,
                length: f.length,
                ranges: vec![range],
            }),
        }
    }
}

/// Reads the fragments of a plaintext handshake record; `None` unless the body is
/// exactly a sequence of headers each followed by its `fragment_length` bytes.
/// webrtc-dtls would read a shorter fragment as one claiming bytes it does not carry
/// (the "no data" fragments of the attack) and trailing bytes as a broken record.
fn parse(mut body: &[u8]) -> Option<Vec<Fragment>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let h = body.get(..HEADER_LEN)?;
        let u24 = |b: &[u8]| u32::from_be_bytes([0, b[0], b[1], b[2]]);
        let f = Fragment {
            msg_type: h[0],
            length: u24(&h[1..4]),
            message_seq: u16::from_be_bytes([h[4], h[5]]),
            offset: u24(&h[6..9]),
            fragment_length: u24(&h[9..12]),
        };
        let end = HEADER_LEN.checked_add(f.fragment_length as usize)?;
        if body.len() < end {
            return None;
        }
        out.push(f);
        body = &body[end..];
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn fragment(seq: u16, length: u32, offset: u32, data: &[u8], claimed: u32) -> Vec<u8> {
        let mut b = vec![16];
        b.extend_from_slice(&length.to_be_bytes()[1..]);
        b.extend_from_slice(&seq.to_be_bytes());
        b.extend_from_slice(&offset.to_be_bytes()[1..]);
        b.extend_from_slice(&claimed.to_be_bytes()[1..]);
        b.extend_from_slice(data);
        b
    }

    fn record(epoch: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![CONTENT_HANDSHAKE, 0xfe, 0xfd];
        v.extend_from_slice(&epoch.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0, 0, 7]);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn frag_record(seq: u16, length: u32, offset: u32, data: &[u8]) -> Vec<u8> {
        record(0, &fragment(seq, length, offset, data, data.len() as u32))
    }

    fn dropped(stats: &Stats) -> u64 {
        stats.dropped_fragments.load(Ordering::Relaxed)
    }

    #[test]
    fn a_real_fragmented_message_and_its_resends_pass() {
        let (stats, mut f) = (Stats::default(), HandshakeFilter::for_client());
        let msg = vec![9u8; 3000];
        for _resend in 0..10 {
            for (i, chunk) in msg.chunks(1100).enumerate() {
                let d = frag_record(2, 3000, (i * 1100) as u32, chunk);
                assert_eq!(f.admit(d.clone(), &stats), Some(d.clone()));
            }
        }
        // An empty message is one empty fragment.
        let done = frag_record(4, 0, 0, &[]);
        assert_eq!(f.admit(done.clone(), &stats), Some(done.clone()));
        assert_eq!(dropped(&stats), 0);
    }

    #[test]
    fn fragments_that_cannot_belong_to_a_message_are_dropped() {
        let (stats, mut f) = (Stats::default(), HandshakeFilter::for_server());
        let bad = [
            // Claims a byte it does not carry (the attack's fragments).
            record(0, &fragment(1, 30_000, 5, &[], 1)),
            // No data inside a non-empty message.
            frag_record(1, 100, 5, &[]),
            // Past the end of the message.
            frag_record(1, 100, 99, &[1, 2]),
            // Longer than any handshake message.
            frag_record(1, MAX_MESSAGE_LEN + 1, 0, &[1]),
            // A message_seq no handshake reaches.
            frag_record(MAX_MESSAGE_SEQ + 1, 10, 0, &[1; 10]),
            // Trailing bytes after the last fragment.
            record(0, &[fragment(1, 4, 0, &[1; 4], 4), vec![0, 0]].concat()),
        ];
        for d in &bad {
            assert_eq!(f.admit(d.clone(), &stats), None, "{d:?}");
        }
        assert_eq!(dropped(&stats), bad.len() as u64);
        // A different length or type for a message already seen.
        let good = frag_record(1, 100, 0, &[1; 50]);
        assert!(f.admit(good, &stats).is_some());
        assert_eq!(f.admit(frag_record(1, 101, 50, &[1; 50]), &stats), None);
        let mut other_type = frag_record(1, 100, 50, &[1; 50]);
        other_type[13] = 11;
        assert_eq!(f.admit(other_type, &stats), None);
        assert!(f.admit(frag_record(1, 100, 50, &[1; 50]), &stats).is_some());
    }

    #[test]
    fn chains_and_volume_are_bounded_per_message_and_per_peer() {
        let (stats, mut f) = (Stats::default(), HandshakeFilter::for_server());
        let mut passed = 0;
        for off in (0..30_000u32).rev() {
            passed += usize::from(f.admit(frag_record(1, 30_000, off, &[0]), &stats).is_some());
        }
        assert_eq!(passed, MAX_FRAGMENTS_PER_MESSAGE);
        // Other messages still get through, up to the per-peer totals.
        let mut total = passed;
        for seq in 2..=MAX_MESSAGE_SEQ {
            for off in 0..MAX_FRAGMENTS_PER_MESSAGE as u32 {
                total += usize::from(f.admit(frag_record(seq, 64, off, &[0]), &stats).is_some());
            }
        }
        assert_eq!(total, MAX_FRAGMENTS);
        // Bytes: a fresh peer sending full-size fragments stops at its byte budget.
        let mut g = HandshakeFilter::for_server();
        let mut bytes = 0;
        for seq in 0..=MAX_MESSAGE_SEQ {
            if g.admit(frag_record(seq, 4000, 0, &[0; 4000]), &stats)
                .is_some()
            {
                bytes += 4000;
            }
        }
        assert!(
            bytes <= SERVER_MAX_BYTES && bytes + 4000 > SERVER_MAX_BYTES,
            "{bytes}"
        );
    }

    #[test]
    fn fragments_in_one_record_are_judged_against_each_other() {
        let (stats, mut f) = (Stats::default(), HandshakeFilter::for_server());
        // Two fragments of a new message that disagree on its length, in one record.
        let lengths = record(
            0,
            &[
                fragment(1, 10, 0, &[1; 10], 10),
                fragment(1, 100, 50, &[1; 50], 50),
            ]
            .concat(),
        );
        assert_eq!(f.admit(lengths, &stats), None);
        // More fragments of one new message than the per-message bound, in one record.
        let chain: Vec<u8> = (0..=MAX_FRAGMENTS_PER_MESSAGE as u32)
            .flat_map(|off| fragment(2, 1000, off, &[0], 1))
            .collect();
        assert_eq!(f.admit(record(0, &chain), &stats), None);
        f.assert_bounds();
        // Nothing of the refused records was remembered: the message can still start.
        assert!(f.admit(frag_record(1, 100, 0, &[1; 50]), &stats).is_some());
        f.assert_bounds();
    }

    #[test]
    fn encrypted_handshake_records_are_counted_and_others_untouched() {
        let (stats, mut f) = (Stats::default(), HandshakeFilter::for_client());
        let sealed = record(1, &[0; 40]);
        for _ in 0..MAX_SEALED_RECORDS {
            assert!(f.admit(sealed.clone(), &stats).is_some());
        }
        assert_eq!(f.admit(sealed.clone(), &stats), None);
        // Application data and malformed datagrams are not this filter's business.
        let mut app = record(1, &[0; 40]);
        app[0] = 23;
        assert_eq!(f.admit(app.clone(), &stats), Some(app.clone()));
        assert_eq!(f.admit(vec![1, 2, 3], &stats), Some(vec![1, 2, 3]));
        // A mixed datagram loses only the offending record.
        let mut mixed = app.clone();
        mixed.extend_from_slice(&record(0, &fragment(1, 500, 0, &[], 1)));
        assert_eq!(f.admit(mixed, &stats), Some(app));
    }
}
