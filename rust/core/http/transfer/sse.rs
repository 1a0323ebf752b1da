//! The server-sent events parser of the WHATWG HTML standard ("Server-sent events",
//! section "Interpreting an event stream"): fields `event`, `data`, `id` and `retry`,
//! comments (lines starting with `:`), multi-line data, CRLF/LF/CR line ends and a
//! leading byte order mark. Engine-free and clock-free: bytes in, events out.
//!
//! Details kept from the standard: one BOM skipped at the start of each connection (also
//! when split over chunks), `field: value` with one leading space removed, `data` lines
//! joined with `\n`, an `id` without NUL sets the last event ID (kept across events and
//! reconnections), `retry` of ASCII digits only, events without data not dispatched, an
//! unfinished event at the end of a connection dropped.

use super::lines::{LineSplitter, LineTooLong};

/// One dispatched event, as `EventSource` would hand it to a `message` listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field, `"message"` when the event had none.
    pub event: String,
    /// The `data` lines joined with `\n` (no final `\n`).
    pub data: String,
    /// The last event ID in effect when it was dispatched (the standard's "last event ID
    /// buffer": an `id` field carries over to later events).
    pub id: String,
    /// The reconnection time in milliseconds in effect when it was dispatched (the
    /// default until a `retry` field set it).
    pub retry_ms: u64,
}

/// Parses one connection's event stream. A reconnect keeps the last event ID and the
/// reconnection time (see [`SseParser::reconnected`]).
#[derive(Debug)]
pub struct SseParser {
    lines: LineSplitter,
    /// Still at the very start of the connection's stream (a BOM may come).
    at_start: bool,
    data: String,
    event_type: String,
    /// The standard's "last event ID buffer", sent back as `Last-Event-ID`.
    last_event_id: String,
    retry_ms: u64,
    max_event_bytes: usize,
    /// The first bytes of a connection, while they may still be the start of a BOM.
    start_bytes: Vec<u8>,
}

/// The UTF-8 byte order mark, ignored once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseParser {
    /// A parser for lines and event data of at most `max_bytes` each; the reconnection
    /// time starts at `retry_ms`.
    pub fn new(max_bytes: usize, retry_ms: u64) -> SseParser {
        SseParser {
            lines: LineSplitter::new(max_bytes),
            at_start: true,
            data: String::new(),
            event_type: String::new(),
            last_event_id: String::new(),
            retry_ms,
            max_event_bytes: max_bytes,
            start_bytes: Vec::new(),
        }
    }

    /// The value to send as `Last-Event-ID` when reconnecting; empty for none.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time in milliseconds (the default or a `retry` field's).
    pub fn retry_ms(&self) -> u64 {
        self.retry_ms
    }

    /// Starts over for a new connection: an unfinished event of the old one is dropped
    /// (as at the end of a stream), the last event ID and reconnection time are kept.
    pub fn reconnected(&mut self) {
        self.lines = LineSplitter::new(self.max_event_bytes);
        self.at_start = true;
        self.start_bytes.clear();
        self.data.clear();
        self.event_type.clear();
    }

    /// Feeds bytes of the body; returns the events they completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let start;
        let mut bytes = chunk;
        if self.at_start {
            // A BOM may arrive split over chunks: wait until the first bytes tell.
            self.start_bytes.extend_from_slice(chunk);
            if self.start_bytes.len() < BOM.len() && BOM.starts_with(&self.start_bytes) {
                return Ok(Vec::new());
            }
            self.at_start = false;
            start = std::mem::take(&mut self.start_bytes);
            bytes = start.strip_prefix(BOM).unwrap_or(&start);
        }
        let mut lines = Vec::new();
        self.lines.push(bytes, |line| lines.push(line.to_vec()))?;
        let mut out = Vec::new();
        for line in lines {
            if let Some(event) = self.line(&line)? {
                out.push(event);
            }
        }
        Ok(out)
    }

    /// Processes one line (without its line end).
    fn line(&mut self, line: &[u8]) -> Result<Option<SseEvent>, LineTooLong> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None); // a comment, e.g. a keep-alive
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        // The stream is UTF-8; invalid bytes become U+FFFD, as the standard's decoder does.
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.event_type = value.into_owned(),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_event_bytes {
                    self.data.clear();
                    return Err(LineTooLong {
                        max: self.max_event_bytes,
                    });
                }
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"id" if !value.contains('\0') => self.last_event_id = value.into_owned(),
            b"retry" => {
                if !value.is_empty()
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && let Ok(ms) = value.parse::<u64>()
                {
                    self.retry_ms = ms;
                }
            }
            _ => {} // unknown fields are ignored
        }
        Ok(None)
    }

    /// A blank line: dispatch the event being built, if it has data.
    fn dispatch(&mut self) -> Option<SseEvent> {
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop(); // the final "\n"
        Some(SseEvent {
            event: if event_type.is_empty() {
                "message".to_string()
            } else {
                event_type
            },
            data,
            id: self.last_event_id.clone(),
            retry_ms: self.retry_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new(1024, 3000);
        chunks.iter().flat_map(|c| p.push(c).unwrap()).collect()
    }

    fn ev(event: &str, data: &str, id: &str, retry_ms: u64) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.into(),
            retry_ms,
        }
    }

    #[test]
    fn fields_comments_and_multi_line_data() {
        let got = parse(&[
            b": keep-alive\n\nevent: score\ndata: a\ndata:b\ndata\nid: 7\n\ndata: next\n\n",
        ]);
        assert_eq!(
            got,
            [
                ev("score", "a\nb\n", "7", 3000),
                ev("message", "next", "7", 3000)
            ],
            "one leading space is removed, `data` alone adds an empty line, the id carries over"
        );
    }

    #[test]
    fn line_ends_bom_and_split_chunks() {
        let got = parse(&[
            b"\xEF",
            b"\xBB",
            b"\xBFdata: 1\r",
            b"\n\r\ndata: 2\r\rdata: 3\n\n",
        ]);
        assert_eq!(
            got,
            [
                ev("message", "1", "", 3000),
                ev("message", "2", "", 3000),
                ev("message", "3", "", 3000)
            ]
        );
        // A BOM later in the stream is data, not skipped.
        let got = parse(&[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]);
        assert_eq!(
            got.len(),
            1,
            "a field named BOM+data is not `data`: {got:?}"
        );
    }

    #[test]
    fn retry_and_id_rules() {
        let mut p = SseParser::new(1024, 3000);
        let got = p
            .push(b"retry: 50\nretry: x5\nid: a\0b\nid\ndata: d\n\n")
            .unwrap();
        assert_eq!(
            got,
            [ev("message", "d", "", 50)],
            "non-digits and NUL are ignored, `id` alone clears"
        );
        assert_eq!(p.retry_ms(), 50);
        p.push(b"id: 9\ndata: unfinished").unwrap();
        p.reconnected();
        assert_eq!(p.last_event_id(), "9", "kept across a reconnect");
        assert_eq!(
            p.push(b"\n\n").unwrap(),
            [],
            "the unfinished event was dropped"
        );
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_reset_the_type() {
        assert_eq!(
            parse(&[b"event: x\n\ndata: y\n\n"]),
            [ev("message", "y", "", 3000)]
        );
        assert_eq!(
            parse(&[b"data: z"]),
            [],
            "no blank line: nothing dispatched"
        );
    }

    #[test]
    fn over_long_lines_and_events_are_refused() {
        let mut p = SseParser::new(8, 0);
        assert_eq!(
            p.push(b"data: 123456789\n").unwrap_err(),
            LineTooLong { max: 8 }
        );
        let mut p = SseParser::new(8, 0);
        assert!(
            p.push(b"data:123\ndata:456\ndata:789\n").is_err(),
            "data over several lines counts"
        );
    }
}
