//! `GET /watch/gameserver`: a response that never ends, one JSON object per line
//! (`{"result": GameServer}`), read with reqwest directly because the HTTP pool delivers
//! whole responses only. Reconnects with backoff; the sidecar sends the current record
//! first on every connection, so nothing is missed across a reconnect.
//!
//! One line is at most 1 MiB (more is an error, not a growing buffer); every `result` that
//! differs from the previous one becomes `game_server_changed`, so an unchanged record is
//! not emitted twice after a reconnect. Backoff is 0.1 s to 2 s; an outage is reported
//! once.
//!
//! At most [`MAX_WAITING_RECORDS`] records wait for the game; while that many wait the
//! stream is not read, so a sidecar that sends faster than the game takes records (a
//! flood, or a long frame) is slowed down by TCP instead of filling memory, and no record
//! is dropped: as with the gRPC stream Agones' own SDKs read, which has flow control.

use std::time::Duration;

use serde_json::Value;

use super::AgonesEvent;
use crate::core::events::{EventSender, LaneSender, Push};

/// Longest line accepted; a GameServer record is a few KiB.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Records that may wait for the game before the stream stops being read. The node
/// delivers up to 64 events a frame, and a sidecar sends a record per change (a few a
/// second at most), so this is only reached by a flood or a stalled main loop.
pub const MAX_WAITING_RECORDS: usize = 16;
/// How often a stream held back for a full queue looks for room again.
const ROOM_POLL: Duration = Duration::from_millis(10);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why one connection of the stream ended.
pub(super) enum Stop {
    /// The node is gone: end the task.
    Gone,
    /// Reconnect after a pause, reporting this sentence once per outage.
    Failed(String),
}

/// Splits a byte stream into lines, refusing to buffer more than `max` bytes of one line.
#[derive(Debug)]
pub struct LineBuffer {
    pending: Vec<u8>,
    max: usize,
}

impl LineBuffer {
    /// An empty buffer.
    pub fn new(max: usize) -> LineBuffer {
        LineBuffer {
            pending: Vec::new(),
            max,
        }
    }

    /// Adds `chunk`; returns the complete, non-blank lines it finished, without `\n`.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let mut lines = Vec::new();
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            let (body, ended) = match piece.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (piece, false),
            };
            if self.pending.len() + body.len() > self.max {
                self.pending.clear();
                return Err(format!(
                    "a line of the watch stream is longer than {} bytes",
                    self.max
                ));
            }
            self.pending.extend_from_slice(body);
            if ended {
                let line = std::mem::take(&mut self.pending);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    lines.push(line);
                }
            }
        }
        Ok(lines)
    }
}

/// The task: watch, report every record that differs from the previous one, reconnect.
pub async fn run(client: reqwest::Client, url: String, events: EventSender<AgonesEvent>) {
    let mut state = WatchState::new(events);
    let mut backoff = MIN_BACKOFF;
    loop {
        let reason = match state.stream_once(&client, &url, &mut backoff).await {
            Stop::Gone => return,
            Stop::Failed(reason) => reason,
        };
        if !state.outage {
            state.outage = true;
            if state.events.send(AgonesEvent::WatchLost(reason)) == Push::Gone {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

pub(super) struct WatchState {
    last: Option<Value>,
    outage: bool,
    /// The stream's own lane: its records count against [`MAX_WAITING_RECORDS`], its
    /// outage reports always go in, and all of them stay in the order they happened.
    events: LaneSender<AgonesEvent>,
}

impl WatchState {
    pub(super) fn new(events: EventSender<AgonesEvent>) -> WatchState {
        WatchState {
            last: None,
            outage: false,
            events: events.lane(MAX_WAITING_RECORDS),
        }
    }

    /// Queues a record for the game, first waiting (without reading the stream) while
    /// [`MAX_WAITING_RECORDS`] wait already. `Err` when the node is gone.
    async fn deliver(&self, record: Value) -> Result<(), Stop> {
        while !self.events.has_room() {
            tokio::time::sleep(ROOM_POLL).await;
        }
        match self.events.offer(AgonesEvent::GameServer(record)) {
            Push::Queued => Ok(()),
            // Full cannot happen (this task is the lane's only sender and there was room).
            Push::Gone | Push::Full => Err(Stop::Gone),
        }
    }

    async fn stream_once(
        &mut self,
        client: &reqwest::Client,
        url: &str,
        backoff: &mut Duration,
    ) -> Stop {
        let response = match client
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                return Stop::Failed(format!(
                    "cannot reach the SDK sidecar at {url}: {}",
                    with_causes(&e)
                ));
            }
        };
        if !response.status().is_success() {
            return Stop::Failed(format!(
                "the SDK sidecar answered {} to GET /watch/gameserver",
                response.status()
            ));
        }
        let mut response = response;
        let mut lines = LineBuffer::new(MAX_LINE_BYTES);
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Stop::Failed("the SDK sidecar ended the watch stream".into()),
                Err(e) => {
                    return Stop::Failed(format!("the watch stream broke: {}", with_causes(&e)));
                }
            };
            let finished = match lines.push(&chunk) {
                Ok(finished) => finished,
                Err(why) => return Stop::Failed(why),
            };
            for line in finished {
                match self.take_line(&line, backoff) {
                    Err(stop) => return stop,
                    Ok(Some(record)) => {
                        if let Err(stop) = self.deliver(record).await {
                            return stop;
                        }
                    }
                    Ok(None) => {}
                }
            }
        }
    }

    /// Handles one line: a record that differs from the previous one (to deliver), nothing
    /// new, or why this connection ends.
    pub(super) fn take_line(
        &mut self,
        line: &[u8],
        backoff: &mut Duration,
    ) -> Result<Option<Value>, Stop> {
        let value: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(e) => {
                let text = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                return Err(Stop::Failed(format!(
                    "the watch stream sent a line that is not JSON ({e}): {text}"
                )));
            }
        };
        let Some(record) = value.get("result") else {
            let error = value.get("error").unwrap_or(&value);
            return Err(Stop::Failed(format!(
                "the watch stream reported an error: {error}"
            )));
        };
        *backoff = MIN_BACKOFF;
        if self.outage {
            self.outage = false;
            if self.events.send(AgonesEvent::WatchRestored) == Push::Gone {
                return Err(Stop::Gone);
            }
        }
        if self.last.as_ref() == Some(record) {
            return Ok(None);
        }
        self.last = Some(record.clone());
        Ok(Some(record.clone()))
    }
}

/// An error and its sources, e.g. "error sending request: client error (Connect):
/// Connection refused", since reqwest's own text leaves the useful part to the sources.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_and_blank_lines_skipped() {
        let mut buf = LineBuffer::new(64);
        assert!(buf.push(b"{\"a\"").unwrap().is_empty());
        let lines = buf.push(b":1}\n\n  \n{\"b\":2}\n{\"c\"").unwrap();
        assert_eq!(lines, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert_eq!(buf.push(b":3}\n").unwrap(), vec![b"{\"c\":3}".to_vec()]);
    }

    #[test]
    fn an_endless_line_is_refused_not_buffered() {
        let mut buf = LineBuffer::new(16);
        assert!(buf.push(&[b'x'; 10]).unwrap().is_empty());
        assert!(
            buf.push(&[b'x'; 10])
                .unwrap_err()
                .contains("longer than 16")
        );
        // The buffer starts clean afterwards.
        assert_eq!(buf.push(b"ok\n").unwrap(), vec![b"ok".to_vec()]);
    }
}
