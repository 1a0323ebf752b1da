//! The outbox's part of the storage fuzz target (`crate::fuzzing`): decoding the records a
//! store file holds, as a damaged or edited file on a player's disk may hold them.

use super::entry::{DeadRecord, EntryRecord, body_from, body_kind, method_name};
use super::record_method;

/// One stored value decoded as a pending entry and as a dead letter, as the store reads
/// them when it opens: decoded or counted as unreadable, never a panic; a method that
/// decodes names itself again, and a body keeps its kind.
pub fn records(data: &[u8]) {
    let check = |record: &EntryRecord| {
        if let Some(method) = record_method(record) {
            assert_eq!(method_name(method), record.method);
        }
        let body = body_from(&record.body_kind, data.to_vec());
        if matches!(record.body_kind.as_str(), "json" | "text" | "binary") {
            assert_eq!(body_kind(&body), record.body_kind);
        }
    };
    if let Ok(record) = serde_json::from_slice::<EntryRecord>(data) {
        check(&record);
    }
    if let Ok(dead) = serde_json::from_slice::<DeadRecord>(data) {
        check(&dead.entry);
    }
}
