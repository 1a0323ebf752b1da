//! Downloads and streams of the engine-free pool against the real test server on
//! 127.0.0.1: resume with Range/If-Range after a dropped connection and after a restart,
//! SHA-256 checks, servers without range support, server-sent events with reconnection,
//! lines, chunks, cancellation, limits and backpressure.
//!
//! Downloads: a 50 MiB body dropped at 40 % and resumed with `Range`/`If-Range` (the
//! server's log of Range headers asserted, SHA-256 of the file), a wrong hash, a server
//! without ranges, a changed ETag, Last-Modified, a restart from the part file, cancel,
//! limits. Streams: 1,000 events, a drop and `Last-Event-ID`, the grammar fixture, lines,
//! chunks, an over-long line, cancel, a flooding stream held to its buffer without loss.
//! Routes: `test_support`'s `http_server/transfer_routes.rs`. In the engine:
//! `test_http_download.gd`, `test_http_stream.gd`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netkit::core::http::transfer::{
    DownloadHandle, DownloadOutcome, DownloadSpec, SseEvent, StreamItem, StreamMode, StreamSpec,
    TransferEvent, Transfers, parse_sha256,
};
use netkit::core::http::{ErrorKind, HttpPool, PoolSettings};
use netkit_test_support::http_server::transfer_routes::content_sha256;
use netkit_test_support::http_server::{TestServer, start_blocking};
use netkit_test_support::transfer::collect;

const MB: u64 = 1024 * 1024;

fn server() -> TestServer {
    start_blocking()
}

fn pool(max_retries: u32) -> HttpPool {
    HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(20),
        max_retries,
        ..PoolSettings::default()
    })
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    netkit_test_support::transfer::scratch("netkit-transfer", name)
}

fn spec(url: String, file: &Path, sha256: Option<&str>) -> DownloadSpec {
    DownloadSpec {
        url,
        headers: Vec::new(),
        file: file.to_path_buf(),
        sha256: sha256.map(|s| parse_sha256(s).expect("a valid hex digest")),
        max_bytes: 4 << 30,
    }
}

/// Waits for the download's ending, sampling its progress meanwhile (like a node does
/// once per frame); returns the ending and the samples.
fn finish(transfers: &Transfers, handle: &DownloadHandle) -> (DownloadOutcome, Vec<(u64, i64)>) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut samples = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the download did not end in time"
        );
        let p = handle.progress();
        samples.push((p.received(), p.total()));
        match transfers.next_event() {
            Some(TransferEvent::Download { id, outcome }) => {
                assert_eq!(id, handle.id);
                return (outcome, samples);
            }
            Some(other) => panic!("unexpected event {other:?}"),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn file_sha256(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn log(server: &TestServer, key: &str) -> Vec<String> {
    let text = plain_get::get(&format!("{}/transfer/log?key={key}", server.http_url));
    serde_json::from_str(&text).unwrap()
}

/// A tiny blocking GET for reading the server's logs (the tests need no pool for it).
mod plain_get {
    pub fn get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut s = std::net::TcpStream::connect(host).unwrap();
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
        if out
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            // One chunk: size line, data, then the terminating chunk.
            let (_, rest) = body.split_once("\r\n").unwrap();
            return rest.rsplit_once("\r\n0\r\n").unwrap().0.to_string();
        }
        body
    }
}

fn no_leftovers(file: &Path) {
    for suffix in [".part", ".part.meta"] {
        let mut p = file.as_os_str().to_owned();
        p.push(suffix);
        assert!(
            !Path::new(&p).exists(),
            "{} is left behind",
            Path::new(&p).display()
        );
    }
}

fn part_of(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

#[test]
fn a_50_mb_download_dropped_at_40_percent_resumes_with_range_and_matches_its_sha256() {
    let server = server();
    let size = 50 * MB;
    let drop_at = size * 2 / 5;
    let expected = content_sha256(size);
    let dir = scratch("fifty");
    let file = dir.join("pack.bin");
    let key = "dl-fifty";
    let url = format!(
        "{}/download?bytes={size}&drop_at={drop_at}&key={key}",
        server.http_url
    );
    let pool = pool(3);
    let transfers = Transfers::new();
    let started = Instant::now();
    let handle = transfers.download(&pool, spec(url, &file, Some(&expected)));
    let (outcome, samples) = finish(&transfers, &handle);
    let elapsed = started.elapsed();
    let r = &outcome.response;
    assert!(r.ok(), "{:?}: {}", r.error, r.error_message);
    assert_eq!(r.status, 206, "the last response continued the file");
    assert_eq!(outcome.resumes, 1);
    assert_eq!(outcome.restarts, 0);
    assert_eq!(outcome.bytes, size);
    assert_eq!(outcome.total, Some(size));
    assert_eq!(outcome.sha256, expected);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
    assert_eq!(
        file_sha256(&file),
        expected,
        "the file on disk is the server's content"
    );
    no_leftovers(&file);
    let log = log(&server, key);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], "range=-;if-range=-;status=200");
    let resumed_at: u64 = log[1]
        .strip_prefix("range=bytes=")
        .and_then(|rest| rest.split_once('-'))
        .map(|(start, _)| start.parse().unwrap())
        .unwrap_or_else(|| panic!("the second request had no Range: {log:?}"));
    assert!(
        resumed_at > 0 && resumed_at <= drop_at,
        "resumed at {resumed_at}, the connection broke at {drop_at}"
    );
    assert!(
        log[1].ends_with(&format!(";if-range=\"dl-{size}\";status=206")),
        "If-Range carried the ETag: {log:?}"
    );
    // Progress only grows, and its total is the file's size once known.
    assert!(
        samples.windows(2).all(|w| w[1].0 >= w[0].0),
        "progress went backwards"
    );
    assert!(samples.iter().all(|s| s.1 == -1 || s.1 == size as i64));
    assert!(
        samples.iter().any(|s| s.0 > 0 && s.0 < size),
        "progress was seen mid-way"
    );
    println!(
        "50 MiB download with one resume: {:.2} s ({:.0} MiB/s)",
        elapsed.as_secs_f64(),
        50.0 / elapsed.as_secs_f64()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_expected_hash_ends_with_a_clear_error_and_leaves_no_file() {
    let server = server();
    let dir = scratch("hash");
    let file = dir.join("pack.bin");
    let url = format!("{}/download?bytes={}", server.http_url, MB);
    let transfers = Transfers::new();
    let wrong = "00".repeat(32);
    let handle = transfers.download(&pool(2), spec(url, &file, Some(&wrong)));
    let (outcome, _) = finish(&transfers, &handle);
    let r = &outcome.response;
    assert_eq!(r.error, ErrorKind::HashMismatch, "{}", r.error_message);
    assert!(
        r.error_message.contains(&content_sha256(MB)) && r.error_message.contains(&wrong),
        "the message names both digests: {}",
        r.error_message
    );
    assert!(!file.exists(), "no file in place");
    no_leftovers(&file);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_server_without_range_support_restarts_the_download_and_it_still_ends_correct() {
    let server = server();
    let size = 5 * MB;
    let dir = scratch("noranges");
    let file = dir.join("pack.bin");
    let key = "dl-noranges";
    let url = format!(
        "{}/download?bytes={size}&drop_at={}&ranges=0&key={key}",
        server.http_url,
        2 * MB
    );
    let transfers = Transfers::new();
    let handle = transfers.download(&pool(3), spec(url, &file, None));
    let (outcome, samples) = finish(&transfers, &handle);
    assert!(outcome.response.ok(), "{}", outcome.response.error_message);
    assert_eq!(outcome.response.status, 200);
    assert_eq!((outcome.resumes, outcome.restarts), (0, 1));
    assert_eq!(file_sha256(&file), content_sha256(size));
    assert_eq!(outcome.sha256, content_sha256(size));
    let log = log(&server, key);
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(
        log[1].starts_with("range=bytes="),
        "a resume was asked for: {log:?}"
    );
    assert!(log[1].ends_with("status=200"), "and refused: {log:?}");
    // The progress counter starts over with the file: after the restart it is below
    // where the first connection broke, then grows again.
    assert!(samples.iter().any(|s| s.0 == size));
    no_leftovers(&file);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_changed_validator_starts_over_and_last_modified_resumes() {
    let server = server();
    let size = 3 * MB;
    let dir = scratch("validators");
    for (kind, key, query, resumes, restarts) in [
        ("changed etag", "dl-etag-changes", "change_etag=1", 0, 1),
        (
            "last-modified",
            "dl-last-modified",
            "validator=last-modified",
            1,
            0,
        ),
    ] {
        let file = dir.join(format!("{key}.bin"));
        let url = format!(
            "{}/download?bytes={size}&drop_at={}&{query}&key={key}",
            server.http_url, MB
        );
        let transfers = Transfers::new();
        let handle = transfers.download(&pool(3), spec(url, &file, Some(&content_sha256(size))));
        let (outcome, _) = finish(&transfers, &handle);
        assert!(
            outcome.response.ok(),
            "{kind}: {}",
            outcome.response.error_message
        );
        assert_eq!(
            (outcome.resumes, outcome.restarts),
            (resumes, restarts),
            "{kind}"
        );
        assert_eq!(file_sha256(&file), content_sha256(size), "{kind}");
        let log = log(&server, key);
        assert!(
            log[1].contains(";if-range=") && !log[1].contains(";if-range=-;"),
            "{kind}: {log:?}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_restart_of_the_game_resumes_from_the_part_file_and_its_sidecar() {
    let server = server();
    let size = 4 * MB;
    let dir = scratch("restart");
    let file = dir.join("pack.bin");
    let key = "dl-restart";
    let url = format!(
        "{}/download?bytes={size}&drop_at={}&key={key}",
        server.http_url, MB
    );
    {
        // No retries: the drop ends this "run of the game" with the part file kept.
        let transfers = Transfers::new();
        let handle = transfers.download(&pool(0), spec(url.clone(), &file, None));
        let (outcome, _) = finish(&transfers, &handle);
        let r = &outcome.response;
        assert_eq!(r.error, ErrorKind::ConnectionLost, "{}", r.error_message);
        assert!(
            r.error_message.contains("download() again resumes"),
            "{}",
            r.error_message
        );
        assert!(part_of(&file).exists() && !file.exists());
    }
    let kept = std::fs::metadata(part_of(&file)).unwrap().len();
    assert!(kept > 0 && kept <= MB, "{kept} bytes kept");
    let transfers = Transfers::new();
    let handle = transfers.download(&pool(0), spec(url, &file, Some(&content_sha256(size))));
    let (outcome, _) = finish(&transfers, &handle);
    assert!(outcome.response.ok(), "{}", outcome.response.error_message);
    assert_eq!(outcome.resumes, 1);
    assert_eq!(file_sha256(&file), content_sha256(size));
    let log = log(&server, key);
    assert_eq!(
        log[1],
        format!("range=bytes={kept}-;if-range=\"dl-{size}\";status=206")
    );
    no_leftovers(&file);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_part_file_that_cannot_be_resumed_counts_as_a_restart() {
    let server = server();
    let size = 3 * MB;
    let dir = scratch("unresumable");
    let file = dir.join("pack.bin");
    let key = "dl-unresumable";
    // No validator and no ranges: what the first run keeps cannot be continued safely.
    let url = format!(
        "{}/download?bytes={size}&drop_at={}&ranges=0&validator=none&key={key}",
        server.http_url, MB
    );
    {
        let transfers = Transfers::new();
        let handle = transfers.download(&pool(0), spec(url.clone(), &file, None));
        let (outcome, _) = finish(&transfers, &handle);
        assert_eq!(outcome.response.error, ErrorKind::ConnectionLost);
    }
    let kept = std::fs::metadata(part_of(&file)).map_or(0, |m| m.len());
    assert!(kept > 0, "the first run left a part file");
    let transfers = Transfers::new();
    let handle = transfers.download(&pool(0), spec(url, &file, Some(&content_sha256(size))));
    let (outcome, _) = finish(&transfers, &handle);
    assert!(outcome.response.ok(), "{}", outcome.response.error_message);
    assert_eq!(
        (outcome.resumes, outcome.restarts),
        (0, 1),
        "the {kept} bytes kept were thrown away and the file fetched from byte 0"
    );
    assert_eq!(file_sha256(&file), content_sha256(size));
    no_leftovers(&file);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cancel_keeps_or_removes_the_part_file_and_limits_apply() {
    let server = server();
    let dir = scratch("cancel");
    let file = dir.join("pack.bin");
    let url = format!("{}/download?bytes={}", server.http_url, 200 * MB);
    for delete in [false, true] {
        let transfers = Transfers::new();
        let handle = transfers.download(&pool(0), spec(url.clone(), &file, None));
        let deadline = Instant::now() + Duration::from_secs(60);
        while handle.progress().received() < MB {
            assert!(Instant::now() < deadline, "no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        handle.cancel(delete);
        let (outcome, _) = finish(&transfers, &handle);
        assert_eq!(outcome.response.error, ErrorKind::Cancelled);
        assert_eq!(part_of(&file).exists(), !delete, "delete_part = {delete}");
        assert!(!file.exists());
    }
    // A file over max_download_bytes is refused from its Content-Length.
    let transfers = Transfers::new();
    let mut small = spec(url, &file, None);
    small.max_bytes = 1000;
    let handle = transfers.download(&pool(0), small);
    let (outcome, _) = finish(&transfers, &handle);
    assert_eq!(outcome.response.error, ErrorKind::BodyTooLarge);
    assert!(
        outcome
            .response
            .error_message
            .contains("max_download_bytes")
    );
    no_leftovers(&file);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn events(items: Vec<StreamItem>) -> Vec<SseEvent> {
    items
        .into_iter()
        .map(|i| match i {
            StreamItem::Event(e) => e,
            other => panic!("not an event: {other:?}"),
        })
        .collect()
}

#[test]
fn a_thousand_server_sent_events_arrive_in_order_and_a_drop_reconnects_with_last_event_id() {
    let server = server();
    for (key, extra) in [("sse-plain", ""), ("sse-drop", "&drop_after=400")] {
        let transfers = Transfers::new();
        let url = format!(
            "{}/sse?count=1000&retry=20&key={key}{extra}",
            server.http_url
        );
        transfers.stream(&pool(0), StreamSpec::get(url, StreamMode::Events));
        let (items, end) = collect(&transfers, Duration::from_secs(60));
        let got = events(items);
        assert_eq!(got.len(), 1000, "{key}");
        for (i, e) in got.iter().enumerate() {
            assert_eq!(
                (e.event.as_str(), e.data.clone(), e.id.clone()),
                ("message", format!("event {i}"), i.to_string())
            );
            assert_eq!(e.retry_ms, 20);
        }
        assert!(end.ok(), "{key}: {}", end.error_message);
        assert_eq!(end.status, 204, "the server ended it with 204");
        let log = log(&server, key);
        if extra.is_empty() {
            assert_eq!(log, ["last-event-id=-", "last-event-id=999"]);
        } else {
            assert_eq!(
                log,
                ["last-event-id=-", "last-event-id=399", "last-event-id=999"]
            );
        }
    }
}

#[test]
fn the_event_stream_grammar_fixture_parses_as_the_standard_says() {
    let server = server();
    let transfers = Transfers::new();
    let url = format!("{}/sse/fixture", server.http_url);
    transfers.stream(&pool(0), StreamSpec::get(url, StreamMode::Events));
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    let got: Vec<(String, String, String, u64)> = events(items)
        .into_iter()
        .map(|e| (e.event, e.data, e.id, e.retry_ms))
        .collect();
    let want = [
        ("greeting", "hello\n two spaces", "", 25),
        ("message", "\nafter an empty line", "", 25),
        ("message", "{\"json\": true}", "7", 25),
        ("bye", "last", "end", 25),
    ];
    let want: Vec<(String, String, String, u64)> = want
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
        .collect();
    assert_eq!(got, want);
    assert_eq!(end.status, 204);
    // Not an event stream: a clear error, no reconnection.
    let transfers = Transfers::new();
    transfers.stream(
        &pool(0),
        StreamSpec::get(format!("{}/sse/plain", server.http_url), StreamMode::Events),
    );
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert!(items.is_empty());
    assert_eq!(end.error, ErrorKind::Decode);
    assert!(
        end.error_message.contains("not text/event-stream"),
        "{}",
        end.error_message
    );
}

#[test]
fn lines_chunks_an_over_long_line_and_cancel() {
    let server = server();
    let transfers = Transfers::new();
    let url = format!("{}/lines?count=300", server.http_url);
    transfers.stream(&pool(0), StreamSpec::get(url, StreamMode::Lines));
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    let lines: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            StreamItem::Line(l) => l,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        (0..300).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    assert!(end.ok());

    let mut spec = StreamSpec::get(
        format!("{}/lines?count=3&long=5000", server.http_url),
        StreamMode::Lines,
    );
    spec.max_line_bytes = 4096;
    transfers.stream(&pool(0), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(items.len(), 3, "the lines before the long one arrive");
    assert_eq!(end.error, ErrorKind::BodyTooLarge);
    assert!(
        end.error_message
            .contains("longer than max_line_bytes (4096 bytes)"),
        "{}",
        end.error_message
    );

    let url = format!("{}/trickle?chunks=5&interval_ms=20", server.http_url);
    transfers.stream(&pool(0), StreamSpec::get(url, StreamMode::Chunks));
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    let mut bytes = Vec::new();
    for i in items {
        let StreamItem::Chunk(c) = i else {
            panic!("not a chunk")
        };
        bytes.extend_from_slice(&c);
    }
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
    assert!(end.ok());

    // Cancel: the stream would run for 100 s; it ends at once.
    let url = format!("{}/sse?count=1000&interval_ms=100", server.http_url);
    let handle = transfers.stream(&pool(0), StreamSpec::get(url, StreamMode::Events));
    std::thread::sleep(Duration::from_millis(300));
    let cancelled_at = Instant::now();
    handle.cancel();
    let (items, end) = collect(&transfers, Duration::from_secs(5));
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "ended at once"
    );
    assert!(items.len() < 100, "{} events", items.len());
    assert_eq!(end.error, ErrorKind::Cancelled);
}

#[test]
fn a_flooding_stream_waits_for_the_game_within_its_buffer_and_loses_nothing() {
    let server = server();
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(
        format!("{}/sse?count=20000", server.http_url),
        StreamMode::Events,
    );
    spec.buffer_bytes = 4096;
    transfers.stream(&pool(0), spec);
    // The game does not read: what waits grows to what the buffer holds, then stays
    // (the task stopped reading the socket). Each event takes its data and id bytes, at
    // least 12, of the 4096.
    let bound = 4096 / 12;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let before = transfers.pending_events();
        std::thread::sleep(Duration::from_millis(200));
        let after = transfers.pending_events();
        assert!(
            after <= bound,
            "{after} events wait, more than the buffer holds"
        );
        if after > 0 && after == before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stream never filled its buffer"
        );
    }
    let (items, end) = collect(&transfers, Duration::from_secs(120));
    let got = events(items);
    assert_eq!(got.len(), 20000);
    assert!(
        got.iter().enumerate().all(|(i, e)| e.id == i.to_string()),
        "in order, none lost"
    );
    assert!(end.ok(), "{}", end.error_message);
}

#[test]
fn an_event_stream_gives_up_after_its_reconnections_in_a_row() {
    // A port where nothing listens: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sse", closed.local_addr().unwrap());
    drop(closed);
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(url, StreamMode::Events);
    spec.retry_ms = 20;
    spec.max_reconnects = 3;
    let started = Instant::now();
    transfers.stream(&pool(0), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert!(items.is_empty());
    assert_eq!(end.error, ErrorKind::Connect, "{}", end.error_message);
    assert!(
        end.error_message
            .contains("gave up after 3 reconnections in a row"),
        "{}",
        end.error_message
    );
    assert_eq!(
        end.attempts, 4,
        "the first connection and three reconnections"
    );
    // Waits of 100, 200 and 400 ms: the 20 ms asked for is raised to the 100 ms floor,
    // and the delay doubles for each failure in a row.
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}
