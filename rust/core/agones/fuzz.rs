//! The Agones fuzz target (`crate::fuzzing`): the watch stream as the SDK sidecar (or
//! anything answering on its port) sends it.

use std::time::Duration;

use super::watch::{LineBuffer, WatchState};
use crate::core::events::channel;
use crate::fuzzing::messages;

/// Chunks of a watch stream through the line buffer and the line handler, as one
/// connection reads them: each line is a record, an error that ends the connection with a
/// sentence, or too long; a record is reported only when it differs from the previous one.
pub fn agones_watch(data: &[u8]) {
    const MAX: usize = 4096;
    let (events, queue) = channel();
    let mut state = WatchState::new(events);
    let mut lines = LineBuffer::new(MAX);
    let mut backoff = Duration::from_secs(2);
    let mut reported = Vec::new();
    'stream: for chunk in messages(data) {
        let Ok(finished) = lines.push(chunk) else {
            break;
        };
        for line in finished {
            assert!(line.len() <= MAX && !line.is_empty());
            match state.take_line(&line, &mut backoff) {
                Err(_) => break 'stream,
                Ok(Some(record)) => reported.push(record),
                Ok(None) => {}
            }
            assert_eq!(
                backoff,
                Duration::from_millis(100),
                "a record resets the backoff"
            );
        }
    }
    // Records are handed back to the stream's task (which queues them with
    // backpressure); nothing else is queued without an outage.
    if let Some(event) = queue.next() {
        panic!("unexpected event {event:?}");
    }
    assert!(
        reported.windows(2).all(|w| w[0] != w[1]),
        "a record reported twice in a row"
    );
}
