//! The Agones fuzz target (`crate::fuzzing`): the watch stream as the SDK sidecar (or
//! anything answering on its port) sends it.

use std::time::Duration;

use super::AgonesEvent;
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
            if state.take_line(&line, &mut backoff).is_some() {
                break 'stream;
            }
            assert_eq!(
                backoff,
                Duration::from_millis(100),
                "a record resets the backoff"
            );
        }
    }
    while let Some(event) = queue.next() {
        match event {
            AgonesEvent::GameServer(record) => reported.push(record),
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(
        reported.windows(2).all(|w| w[0] != w[1]),
        "a record reported twice in a row"
    );
}
