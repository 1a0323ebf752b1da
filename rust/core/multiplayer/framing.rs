//! Netkit's own message framing inside renet messages, so renet never slices anything.
//!
//! - Reliable channels are byte streams: each Godot packet is a LEB128 length and the
//!   bytes, cut into renet messages of at most `CHUNK` bytes. Small packets sent in the same
//!   flush share a renet message; a 64 KB packet spans many. renet delivers the chunks
//!   exactly once and in order, so reassembly is concatenation.
//! - Unreliable channels carry fragments `[sequence u32 LE][index u8][count u8][bytes]`.
//!   One message per channel is reassembled at a time: a fragment of a newer message
//!   abandons the older one, which an unreliable channel may lose anyway.

use super::layout::CHUNK;

/// Bytes in front of every unreliable fragment.
pub(crate) const FRAGMENT_HEADER: usize = 6;
/// Most fragments one unreliable packet may have.
pub(crate) const MAX_FRAGMENTS: usize = 255;
/// Largest unreliable packet: it must fit [`MAX_FRAGMENTS`] fragments.
pub const MAX_UNRELIABLE_PACKET: usize = MAX_FRAGMENTS * (CHUNK - FRAGMENT_HEADER);

/// Appends `n` as LEB128.
pub(crate) fn put_len(out: &mut impl Extend<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.extend([byte]);
            return;
        }
        out.extend([byte | 0x80]);
    }
}

/// Reads a LEB128 length from the front of `buf`: `Ok(None)` when more bytes are needed,
/// an error when it exceeds `max`.
fn get_len(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, String> {
    let mut n: usize = 0;
    for (i, byte) in buf.iter().enumerate() {
        if i >= 5 {
            return Err("malformed packet length".into());
        }
        n |= usize::from(byte & 0x7f) << (7 * i);
        if n > max {
            return Err(format!(
                "the peer sent a {n}-byte packet; the limit (max_message_size) is {max} bytes"
            ));
        }
        if byte & 0x80 == 0 {
            return Ok(Some((n, i + 1)));
        }
    }
    Ok(None)
}

/// Reassembles Godot packets from the chunks of one reliable channel.
#[derive(Debug, Default)]
pub(crate) struct StreamReader {
    partial: Vec<u8>,
}

impl StreamReader {
    /// Adds one chunk; returns the packets it completed. An error means the peer broke the
    /// framing or the size limit, and the link must end.
    pub fn push(&mut self, chunk: &[u8], max: usize) -> Result<Vec<Vec<u8>>, String> {
        self.partial.extend_from_slice(chunk);
        let mut done = Vec::new();
        let mut at = 0;
        while let Some((len, head)) = get_len(&self.partial[at..], max)? {
            let start = at + head;
            if self.partial.len() - start < len {
                break;
            }
            done.push(self.partial[start..start + len].to_vec());
            at = start + len;
        }
        self.partial.drain(..at);
        Ok(done)
    }

    /// Bytes of a packet not complete yet.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// Cuts one unreliable packet into fragments.
pub(crate) fn fragments(sequence: u32, data: &[u8]) -> Vec<Vec<u8>> {
    let per = CHUNK - FRAGMENT_HEADER;
    let count = data.len().div_ceil(per).max(1);
    debug_assert!(count <= MAX_FRAGMENTS);
    (0..count)
        .map(|index| {
            let part = &data[(index * per).min(data.len())..((index + 1) * per).min(data.len())];
            let mut out = Vec::with_capacity(FRAGMENT_HEADER + part.len());
            out.extend_from_slice(&sequence.to_le_bytes());
            out.push(index as u8);
            out.push(count as u8);
            out.extend_from_slice(part);
            out
        })
        .collect()
}

/// `a` is newer than `b` in 32-bit serial number arithmetic (RFC 1982), so sequences may
/// wrap around.
pub(crate) fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// An unreliable packet being put together: its sequence, its fragments so far, and how
/// many of them arrived.
type Partial = (u32, Vec<Option<Vec<u8>>>, usize);

/// Reassembles unreliable packets of one channel, one at a time.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    current: Option<Partial>,
    /// Newest sequence delivered, for unreliable-ordered channels.
    pub last_delivered: Option<u32>,
}

impl Reassembly {
    /// Adds one fragment; returns `(sequence, packet)` when it completed one. Fragments
    /// that cannot belong to a packet (bad header) are an error: only a broken or hostile
    /// peer sends them.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<(u32, Vec<u8>)>, String> {
        if fragment.len() < FRAGMENT_HEADER {
            return Err("malformed unreliable fragment".into());
        }
        let sequence = u32::from_le_bytes(fragment[..4].try_into().expect("4 bytes"));
        let (index, count) = (fragment[4] as usize, fragment[5] as usize);
        if count == 0 || index >= count {
            return Err("malformed unreliable fragment".into());
        }
        let body = &fragment[FRAGMENT_HEADER..];
        if count == 1 {
            return Ok(Some((sequence, body.to_vec())));
        }
        let fresh = match &self.current {
            Some((seq, parts, _)) if *seq == sequence => {
                if parts.len() != count {
                    return Err("inconsistent unreliable fragments".into());
                }
                false
            }
            Some((seq, _, _)) if !newer(sequence, *seq) => return Ok(None),
            _ => true,
        };
        if fresh {
            self.current = Some((sequence, vec![None; count], 0));
        }
        let (_, parts, got) = self.current.as_mut().expect("set above");
        if parts[index].is_none() {
            parts[index] = Some(body.to_vec());
            *got += 1;
        }
        if *got < count {
            return Ok(None);
        }
        let (_, parts, _) = self.current.take().expect("set above");
        Ok(Some((
            sequence,
            parts.into_iter().flatten().flatten().collect(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in packets {
            put_len(&mut out, p.len());
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn stream_reassembles_across_any_chunking() {
        let packets: Vec<Vec<u8>> = vec![vec![1], vec![], vec![7; 300], vec![9; 70_000]];
        let stream = frame(&packets);
        for chunk in [1, 2, 127, CHUNK] {
            let mut reader = StreamReader::default();
            let mut got = Vec::new();
            for part in stream.chunks(chunk) {
                got.extend(reader.push(part, 100_000).unwrap());
            }
            assert_eq!(got, packets, "chunk size {chunk}");
            assert_eq!(reader.buffered(), 0);
        }
    }

    #[test]
    fn stream_refuses_oversize_and_overlong_lengths() {
        let mut reader = StreamReader::default();
        assert!(reader.push(&frame(&[vec![0; 2000]]), 1000).is_err());
        let mut reader = StreamReader::default();
        assert!(reader.push(&[0xff; 6], usize::MAX).is_err());
    }

    #[test]
    fn fragments_reassemble_and_newer_wins() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let parts = fragments(7, &data);
        assert!(parts.iter().all(|p| p.len() <= CHUNK));
        let mut r = Reassembly::default();
        // A newer packet abandons the incomplete older one.
        assert_eq!(r.push(&parts[0]).unwrap(), None);
        let newer_parts = fragments(8, &data);
        for p in &newer_parts[..newer_parts.len() - 1] {
            assert_eq!(r.push(p).unwrap(), None);
        }
        assert_eq!(r.push(&parts[1]).unwrap(), None, "older fragment ignored");
        assert_eq!(
            r.push(newer_parts.last().unwrap()).unwrap(),
            Some((8, data.clone()))
        );
        assert_eq!(
            r.push(&fragments(9, b"x")[0]).unwrap(),
            Some((9, b"x".to_vec()))
        );
        assert!(r.push(&[0, 0, 0, 0, 3, 2]).is_err());
    }

    #[test]
    fn serial_numbers_wrap() {
        assert!(newer(1, 0));
        assert!(newer(0, u32::MAX));
        assert!(!newer(5, 5));
        assert!(!newer(u32::MAX, 0));
    }
}
