//! Several renet packets in one datagram. renet writes each channel's messages and its
//! acknowledgements as packets of their own, so one flush that answers a ping (an
//! acknowledgement, netkit's delivery feedback and the reply) would cost three datagrams,
//! each with its own 37 bytes of DTLS record header, nonce and tag. A bundle carries them
//! in one: a marker byte, then each packet behind its 16-bit big-endian length.
//!
//! A flush of one packet sends it as is, so a bundle always holds two or more. renet's
//! packet types are 0 to 4 (`wire_check`), so the marker cannot be mistaken for a packet.

use super::layout::MAX_RENET_PACKET;

/// First byte of a bundle.
const MARKER: u8 = 0xB0;
/// Bytes a packet costs inside a bundle besides its own.
const LENGTH: usize = 2;

/// Packs `packets` into as few datagrams of at most [`MAX_RENET_PACKET`] bytes as fit
/// greedily, keeping their order (the largest payload every DTLS session carries, see
/// `endpoint::MIN_PAYLOAD`).
pub(crate) fn pack(packets: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut group: Vec<Vec<u8>> = Vec::new();
    let mut size = 1;
    for p in packets {
        if !group.is_empty() && size + LENGTH + p.len() > MAX_RENET_PACKET {
            out.push(seal(std::mem::take(&mut group)));
            size = 1;
        }
        size += LENGTH + p.len();
        group.push(p);
    }
    if !group.is_empty() {
        out.push(seal(group));
    }
    out
}

/// One packet alone goes as is; two or more become a bundle.
fn seal(mut group: Vec<Vec<u8>>) -> Vec<u8> {
    if group.len() == 1 {
        return group.pop().expect("one packet");
    }
    let mut v = Vec::with_capacity(1 + group.iter().map(|p| LENGTH + p.len()).sum::<usize>());
    v.push(MARKER);
    for p in group {
        v.extend_from_slice(&(p.len() as u16).to_be_bytes());
        v.extend(p);
    }
    v
}

/// The renet packets of one datagram, in order. A bundle that is empty, holds an empty
/// packet or a bundle, or whose lengths do not add up is refused (the link ends): netkit
/// never sends one.
pub(crate) fn unpack(datagram: &[u8]) -> Result<Vec<&[u8]>, String> {
    let Some((&MARKER, mut rest)) = datagram.split_first() else {
        return Ok(vec![datagram]);
    };
    let mut parts = Vec::new();
    while !rest.is_empty() {
        if rest.len() < LENGTH {
            return Err("truncated bundle".into());
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[LENGTH..];
        if len == 0 || len > body.len() {
            return Err(format!(
                "bundled packet of {len} bytes in {} left",
                body.len()
            ));
        }
        if body[0] == MARKER {
            return Err("bundle inside a bundle".into());
        }
        parts.push(&body[..len]);
        rest = &body[len..];
    }
    if parts.len() < 2 {
        return Err("bundle of fewer than two packets".into());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_small_packets_together_and_keeps_order() {
        let packets: Vec<Vec<u8>> = (0..5u8).map(|i| vec![4, i, i]).collect();
        let datagrams = pack(packets.clone());
        assert_eq!(datagrams.len(), 1, "five small packets, one datagram");
        let parts = unpack(&datagrams[0]).unwrap();
        assert_eq!(parts, packets.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(
            pack(vec![vec![0, 1]]),
            vec![vec![0, 1]],
            "a lone packet goes as is"
        );
        assert_eq!(unpack(&[0, 1]).unwrap(), vec![&[0u8, 1][..]]);
    }

    #[test]
    fn never_exceeds_the_payload_every_session_carries() {
        let packets: Vec<Vec<u8>> = (0..40).map(|i| vec![1; 50 + i * 29]).collect();
        let datagrams = pack(packets.clone());
        assert!(datagrams.iter().all(|d| d.len() <= MAX_RENET_PACKET));
        let back: Vec<Vec<u8>> = datagrams
            .iter()
            .flat_map(|d| unpack(d).unwrap().into_iter().map(<[u8]>::to_vec))
            .collect();
        assert_eq!(back, packets);
        let full = vec![vec![0; MAX_RENET_PACKET], vec![4; 3]];
        assert_eq!(pack(full.clone()), full, "a full packet cannot share");
    }

    #[test]
    fn refuses_malformed_bundles() {
        for bad in [
            &[MARKER][..],
            &[MARKER, 0],
            &[MARKER, 0, 0, 0, 1, 4],
            &[MARKER, 0, 5, 4, 4],
            &[MARKER, 0, 1, 4],
            &[MARKER, 0, 1, MARKER, 0, 1, 4],
            &[MARKER, 0, 1, 4, 0, 1, 4, 9],
        ] {
            assert!(unpack(bad).is_err(), "{bad:?}");
        }
    }
}
