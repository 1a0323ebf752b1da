//! Writes the seed inputs of every target into `fuzz/corpus/<target>/` from real traffic:
//! a DTLS handshake and data between netkit's own server and client on 127.0.0.1 (through
//! a recording proxy), datagrams two real `Link`s exchange, and bodies, heads and records
//! as netkit's servers and stores write them. Run by hand when a protocol changes, then
//! minimise (FUZZING.md):
//! `cargo test --lib fuzzing::seeds -- --ignored`

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::datagrams;
use crate::core::dtls::{
    ClientCredentials, ClientOptions, DtlsClient, DtlsEvent, DtlsServer, SERVER_PEER_ID,
    ServerCredentials, ServerOptions, ServerVerification, generate_self_signed,
};
use crate::core::events::{Budget, EventQueue, channel};

type Seeds = BTreeMap<&'static str, Vec<Vec<u8>>>;

#[test]
#[ignore = "writes fuzz/corpus; run by hand (FUZZING.md)"]
fn write_seed_corpora() {
    let mut seeds = Seeds::new();
    dtls(&mut seeds);
    crate::core::multiplayer::fuzz::seeds(&mut seeds);
    http_and_storage(&mut seeds);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    for (target, inputs) in seeds {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), input).unwrap();
        }
        eprintln!("{target}: {} seeds", inputs.len());
    }
}

/// Datagrams as recorded, each with its direction (true: towards the server).
type Recorded = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

/// A UDP proxy between one client and a server that records every datagram, with its
/// direction (true: towards the server).
struct Recorder {
    addr: SocketAddr,
    seen: Recorded,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    fn start(server: SocketAddr) -> Recorder {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let seen: Recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, halt) = (Arc::clone(&seen), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = [0u8; 65536];
            while !halt.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let to_server = from != server;
                log.lock().unwrap().push((to_server, buf[..n].to_vec()));
                if to_server {
                    client = Some(from);
                    let _ = socket.send_to(&buf[..n], server);
                } else if let Some(c) = client {
                    let _ = socket.send_to(&buf[..n], c);
                }
            }
        });
        Recorder { addr, seen, stop }
    }

    fn finish(self) -> Vec<(bool, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn wait(queue: &EventQueue<DtlsEvent>, what: impl Fn(&DtlsEvent) -> bool) -> DtlsEvent {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let budget = Budget {
            max_events: 1,
            max_time: Duration::ZERO,
        };
        if let Some(e) = queue.drain(budget).pop() {
            if what(&e) {
                return e;
            }
            continue;
        }
        assert!(Instant::now() < end, "no such DTLS event within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A real certificate handshake between netkit's server and client, then data both ways.
fn dtls(seeds: &mut Seeds) {
    let id = generate_self_signed("netkit-fuzz", &["localhost".to_owned()]).unwrap();
    let (stx, srx) = channel();
    let server = DtlsServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        ServerOptions::new(ServerCredentials::Certificate {
            certificate_pem: id.certificate_pem.clone(),
            private_key_pem: id.private_key_pem.clone(),
        }),
        stx,
    )
    .unwrap();
    let recorder = Recorder::start(server.local_addr());
    let (ctx, crx) = channel();
    let client = DtlsClient::connect(
        "127.0.0.1",
        recorder.addr.port(),
        ClientOptions::new(ClientCredentials::Certificate(ServerVerification::Pinned {
            sha256_fingerprint: id.sha256_fingerprint.clone(),
        })),
        ctx,
    )
    .unwrap();
    let DtlsEvent::PeerConnected(peer) = wait(&srx, |e| matches!(e, DtlsEvent::PeerConnected(_)))
    else {
        unreachable!()
    };
    wait(&crx, |e| matches!(e, DtlsEvent::PeerConnected(_)));
    for i in 0..3u8 {
        client.send(SERVER_PEER_ID, &[i; 40]).unwrap();
        server.send(peer, &[i; 300]).unwrap();
        wait(&srx, |e| matches!(e, DtlsEvent::Packet { .. }));
        wait(&crx, |e| matches!(e, DtlsEvent::Packet { .. }));
    }
    drop(client);
    std::thread::sleep(Duration::from_millis(200));
    let seen = recorder.finish();
    drop(server);

    let to_server: Vec<&[u8]> = seen
        .iter()
        .filter(|(s, _)| *s)
        .map(|(_, d)| &d[..])
        .collect();
    let to_client: Vec<&[u8]> = seen
        .iter()
        .filter(|(s, _)| !*s)
        .map(|(_, d)| &d[..])
        .collect();
    assert!(
        to_server.len() >= 4 && to_client.len() >= 3,
        "a handshake was recorded"
    );
    seeds.insert("dtls_record", seen.iter().map(|(_, d)| d.clone()).collect());
    seeds.insert(
        "dtls_handshake_filter",
        vec![datagrams(&to_server), datagrams(&to_client)],
    );
    // The admission model: the client's datagrams from address 0 with our answers and
    // its completion in between, as the demux saw them; and hellos from several
    // addresses filling the table, with time passing.
    let mut ops: Vec<Vec<u8>> = Vec::new();
    for (i, d) in to_server.iter().enumerate() {
        ops.push([&[0u8][..], d].concat());
        if i == 0 {
            ops.push(vec![1 << 3]);
        }
        if i == 2 {
            ops.push(vec![2 << 3]);
        }
    }
    let hello = to_server[0];
    let mut crowd: Vec<Vec<u8>> = Vec::new();
    for a in 0..8u8 {
        crowd.push([&[a][..], hello].concat());
        crowd.push(vec![(1 << 3) | a]);
        crowd.push([&[a][..], to_server[1]].concat());
        crowd.push(vec![3 << 3, 60]);
    }
    seeds.insert("dtls_admission", vec![datagrams(&ops), datagrams(&crowd)]);
    let rsa_key = include_str!("../test_support/src/dtls/rsa2048.key.pem");
    seeds.insert(
        "dtls_pem",
        vec![
            datagrams(&[id.certificate_pem.as_bytes(), id.private_key_pem.as_bytes()]),
            datagrams(&[id.certificate_pem.as_bytes(), rsa_key.as_bytes()]),
        ],
    );
}

/// Bodies, heads and records as servers and netkit write them.
fn http_and_storage(seeds: &mut Seeds) {
    let game_server = serde_json::json!({
        "object_meta": {"name": "gs-1", "namespace": "default", "uid": "a1b2", "resource_version": "12",
            "generation": "1", "creation_timestamp": "1765000000", "labels": {"mode": "duel"},
            "annotations": {"map": "docks"}},
        "spec": {"health": {"period_seconds": 5, "failure_threshold": 3, "initial_delay_seconds": 5}},
        "status": {"state": "Ready", "address": "10.0.0.7", "ports": [{"name": "default", "port": 7654}],
            "players": {"count": "2", "capacity": "8", "ids": ["p1", "p2"]},
            "counters": {"rooms": {"count": "1", "capacity": "10"}}, "lists": {}}
    });
    let line =
        |v: &serde_json::Value| format!("{}\n", serde_json::json!({ "result": v })).into_bytes();
    let mut allocated = game_server.clone();
    allocated["status"]["state"] = "Allocated".into();
    let watch = line(&game_server);
    seeds.insert(
        "agones_watch",
        vec![
            datagrams(&[watch.clone(), line(&allocated), watch.clone()]),
            datagrams(&[
                watch[..40].to_vec(),
                watch[40..].to_vec(),
                b"\n{\"error\": {\"code\": 14, \"message\": \"unavailable\"}}\n".to_vec(),
            ]),
        ],
    );
    seeds.insert(
        "http_json",
        vec![
            serde_json::to_vec(&game_server).unwrap(),
            b"\xEF\xBB\xBF{\"saved\": true, \"slot\": 3, \"score\": -12.5e3, \"big\": 1e400, \"huge\": 123456789012345678901234567890}".to_vec(),
            br#"[{"name": "caf\u00e9 \ud83d\ude00", "tags": ["a\"b", "\\n\t"], "nested": [[[{"x": null}]]]}, 0, -0, 0.1]"#.to_vec(),
            b"[".repeat(130),
        ],
    );
    seeds.insert(
        "http_sse",
        vec![
            [&[0u8][..], &datagrams(&[&b"\xEF\xBB\xBFretry: 2500\nid: 1\nevent: score\ndata: {\"a\": 1}\n\n"[..], b": keep-alive\r\n\r\ndata: line one\r\ndata: line two\r\n\r\nid: 7\rdata: x\r\r"])].concat(),
            [&[1u8][..], &datagrams(&[&b"data: first\n\nid: 4\ndata: before the break"[..], b"data: after\n\n"])].concat(),
        ],
    );
    let head = |status: u16, offset_from_range: u8, lines: &[&str]| {
        let mut setup = (status - 100).to_be_bytes().to_vec();
        setup.extend([1, 0x20, 10, offset_from_range, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0]);
        let mut all = vec![setup];
        all.extend(lines.iter().map(|l| l.as_bytes().to_vec()));
        datagrams(&all)
    };
    seeds.insert(
        "http_headers",
        vec![
            head(
                206,
                1,
                &[
                    "Content-Range: bytes 1048576-8388607/8388608",
                    "ETag: \"5f3a-1c0\"",
                    "Last-Modified: Sun, 06 Dec 2026 10:00:00 GMT",
                    "Date: Sun, 06 Dec 2026 12:00:00 GMT",
                    "Content-Length: 7340032",
                ],
            ),
            head(
                200,
                0,
                &[
                    "Content-Encoding: gzip",
                    "Retry-After: 120",
                    "Location: /v1/saves/slot-2",
                ],
            ),
            head(416, 2, &["Content-Range: bytes */8388608"]),
            head(
                503,
                0,
                &[
                    "Retry-After: Sun, 06 Dec 2026 12:00:30 GMT",
                    "https://other.example.net/saves",
                    "//cdn.example.com/x?y=1",
                    "Retry-After: 1.5",
                ],
            ),
        ],
    );
    let record = serde_json::json!({"id": 42, "key": "6f1c5d0e-8d59-4a3e-9f0e-2b8f3f6e2a11", "method": "POST",
        "url": "https://api.example.com/v1/saves", "headers": [["Content-Type", "application/json"], ["X-Slot", "3"]],
        "body_kind": "json", "created_ms": 1765000000000u64, "expires_ms": 1765086400000u64});
    let dead = serde_json::json!({"entry": record, "status": 400, "error": 0, "reason": "the backend refused it with 400 Bad Request", "attempts": 1, "dead_ms": 1765000001000u64});
    seeds.insert(
        "storage",
        vec![
            serde_json::to_vec(&record).unwrap(),
            serde_json::to_vec(&dead).unwrap(),
            br#"{"url":"https://cdn.example.com/pack.pck","validator":"\"5f3a-1c0\"","total":8388608}"#.to_vec(),
            br#"{"url":"https://cdn.example.com/pack.pck","validator":"Sun, 06 Dec 2026 10:00:00 GMT","total":null}"#.to_vec(),
        ],
    );
}
