//! The durable outbox as one component of `HTTPPool`: the open store (if any), the tasks of
//! durable requests made in this run, why the store could not be opened, and the default
//! headers last handed to it. The pool's outbox functions (`http_outbox.rs`) and its frame
//! delivery use this API only; nothing else reaches into it.
//!
//! Freeing the pool closes the store at once (an `RwLock<Option<Store>>` taken on drop, so
//! another pool can open the same file in the same frame); tasks of durable requests end
//! with `ERR_CANCELLED` and the entries stay stored for the next open. A store that cannot
//! be opened is reported once with `godot_error` (a set-aside file also as
//! `outbox_set_aside = 1` in `get_stats()`), and `get_outbox_error()` keeps the sentence.
//! `default_headers` reach the core when the store opens and again when they change
//! (compared by `Dictionary.hash()` each frame).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use godot::classes::ProjectSettings;
use godot::prelude::*;

use super::http_response::HttpResponse;
use super::http_task::HttpTask;
use super::stats_dict::stats_dict;
use crate::core::http::outbox::{DeadLetter, Outbox, OutboxConfig, OutboxEvent, Write};
use crate::core::http::{ErrorKind, HttpPool as CorePool, RequestSpec};

/// What opening the store takes from the pool's properties.
pub struct OutboxSettings {
    /// `outbox_path`, as the script set it (`user://...` or absolute).
    pub path: GString,
    /// `outbox_max_pending`.
    pub max_pending: i64,
    /// `default_headers`, applied at each attempt and never stored.
    pub default_headers: VarDictionary,
}

/// See the module doc.
#[derive(Default)]
pub struct DurableOutbox {
    store: Option<Outbox>,
    /// The sentence of the last failed open; the next use tries again.
    error: Option<String>,
    tasks: HashMap<u64, Gd<HttpTask>>,
    /// `default_headers.hash_u32()` as last handed to the store.
    headers_hash: Option<u32>,
}

/// One outbox event with its task, taken under a short borrow of the pool, to emit with
/// none held.
pub enum Taken {
    /// The entry left the store: delivered (2xx) or dead-lettered.
    Done {
        delivered: bool,
        entry: u64,
        task: Option<Gd<HttpTask>>,
        response: Gd<HttpResponse>,
    },
    /// The store could not be written or read; the sentence says why.
    StoreError(String),
    /// A background write failed: the task ends with the error, no pool signal.
    NotStored {
        task: Option<Gd<HttpTask>>,
        response: Gd<HttpResponse>,
    },
}

impl DurableOutbox {
    /// Whether the store is open.
    pub fn is_open(&self) -> bool {
        self.store.is_some()
    }

    /// Why the store could not be opened, or `""`.
    pub fn error(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// Opens the store on first use (on the main thread: one file open and a read of the
    /// pending records) and returns it. An unreadable file is renamed aside and reported;
    /// a file another pool holds is an error (tried again at the next use).
    pub fn open(&mut self, settings: &OutboxSettings, core: &CorePool) -> Result<&Outbox, String> {
        if self.store.is_none() {
            let store = self.open_store(settings, core).inspect_err(|message| {
                self.error = Some(message.clone());
            })?;
            self.error = None;
            self.store = Some(store);
        }
        Ok(self.store.as_ref().expect("just opened"))
    }

    fn open_store(&mut self, settings: &OutboxSettings, core: &CorePool) -> Result<Outbox, String> {
        let path = settings.path.to_string();
        if path.trim().is_empty() {
            return Err(
                "outbox_path is empty: set it to a file path such as user://netkit_outbox.redb"
                    .to_string(),
            );
        }
        let global = ProjectSettings::singleton()
            .globalize_path(&settings.path)
            .to_string();
        let config = OutboxConfig {
            path: PathBuf::from(global),
            max_pending: settings.max_pending.clamp(1, i64::MAX) as usize,
            send_headers: header_pairs(&settings.default_headers),
        };
        self.headers_hash = Some(settings.default_headers.hash_u32());
        let (store, set_aside) = Outbox::open(config, core).map_err(|e| e.to_string())?;
        if let Some(message) = set_aside {
            godot_error!("HTTPPool: {message}");
        }
        Ok(store)
    }

    /// Hands changed `default_headers` (a new token, say) to the store, so its next attempts
    /// use them. `force` skips the change check.
    pub fn sync_headers(&mut self, headers: &VarDictionary, force: bool) {
        let Some(store) = &self.store else {
            return;
        };
        let hash = headers.hash_u32();
        if !force && self.headers_hash == Some(hash) {
            return;
        }
        self.headers_hash = Some(hash);
        store.set_send_headers(header_pairs(headers));
    }

    /// Stores one request (open first) and returns its task, made by `task` from the
    /// entry id; or the error the call ends with.
    pub fn submit(
        &mut self,
        spec: RequestSpec,
        max_age: Duration,
        write: Write,
        task: impl FnOnce(u64) -> Gd<HttpTask>,
    ) -> Result<Gd<HttpTask>, (ErrorKind, String)> {
        let store = self
            .store
            .as_ref()
            .ok_or((ErrorKind::File, "the outbox is not open".to_string()))?;
        let entry = store.submit(spec, max_age, write)?;
        let task = task(entry);
        self.tasks.insert(entry, task.clone());
        Ok(task)
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        self.opened()?.dead_letters()
    }

    /// Deletes one dead letter; false when there is none.
    pub fn drop_dead_letter(&self, entry: u64) -> Result<bool, String> {
        self.opened()?.drop_dead_letter(entry)
    }

    /// Sends a dead letter again as a pending entry expiring `max_age` from now.
    pub fn retry_dead_letter(&self, entry: u64, max_age: Duration) -> Result<bool, String> {
        self.opened()?.retry_dead_letter(entry, max_age)
    }

    /// Deletes every dead letter; returns how many there were.
    pub fn clear_dead_letters(&self) -> Result<u64, String> {
        self.opened()?.clear_dead_letters()
    }

    fn opened(&self) -> Result<&Outbox, String> {
        self.store
            .as_ref()
            .ok_or_else(|| "the outbox is not open".to_string())
    }

    /// The outbox's part of `get_stats()`.
    pub fn stats(&self) -> VarDictionary {
        let s = self.store.as_ref().map(|o| o.stats()).unwrap_or_default();
        stats_dict([
            ("outbox_pending", s.pending),
            ("outbox_delivered", s.delivered),
            ("outbox_dead_letters", s.dead_letters),
            ("outbox_attempts", s.attempts),
            ("outbox_hung_attempts", s.hung_attempts),
            ("outbox_store_errors", s.store_errors),
            ("outbox_set_aside", s.set_aside),
            ("outbox_open", u64::from(self.store.is_some())),
        ])
    }

    /// Closes the store (entries stay stored) and returns the durable tasks, to end with
    /// `ERR_CANCELLED`.
    pub fn close(&mut self) -> Vec<(u64, Gd<HttpTask>)> {
        self.store = None;
        self.tasks.drain().collect()
    }

    /// The next event with its task, if any.
    pub fn take_event(&mut self) -> Option<Taken> {
        let event = self.store.as_ref()?.next_event()?;
        Some(match event {
            OutboxEvent::Delivered { entry, response } => Taken::Done {
                delivered: true,
                entry,
                task: self.tasks.remove(&entry),
                response: HttpResponse::from_core(entry, response),
            },
            OutboxEvent::DeadLettered { entry, response } => Taken::Done {
                delivered: false,
                entry,
                task: self.tasks.remove(&entry),
                response: HttpResponse::from_core(entry, response),
            },
            OutboxEvent::StoreError(message) => Taken::StoreError(message),
            OutboxEvent::NotStored { entry, response } => Taken::NotStored {
                task: self.tasks.remove(&entry),
                response: HttpResponse::from_core(entry, response),
            },
        })
    }
}

/// `default_headers` as plain pairs for the core.
fn header_pairs(headers: &VarDictionary) -> Vec<(String, String)> {
    headers
        .iter_shared()
        .map(|(k, v)| (k.stringify().to_string(), v.stringify().to_string()))
        .collect()
}
