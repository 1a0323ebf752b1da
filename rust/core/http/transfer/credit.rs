//! Room in a stream's buffer, taken before an item is queued and given back when the item
//! is dropped (delivered, skipped after a cancel, or freed with the queue). The stream's
//! task waits for room before it reads more from the socket, so a game that does not keep
//! up slows the server down (TCP flow control) instead of growing memory or losing data.
//!
//! Each stream has a semaphore of `stream_buffer_bytes` permits; a queued item carries a
//! `Credit` that gives its permits back when dropped. Memory per stream is bounded by the
//! buffer plus one line (`stream_max_line_bytes`, 1 MiB) plus one chunk; a chunk larger
//! than the buffer is cut. A piece takes its bytes plus the size of its queued record
//! (`TransferEvent`, about 320 bytes) in permits: counting bytes alone, a flood of empty
//! lines (one byte each on the wire) queued a million records, over 300 MB, within a "1
//! MiB" buffer.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Bytes of one stream's buffer held by one queued item.
#[derive(Debug)]
pub struct Credit {
    credits: Option<Arc<Semaphore>>,
    bytes: u32,
}

impl Credit {
    /// Waits for `bytes` of room in `credits` (at least 1, at most the whole buffer).
    pub(crate) async fn take(
        credits: &Arc<Semaphore>,
        bytes: usize,
        buffer: usize,
    ) -> Option<Credit> {
        let bytes = bytes.clamp(1, buffer.clamp(1, 1 << 30)) as u32;
        let permit = credits.acquire_many(bytes).await.ok()?;
        permit.forget();
        Some(Credit {
            credits: Some(credits.clone()),
            bytes,
        })
    }

    /// No room held (the final item of a stream must never wait).
    pub fn none() -> Credit {
        Credit {
            credits: None,
            bytes: 0,
        }
    }

    /// The bytes held.
    pub fn bytes(&self) -> u32 {
        self.bytes
    }
}

impl Drop for Credit {
    fn drop(&mut self) {
        if let Some(credits) = self.credits.take() {
            credits.add_permits(self.bytes as usize);
        }
    }
}
