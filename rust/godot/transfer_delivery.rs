//! The downloads and streams of an `HTTPPool` node: starting them, delivering their
//! signals within the pool's frame budget with no borrow held, and ending what is still
//! awaited when the pool goes away.
//!
//! Transfers are delivered after the pool's responses in the same frame hook and budget, so
//! a flooding stream never delays a response and a burst of responses delays streams by a
//! frame at most. A download's `progress` is emitted when its counters changed since the
//! last frame; an ending whose last progress was not reported yet gets it first, and if
//! progress was already emitted in that frame the ending waits one frame. After an object's
//! last signal (`completed`, `finished`) every handler of its signals is disconnected: a
//! lambda connected to `dl.progress` that captures `dl` would otherwise keep it alive in a
//! reference cycle, which Godot reports as leaked at exit.

use std::collections::{HashMap, VecDeque};

use godot::classes::Engine;
use godot::prelude::*;

use super::frame_hook::FrameBudget;
use super::http_download::{FinalProgress, HttpDownload};
use super::http_pool::HttpPool;
use super::http_response::HttpResponse;
use super::http_stream::HttpStream;
use crate::core::http::transfer::{DownloadSpec, StreamItem, StreamSpec, TransferEvent, Transfers};
use crate::core::http::{ErrorKind, HttpPool as CorePool, Response};

/// What an `HTTPPool` keeps about its transfers.
#[derive(Default)]
pub struct TransferState {
    core: Option<Transfers>,
    downloads: HashMap<u64, Gd<HttpDownload>>,
    streams: HashMap<u64, Gd<HttpStream>>,
    /// Download endings held back from the previous frame, delivered first in this one.
    held: VecDeque<TransferEvent>,
    /// Download endings of this frame whose last progress was already emitted in it: they
    /// wait one frame, so `progress` stays at most once per frame.
    next_frame: Vec<TransferEvent>,
}

/// One signal to emit, taken under a short borrow of the pool.
enum Emit {
    Progress(Gd<HttpDownload>, i64, i64),
    Completed(Gd<HttpDownload>, Option<(i64, i64)>, Gd<HttpResponse>),
    Chunk(Gd<HttpStream>, PackedByteArray),
    Line(Gd<HttpStream>, GString),
    Event(Gd<HttpStream>, VarDictionary),
    Finished(Gd<HttpStream>, Gd<HttpResponse>),
}

impl TransferState {
    fn core(&mut self) -> &Transfers {
        self.core.get_or_insert_with(Transfers::new)
    }

    /// Starts a download (or ends a refused one on a later frame) and returns its handle.
    pub fn download(
        &mut self,
        pool: &CorePool,
        spec: Result<DownloadSpec, Box<Response>>,
        file_path: GString,
    ) -> Gd<HttpDownload> {
        let (id, handle) = match spec {
            Ok(spec) => {
                let handle = self.core().download(pool, spec);
                (handle.id, Some(handle))
            }
            Err(response) => {
                let file = std::path::PathBuf::from(file_path.to_string());
                (self.core().refuse_download(*response, file), None)
            }
        };
        let download = HttpDownload::create(id, file_path, handle);
        self.downloads.insert(id, download.clone());
        download
    }

    /// Starts a stream (or ends a refused one on a later frame) and returns its handle.
    pub fn stream(
        &mut self,
        pool: &CorePool,
        spec: Result<StreamSpec, Box<Response>>,
        mode: i64,
    ) -> Gd<HttpStream> {
        let (id, handle) = match spec {
            Ok(spec) => {
                let handle = self.core().stream(pool, spec);
                (handle.id, Some(handle))
            }
            Err(response) => (self.core().refuse_stream(*response), None),
        };
        let stream = HttpStream::create(id, mode, handle);
        self.streams.insert(id, stream.clone());
        stream
    }

    /// Cancels every download and stream (the pool left the tree); each still ends.
    pub fn cancel_all(&mut self) {
        if let Some(core) = &self.core {
            core.cancel_all();
        }
        for stream in self.streams.values_mut() {
            stream.bind_mut().cancel();
        }
    }

    /// Downloads and streams that have not ended.
    pub fn active(&self) -> (u64, u64) {
        (self.downloads.len() as u64, self.streams.len() as u64)
    }

    /// The next signal of the transfer queue, or `None` when nothing waits.
    fn take_next(&mut self, frame: u64) -> Option<Emit> {
        loop {
            let event = match self.held.pop_front() {
                Some(event) => event,
                None => self.core.as_ref()?.next_event()?,
            };
            match event {
                TransferEvent::Download { id, outcome } => {
                    let Some(mut download) = self.downloads.get(&id).cloned() else {
                        continue;
                    };
                    let last = match download.bind_mut().final_progress(frame) {
                        FinalProgress::Hold => {
                            self.next_frame
                                .push(TransferEvent::Download { id, outcome });
                            continue;
                        }
                        FinalProgress::Emit(received, total) => Some((received, total)),
                        FinalProgress::None => None,
                    };
                    self.downloads.remove(&id);
                    let response = HttpResponse::from_core(id, outcome.response.clone());
                    download.bind_mut().set_outcome(&outcome, response.clone());
                    return Some(Emit::Completed(download, last, response));
                }
                TransferEvent::Stream { id, item, credit } => {
                    let Some(mut stream) = self.streams.get(&id).cloned() else {
                        continue;
                    };
                    if let StreamItem::Finished(mut response) = item {
                        self.streams.remove(&id);
                        if stream.bind().is_cancelled() && response.error != ErrorKind::Cancelled {
                            // The task had ended before cancel() reached it, but cancel()
                            // dropped what was still queued: reporting the server's ending
                            // (`ok`) would tell the game it got the whole stream.
                            response.error = ErrorKind::Cancelled;
                            response.error_message =
                                "the stream was cancelled; pieces still queued were not delivered"
                                    .to_string();
                        }
                        let response = HttpResponse::from_core(id, response);
                        stream.bind_mut().set_response(response.clone());
                        return Some(Emit::Finished(stream, response));
                    }
                    if stream.bind().is_cancelled() {
                        continue; // dropped: cancel() promised no more pieces
                    }
                    // The credit returns to the stream's buffer when this event is dropped
                    // here, before the handler runs: the room is free once the piece is
                    // a Godot value, which the handler owns.
                    let emit = match item {
                        StreamItem::Chunk(bytes) => {
                            Emit::Chunk(stream, PackedByteArray::from(bytes.as_ref()))
                        }
                        StreamItem::Line(line) => Emit::Line(stream, GString::from(line.as_str())),
                        StreamItem::Event(event) => {
                            let dict = stream.bind_mut().event_dict(&event);
                            Emit::Event(stream, dict)
                        }
                        StreamItem::Finished(_) => unreachable!("handled above"),
                    };
                    drop(credit);
                    return Some(emit);
                }
            }
        }
    }

    /// The downloads whose progress changed, with the values to emit this frame; also
    /// moves the endings held back last frame to the front.
    fn progress(&mut self, frame: u64) -> Vec<Emit> {
        self.held.extend(self.next_frame.drain(..));
        self.downloads
            .values()
            .filter_map(|d| {
                let mut d = d.clone();
                let p = d.bind_mut().take_progress(frame);
                p.map(|(r, t)| Emit::Progress(d, r, t))
            })
            .collect()
    }

    /// Ends every download and stream still awaited with `ERR_CANCELLED` (the pool is
    /// being freed): returns the emissions, which the pool runs as it runs those of its
    /// requests (`HttpPool::end_pending_tasks`).
    pub fn end_pending(&mut self) -> Option<Box<dyn FnOnce()>> {
        self.core = None;
        self.held.clear();
        self.next_frame.clear();
        let downloads: Vec<_> = self.downloads.drain().collect();
        let streams: Vec<_> = self.streams.drain().collect();
        if downloads.is_empty() && streams.is_empty() {
            return None;
        }
        let response = |id: u64, what: &str| {
            HttpResponse::from_core(
                id,
                Response::failed(
                    ErrorKind::Cancelled,
                    format!("the HTTPPool was freed before the {what} finished"),
                    "",
                ),
            )
        };
        Some(Box::new(move || {
            for (id, mut download) in downloads {
                if download.bind().is_done() {
                    continue;
                }
                let response = response(id, "download");
                download.bind_mut().set_response(response.clone());
                download.signals().completed().emit(&response);
                release_handlers(download.upcast(), &["progress", "completed"]);
            }
            for (id, mut stream) in streams {
                if stream.bind().is_done() {
                    continue;
                }
                let response = response(id, "stream");
                stream.bind_mut().set_response(response.clone());
                stream.signals().finished().emit(&response);
                release_handlers(
                    stream.upcast(),
                    &[
                        "chunk_received",
                        "line_received",
                        "event_received",
                        "finished",
                    ],
                );
            }
        }))
    }
}

/// Disconnects every handler of `signals` once an object's last signal was emitted: none
/// can fire again, and a handler that captured the object (`dl.progress.connect(func(a, b):
/// dl.cancel())`) would otherwise keep it alive in a reference cycle forever.
fn release_handlers(mut object: Gd<Object>, signals: &[&str]) {
    for name in signals {
        for connection in object.get_signal_connection_list(*name).iter_shared() {
            if let Some(callable) = connection.get("callable")
                && let Ok(callable) = callable.try_to::<Callable>()
            {
                object.disconnect(*name, &callable);
            }
        }
    }
}

/// Emits one signal; false when the pool was freed by a handler.
fn emit(pool: &Gd<HttpPool>, emit: Emit) -> bool {
    match emit {
        Emit::Progress(d, r, t) => d.signals().progress().emit(r, t),
        Emit::Completed(d, last, response) => {
            if let Some((r, t)) = last {
                d.signals().progress().emit(r, t);
                if !pool.is_instance_valid() {
                    return false;
                }
            }
            d.signals().completed().emit(&response);
            release_handlers(d.upcast(), &["progress", "completed"]);
        }
        Emit::Chunk(s, data) => s.signals().chunk_received().emit(&data),
        Emit::Line(s, line) => s.signals().line_received().emit(&line),
        Emit::Event(s, dict) => s.signals().event_received().emit(&dict),
        Emit::Finished(s, response) => {
            s.signals().finished().emit(&response);
            release_handlers(
                s.upcast(),
                &[
                    "chunk_received",
                    "line_received",
                    "event_received",
                    "finished",
                ],
            );
        }
    }
    pool.is_instance_valid()
}

/// Delivers download progress (once per frame each) and then queued transfer events
/// while the pool's frame budget allows (shared with its responses and outbox). Each
/// signal is taken under a short borrow of the pool and emitted with none held. Returns
/// false when a handler freed the pool.
pub fn deliver(pool: &mut Gd<HttpPool>, budget: &mut FrameBudget) -> bool {
    let frame = Engine::singleton().get_process_frames();
    let progress = pool.bind_mut().transfers.progress(frame);
    for e in progress {
        if !emit(pool, e) {
            return false;
        }
    }
    while budget.allows() {
        let Some(next) = pool.bind_mut().transfers.take_next(frame) else {
            break;
        };
        budget.spend();
        if !emit(pool, next) {
            return false;
        }
    }
    true
}
