//! Fuzz targets of the HTTP layer and the storage target (`crate::fuzzing` lists them
//! all): what netkit reads from a server's bodies and heads, and from files on a
//! player's disk.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use url::Url;

use super::json::{MAX_JSON_DEPTH, NumberValue, claims_json, number_value, parse_json, wants_json};
use super::redirect::{Hop, Next, next_hop};
use super::retry::parse_retry_after;
use super::{outbox, transfer};
use crate::fuzzing::messages;

/// A response body through the engine-free half of the JSON conversion (the BOM, the
/// nesting limit, numbers as the engine will hold them): parsed or refused with a
/// sentence; every number a valid number, no value nested deeper than the limit.
pub fn http_json(data: &[u8]) {
    let _ = wants_json(None, data);
    match parse_json(data) {
        Ok(value) => assert!(
            depth(&value) <= MAX_JSON_DEPTH + 1,
            "nesting past the limit"
        ),
        Err(why) => assert!(!why.is_empty()),
    }
}

/// The nesting of a value (a scalar is 1), checking every number on the way.
fn depth(value: &Value) -> usize {
    // An explicit stack: the value is as deep as the parser allowed, and this must not be
    // the thing that overflows.
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            Value::Number(n) => match number_value(n) {
                NumberValue::Int(i) => assert_eq!(n.as_i64(), Some(i)),
                NumberValue::Float(f) => assert!(!f.is_nan(), "the number {n} read as NaN"),
            },
            _ => {}
        }
    }
    deepest
}

/// An event stream through the server-sent events parser (`transfer::fuzz::sse`).
pub fn http_sse(data: &[u8]) {
    transfer::fuzz::sse(data);
}

/// The header fields netkit interprets, from an answer's head: a download's reading of
/// `Content-Range`, `Content-Encoding`, `ETag`, `Last-Modified`, `Date` and the length
/// (`transfer::fuzz::download_head`); then every message of the input as a `Retry-After`,
/// a `Location` to follow from a request, and a `Content-Type`.
pub fn http_headers(data: &[u8]) {
    transfer::fuzz::download_head(data);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
    let current = Hop {
        method: reqwest::Method::POST,
        url: Url::parse("https://api.example.com:8443/v1/saves/slot?x=1#top").expect("a URL"),
        headers: vec![
            ("Authorization".into(), "Bearer secret".into()),
            ("Content-Type".into(), "application/json".into()),
            ("Idempotency-Key".into(), "k".into()),
        ],
        body: Some(bytes::Bytes::from_static(b"{}")),
    };
    for (i, message) in messages(data).iter().enumerate() {
        let text = String::from_utf8_lossy(message);
        if let (Some(wait), Ok(secs)) = (parse_retry_after(&text, now), text.trim().parse::<u64>())
        {
            assert_eq!(wait, Duration::from_secs(secs));
        }
        let status = [301, 302, 303, 307, 308, 200][i % 6];
        match next_hop(&current, status, Some(&text)) {
            Next::Follow(next) => {
                assert!(matches!(next.url.scheme(), "http" | "https"));
                if next.url.origin() != current.url.origin() {
                    assert!(
                        next.headers
                            .iter()
                            .all(|(n, _)| !n.eq_ignore_ascii_case("authorization")),
                        "credentials follow a redirect to {}",
                        next.url
                    );
                }
            }
            Next::Refused(why) => assert!(!why.is_empty()),
            Next::Done => assert_eq!(status, 200),
        }
        if claims_json(Some(&text)) {
            assert!(wants_json(Some(&text), b""));
        }
    }
}

/// Bytes as a store file or a sidecar on a player's disk holds them: an outbox record
/// (`outbox::fuzz::records`) and a `.part.meta` sidecar (`transfer::fuzz::part_meta`).
pub fn storage(data: &[u8]) {
    outbox::fuzz::records(data);
    transfer::fuzz::part_meta(data);
}
