//! Fuzz targets of the multiplayer layer (`crate::fuzzing` lists them all): one packet
//! through every stateless reader (`wire_check`, `bundle`, `control`, resumption's
//! openings), the two framings
//! (the reliable `StreamReader`, unreliable fragment `Reassembly`), and a whole `Link`
//! that exchanges datagrams with an honest link while the input also injects, drops and
//! damages datagrams and moves the clock.

use std::time::Duration;

use super::bundle;
use super::control::Control;
use super::framing::{MAX_FRAGMENTS, Reassembly, StreamReader, fragments, put_len};
use super::layout::{Layout, MAX_RENET_PACKET, TransferMode};
use super::link::{Incoming, Link, LinkConfig, Room};
use super::resume::{Opening, Refusal, Secret};
use super::wire_check::{self, Kind};
use crate::fuzzing::messages;

/// One datagram as the first bytes of a packet reach the link: the bundle reader, each
/// packet through the window check (the input's first byte sets the channel count and
/// the delivered counts), and the control decoder. What decodes encodes back to itself.
pub fn mp_packet(data: &[u8]) {
    let Some((&setup, datagram)) = data.split_first() else {
        return;
    };
    let layout = Layout::new(usize::from(setup & 31));
    let delivered: Vec<u64> = (0..layout.renet_channels())
        .map(|i| {
            if setup & 0x80 != 0 {
                u64::MAX - i as u64
            } else {
                i as u64 * 1000
            }
        })
        .collect();
    if let Ok(packets) = bundle::unpack(datagram) {
        assert!(!packets.is_empty());
        if packets.len() > 1 && packets.iter().all(|p| p.len() < MAX_RENET_PACKET) {
            let owned: Vec<Vec<u8>> = packets.iter().map(|p| p.to_vec()).collect();
            let again = bundle::pack(owned.clone());
            let back: Vec<Vec<u8>> = again
                .iter()
                .flat_map(|d| bundle::unpack(d).expect("a packed bundle unpacks"))
                .map(<[u8]>::to_vec)
                .collect();
            assert_eq!(back, owned, "pack and unpack keep packets and their order");
        }
        for packet in packets {
            match wire_check::check(packet, layout, &delivered) {
                Ok(Kind::Ack) => assert_eq!(wire_check::channel(packet), None),
                Ok(_) => {
                    let channel = wire_check::channel(packet).expect("a message has a channel");
                    assert!(layout.lane(channel).is_some());
                }
                Err(e) => assert!(!e.is_empty()),
            }
            let _ = wire_check::reliable_ids(packet);
        }
    }
    if let Ok(control) = Control::decode(datagram) {
        assert_eq!(Control::decode(&control.encode()), Ok(control));
    }
    // Resumption's openings come before any link, from any DTLS client.
    if let Ok(opening) = Opening::decode(datagram) {
        assert!(Opening::is_opening(datagram));
        assert_eq!(Opening::decode(&opening.encode()), Ok(opening));
    }
}

/// A sequence of chunks (`crate::fuzzing::messages`) through a reliable `StreamReader`
/// and, as fragments, through an unreliable `Reassembly`. The input's first byte sets the
/// size limit. The reader never holds more than one unfinished packet, and a packet cut
/// by `fragments` and delivered in any order comes back whole.
pub fn mp_framing(data: &[u8]) {
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let max = 1usize << (setup & 31).min(20);
    let mut reader = StreamReader::default();
    let mut reassembly = Reassembly::default();
    let mut longest = 0;
    for chunk in messages(rest) {
        match reader.push(chunk, max) {
            Ok(packets) => {
                assert!(packets.iter().all(|p| p.len() <= max));
                assert!(
                    reader.buffered() <= max + 5,
                    "the reader holds {} bytes",
                    reader.buffered()
                );
            }
            Err(_) => reader = StreamReader::default(),
        }
        longest = longest.max(chunk.len());
        if let Ok(Some((_, packet))) = reassembly.push(chunk) {
            assert!(
                packet.len() <= MAX_FRAGMENTS * longest,
                "a packet larger than its fragments"
            );
        }
    }
    // Round trip: the input itself as one packet, framed both ways.
    let packet = &rest[..rest.len().min(max)];
    let mut framed = Vec::new();
    put_len(&mut framed, packet.len());
    framed.extend_from_slice(packet);
    let mut reader = StreamReader::default();
    let mut got = Vec::new();
    for piece in framed.chunks(usize::from(setup >> 5) * 97 + 1) {
        got.extend(
            reader
                .push(piece, max)
                .expect("a framed packet within the limit"),
        );
    }
    assert_eq!(got, vec![packet.to_vec()]);
    let unreliable = &rest[..rest.len().min(super::framing::MAX_UNRELIABLE_PACKET)];
    let mut parts = fragments(7, unreliable);
    parts.reverse();
    let mut reassembly = Reassembly::default();
    let mut whole = None;
    for p in &parts {
        if let Some(done) = reassembly.push(p).expect("our own fragments") {
            whole = Some(done);
        }
    }
    assert_eq!(whole, Some((7, unreliable.to_vec())));
}

/// Channels of the links in [`mp_link`].
const CHANNELS: usize = 2;

/// A link under test (`b`) and an honest link (`a`) that sends to it. Each message of the
/// input is an operation, by its first byte:
/// - 0: `a` queues the rest on a channel and mode (the second byte picks them);
/// - 1: time passes (the second byte, in 4 ms steps), both flush, and `a`'s datagrams
///   reach `b` except those the third byte's bits drop; `b`'s reach `a`;
/// - 2: the rest reaches `b` as a datagram (forged);
/// - 3: `a`'s next datagram reaches `b` with one byte changed (damaged);
/// - 4: `b`'s room for reliable data is closed or opened, and `b` pulls.
///
/// `b` ends with an error or carries on; it never panics, never hands on more than its
/// room, and while nothing forged or damaged reached it, the reliable data it hands on is
/// what `a` queued, in order.
pub fn mp_link(data: &[u8]) {
    let config = LinkConfig {
        channel_count: CHANNELS - 1,
        max_message_size: 64 * 1024,
        send_buffer: 256 * 1024,
        ..LinkConfig::default()
    };
    let mut a = Link::new(config.clone());
    let mut b = Link::new(config);
    let mut now = Duration::ZERO;
    let mut honest = true;
    let mut open = true;
    let mut sent: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CHANNELS];
    let mut got: Vec<Vec<Vec<u8>>> = vec![Vec::new(); CHANNELS];
    let mut from_a: Vec<Vec<u8>> = Vec::new();
    let room = |open: bool| Room {
        bytes: if open { usize::MAX } else { 0 },
        packets: if open { usize::MAX } else { 0 },
    };
    let take = |out: Vec<Incoming>, got: &mut Vec<Vec<Vec<u8>>>| {
        for incoming in out {
            if let Incoming::Data {
                channel,
                mode: TransferMode::Reliable,
                data,
            } = incoming
            {
                got[channel].push(data);
            }
        }
    };
    for op in messages(data) {
        let Some((&kind, rest)) = op.split_first() else {
            continue;
        };
        let mut out = Vec::new();
        let result = match kind % 5 {
            0 => {
                let pick = rest.first().copied().unwrap_or(0);
                let channel = usize::from(pick) % CHANNELS;
                let mode = match pick / 16 % 3 {
                    0 => TransferMode::Reliable,
                    1 => TransferMode::Unreliable,
                    _ => TransferMode::UnreliableOrdered,
                };
                let payload = rest.get(1..).unwrap_or_default();
                if a.queue(channel, mode, payload).is_ok() && mode == TransferMode::Reliable {
                    sent[channel].push(payload.to_vec());
                }
                Ok(())
            }
            1 => {
                now += Duration::from_millis(4 * u64::from(rest.first().copied().unwrap_or(1)));
                let lose = rest.get(1).copied().unwrap_or(0);
                let Ok(datagrams) = a.flush(now) else {
                    return; // the honest side gave up on a silenced peer
                };
                from_a.extend(datagrams);
                let mut result = Ok(());
                for (i, d) in std::mem::take(&mut from_a).into_iter().enumerate() {
                    if lose & (1 << (i % 8)) == 0 && result.is_ok() {
                        result = b.receive(now, &d, &mut room(open), &mut out);
                    }
                }
                if result.is_ok() {
                    match b.flush(now) {
                        Ok(back) => {
                            let mut ignored = Vec::new();
                            for d in back {
                                assert!(d.len() <= MAX_RENET_PACKET);
                                if a.receive(now, &d, &mut room(true), &mut ignored).is_err() {
                                    assert!(!honest, "an honest exchange ended the honest link");
                                    return;
                                }
                            }
                        }
                        Err(e) => result = Err(e),
                    }
                }
                result
            }
            2 => {
                honest = false;
                b.receive(now, rest, &mut room(open), &mut out)
            }
            3 => {
                if from_a.is_empty() {
                    from_a.extend(a.flush(now).unwrap_or_default());
                }
                if from_a.is_empty() {
                    continue;
                }
                let mut d = from_a.remove(0);
                if let [at, value, ..] = rest {
                    let i = usize::from(*at) % d.len();
                    if d[i] != *value {
                        d[i] = *value;
                        honest = false;
                    }
                }
                b.receive(now, &d, &mut room(open), &mut out)
            }
            _ => {
                open = rest.first().is_none_or(|b| b & 1 == 1);
                let mut r = room(open);
                let result = b.pull(&mut r, &mut out);
                if !open {
                    assert!(
                        out.iter().all(|i| !matches!(
                            i,
                            Incoming::Data {
                                mode: TransferMode::Reliable,
                                ..
                            }
                        )),
                        "reliable data handed on without room"
                    );
                }
                result
            }
        };
        take(out, &mut got);
        if honest {
            for (channel, got) in got.iter().enumerate() {
                assert!(
                    got.len() <= sent[channel].len() && got[..] == sent[channel][..got.len()],
                    "reliable data on channel {channel} differs from what was sent"
                );
            }
        }
        if result.is_err() {
            return;
        }
    }
}

/// Seeds from real traffic (`crate::fuzzing::seeds`): datagrams two links exchange while
/// reliable, unreliable and control messages of several sizes cross, and operation
/// sequences for [`mp_link`] that carry such an exchange.
#[cfg(test)]
pub(crate) fn seeds(seeds: &mut std::collections::BTreeMap<&'static str, Vec<Vec<u8>>>) {
    use super::control::PROTOCOL_VERSION;
    use super::farewell::Farewell;
    use super::layout::CHUNK;
    use crate::fuzzing::datagrams;

    let config = LinkConfig {
        channel_count: CHANNELS - 1,
        ..LinkConfig::default()
    };
    let mut a = Link::new(config.clone());
    let mut b = Link::new(config);
    let mut wire = Vec::new();
    let mut out = Vec::new();
    let open = || Room {
        bytes: usize::MAX,
        packets: usize::MAX,
    };
    a.send_control(&Control::Join {
        id: 1234,
        channel_count: 1,
        version: PROTOCOL_VERSION,
    });
    a.queue(0, TransferMode::Reliable, b"hello").unwrap();
    a.queue(1, TransferMode::Reliable, &[7; 3000]).unwrap();
    a.queue(1, TransferMode::Unreliable, &[9; 2500]).unwrap();
    a.queue(0, TransferMode::UnreliableOrdered, b"position")
        .unwrap();
    for step in 1..40u64 {
        let now = Duration::from_millis(step * 10);
        for d in a.flush(now).unwrap() {
            b.receive(now, &d, &mut open(), &mut out).unwrap();
            wire.push(d);
        }
        for d in b.flush(now).unwrap() {
            a.receive(now, &d, &mut open(), &mut out).unwrap();
            wire.push(d);
        }
    }
    seeds.insert(
        "mp_packet",
        wire.iter()
            .map(|d| [&[1u8][..], d].concat())
            .chain(
                [
                    Control::Welcome {
                        id: 1234,
                        channel_count: 1,
                        version: PROTOCOL_VERSION,
                        secret: None,
                    },
                    Control::Ready { resumes: true },
                    Control::Delivered(vec![(0, 3), (2, 1)]),
                    Control::Ping(123_456),
                    Control::Bye(Farewell::Kicked),
                ]
                .iter()
                .map(|c| [&[1u8][..], &c.encode()].concat()),
            )
            .chain(
                [
                    Opening::Resume {
                        id: 1234,
                        version: PROTOCOL_VERSION,
                        secret: Secret::generate(),
                    },
                    Opening::Resumed {
                        secret: Secret::generate(),
                    },
                    Opening::Refused(Refusal::SecretReused),
                ]
                .iter()
                .map(|o| [&[1u8][..], &o.encode()].concat()),
            )
            .collect(),
    );
    let mut stream = Vec::new();
    for len in [5usize, 3000, 0, 200] {
        put_len(&mut stream, len);
        stream.extend(std::iter::repeat_n(len as u8, len));
    }
    let chunks: Vec<&[u8]> = stream.chunks(CHUNK).collect();
    let frags: Vec<Vec<u8>> = [fragments(3, &[1; 2500]), fragments(4, b"x")].concat();
    seeds.insert(
        "mp_framing",
        vec![
            [&[20u8][..], &datagrams(&chunks)].concat(),
            [&[12u8][..], &datagrams(&frags)].concat(),
        ],
    );
    let op = |kind: u8, rest: &[u8]| [&[kind][..], rest].concat();
    let mut ops = vec![
        op(0, &[0, 1, 2, 3]),
        op(0, &[1, 5, 5, 5, 5, 5]),
        op(0, &[0x11, 8, 8]),
        op(0, &[0x21, 9]),
        op(1, &[3, 0]),
        op(1, &[3, 0b10]),
        op(1, &[50, 0]),
    ];
    ops.push(op(0, &[1; 1500]));
    ops.push(op(4, &[0]));
    ops.push(op(1, &[3, 0]));
    ops.push(op(4, &[1]));
    ops.push(op(3, &[5, 0xff]));
    ops.push(op(1, &[200, 0]));
    let mut forged = ops.clone();
    forged.extend(wire.iter().take(6).map(|d| op(2, d)));
    seeds.insert("mp_link", vec![datagrams(&ops), datagrams(&forged)]);
}
