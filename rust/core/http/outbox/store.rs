//! The outbox's file: a redb database (crash-safe, copy-on-write B-trees with checksummed
//! commits), opened by one pool at a time, set aside and replaced when it cannot be read.
//!
//! Every method does blocking file I/O: the outbox calls them from `spawn_blocking`, except
//! [`Store::insert`], which the caller runs where its durability promise needs it.
//!
//! Tables: `pending` (id → JSON of the entry without its body), `bodies` (id → bytes, kept
//! apart so listing entries never reads bodies), `dead_letters` (id → JSON of the entry
//! plus last status, error, reason, attempts, time) and `meta` (`next_id`, so ids are never
//! reused). Every write is one transaction committed with redb's default
//! `Durability::Immediate` (fsync before `commit` returns).
//!
//! One pool per file: redb locks the file with open-file-description locks (`F_OFD_SETLK`),
//! which also exclude a second open in the same process; the second opener gets
//! `OpenError::AlreadyOpen` and the file is not set aside.
//!
//! A broken store (not a redb file, a failed checksum, tables of the wrong type, a file cut
//! short) is renamed to `<file>.corrupt-<unix ms>` and a new empty store is used; the old
//! file is kept as it was, its entries not replayed. The store opens with
//! `set_check_integrity_on_open(true)`, which reads the whole file and verifies every
//! page's checksum (opening and replaying 10,002 pending entries, 4.3 MiB, took 0.4–0.5 s
//! in a debug build, `ten_thousand_pending_entries_reopen_whole_and_quickly`), and a panic
//! during the open counts as damage (`catch_unwind`). Only content errors set a file aside:
//! an I/O error (permissions, a read-only or full disk) or a path that is a folder is
//! `OpenError::Unusable` and nothing is renamed or deleted.
//!
//! A store deleted while open (a player clearing `user://`) would keep taking writes into
//! the unlinked file and lose them at exit. Each operation, and the close, first compares
//! the path's device and inode with the open file's (one `stat`); when the file is gone the
//! store is made again at the path (folder included) with every pending entry, body, dead
//! letter and the id counter, and a `StoreError` says so. A different file put in its place
//! is not overwritten.

use std::fs;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use super::entry::{DeadRecord, EntryRecord, now_ms};

/// Pending entries: id to the JSON of an [`EntryRecord`].
const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("pending");
/// Bodies of pending entries and of dead letters: id to bytes.
const BODIES: TableDefinition<u64, &[u8]> = TableDefinition::new("bodies");
/// Dead letters: id to the JSON of a [`DeadRecord`].
const DEAD: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");
/// The start of the backend's answer body that made each dead letter (id → bytes, at most
/// `DEAD_LETTER_ANSWER_BYTES`): why a save was refused is usually written there.
const ANSWERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letter_answers");
/// Counters: `next_id`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Why a store could not be opened at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Another pool (in this process or another) has the file open.
    AlreadyOpen(String),
    /// The file could not be opened, set aside, or created anew.
    Unusable(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::AlreadyOpen(m) | OpenError::Unusable(m) => f.write_str(m),
        }
    }
}

/// An open store and what it held.
pub struct Opened {
    /// The store.
    pub store: Store,
    /// Pending entries to replay, oldest first.
    pub pending: Vec<EntryRecord>,
    /// Dead letters kept in it.
    pub dead_letters: u64,
    /// Set when a broken file was renamed aside: the sentence to report.
    pub set_aside: Option<String>,
    /// Pending records that could not be decoded (left in the file, never sent).
    pub unreadable: u64,
    /// The first id not used yet by any entry this store ever held.
    pub next_id: u64,
}

/// The open database. Shared between the main thread and blocking tasks (redb serialises
/// writers itself).
pub struct Store {
    db: Database,
    path: PathBuf,
    /// The file's identity (device, inode) when opened: a file deleted or replaced while
    /// open keeps taking writes that no later run can see, so writes check it first.
    identity: Option<(u64, u64)>,
}

/// How a first open failed.
enum Fail {
    Locked(String),
    /// The content is not a readable store: set it aside and start anew.
    Broken(String),
    /// The file cannot be opened or written at all (permissions, a folder, a full or
    /// read-only disk): renaming it aside would not help and could hide the game's data.
    Io(String),
}

/// Sorts an error of an open: content that is not a store, or a file that cannot be used.
fn fail_of(e: redb::Error) -> Fail {
    match &e {
        redb::Error::Io(io)
            if !matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Fail::Io(e.to_string())
        }
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => {
            Fail::Locked(e.to_string())
        }
        _ => Fail::Broken(e.to_string()),
    }
}

/// The device and inode of `path`, where the platform has them.
fn identity_of(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl Store {
    /// Opens `path`, creating it (and its folder) when missing. A file that is not a
    /// readable store is renamed to `<file>.corrupt-<unix ms>` and a new store is created;
    /// [`Opened::set_aside`] then says so.
    pub fn open(path: &Path) -> Result<Opened, OpenError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            fs::create_dir_all(dir).map_err(|e| {
                OpenError::Unusable(format!(
                    "the outbox folder {} cannot be created: {e}",
                    dir.display()
                ))
            })?;
        }
        if path.is_dir() {
            return Err(OpenError::Unusable(format!(
                "the outbox path {} is a folder, not a file; set outbox_path to a file such as user://netkit_outbox.redb (nothing was renamed or deleted)",
                path.display()
            )));
        }
        match Self::try_open(path) {
            Ok(opened) => Ok(opened),
            Err(Fail::Locked(why)) => Err(OpenError::AlreadyOpen(format!(
                "the outbox store {} is already open in another HTTPPool or process ({why}); give each pool its own outbox_path",
                path.display()
            ))),
            Err(Fail::Io(why)) => Err(OpenError::Unusable(format!(
                "the outbox store {} cannot be opened ({why}); nothing was renamed or deleted: fix the file's permissions or the disk, or choose another outbox_path",
                path.display()
            ))),
            Err(Fail::Broken(why)) => {
                let name = path
                    .file_name()
                    .map_or("outbox".into(), |n| n.to_string_lossy().into_owned());
                let aside = path.with_file_name(format!("{name}.corrupt-{}", now_ms()));
                fs::rename(path, &aside).map_err(|e| {
                    OpenError::Unusable(format!(
                        "the outbox store {} cannot be read ({why}) and cannot be renamed aside: {e}",
                        path.display()
                    ))
                })?;
                let mut opened = match Self::try_open(path) {
                    Ok(opened) => opened,
                    Err(Fail::Locked(w) | Fail::Broken(w) | Fail::Io(w)) => {
                        return Err(OpenError::Unusable(format!(
                            "the outbox store {} could not be read ({why}), was renamed to {}, and a new one cannot be created: {w}",
                            path.display(),
                            aside.display()
                        )));
                    }
                };
                opened.set_aside = Some(format!(
                    "the outbox store {} could not be read ({why}); it was renamed to {} and a new, empty store is used. Its entries were not replayed: inspect or delete that file",
                    path.display(),
                    aside.display()
                ));
                Ok(opened)
            }
        }
    }

    /// Opens `path` as a store; a panic of the database on a damaged file counts as
    /// damage (redb documents that it may panic on a file altered outside it).
    fn try_open(path: &Path) -> Result<Opened, Fail> {
        std::panic::catch_unwind(|| Self::try_open_inner(path)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("the database panicked");
            Err(Fail::Broken(format!("damaged: {what}")))
        })
    }

    fn try_open_inner(path: &Path) -> Result<Opened, Fail> {
        // Every page's checksum is verified at each open, not only after a crash: a file
        // damaged in the middle (a bad sector, a partial copy) is then found here and set
        // aside, where a trusted open may panic or read wrong records.
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|e| fail_of(e.into()))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            identity: identity_of(path),
        };
        store.create_tables().map_err(fail_of)?;
        let (pending, unreadable, dead_letters) = store.scan().map_err(fail_of)?;
        let next_id = store.next_id().map_err(fail_of)?;
        Ok(Opened {
            next_id,
            store,
            pending,
            dead_letters,
            set_aside: None,
            unreadable,
        })
    }

    fn create_tables(&self) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(PENDING)?;
            txn.open_table(BODIES)?;
            txn.open_table(DEAD)?;
            txn.open_table(ANSWERS)?;
            txn.open_table(META)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Reads every pending record (and counts the dead letters).
    fn scan(&self) -> Result<(Vec<EntryRecord>, u64, u64), redb::Error> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(PENDING)?;
        let mut pending = Vec::new();
        let mut unreadable = 0;
        for row in table.iter()? {
            let (_, value) = row?;
            match serde_json::from_slice::<EntryRecord>(value.value()) {
                Ok(record) => pending.push(record),
                Err(_) => unreadable += 1,
            }
        }
        let dead = txn.open_table(DEAD)?.len()?;
        Ok((pending, unreadable, dead))
    }

    /// The first unused id: the stored counter, and never below an id in the tables.
    fn next_id(&self) -> Result<u64, redb::Error> {
        let txn = self.db.begin_read()?;
        let mut next = txn
            .open_table(META)?
            .get("next_id")?
            .map_or(1, |v| v.value());
        for table in [PENDING, DEAD] {
            if let Some((last, _)) = txn.open_table(table)?.last()? {
                next = next.max(last.value() + 1);
            }
        }
        Ok(next)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file at [`Store::path`] is no longer the one this store has open
    /// (deleted, or replaced by another file), so what it writes would be lost at exit.
    pub fn moved(&self) -> bool {
        self.identity.is_some() && identity_of(&self.path) != self.identity
    }

    /// A new store at [`Store::path`] holding everything this one holds, for a file that
    /// was deleted while open (its folder too, maybe). Refuses when another file took its
    /// place: that may be another run's store, which must not be overwritten.
    pub fn rebuild(&self) -> Result<Store, String> {
        let path = &self.path;
        if path.exists() {
            return Err(format!(
                "the outbox store {} was replaced by another file while the game ran; netkit keeps writing to the one it opened, which is lost at exit: give each pool its own outbox_path and do not move the file while the game runs",
                path.display()
            ));
        }
        let made = || -> Result<Store, redb::Error> {
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                fs::create_dir_all(dir)?;
            }
            let db = Database::create(path)?;
            let read = self.db.begin_read()?;
            let write = db.begin_write()?;
            for table in [PENDING, BODIES, DEAD, ANSWERS] {
                let from = read.open_table(table)?;
                let mut to = write.open_table(table)?;
                for row in from.iter()? {
                    let (id, value) = row?;
                    to.insert(id.value(), value.value())?;
                }
            }
            {
                let from = read.open_table(META)?;
                let mut to = write.open_table(META)?;
                for row in from.iter()? {
                    let (name, value) = row?;
                    to.insert(name.value(), value.value())?;
                }
            }
            write.commit()?;
            Ok(Store {
                db,
                path: path.clone(),
                identity: identity_of(path),
            })
        };
        made().map_err(|e| {
            let _ = fs::remove_file(path);
            format!(
                "the outbox store {} was deleted while the game ran and cannot be made again: {e}",
                path.display()
            )
        })
    }

    /// Writes new entries and their bodies in one durable commit (fsync before it returns),
    /// and moves the id counter past them.
    pub fn insert(&self, entries: &[(EntryRecord, Vec<u8>)]) -> Result<(), String> {
        self.insert_inner(entries)
            .map_err(|e| self.failed("write", e))
    }

    fn insert_inner(&self, entries: &[(EntryRecord, Vec<u8>)]) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let mut pending = txn.open_table(PENDING)?;
            let mut bodies = txn.open_table(BODIES)?;
            let mut next = meta.get("next_id")?.map_or(1, |v| v.value());
            for (record, body) in entries {
                let json = serde_json::to_vec(record).map_err(io_error)?;
                pending.insert(record.id, json.as_slice())?;
                bodies.insert(record.id, body.as_slice())?;
                next = next.max(record.id + 1);
            }
            meta.insert("next_id", next)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The body of entry or dead letter `id` (`None` when it has none stored).
    pub fn body(&self, id: u64) -> Result<Option<Vec<u8>>, String> {
        let read = || -> Result<Option<Vec<u8>>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(BODIES)?;
            Ok(table.get(id)?.map(|v| v.value().to_vec()))
        };
        read().map_err(|e| self.failed("read", e))
    }

    /// Removes a delivered entry and its body.
    pub fn remove(&self, id: u64) -> Result<(), String> {
        let write = || -> Result<(), redb::Error> {
            let txn = self.db.begin_write()?;
            txn.open_table(PENDING)?.remove(id)?;
            txn.open_table(BODIES)?.remove(id)?;
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| self.failed("write", e))
    }

    /// Moves an entry to the dead letters (its body stays, for inspection) with the start
    /// of the answer that refused it.
    pub fn dead_letter(&self, dead: &DeadRecord, answer: &[u8]) -> Result<(), String> {
        let write = || -> Result<(), redb::Error> {
            let json = serde_json::to_vec(dead).map_err(io_error)?;
            let txn = self.db.begin_write()?;
            txn.open_table(PENDING)?.remove(dead.entry.id)?;
            txn.open_table(DEAD)?
                .insert(dead.entry.id, json.as_slice())?;
            txn.open_table(ANSWERS)?.insert(dead.entry.id, answer)?;
            txn.commit()?;
            Ok(())
        };
        write().map_err(|e| self.failed("write", e))
    }

    /// Every dead letter with its body and the start of the answer that refused it, oldest
    /// first; records that cannot be decoded are left out.
    pub fn dead_letters(&self) -> Result<Vec<DeadRow>, String> {
        let read = || -> Result<Vec<DeadRow>, redb::Error> {
            let txn = self.db.begin_read()?;
            let dead = txn.open_table(DEAD)?;
            let bodies = txn.open_table(BODIES)?;
            let answers = txn.open_table(ANSWERS)?;
            let mut out = Vec::new();
            for row in dead.iter()? {
                let (id, value) = row?;
                if let Ok(record) = serde_json::from_slice::<DeadRecord>(value.value()) {
                    let bytes = |b: redb::AccessGuard<'_, &[u8]>| b.value().to_vec();
                    let body = bodies.get(id.value())?.map(bytes).unwrap_or_default();
                    let answer = answers.get(id.value())?.map(bytes).unwrap_or_default();
                    out.push(DeadRow {
                        record,
                        body,
                        answer,
                    });
                }
            }
            Ok(out)
        };
        read().map_err(|e| self.failed("read", e))
    }

    /// Moves dead letter `id` back to the pending entries with a new expiry (its key and
    /// body unchanged); `None` when there is no such dead letter.
    pub fn revive(&self, id: u64, expires_ms: u64) -> Result<Option<EntryRecord>, String> {
        let write = || -> Result<Option<EntryRecord>, redb::Error> {
            let txn = self.db.begin_write()?;
            let revived = {
                let mut dead = txn.open_table(DEAD)?;
                let record = match dead.remove(id)? {
                    Some(value) => serde_json::from_slice::<DeadRecord>(value.value()).ok(),
                    None => None,
                };
                match record {
                    Some(d) => {
                        txn.open_table(ANSWERS)?.remove(id)?;
                        let mut entry = d.entry;
                        entry.expires_ms = expires_ms;
                        let json = serde_json::to_vec(&entry).map_err(io_error)?;
                        txn.open_table(PENDING)?.insert(id, json.as_slice())?;
                        Some(entry)
                    }
                    None => None,
                }
            };
            if revived.is_some() {
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(revived)
        };
        write().map_err(|e| self.failed("write", e))
    }

    /// Deletes dead letter `id`; false when there is none.
    pub fn drop_dead_letter(&self, id: u64) -> Result<bool, String> {
        let write = || -> Result<bool, redb::Error> {
            let txn = self.db.begin_write()?;
            let existed = txn.open_table(DEAD)?.remove(id)?.is_some();
            if existed {
                txn.open_table(BODIES)?.remove(id)?;
                txn.open_table(ANSWERS)?.remove(id)?;
            }
            txn.commit()?;
            Ok(existed)
        };
        write().map_err(|e| self.failed("write", e))
    }

    /// Deletes every dead letter; returns how many there were.
    pub fn clear_dead_letters(&self) -> Result<u64, String> {
        let write = || -> Result<u64, redb::Error> {
            let txn = self.db.begin_write()?;
            let ids: Vec<u64> = {
                let dead = txn.open_table(DEAD)?;
                dead.iter()?
                    .map(|row| row.map(|(id, _)| id.value()))
                    .collect::<Result<_, _>>()?
            };
            {
                let mut dead = txn.open_table(DEAD)?;
                let mut bodies = txn.open_table(BODIES)?;
                let mut answers = txn.open_table(ANSWERS)?;
                for id in &ids {
                    dead.remove(id)?;
                    bodies.remove(id)?;
                    answers.remove(id)?;
                }
            }
            txn.commit()?;
            Ok(ids.len() as u64)
        };
        write().map_err(|e| self.failed("write", e))
    }

    fn failed(&self, what: &str, e: redb::Error) -> String {
        format!(
            "the outbox store {} could not {what}: {e}",
            self.path.display()
        )
    }
}

/// One dead letter as read from the store.
pub struct DeadRow {
    pub record: DeadRecord,
    /// The request body.
    pub body: Vec<u8>,
    /// The start of the answer body that refused it (empty for dead letters stored before
    /// answers were kept, or with no answer).
    pub answer: Vec<u8>,
}

fn io_error(e: serde_json::Error) -> redb::Error {
    redb::Error::Io(std::io::Error::other(e))
}
