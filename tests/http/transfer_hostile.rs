//! Downloads and streams against servers that break the rules on purpose, and games that
//! use them carelessly: a 206 that is not the range asked for (or answers no Range at
//! all), a body longer than it announced, a content coding nobody asked for, a server that
//! ignores `If-Range`, a sidecar edited by hand, a connection that drops before the point
//! reached last time, a complete part file, a download started again right after a
//! cancel, forty downloads started in a loop, headers the download or the event stream
//! sets itself, an event stream whose `retry` is zero or absurd or whose id no header can
//! carry, a silent stream, an error body that trickles, a flood of empty lines, bytes that
//! are not UTF-8. Each must end with a clear error or the right file, never a hang, a
//! loop, unbounded memory or a glued file.
//!
//! The server is scripted per test: a plain TCP listener on 127.0.0.1 that reads each
//! request head and writes back the bytes the test's closure returns (the hyper test
//! server would refuse to send most of these).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netkit::core::http::transfer::{
    DownloadHandle, DownloadOutcome, DownloadSpec, StreamItem, StreamMode, StreamSpec,
    TransferEvent, Transfers,
};
use netkit::core::http::{ErrorKind, HttpPool, PoolSettings};
use netkit_test_support::http_server::start_blocking;
use netkit_test_support::http_server::transfer_routes::content;
use netkit_test_support::transfer::collect;

/// What the scripted server does with one connection.
struct Reply {
    /// Written as is.
    bytes: Vec<u8>,
    /// Keep the connection open (sending nothing more) instead of closing it.
    hold: bool,
    /// Then send one byte this often, for two minutes.
    drip: Option<Duration>,
}

impl Reply {
    fn close(bytes: Vec<u8>) -> Reply {
        Reply {
            bytes,
            hold: false,
            drip: None,
        }
    }

    fn hold(bytes: Vec<u8>) -> Reply {
        Reply {
            bytes,
            hold: true,
            drip: None,
        }
    }
}

/// A running scripted server; its requests are logged, one request per connection.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    fn start(answer: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &log, &*answer));
            }
        });
        Scripted { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<String>>, answer: &dyn Fn(usize, &str) -> Reply) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let n = {
        let mut log = log.lock().unwrap();
        log.push(head.clone());
        log.len() - 1
    };
    let reply = answer(n, &head);
    let _ = stream.write_all(&reply.bytes);
    if let Some(every) = reply.drip {
        let until = Instant::now() + Duration::from_secs(120);
        while Instant::now() < until && stream.write_all(b"x").is_ok() {
            std::thread::sleep(every);
        }
    }
    if reply.hold {
        std::thread::sleep(Duration::from_secs(120));
    }
}

/// A response head with `Connection: close` (one request per connection).
fn head(status: &str, fields: &[String]) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for f in fields {
        text.push_str(f);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

fn with_body(mut head: Vec<u8>, body: &[u8]) -> Vec<u8> {
    head.extend_from_slice(body);
    head
}

/// The `Range: bytes=S-` start of a request head, if any.
fn range_start(head: &str) -> Option<usize> {
    let line = head.lines().find(|l| l.starts_with("range:"))?;
    line.trim_start_matches("range:")
        .trim()
        .strip_prefix("bytes=")?
        .trim_end_matches('-')
        .parse()
        .ok()
}

fn pool() -> HttpPool {
    HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_secs(2),
        timeout: Duration::from_secs(20),
        max_retries: 2,
        ..PoolSettings::default()
    })
}

fn scratch(name: &str) -> PathBuf {
    netkit_test_support::transfer::scratch("netkit-hostile", name)
}

fn spec(url: String, file: &Path) -> DownloadSpec {
    DownloadSpec {
        url,
        headers: Vec::new(),
        file: file.to_path_buf(),
        sha256: None,
        max_bytes: 4 << 30,
    }
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Leaves a part file and the sidecar netkit would have written for `url`.
fn plant_part(file: &Path, url: &str, bytes: &[u8], validator: &str, total: Option<u64>) {
    std::fs::write(with_suffix(file, ".part"), bytes).unwrap();
    let meta = serde_json::json!({"url": url, "validator": validator, "total": total});
    std::fs::write(with_suffix(file, ".part.meta"), meta.to_string()).unwrap();
}

fn finish(transfers: &Transfers, handle: &DownloadHandle) -> DownloadOutcome {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the download did not end within 60 s (received {} bytes so far)",
            handle.progress().received()
        );
        if let Some(TransferEvent::Download { id, outcome }) = transfers.next_event() {
            assert_eq!(id, handle.id);
            return outcome;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn download(url: String, file: &Path) -> DownloadOutcome {
    let transfers = Transfers::new();
    let handle = transfers.download(&pool(), spec(url, file));
    finish(&transfers, &handle)
}

fn nothing_in_place(file: &Path) {
    assert!(!file.exists(), "{} must not exist", file.display());
}

/// A server without a validator (no resume possible) that drops every connection half
/// way: each retry starts over from byte 0 and reaches the same point, which is not
/// progress, so the retries stay bounded by `max_retries` instead of looping forever.
#[test]
fn a_restart_that_only_fetches_the_same_bytes_again_is_not_progress() {
    let server = Scripted::start(|_, _| {
        let mut r = head("200 OK", &["Content-Length: 1000".into()]);
        r.extend_from_slice(&[7u8; 500]);
        Reply::close(r)
    });
    let dir = scratch("no-progress");
    let file = dir.join("f.bin");
    let end = download(format!("{}/f", server.url), &file);
    assert_eq!(
        end.response.error,
        ErrorKind::ConnectionLost,
        "{}",
        end.response.error_message
    );
    assert_eq!(
        server.requests().len(),
        3,
        "the first attempt and max_retries (2) more"
    );
    nothing_in_place(&file);
}

/// 206 is an answer to a Range request only; to a request for the whole file, a part of
/// it (or a 206 without Content-Range) must not be renamed into place as the file.
#[test]
fn a_206_to_a_request_without_range_is_not_taken_as_the_file() {
    for fields in [
        vec![
            "Content-Range: bytes 100-199/1000".to_string(),
            "Content-Length: 100".into(),
        ],
        vec!["Content-Length: 100".to_string()],
    ] {
        let server = Scripted::start(move |_, _| {
            Reply::close(with_body(head("206 Partial Content", &fields), &[1u8; 100]))
        });
        let dir = scratch("206-unasked");
        let file = dir.join("f.bin");
        let end = download(format!("{}/f", server.url), &file);
        assert_eq!(end.response.error, ErrorKind::Decode);
        assert!(
            end.response.error_message.contains("206 Partial Content"),
            "{}",
            end.response.error_message
        );
        nothing_in_place(&file);
        assert!(!with_suffix(&file, ".part").exists(), "no part file left");
    }
    // A 206 covering the whole file is the file.
    let body = content(0, 1000);
    let server = Scripted::start(move |_, _| {
        let fields = [
            "Content-Range: bytes 0-999/1000".to_string(),
            "Content-Length: 1000".into(),
        ];
        Reply::close(with_body(head("206 Partial Content", &fields), &body))
    });
    let dir = scratch("206-whole");
    let file = dir.join("f.bin");
    let end = download(format!("{}/f", server.url), &file);
    assert!(end.response.ok(), "{}", end.response.error_message);
    assert_eq!(std::fs::read(&file).unwrap(), content(0, 1000));
}

/// A server that ignores `If-Range` and answers the resume with a 206 of a new version
/// still names it: a different ETag or Last-Modified, or another total length. The download starts over
/// rather than glue the old prefix to the new rest.
#[test]
fn a_206_of_another_version_than_the_part_file_starts_over() {
    for (new_len, etag, modified) in [
        (1000usize, true, false),
        (2000, false, false),
        (1000, false, true),
    ] {
        let new: Vec<u8> = (0..new_len).map(|i| (i % 251) as u8 ^ 0x5a).collect();
        let served = new.clone();
        let server = Scripted::start(move |_, req| {
            let tag = if etag {
                vec!["ETag: \"v2\"".to_string()]
            } else if modified {
                vec![
                    "Last-Modified: Tue, 02 Jan 2024 00:00:00 GMT".to_string(),
                    "Date: Wed, 03 Jan 2024 00:00:00 GMT".into(),
                ]
            } else {
                vec![]
            };
            match range_start(req) {
                Some(start) => {
                    let mut fields = tag;
                    fields.push(format!(
                        "Content-Range: bytes {start}-{}/{}",
                        served.len() - 1,
                        served.len()
                    ));
                    fields.push(format!("Content-Length: {}", served.len() - start));
                    Reply::close(with_body(
                        head("206 Partial Content", &fields),
                        &served[start..],
                    ))
                }
                None => {
                    let mut fields = tag;
                    fields.push(format!("Content-Length: {}", served.len()));
                    Reply::close(with_body(head("200 OK", &fields), &served))
                }
            }
        });
        let dir = scratch("changed-206");
        let file = dir.join("f.bin");
        let url = format!("{}/f", server.url);
        let ours = if modified {
            "Mon, 01 Jan 2024 00:00:00 GMT"
        } else {
            "\"v1\""
        };
        plant_part(&file, &url, &[0xEE; 300], ours, Some(1000));
        let end = download(url, &file);
        assert!(end.response.ok(), "{}", end.response.error_message);
        assert_eq!(
            std::fs::read(&file).unwrap(),
            new,
            "the new version alone (etag: {etag}, last-modified: {modified})"
        );
        assert_eq!(end.restarts, 1);
        assert_eq!(end.resumes, 0);
    }
}

/// A 206 whose body runs past the end its Content-Range announced (chunked, so the HTTP
/// layer cannot tell): the download stops with an error; nothing of it is used.
#[test]
fn a_body_longer_than_its_content_range_ends_the_download() {
    let server = Scripted::start(|_, req| {
        assert_eq!(range_start(req), Some(300));
        let fields = [
            "ETag: \"v1\"".to_string(),
            "Content-Range: bytes 300-999/1000".into(),
            "Transfer-Encoding: chunked".into(),
        ];
        let mut r = head("206 Partial Content", &fields);
        let body = vec![3u8; 1000];
        r.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        r.extend_from_slice(&body);
        r.extend_from_slice(b"\r\n0\r\n\r\n");
        Reply::close(r)
    });
    let dir = scratch("too-long");
    let file = dir.join("f.bin");
    let url = format!("{}/f", server.url);
    plant_part(&file, &url, &[1; 300], "\"v1\"", Some(1000));
    let end = download(url, &file);
    assert_eq!(end.response.error, ErrorKind::Decode);
    assert!(
        end.response.error_message.contains("more of"),
        "{}",
        end.response.error_message
    );
    nothing_in_place(&file);
    assert!(!with_suffix(&file, ".part").exists());
    assert_eq!(server.requests().len(), 1, "not retried");
}

/// The download asks for `identity`; a gzip body sent anyway is refused with its own
/// error rather than decoded (its offsets and Content-Range count coded bytes) or written.
#[test]
fn a_content_coding_the_download_did_not_ask_for_is_refused() {
    let plain = content(0, 5000);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let coded = gz.finish().unwrap();
    let server = Scripted::start(move |_, req| {
        assert!(req.contains("accept-encoding: identity"), "{req}");
        let fields = [
            "Content-Encoding: gzip".to_string(),
            format!("Content-Length: {}", coded.len()),
        ];
        Reply::close(with_body(head("200 OK", &fields), &coded))
    });
    let dir = scratch("gzip");
    let file = dir.join("f.bin");
    let end = download(format!("{}/f", server.url), &file);
    assert_eq!(
        end.response.error,
        ErrorKind::Decode,
        "{}",
        end.response.error_message
    );
    assert!(
        end.response
            .error_message
            .contains("Content-Encoding 'gzip'"),
        "{}",
        end.response.error_message
    );
    nothing_in_place(&file);
    assert!(!with_suffix(&file, ".part").exists());
}

/// A sidecar edited by hand (a validator that cannot go into a header, a total below the
/// part file's length, not JSON at all) is not resumed: the download starts over and
/// ends with the right file instead of failing on every attempt.
#[test]
fn a_tampered_sidecar_starts_over_instead_of_failing_forever() {
    let server = start_blocking();
    for (i, meta) in [
        Some(("\"dl-1000\"\r\nX-Evil: 1", Some(1000))),
        Some(("\"dl-1000\"", Some(10))),
        Some(("not a validator", Some(1000))),
        None,
    ]
    .into_iter()
    .enumerate()
    {
        let dir = scratch(&format!("sidecar-{i}"));
        let file = dir.join("f.bin");
        let url = format!("{}/download?bytes=1000&key=sidecar-{i}", server.http_url);
        match meta {
            Some((validator, total)) => plant_part(&file, &url, &[9; 400], validator, total),
            None => {
                std::fs::write(with_suffix(&file, ".part"), [9; 400]).unwrap();
                std::fs::write(with_suffix(&file, ".part.meta"), [0xff, 0, 0x7b]).unwrap();
            }
        }
        let end = download(url, &file);
        assert!(end.response.ok(), "{i}: {}", end.response.error_message);
        assert_eq!(std::fs::read(&file).unwrap(), content(0, 1000), "{i}");
        assert_eq!(end.resumes, 0, "{i}");
    }
}

/// Two spellings of one path are one file: the second download is refused while the
/// first runs, instead of both writing the same part file.
#[test]
fn the_same_file_under_two_spellings_is_downloaded_once_at_a_time() {
    let server = Scripted::start(|_, _| {
        let mut r = head("200 OK", &["Content-Length: 1000".into()]);
        r.extend_from_slice(&[1u8; 10]);
        Reply::hold(r)
    });
    let dir = scratch("spellings");
    let transfers = Transfers::new();
    let first = transfers.download(
        &pool(),
        spec(format!("{}/a", server.url), &dir.join("f.bin")),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.progress().received() == 0 {
        assert!(
            Instant::now() < deadline,
            "the first download never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for other in [dir.join("./f.bin"), dir.join("sub/../f.bin")] {
        let second = transfers.download(&pool(), spec(format!("{}/b", server.url), &other));
        let end = finish(&transfers, &second);
        assert_eq!(
            end.response.error,
            ErrorKind::File,
            "{}: {}",
            other.display(),
            end.response.error_message
        );
        assert!(
            end.response
                .error_message
                .contains("already being downloaded"),
            "{}",
            end.response.error_message
        );
    }
    first.cancel(true);
    let end = finish(&transfers, &first);
    assert_eq!(end.response.error, ErrorKind::Cancelled);
}

/// `retry: 99999999999` (three years) must not park the stream silently: the wait is
/// capped by `retry_max_delay`, so the reconnection comes and the stream completes.
#[test]
fn a_huge_retry_is_capped_by_retry_max_delay() {
    let server = start_blocking();
    let transfers = Transfers::new();
    let spec = StreamSpec::get(
        format!(
            "{}/sse?count=3&retry=99999999999&drop_after=1&key=huge-retry",
            server.http_url
        ),
        StreamMode::Events,
    );
    transfers.stream(&pool(), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(60));
    assert_eq!(items.len(), 3, "all three events, across the reconnection");
    assert_eq!(end.status, 204, "{}", end.error_message);
}

/// `retry: 0` from a server that sends one event and closes, every time: each
/// connection brings an event, so the stream keeps reconnecting, but never faster than
/// the floor of 100 ms (not thousands of connections a second).
#[test]
fn retry_zero_does_not_make_a_reconnect_storm() {
    let server = Scripted::start(|_, _| {
        let fields = ["Content-Type: text/event-stream".to_string()];
        Reply::close(with_body(head("200 OK", &fields), b"retry: 0\ndata: x\n\n"))
    });
    let transfers = Transfers::new();
    let handle = transfers.stream(
        &pool(),
        StreamSpec::get(format!("{}/sse", server.url), StreamMode::Events),
    );
    let watch = Duration::from_millis(1500);
    let started = Instant::now();
    while started.elapsed() < watch {
        while transfers.next_event().is_some() {}
        std::thread::sleep(Duration::from_millis(5));
    }
    let connections = server.requests().len();
    handle.cancel();
    let (_, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(end.error, ErrorKind::Cancelled);
    assert!(connections >= 2, "it reconnects: {connections}");
    assert!(
        connections <= 1 + (started.elapsed().as_millis() / 100) as usize + 1,
        "{connections} connections in {:?}",
        started.elapsed()
    );
}

/// A flood of empty lines: each is one byte on the wire but a whole queued item in
/// memory. The stream's buffer counts what an item costs, so what waits for a game that
/// does not read stays within the buffer, and nothing is lost once it reads.
#[test]
fn a_flood_of_empty_lines_waits_within_the_buffer() {
    const LINES: usize = 256 * 1024;
    let server = Scripted::start(|_, _| {
        let fields = ["Content-Type: text/plain".to_string()];
        Reply::close(with_body(head("200 OK", &fields), &[b'\n'; LINES]))
    });
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(format!("{}/lines", server.url), StreamMode::Lines);
    spec.buffer_bytes = 64 * 1024;
    transfers.stream(&pool(), spec);
    let bound = 64 * 1024 / std::mem::size_of::<TransferEvent>();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let before = transfers.pending_events();
        std::thread::sleep(Duration::from_millis(300));
        let after = transfers.pending_events();
        assert!(
            after <= bound,
            "{after} lines wait, each a queued item of {} bytes, in a buffer of 64 KiB",
            std::mem::size_of::<TransferEvent>()
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
    assert!(end.ok(), "{}", end.error_message);
    assert_eq!(items.len(), LINES, "every empty line arrives");
    assert!(
        items
            .iter()
            .all(|i| matches!(i, StreamItem::Line(l) if l.is_empty()))
    );
}

/// A server that sends the head and a little, then nothing (a half-open connection looks
/// the same): with `idle_timeout` a line stream ends with `Timeout` after what arrived,
/// and an event stream reconnects with its `Last-Event-ID` instead of just stopping.
#[test]
fn a_silent_stream_ends_or_reconnects_after_its_idle_timeout() {
    let server = Scripted::start(|_, _| {
        let fields = ["Content-Type: text/event-stream".to_string()];
        Reply::hold(with_body(head("200 OK", &fields), b"id: 7\ndata: a\n\n"))
    });
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(format!("{}/lines", server.url), StreamMode::Lines);
    spec.idle_timeout = Some(Duration::from_millis(500));
    transfers.stream(&pool(), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(end.error, ErrorKind::Timeout, "{}", end.error_message);
    assert!(
        end.error_message.contains("stream_idle_timeout"),
        "{}",
        end.error_message
    );
    assert_eq!(items.len(), 3, "the lines that arrived: id, data, blank");

    let mut spec = StreamSpec::get(format!("{}/sse", server.url), StreamMode::Events);
    spec.idle_timeout = Some(Duration::from_millis(500));
    let handle = transfers.stream(&pool(), spec);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .requests()
        .iter()
        .any(|r| r.starts_with("get /sse") && r.contains("last-event-id: 7"))
    {
        assert!(
            Instant::now() < deadline,
            "no reconnection after the silence"
        );
        while transfers.next_event().is_some() {}
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.cancel();
    let (_, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(end.error, ErrorKind::Cancelled);
}

/// An error status whose body trickles in, a byte every 300 ms of a 64 KiB
/// Content-Length: the stream ends with the status promptly, with what arrived of the
/// explanation, instead of reading it for hours.
#[test]
fn an_error_body_that_trickles_does_not_hold_back_the_error() {
    let server = Scripted::start(|_, _| Reply {
        bytes: head("503 Service Unavailable", &["Content-Length: 65536".into()]),
        hold: false,
        drip: Some(Duration::from_millis(300)),
    });
    let transfers = Transfers::new();
    let started = Instant::now();
    transfers.stream(
        &pool(),
        StreamSpec::get(format!("{}/lines", server.url), StreamMode::Lines),
    );
    let (items, end) = collect(&transfers, Duration::from_secs(60));
    assert!(items.is_empty());
    assert_eq!(end.error, ErrorKind::HttpStatus, "{}", end.error_message);
    assert_eq!(end.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the error took {:?}",
        started.elapsed()
    );
    assert!(!end.body.is_empty() && end.body.iter().all(|b| *b == b'x'));
}

/// An event id with a control character (the standard allows anything but NUL) cannot be
/// sent back as `Last-Event-ID`: after the drop the stream ends with a sentence saying
/// so, not with an error blaming the game's request.
#[test]
fn an_event_id_no_header_can_carry_ends_the_stream_clearly() {
    let server = Scripted::start(|_, _| {
        let fields = ["Content-Type: text/event-stream".to_string()];
        Reply::close(with_body(
            head("200 OK", &fields),
            b"id: a\x01b\ndata: x\n\n",
        ))
    });
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(format!("{}/sse", server.url), StreamMode::Events);
    spec.retry_ms = 0;
    transfers.stream(&pool(), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(items.len(), 1, "the event arrived");
    assert_eq!(end.error, ErrorKind::Decode, "{}", end.error_message);
    assert!(
        end.error_message.contains("Last-Event-ID"),
        "{}",
        end.error_message
    );
    assert_eq!(server.requests().len(), 1, "no reconnection without the id");
}

/// A folder that cannot be created (a file stands where it should be) and a target that
/// is a folder: each ends with `ERR_FILE` naming the path, and the folder stays as it was.
#[test]
fn unwritable_targets_end_with_a_file_error() {
    let server = start_blocking();
    let dir = scratch("unwritable");
    std::fs::write(dir.join("plain.txt"), b"a file").unwrap();
    let url = format!("{}/download?bytes=1000", server.http_url);
    let end = download(url.clone(), &dir.join("plain.txt/sub/f.bin"));
    assert_eq!(
        end.response.error,
        ErrorKind::File,
        "{}",
        end.response.error_message
    );
    assert!(
        end.response
            .error_message
            .contains("plain.txt/sub/f.bin.part"),
        "{}",
        end.response.error_message
    );
    let folder = dir.join("taken");
    std::fs::create_dir_all(folder.join("inside")).unwrap();
    let end = download(url, &folder);
    assert_eq!(
        end.response.error,
        ErrorKind::File,
        "{}",
        end.response.error_message
    );
    assert!(
        end.response.error_message.contains("could not move"),
        "{}",
        end.response.error_message
    );
    assert!(folder.join("inside").is_dir(), "the folder is untouched");
}

/// Waits until `handle` has `bytes` of its file; panics with its ending if it ends first.
fn run_until(transfers: &Transfers, handle: &DownloadHandle, bytes: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.progress().received() < bytes {
        if let Some(TransferEvent::Download { outcome, .. }) = transfers.next_event() {
            panic!("{what} ended early: {}", outcome.response.error_message);
        }
        assert!(Instant::now() < deadline, "{what} never got {bytes} bytes");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A download cancelled a moment ago still holds its file until its task has ended; the
/// same download started again right away (a pool freed on a scene change, then a new
/// one) waits for it and resumes its part file instead of being refused.
#[test]
fn a_download_started_again_right_after_a_cancel_resumes() {
    let server = start_blocking();
    let dir = scratch("again");
    let file = dir.join("f.bin");
    let url = format!(
        "{}/download?bytes={}&key=again-{}",
        server.http_url,
        40 << 20,
        std::process::id()
    );
    let mut transfers = Transfers::new();
    let mut handle = transfers.download(&pool(), spec(url.clone(), &file));
    for round in 1..=3u64 {
        run_until(
            &transfers,
            &handle,
            round << 20,
            &format!("download {round}"),
        );
        drop(transfers); // the pool is freed: its downloads are cancelled
        transfers = Transfers::new();
        handle = transfers.download(&pool(), spec(url.clone(), &file));
    }
    let end = finish(&transfers, &handle);
    assert!(end.response.ok(), "{}", end.response.error_message);
    assert_eq!(end.resumes, 1, "it continued the part file");
    assert_eq!(std::fs::read(&file).unwrap(), content(0, 40 << 20));
}

/// The game stopped between the last byte and the rename: the part file is the whole
/// file. The server answers its range with 416 `bytes */N`, N the part's length, and the
/// download finishes it (hash and rename) instead of fetching all of it again.
#[test]
fn a_part_file_that_is_already_complete_is_finished_not_fetched_again() {
    let server = start_blocking();
    let dir = scratch("complete-part");
    let file = dir.join("f.bin");
    let key = format!("complete-{}", std::process::id());
    let url = format!("{}/download?bytes=100000&key={key}", server.http_url);
    plant_part(
        &file,
        &url,
        &content(0, 100_000),
        "\"dl-100000\"",
        Some(100_000),
    );
    let transfers = Transfers::new();
    let mut spec = spec(url, &file);
    spec.sha256 = Some(
        netkit::core::http::transfer::parse_sha256(
            &netkit_test_support::http_server::transfer_routes::content_sha256(100_000),
        )
        .unwrap(),
    );
    let handle = transfers.download(&pool(), spec);
    let end = finish(&transfers, &handle);
    assert!(end.response.ok(), "{}", end.response.error_message);
    assert_eq!(end.restarts, 0, "not fetched again");
    assert_eq!(std::fs::read(&file).unwrap(), content(0, 100_000));
    assert!(!with_suffix(&file, ".part").exists());
    assert!(!with_suffix(&file, ".part.meta").exists());
    let text = std::io::read_to_string(
        std::net::TcpStream::connect(server.http_url.trim_start_matches("http://"))
            .and_then(|mut s| {
                write!(
                    s,
                    "GET /transfer/log?key={key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )?;
                Ok(s)
            })
            .unwrap(),
    )
    .unwrap();
    assert_eq!(text.matches("status=").count(), 1, "one request: {text}");
    assert!(text.contains("status=416"), "{text}");
}

/// Headers a download sets itself, arriving through the pool's default headers (an API's
/// `Accept-Encoding: gzip`, a stray `Range`): they are not sent, so the server sees one
/// `identity` and no range, and the file is the whole file.
#[test]
fn headers_the_download_manages_are_not_sent_twice() {
    let body = content(0, 3000);
    let server = Scripted::start(move |_, req| {
        let fields = [format!("Content-Length: {}", body.len())];
        if req.contains("range:") || req.matches("accept-encoding").count() != 1 {
            return Reply::close(head("400 Bad Request", &["Content-Length: 0".into()]));
        }
        Reply::close(with_body(head("200 OK", &fields), &body))
    });
    let dir = scratch("managed");
    let file = dir.join("f.bin");
    let transfers = Transfers::new();
    let mut spec = spec(format!("{}/f", server.url), &file);
    spec.headers = vec![
        ("Accept-Encoding".into(), "gzip".into()),
        ("range".into(), "bytes=0-10".into()),
        ("If-Range".into(), "\"x\"".into()),
        ("X-Game".into(), "kept".into()),
    ];
    let handle = transfers.download(&pool(), spec);
    let end = finish(&transfers, &handle);
    assert!(end.response.ok(), "{}", end.response.error_message);
    assert_eq!(std::fs::read(&file).unwrap(), content(0, 3000));
    let req = &server.requests()[0];
    assert!(req.contains("accept-encoding: identity\r\n"), "{req}");
    assert!(req.contains("x-game: kept"), "{req}");
}

/// A pool whose default headers say `Accept: application/json` (usual for an API) and a
/// game that starts an event stream from a saved `Last-Event-ID`: the stream sends one
/// `Accept: text/event-stream`, starts after the saved id, and reconnects from the last
/// id it got, not from the saved one again (which replayed the same events forever).
#[test]
fn the_games_accept_and_last_event_id_do_not_fight_the_streams_own() {
    let server = start_blocking();
    let key = format!("game-headers-{}", std::process::id());
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(
        format!(
            "{}/sse?count=10&retry=20&drop_after=2&key={key}",
            server.http_url
        ),
        StreamMode::Events,
    );
    spec.headers = vec![
        ("Accept".into(), "application/json".into()),
        ("Last-Event-ID".into(), "4".into()),
    ];
    transfers.stream(&pool(), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(60));
    let ids: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            StreamItem::Event(e) => e.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        ["5", "6", "7", "8", "9"],
        "from the saved id on, once each"
    );
    assert_eq!(end.status, 204, "{}", end.error_message);
}

/// A server that picks JSON when the request accepts it: the event stream's request
/// accepts only `text/event-stream`, whatever the pool's default `Accept` says.
#[test]
fn a_default_accept_does_not_turn_an_event_stream_into_json() {
    let server = Scripted::start(|_, req| {
        let accepts: Vec<&str> = req.lines().filter(|l| l.starts_with("accept:")).collect();
        if accepts != ["accept: text/event-stream"] {
            let fields = ["Content-Type: application/json".to_string()];
            return Reply::close(with_body(head("200 OK", &fields), b"{}"));
        }
        let fields = ["Content-Type: text/event-stream".to_string()];
        Reply::close(with_body(head("200 OK", &fields), b"data: ok\n\n"))
    });
    let transfers = Transfers::new();
    let mut spec = StreamSpec::get(format!("{}/sse", server.url), StreamMode::Events);
    spec.headers = vec![("Accept".into(), "application/json".into())];
    spec.max_reconnects = 0;
    transfers.stream(&pool(), spec);
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(items.len(), 1, "{}", end.error_message);
    assert_eq!(end.error, ErrorKind::None, "{}", end.error_message);
}

/// A game that starts forty downloads in a loop: eight run (eight connections), the rest
/// wait without a connection or a file, and all of them still end, here by a cancel.
#[test]
fn downloads_started_in_a_loop_run_a_few_at_a_time() {
    let server = Scripted::start(|_, _| {
        let mut r = head("200 OK", &["Content-Length: 1000".into()]);
        r.extend_from_slice(&[1u8; 10]);
        Reply::hold(r)
    });
    let dir = scratch("many");
    let transfers = Transfers::new();
    let handles: Vec<DownloadHandle> = (0..40)
        .map(|i| {
            let file = dir.join(format!("f{i}.bin"));
            transfers.download(&pool(), spec(format!("{}/f{i}", server.url), &file))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handles
        .iter()
        .filter(|h| h.progress().received() > 0)
        .count()
        < 8
    {
        assert!(Instant::now() < deadline, "eight downloads never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.requests().len(), 8, "eight connections, not forty");
    let parts = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(parts, 8, "only the running ones have a part file");
    transfers.cancel_all();
    let mut ended = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ended.len() < handles.len() {
        assert!(Instant::now() < deadline, "only {} ended", ended.len());
        match transfers.next_event() {
            Some(TransferEvent::Download { id, outcome }) => {
                assert_eq!(outcome.response.error, ErrorKind::Cancelled);
                assert!(ended.insert(id), "download {id} ended twice");
            }
            Some(other) => panic!("{other:?}"),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Bytes that are not UTF-8 in lines and events become U+FFFD (as the standard's
/// decoder does); the stream goes on and nothing else changes.
#[test]
fn bytes_that_are_not_utf8_become_replacement_characters() {
    let server = Scripted::start(|_, req| {
        let (kind, body): (&str, &[u8]) = if req.starts_with("get /sse") {
            (
                "text/event-stream",
                b"data: caf\xe9\nid: \xff\n\ndata: next\n\n",
            )
        } else {
            ("text/plain", b"caf\xe9\n\xff\xfeok\n")
        };
        Reply::close(with_body(
            head("200 OK", &[format!("Content-Type: {kind}")]),
            body,
        ))
    });
    let transfers = Transfers::new();
    transfers.stream(
        &pool(),
        StreamSpec::get(format!("{}/lines", server.url), StreamMode::Lines),
    );
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert!(end.ok(), "{}", end.error_message);
    let lines: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            StreamItem::Line(l) => l,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lines, ["caf\u{fffd}", "\u{fffd}\u{fffd}ok"]);
    let mut spec = StreamSpec::get(format!("{}/sse", server.url), StreamMode::Events);
    spec.max_reconnects = 0;
    transfers.stream(&pool(), spec);
    let (items, _) = collect(&transfers, Duration::from_secs(30));
    let got: Vec<(String, String)> = items
        .into_iter()
        .map(|i| match i {
            StreamItem::Event(e) => (e.data, e.id),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("caf\u{fffd}".to_string(), "\u{fffd}".to_string()),
            ("next".to_string(), "\u{fffd}".to_string())
        ]
    );
}

/// A game that opens streams in a loop: 64 open, the next ones end at once with
/// `QueueFull` and a sentence, and once one open stream ended a new one opens again.
#[test]
fn streams_opened_in_a_loop_stop_at_a_bound_with_a_clear_error() {
    let server = Scripted::start(|_, _| {
        let fields = ["Content-Type: text/event-stream".to_string()];
        Reply::hold(with_body(head("200 OK", &fields), b": open\n\n"))
    });
    let transfers = Transfers::new();
    let url = format!("{}/sse", server.url);
    let handles: Vec<_> = (0..70)
        .map(|_| transfers.stream(&pool(), StreamSpec::get(url.clone(), StreamMode::Events)))
        .collect();
    let (items, end) = collect(&transfers, Duration::from_secs(30));
    assert!(items.is_empty());
    assert_eq!(end.error, ErrorKind::QueueFull, "{}", end.error_message);
    assert!(
        end.error_message.contains("64 streams"),
        "{}",
        end.error_message
    );
    for _ in 0..5 {
        let (_, end) = collect(&transfers, Duration::from_secs(30));
        assert_eq!(end.error, ErrorKind::QueueFull);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.requests().len() < 64 {
        assert!(
            Instant::now() < deadline,
            "only {} of the 64 streams connected",
            server.requests().len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handles[0].cancel();
    let (_, end) = collect(&transfers, Duration::from_secs(30));
    assert_eq!(end.error, ErrorKind::Cancelled);
    // The cancelled stream's task gives its slot back just after its ending is queued: a
    // stream opened in that instant may still be refused, one a moment later is not.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut refused = 0;
    let again = loop {
        let again = transfers.stream(&pool(), StreamSpec::get(url.clone(), StreamMode::Events));
        std::thread::sleep(Duration::from_millis(50));
        match transfers.next_event() {
            None => break again,
            Some(TransferEvent::Stream {
                item: StreamItem::Finished(r),
                ..
            }) if r.error == ErrorKind::QueueFull && refused < 20 => refused += 1,
            Some(other) => panic!("{other:?}"),
        }
    };
    while server.requests().len() < 65 {
        assert!(
            Instant::now() < deadline,
            "the new stream did not connect: {} requests, {} refused",
            server.requests().len(),
            refused
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    again.cancel();
    transfers.cancel_all();
}
