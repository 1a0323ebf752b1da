//! Endpoints for downloads and streams (hooked from `routes.rs`):
//!
//! - `/download?bytes=N&key=K`: N deterministic bytes (see [`content`]) with a strong
//!   `ETag: "dl-N"` and byte ranges (RFC 9110 section 14: `Range: bytes=S-` or `S-E`
//!   answered 206 with `Content-Range`, `If-Range` honoured: a validator other than the
//!   current one gets the whole body with 200; a start beyond the end gets 416).
//!   Options: `drop_at=B`: the first request for K breaks the connection once the body
//!   reached byte B; `ranges=0`: Range is ignored (always 200, like a server without range
//!   support); `change_etag=1`: the ETag changes on every request (`"dl-N-COUNT"`);
//!   `validator=last-modified` sends a Last-Modified of 2024-01-01 instead of an ETag,
//!   `validator=none` neither. Every request for K is logged (see `/transfer/log`) as
//!   `range=V;if-range=V;status=S` (`-` for a missing header).
//! - `/download/sha256?bytes=N`: `{"sha256": hex}` of that content.
//! - `/sse?count=N&key=K`: server-sent events `id: I` / `data: event I` for I from the
//!   request's `Last-Event-ID` plus one (or 0) to N-1, then the stream ends; a request
//!   whose `Last-Event-ID` is N-1 or more gets 204 (no more reconnections). Options:
//!   `retry=MS` sends `retry: MS` first; `drop_after=M`: the first connection for K breaks
//!   after M events; `interval_ms=I` waits I ms between events. Each request for K logs
//!   `last-event-id=V`.
//! - `/sse/fixture`: one body exercising the event-stream grammar (BOM, comments, CR, LF,
//!   CRLF, multi-line data, `event`, `id`, `retry`, unknown fields), its last event with
//!   id `end`; a request with `Last-Event-ID: end` gets 204. `/sse/plain`: a 200 stream
//!   with `Content-Type: text/plain` (not an event stream).
//! - `/lines?count=N[&long=B]`: lines `line I` ending alternately in LF, CRLF and CR;
//!   then with `long`, B bytes of `x` without a line end.
//! - `/transfer/log?key=K`: the JSON array of K's log entries, oldest first.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::body::Frame;
use hyper::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, ETAG, HeaderValue, IF_RANGE, LAST_MODIFIED, RANGE,
};
use serde_json::json;

use super::body::{self, BodyError, Res, ResBody, json};
use super::query::Query;

/// Bytes per generated chunk of a download body.
const CHUNK: u64 = 64 * 1024;
/// Largest download body.
const MAX_DOWNLOAD: u64 = 1 << 34;

/// Routes the transfer endpoints; `None` for any other path.
pub fn endpoint(
    headers: &HeaderMap,
    path: &str,
    query: &Query,
    key_count: Option<u64>,
) -> Option<Result<Res, String>> {
    Some(match path {
        "/download" => download(headers, query, key_count),
        "/download/sha256" => sha256(query),
        "/sse" => sse(headers, query, key_count),
        "/sse/fixture" => Ok(fixture(headers)),
        "/sse/plain" => Ok(body::with_type(
            StatusCode::OK,
            "text/plain",
            body::full("data: not an event stream\n\n"),
        )),
        "/lines" => lines(query),
        "/transfer/log" => {
            let key = query.get("key").unwrap_or_default();
            Ok(json(StatusCode::OK, &json!(log_of(key))))
        }
        _ => return None,
    })
}

fn log() -> &'static Mutex<HashMap<String, Vec<String>>> {
    static LOG: OnceLock<Mutex<HashMap<String, Vec<String>>>> = OnceLock::new();
    LOG.get_or_init(|| Mutex::new(HashMap::new()))
}

fn record(key: Option<&str>, entry: String) {
    if let Some(key) = key {
        let mut log = log().lock().unwrap_or_else(|p| p.into_inner());
        log.entry(key.to_owned()).or_default().push(entry);
    }
}

/// The log entries of `key` (keys are unique per test, so one log serves every server).
pub fn log_of(key: &str) -> Vec<String> {
    let log = log().lock().unwrap_or_else(|p| p.into_inner());
    log.get(key).cloned().unwrap_or_default()
}

/// One 8-byte word of the download content (splitmix64 of its index): every offset has
/// its own value, so a byte written at a wrong offset changes the file's hash.
fn word(index: u64) -> [u8; 8] {
    let mut z = index.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_le_bytes()
}

/// Bytes `start..end` of the download content.
pub fn content(start: u64, end: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut pos = start;
    while pos < end {
        let w = word(pos / 8);
        let from = (pos % 8) as usize;
        let take = ((end - pos) as usize).min(8 - from);
        out.extend_from_slice(&w[from..from + take]);
        pos += take as u64;
    }
    out
}

/// The lowercase hex SHA-256 of the first `size` bytes of the content.
pub fn content_sha256(size: u64) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut pos = 0;
    while pos < size {
        let end = (pos + CHUNK * 16).min(size);
        ctx.update(&content(pos, end));
        pos = end;
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn sha256(query: &Query) -> Result<Res, String> {
    let size = query.number_or("bytes", 1_000_000, MAX_DOWNLOAD)?;
    Ok(json(
        StatusCode::OK,
        &json!({ "sha256": content_sha256(size) }),
    ))
}

/// Content bytes `start..end`, streamed; with `drop_at`, an error (a broken connection)
/// once byte `drop_at` is reached.
fn content_body(start: u64, end: u64, drop_at: Option<u64>) -> ResBody {
    let stop = drop_at.map_or(end, |d| d.clamp(start, end));
    let chunks = stream::unfold(start, move |pos| async move {
        if pos >= stop {
            if stop < end {
                // Give the bytes sent so far time to reach the socket before breaking it.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let error: BodyError = "download dropped on purpose (drop_at)".into();
                return Some((Err(error), u64::MAX));
            }
            return None;
        }
        let next = (pos + CHUNK).min(stop);
        Some((Ok(Frame::data(Bytes::from(content(pos, next)))), next))
    });
    StreamBody::new(chunks).boxed_unsync()
}

fn header(headers: &HeaderMap, name: hyper::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `bytes=S-` or `bytes=S-E` (one range; E inclusive).
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (start, end) = value.trim().strip_prefix("bytes=")?.split_once('-')?;
    let end = match end.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end))
}

fn download(headers: &HeaderMap, query: &Query, key_count: Option<u64>) -> Result<Res, String> {
    let size = query.number_or("bytes", 1_000_000, MAX_DOWNLOAD)?;
    let drop_at = query.number("drop_at")?.filter(|_| key_count == Some(1));
    let ranges = query.get("ranges") != Some("0");
    let validator_kind = query.get("validator").unwrap_or("etag");
    let validator = match validator_kind {
        "etag" if query.flag("change_etag") => {
            Some(format!("\"dl-{size}-{}\"", key_count.unwrap_or(0)))
        }
        "etag" => Some(format!("\"dl-{size}\"")),
        // Long before the response's Date, so the client may treat it as strong.
        "last-modified" => Some("Mon, 01 Jan 2024 00:00:00 GMT".to_owned()),
        _ => None,
    };
    let range = header(headers, RANGE);
    let if_range = header(headers, IF_RANGE);
    let wanted = range.filter(|_| ranges).and_then(parse_range);
    // If-Range: the range applies only while the validator still matches.
    let honoured = wanted.filter(|_| match (if_range, &validator) {
        (None, _) => true,
        (Some(given), Some(current)) => given == current,
        (Some(_), None) => false,
    });
    let (status, res) = match honoured {
        Some((start, _)) if start >= size => {
            let mut res = body::with_type(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "application/octet-stream",
                body::full(Bytes::new()),
            );
            let value =
                HeaderValue::from_str(&format!("bytes */{size}")).map_err(|e| e.to_string())?;
            res.headers_mut().insert(CONTENT_RANGE, value);
            (416, res)
        }
        Some((start, end)) => {
            let end = end.map_or(size, |e| (e + 1).min(size));
            let mut res = body::with_type(
                StatusCode::PARTIAL_CONTENT,
                "application/octet-stream",
                content_body(start, end, drop_at),
            );
            let value = format!("bytes {start}-{}/{size}", end - 1);
            res.headers_mut().insert(
                CONTENT_RANGE,
                HeaderValue::from_str(&value).map_err(|e| e.to_string())?,
            );
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(end - start));
            (206, res)
        }
        None => {
            let mut res = body::with_type(
                StatusCode::OK,
                "application/octet-stream",
                content_body(0, size, drop_at),
            );
            res.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from(size));
            (200, res)
        }
    };
    let mut res = res;
    if ranges {
        res.headers_mut()
            .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let Some(v) = &validator {
        let name = if validator_kind == "etag" {
            ETAG
        } else {
            LAST_MODIFIED
        };
        res.headers_mut()
            .insert(name, HeaderValue::from_str(v).map_err(|e| e.to_string())?);
    }
    record(
        query.get("key"),
        format!(
            "range={};if-range={};status={status}",
            range.unwrap_or("-"),
            if_range.unwrap_or("-")
        ),
    );
    Ok(res)
}

fn event_stream(body: ResBody) -> Res {
    let mut res = body::with_type(StatusCode::OK, "text/event-stream", body);
    res.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

fn no_content() -> Res {
    body::with_type(
        StatusCode::NO_CONTENT,
        "text/event-stream",
        body::full(Bytes::new()),
    )
}

fn sse(headers: &HeaderMap, query: &Query, key_count: Option<u64>) -> Result<Res, String> {
    let count = query.number_or("count", 10, 10_000_000)?;
    let retry = query.number("retry")?;
    let interval = Duration::from_millis(query.number_or("interval_ms", 0, 60_000)?);
    let drop_after = query.number("drop_after")?.filter(|_| key_count == Some(1));
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    record(
        query.get("key"),
        format!("last-event-id={}", last.unwrap_or("-")),
    );
    let start = match last.map(str::parse::<u64>) {
        None => 0,
        Some(Ok(id)) => id + 1,
        Some(Err(_)) => return Err(format!("Last-Event-ID {last:?} is not a number")),
    };
    if start >= count {
        return Ok(no_content());
    }
    let stop = drop_after.map_or(count, |d| (start + d).min(count));
    let prelude = retry.map(|ms| format!("retry: {ms}\n\n"));
    let chunks = stream::unfold((start, prelude), move |(i, prelude)| async move {
        if let Some(text) = prelude {
            return Some((Ok(Frame::data(Bytes::from(text))), (i, None)));
        }
        if i >= stop {
            if stop < count {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let error: BodyError = "event stream dropped on purpose (drop_after)".into();
                return Some((Err(error), (u64::MAX, None)));
            }
            return None;
        }
        if !interval.is_zero() && i > start {
            tokio::time::sleep(interval).await;
        }
        let text = format!("id: {i}\ndata: event {i}\n\n");
        Some((Ok(Frame::data(Bytes::from(text))), (i + 1, None)))
    });
    Ok(event_stream(StreamBody::new(chunks).boxed_unsync()))
}

/// The grammar fixture; the in-engine test lists what it must parse to.
pub const SSE_FIXTURE: &[u8] = b"\xEF\xBB\xBF: a comment, ignored\r\nretry: 25\r\n\r\nevent: greeting\ndata: hello\ndata:  two spaces\n\ndata\rdata: after an empty line\r\rid: 7\r\nunknown: field\r\ndata: {\"json\": true}\r\n\r\nevent: bye\nid: end\ndata: last\n\ndata: never dispatched, no blank line";

fn fixture(headers: &HeaderMap) -> Res {
    if headers.get("last-event-id").is_some_and(|v| v == "end") {
        return no_content();
    }
    event_stream(body::full(SSE_FIXTURE))
}

fn lines(query: &Query) -> Result<Res, String> {
    let count = query.number_or("count", 10, 1_000_000)?;
    let long = query.number_or("long", 0, 1 << 30)?;
    let mut text = Vec::new();
    for i in 0..count {
        text.extend_from_slice(format!("line {i}").as_bytes());
        text.extend_from_slice(match i % 3 {
            0 => &b"\n"[..],
            1 => b"\r\n",
            _ => b"\r",
        });
    }
    let head = Bytes::from(text);
    let chunks = stream::unfold(0u64, move |sent| {
        let head = head.clone();
        async move {
            if sent == 0 {
                return Some((Ok::<_, BodyError>(Frame::data(head)), 1));
            }
            let done = sent - 1;
            if done >= long {
                return None;
            }
            let n = (long - done).min(CHUNK);
            Some((
                Ok(Frame::data(Bytes::from(vec![b'x'; n as usize]))),
                sent + n,
            ))
        }
    });
    Ok(body::with_type(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        StreamBody::new(chunks).boxed_unsync(),
    ))
}
