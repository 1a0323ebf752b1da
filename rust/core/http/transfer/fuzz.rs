//! The transfer side of the HTTP fuzz targets (`crate::fuzzing`): the server-sent events
//! parser, a download's reading of an answer's head against its part file, and the
//! `.part.meta` sidecar reader.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::part_file::{parse_meta, usable_validator};
use super::resume::{Head, Held, Verdict, judge};
use super::sse::SseParser;
use crate::core::http::retry::is_retryable_status;
use crate::fuzzing::messages;

/// Chunks of an event stream through the parser, reconnecting where the input says:
/// every event and field stays within the limit, and the result does not depend on how
/// the stream was cut into chunks.
pub fn sse(data: &[u8]) {
    const MAX: usize = 4096;
    let Some((&setup, rest)) = data.split_first() else {
        return;
    };
    let chunks = messages(rest);
    let mut parser = SseParser::new(MAX, 3000);
    let mut events = Vec::new();
    let mut failed = false;
    for (i, chunk) in chunks.iter().enumerate() {
        if setup & 1 == 1 && i == 1 {
            parser.reconnected();
        }
        match parser.push(chunk) {
            Ok(got) => events.extend(got),
            Err(e) => {
                assert_eq!(e.max, MAX);
                failed = true;
                break;
            }
        }
        assert!(parser.last_event_id().len() <= MAX);
    }
    for e in &events {
        assert!(e.data.len() <= MAX && e.event.len() <= MAX && e.id.len() <= MAX);
        assert!(!e.id.contains('\0'));
    }
    if setup & 1 == 0 && !failed {
        // The same bytes in one chunk, and one byte at a time, give the same events.
        let whole: Vec<u8> = chunks.concat();
        let mut one = SseParser::new(MAX, 3000);
        assert_eq!(one.push(&whole).expect("it passed in pieces"), events);
        let mut bytewise = SseParser::new(MAX, 3000);
        let mut got = Vec::new();
        for b in &whole {
            got.extend(
                bytewise
                    .push(std::slice::from_ref(b))
                    .expect("it passed in pieces"),
            );
        }
        assert_eq!(got, events, "events depend on chunking");
    }
}

/// An answer's head (header lines `name: value`, one per message after the first) read
/// against a part file: any verdict, never a panic; a resume continues where the part
/// file ends, and a validator kept for later is one `If-Range` can carry. The first
/// message sets the status (2 bytes), what the part file holds, and its validator.
pub fn download_head(data: &[u8]) {
    let parts = messages(data);
    let Some(setup) = parts.first() else {
        return;
    };
    let byte = |i: usize| setup.get(i).copied().unwrap_or(0);
    let status = 100 + u16::from_be_bytes([byte(0), byte(1)]) % 500;
    let mut headers = HeaderMap::new();
    for line in &parts[1..] {
        let text = String::from_utf8_lossy(line);
        let Some((name, value)) = text.split_once(':') else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_bytes(value.trim().as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    let length = (byte(2) & 1 == 1).then(|| u64::from(byte(3)) << (byte(4) % 64));
    let head = Head::read(status, &headers, length);
    // What the part file holds: nothing, where this answer's range starts (a server that
    // resumes), or a length from the input; with the answer's own validator or none.
    let offset = match byte(5) % 3 {
        0 => 0,
        1 => head.content_range.map_or(0, |r| r.start),
        _ => u64::from_be_bytes(
            setup
                .get(6..14)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        ),
    };
    let held = Held {
        offset,
        validator: if byte(14) & 1 == 1 {
            head.etag.clone().or(head.last_modified.clone())
        } else {
            None
        },
        total: (byte(14) & 2 == 2).then_some(offset.saturating_add(u64::from(byte(15)))),
    };
    match judge(&held, &head, is_retryable_status) {
        Verdict::Resume { range_end, total } => {
            assert!(held.asked_range() && range_end > held.offset);
            assert!(total.is_none_or(|t| range_end <= t));
        }
        Verdict::Whole { validator, .. } => {
            assert!(validator.is_none_or(|v| usable_validator(&v)));
        }
        Verdict::Complete { total } => assert_eq!(total, held.offset),
        Verdict::Refuse(why) => assert!(!why.is_empty()),
        Verdict::StartOver | Verdict::Retry | Verdict::Fail => {}
    }
}

/// A `.part.meta` sidecar as a damaged or edited file on a player's disk holds it: read or
/// refused, and what is read has a validator `If-Range` can carry.
pub fn part_meta(data: &[u8]) {
    if let Some(meta) = parse_meta(data) {
        assert!(usable_validator(&meta.validator));
    }
}
