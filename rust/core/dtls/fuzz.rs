//! Fuzz targets of the DTLS layer (`crate::fuzzing` lists them all): the record parser,
//! the handshake filter as a server and as a client sees its peer, the demultiplexer's
//! admission rules over a sequence of datagrams from several addresses, and the loading
//! of a certificate and key from PEM text.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::admission::{self, Candidate, Known, Plaintext, Route};
use super::certs::{load_identity, parse_certificates};
use super::handshake_filter::HandshakeFilter;
use super::record::{
    ClientHelloInfo, admit, client_hello, filter, find_client_hello, plaintext_fatal_alert, split,
    split_by_epoch,
};
use super::stats::Stats;
use crate::fuzzing::messages;

/// One datagram through every record function, checked against each other: the records
/// of a datagram are all of it, in order; what `filter` keeps is admitted and a
/// subsequence of the records; `split_by_epoch` loses nothing.
pub fn dtls_record(data: &[u8]) {
    let Some(records) = split(data) else {
        assert!(filter(data, false).is_none() && filter(data, true).is_none());
        assert!(split_by_epoch(data).is_none() && find_client_hello(data).is_none());
        return;
    };
    let joined: Vec<u8> = records.iter().flat_map(|r| r.raw.iter().copied()).collect();
    assert_eq!(joined, data, "the records of a datagram are the datagram");
    for r in &records {
        let _ = plaintext_fatal_alert(r);
        if let Some(hello) = client_hello(r) {
            assert!(hello.cookie_len <= 255);
        }
    }
    assert_eq!(
        find_client_hello(data),
        records.iter().find_map(client_hello)
    );
    for established in [false, true] {
        let Some(kept) = filter(data, established) else {
            continue;
        };
        let kept = split(&kept).expect("a filtered datagram splits");
        assert!(kept.iter().all(|r| admit(r, established)));
        let mut rest = records.iter();
        assert!(
            kept.iter().all(|k| rest.any(|r| r == k)),
            "filter keeps records of the datagram, in order"
        );
    }
    let (plain, sealed) = split_by_epoch(data).expect("it splits");
    assert_eq!(plain.len() + sealed.len(), data.len());
}

/// A sequence of datagrams (`crate::fuzzing::messages`) from one peer through the handshake
/// filter of a server and of a client: what passes is the datagram or some of its records,
/// and the per-peer bounds hold after every datagram.
pub fn dtls_handshake_filter(data: &[u8]) {
    let stats = Stats::default();
    let mut filters = [HandshakeFilter::for_server(), HandshakeFilter::for_client()];
    for datagram in messages(data) {
        for f in &mut filters {
            match f.admit(datagram.to_vec(), &stats) {
                Some(out) if out == datagram => {}
                Some(out) => {
                    let kept = split(&out).expect("filtered output splits");
                    let all = split(datagram).expect("only split datagrams are filtered");
                    let mut rest = all.iter();
                    assert!(kept.iter().all(|k| rest.any(|r| r == k)));
                }
                None => assert!(split(datagram).is_some()),
            }
            f.assert_bounds();
        }
    }
}

/// The demultiplexer's table, as the admission rules see it: one entry per address.
#[derive(Clone, Copy)]
struct Entry {
    connected: bool,
    replacing: bool,
    verified: Option<Instant>,
    answered: bool,
    random: [u8; 32],
    created: Instant,
}

const MAX_PENDING: usize = 6;
const MAX_CLIENTS: usize = 4;

/// A sequence of events at a server with room for [`MAX_PENDING`] handshakes and
/// [`MAX_CLIENTS`] sessions, carried out on a model of the demultiplexer's table as
/// `demux.rs` carries the verdicts out. Each message's first byte picks one of 8
/// addresses (low 3 bits) and what happens (high bits): a datagram (the rest of the
/// message) arrives, our HelloVerifyRequest to it goes out, its handshake completes, or
/// time passes. The table never holds more pending handshakes or sessions than allowed,
/// and a verdict never names an entry that is not there.
pub fn dtls_admission(data: &[u8]) {
    let t0 = Instant::now();
    let mut now = t0;
    let mut table: HashMap<SocketAddr, Entry> = HashMap::new();
    let pending = |t: &HashMap<SocketAddr, Entry>| {
        t.values()
            .map(|e| usize::from(!e.connected) + usize::from(e.replacing))
            .sum::<usize>()
    };
    let sessions = |t: &HashMap<SocketAddr, Entry>| t.values().filter(|e| e.connected).count();
    for message in messages(data) {
        let Some((&op, datagram)) = message.split_first() else {
            continue;
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 5000 + u16::from(op & 7)));
        match op >> 3 {
            // Our HelloVerifyRequest (or first answer) goes out to a handshake.
            1 => {
                if let Some(e) = table.get_mut(&addr) {
                    e.answered = true;
                }
            }
            // The handshake completes: a session, if the server has room (webrtc-dtls
            // finishes it; the demux then refuses it when full).
            2 => {
                let full = sessions(&table) >= MAX_CLIENTS;
                if let Some(e) = table.get_mut(&addr) {
                    if !e.connected && !full {
                        e.connected = true;
                    }
                    e.replacing = false;
                }
            }
            // Time passes: up to 2.55 s.
            3 => now += Duration::from_millis(10 * u64::from(*datagram.first().unwrap_or(&0))),
            // A session or handshake ends.
            4 => {
                table.remove(&addr);
            }
            _ => {
                let full = sessions(&table) >= MAX_CLIENTS;
                route(&mut table, addr, datagram, now, full);
            }
        }
        assert!(
            pending(&table) <= MAX_PENDING,
            "pending handshakes over the bound"
        );
        assert!(sessions(&table) <= MAX_CLIENTS, "sessions over max_clients");
    }
}

/// `Demux::route`, on the model table.
fn route(
    table: &mut HashMap<SocketAddr, Entry>,
    addr: SocketAddr,
    datagram: &[u8],
    now: Instant,
    full: bool,
) {
    let hello = find_client_hello(datagram);
    let known = match table.get(&addr) {
        None => Known::Unknown,
        Some(e) if e.connected => Known::Connected {
            replacing: e.replacing,
        },
        Some(e) => Known::Handshaking {
            verified: e.verified.is_some(),
            answered: e.answered,
            random: e.random,
        },
    };
    let mut verdict = admission::route(known, hello, full);
    if verdict == Route::Restart {
        assert!(matches!(
            known,
            Known::Handshaking {
                verified: false,
                ..
            }
        ));
        table.remove(&addr);
        verdict = admission::route(Known::Unknown, hello, full);
        assert_ne!(verdict, Route::Restart, "judged again as unknown");
    }
    match verdict {
        Route::Restart => unreachable!(),
        Route::ToHandshake { verify } => {
            let e = table.get_mut(&addr).expect("a handshake");
            assert!(!e.connected);
            if verify {
                assert!(e.answered && e.verified.is_none() && hello.is_some());
                e.verified = Some(now);
            }
        }
        Route::ToSession => assert!(table[&addr].connected),
        Route::Split { plaintext } => {
            assert!(table[&addr].connected);
            // A datagram that does not split is dropped (only possible while a
            // replacement runs: a hello always splits).
            let Some((plain, _)) = split_by_epoch(datagram) else {
                assert!(known == Known::Connected { replacing: true } && hello.is_none());
                return;
            };
            if plaintext == Plaintext::StartReplacement
                && !plain.is_empty()
                && make_room(table, now)
            {
                table.get_mut(&addr).expect("connected").replacing = true;
            }
        }
        Route::Drop => assert!(known == Known::Unknown && hello.is_none()),
        Route::Refuse => assert!(hello.is_some()),
        Route::New => {
            assert!(!table.contains_key(&addr) && !full);
            let h: ClientHelloInfo = hello.expect("a new handshake starts with a hello");
            assert_eq!(h.message_seq, 0);
            if make_room(table, now) {
                table.insert(
                    addr,
                    Entry {
                        connected: false,
                        replacing: false,
                        verified: None,
                        answered: false,
                        random: h.random,
                        created: now,
                    },
                );
            }
        }
    }
}

/// `Table::make_room`: true when a new pending handshake fits (after evicting one).
fn make_room(table: &mut HashMap<SocketAddr, Entry>, now: Instant) -> bool {
    let pending: usize = table
        .values()
        .map(|e| usize::from(!e.connected) + usize::from(e.replacing))
        .sum();
    if pending < MAX_PENDING {
        return true;
    }
    let candidates = table.iter().map(|(addr, e)| Candidate {
        addr: *addr,
        connected: e.connected,
        verified: e.verified,
        created: e.created,
    });
    let Some(victim) = admission::victim(candidates, MAX_PENDING, now) else {
        return false;
    };
    let gone = table.remove(&victim).expect("the victim is in the table");
    assert!(!gone.connected, "a connected session is never evicted");
    // An evicted connected entry's replacement would free one slot; a pending entry
    // frees its own.
    true
}

/// Certificate and key PEM text, as a script passes them to `DTLSPeer`/`DTLSMultiplayerPeer`
/// (the first message is the certificate chain, the second the key): parsed or refused with
/// a sentence, never a panic.
pub fn dtls_pem(data: &[u8]) {
    let parts = messages(data);
    let text =
        |i: usize| String::from_utf8_lossy(parts.get(i).copied().unwrap_or_default()).into_owned();
    let (cert, key) = (text(0), text(1));
    if let Ok(certs) = parse_certificates(&cert) {
        assert!(!certs.is_empty());
    }
    if let Err(e) = load_identity(&cert, &key) {
        assert!(!e.is_empty());
    }
}
