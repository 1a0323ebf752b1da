//! What the download and stream tests (`http_transfer.rs`, `http_transfer_hostile.rs`)
//! share: a scratch folder per test and collecting a stream until it finishes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use netkit::core::http::Response;
use netkit::core::http::transfer::{StreamItem, TransferEvent, Transfers};

/// An empty folder for one test, `prefix` telling which test file made it.
pub fn scratch(prefix: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Collects a stream's items until it finishes, for at most `within`.
pub fn collect(transfers: &Transfers, within: Duration) -> (Vec<StreamItem>, Response) {
    let deadline = Instant::now() + within;
    let mut items = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the stream did not finish; got {} items",
            items.len()
        );
        while let Some(event) = transfers.next_event() {
            let TransferEvent::Stream { item, .. } = event else {
                panic!("not a stream event")
            };
            match item {
                StreamItem::Finished(response) => return (items, response),
                other => items.push(other),
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
