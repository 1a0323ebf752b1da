//! `HTTPDownload`: a handle to one download to a file, with its progress.

use godot::prelude::*;

use super::http_response::HttpResponse;
use crate::core::http::transfer::{DownloadHandle, DownloadOutcome};

/// A download started by [method HTTPPool.download]: its [signal progress] and its one
/// [signal completed].
///
/// The body goes to `file_path + ".part"` as it arrives (never whole in memory), and is
/// renamed to [member file_path] once complete, synced to disk and, when a SHA-256 was
/// given, verified. A dropped connection is resumed with a `Range` request carrying
/// `If-Range` (RFC 9110 sections 13.1.5 and 14.2), within [member HTTPPool.max_retries]
/// failures in a row; so is a download started again after the game restarted, from the
/// part file and its `.part.meta` sidecar. A server that answers `200` instead of `206`,
/// whose file changed (a new `ETag` or length, even in a `206` that ignored `If-Range`),
/// or whose `206` starts elsewhere than asked, is downloaded again from the start; so is a
/// sidecar that netkit could not have written. A part file that already holds the whole
/// file (the game stopped between the last byte and the rename) is verified and renamed
/// when the server answers its range with `416` and the same length
/// ([member HTTPResponse.status] is then 416 with [member HTTPResponse.ok] true). A failed attempt counts as progress only
/// when it brought bytes beyond the furthest point reached before, so a server that
/// drops every connection at the same point cannot keep the download retrying forever.
///
/// ```gdscript
/// var dl: HTTPDownload = pool.download("/packs/level2.pck", "user://level2.pck", sha256_hex)
/// dl.progress.connect(func(done: int, total: int): bar.value = 100.0 * done / maxi(total, 1))
/// var res: HTTPResponse = await dl.completed
/// if res.ok:
///     ProjectSettings.load_resource_pack("user://level2.pck")
/// else:
///     push_warning("%s: %s" % [res.get_error_name(), res.error_message])
/// ```
///
/// Removing the pool from the tree cancels its downloads (their part files are kept);
/// freeing it ends them with [constant HTTPResponse.ERR_CANCELLED] later in the same frame.
/// The download does not take a [member HTTPPool.max_concurrent] slot; at most 8
/// downloads of one pool run at once, and more wait their turn (with no connection and no
/// part file, [member bytes_received] 0) in the order they were started.
///
/// Errors, in [member HTTPResponse.error]: [constant HTTPResponse.ERR_HASH_MISMATCH] (the
/// part file is removed, nothing is written to [member file_path]),
/// [constant HTTPResponse.ERR_FILE] (the file cannot be written or renamed, or another
/// download still writes it after 2 s: one cancelled a moment ago, e.g. with its pool
/// freed, lets go within that time and this one resumes its part file), [constant HTTPResponse.ERR_BODY_TOO_LARGE] (beyond
/// [member HTTPPool.max_download_bytes]), [constant HTTPResponse.ERR_DECODE] (an answer
/// that cannot be the file: a `206` to a request without `Range` that does not cover the
/// whole file, a body longer than its `Content-Length` or `Content-Range` said, or a
/// `Content-Encoding` although the download asks for `identity`, as offsets and the
/// SHA-256 count the file's own bytes; nothing of that answer is written), and those of
/// requests: connection, TLS, timeout, HTTP status, cancellation.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted, rename = HTTPDownload)]
pub struct HttpDownload {
    /// The download's id (int), unique within its pool.
    #[var(no_set)]
    id: i64,
    /// The file the download writes, as it was given to [method HTTPPool.download] (for
    /// example `"user://level2.pck"`).
    #[var(no_set)]
    file_path: GString,
    /// Bytes of the file received so far (int), a resumed part included; read live.
    #[var(get = get_bytes_received, no_set)]
    #[allow(dead_code)]
    bytes_received: i64,
    /// The file's size in bytes (int) once the server said it, else -1; read live.
    #[var(get = get_total_bytes, no_set)]
    #[allow(dead_code)]
    total_bytes: i64,
    /// Lowercase hex SHA-256 of the complete file once [signal completed] reported
    /// success; empty before and after a failure.
    #[var(no_set)]
    sha256: GString,
    /// Times the download continued its part file with a `Range` request answered `206`.
    #[var(no_set)]
    resumes: i64,
    /// Times it started over from byte 0 after having bytes: the server ignored `Range`,
    /// the file changed on the server, or it gave no validator to resume with safely. A
    /// part file left by an earlier run that cannot be resumed (no validator was stored
    /// for it) counts too: its bytes are thrown away.
    #[var(no_set)]
    restarts: i64,
    /// The [HTTPResponse] once [signal completed] was emitted; `null` before. Its
    /// [member HTTPResponse.body] is empty: the body is in the file.
    #[var(no_set)]
    response: Option<Gd<HttpResponse>>,
    handle: Option<DownloadHandle>,
    /// The last progress emitted, and the frame it was emitted in.
    emitted: (i64, i64),
    emitted_frame: u64,
    final_bytes: (i64, i64),
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpDownload {
    /// Emitted at most once per frame while bytes arrive, and once more before
    /// [signal completed] when the last bytes were not reported yet.
    ///
    /// [param bytes_received] counts bytes of the file, a resumed part included, so it
    /// only grows, except when the download starts over (see [member restarts]).
    /// [param total_bytes] is the file's size, or -1 while the server has not said it.
    #[signal]
    pub fn progress(bytes_received: i64, total_bytes: i64);

    /// Emitted once when the download ends, with its [HTTPResponse]; also when it failed
    /// or was cancelled.
    #[signal]
    pub fn completed(response: Gd<HttpResponse>);

    /// Stops the download, without blocking; it still ends through [signal completed]
    /// with [constant HTTPResponse.ERR_CANCELLED], on a later frame.
    ///
    /// The part file is kept, so a later [method HTTPPool.download] of the same URL to the
    /// same file resumes it; pass `true` for [param delete_part] to remove it instead.
    #[func]
    pub fn cancel(&mut self, #[opt(default = false)] delete_part: bool) {
        if let Some(handle) = &self.handle {
            handle.cancel(delete_part);
        }
    }

    /// Returns `true` once [signal completed] has been emitted.
    #[func]
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }

    /// Getter of [member bytes_received].
    #[func]
    pub fn get_bytes_received(&self) -> i64 {
        match &self.handle {
            Some(h) if self.response.is_none() => h.progress().received() as i64,
            _ => self.final_bytes.0,
        }
    }

    /// Getter of [member total_bytes].
    #[func]
    pub fn get_total_bytes(&self) -> i64 {
        match &self.handle {
            Some(h) if self.response.is_none() => h.progress().total(),
            _ => self.final_bytes.1,
        }
    }
}

/// What to do about progress before a completion is emitted.
pub enum FinalProgress {
    /// Nothing new to report.
    None,
    /// Emit this first.
    Emit(i64, i64),
    /// Progress was already emitted this frame: deliver the completion next frame.
    Hold,
}

impl HttpDownload {
    /// Creates the handle; `handle` is `None` for a download refused before it started.
    pub fn create(id: u64, file_path: GString, handle: Option<DownloadHandle>) -> Gd<HttpDownload> {
        Gd::from_init_fn(|base| HttpDownload {
            id: id as i64,
            file_path,
            bytes_received: 0,
            total_bytes: -1,
            sha256: GString::new(),
            resumes: 0,
            restarts: 0,
            response: None,
            handle,
            emitted: (0, -1),
            emitted_frame: u64::MAX,
            final_bytes: (0, -1),
            base,
        })
    }

    fn live(&self) -> Option<(i64, i64)> {
        let h = self.handle.as_ref()?;
        Some((h.progress().received() as i64, h.progress().total()))
    }

    /// The progress to emit in `frame`, if it changed and none was emitted this frame.
    pub fn take_progress(&mut self, frame: u64) -> Option<(i64, i64)> {
        let now = self.live()?;
        if self.response.is_some() || now == self.emitted || frame == self.emitted_frame {
            return None;
        }
        self.emitted = now;
        self.emitted_frame = frame;
        Some(now)
    }

    /// Whether the last progress must be emitted before the completion in `frame`.
    pub fn final_progress(&mut self, frame: u64) -> FinalProgress {
        let Some(now) = self.live() else {
            return FinalProgress::None;
        };
        if now == self.emitted {
            FinalProgress::None
        } else if frame == self.emitted_frame {
            FinalProgress::Hold
        } else {
            self.emitted = now;
            self.emitted_frame = frame;
            FinalProgress::Emit(now.0, now.1)
        }
    }

    /// Records the ending; the caller emits `completed` once no borrow is held.
    pub fn set_outcome(&mut self, outcome: &DownloadOutcome, response: Gd<HttpResponse>) {
        self.final_bytes = self
            .live()
            .unwrap_or((outcome.bytes as i64, outcome.total.map_or(-1, |t| t as i64)));
        self.sha256 = GString::from(outcome.sha256.as_str());
        self.resumes = i64::from(outcome.resumes);
        self.restarts = i64::from(outcome.restarts);
        self.response = Some(response);
    }

    /// Records an ending that did not come from the core (the pool was freed).
    pub fn set_response(&mut self, response: Gd<HttpResponse>) {
        self.final_bytes = self.live().unwrap_or((0, -1));
        self.response = Some(response);
    }
}
