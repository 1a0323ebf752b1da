//! One download's task: requests with `Range`/`If-Range` after a dropped connection or a
//! restart of the game, the body streamed to the part file on the blocking pool, the
//! SHA-256 computed as bytes arrive, and the rename into place.
//!
//! `Accept-Encoding: identity` is sent, because offsets count bytes of the file, and the
//! download goes through the pool's `identity` client, which decodes no content coding: a
//! coded response ends with `ERR_DECODE`, keeping a resumable part. `Range`, `If-Range` and
//! `Accept-Encoding` from `default_headers` are not sent with downloads; in `download()`'s
//! own headers they are refused. A body that runs past the end its `Content-Length` or
//! `Content-Range` announced is `ERR_DECODE` and the part is removed (a server that lies
//! about sizes is not resumed from).
//!
//! A dropped connection or a stall is retried with the pool's backoff; only failures in a
//! row count against `max_retries`, and an attempt resets the count only when the part file
//! got beyond the furthest point any attempt reached (after a restart from byte 0, fetching
//! the same bytes again is not progress; without that, a server with no validator that
//! drops each connection half way kept a download retrying forever). `timeout` is the wait
//! for the head and then between two chunks, not for the whole file.
//!
//! Endings: `ERR_HASH_MISMATCH` removes the part (no file in place); `ERR_BODY_TOO_LARGE`
//! over `max_download_bytes` (checked on the announced size and while streaming) removes
//! it; a permanent HTTP error removes it; connection errors after the retries keep it (the
//! message says `download()` again resumes); `cancel()` keeps it, `cancel(true)` removes
//! it. A task dropped by a runtime shutdown still sends its ending (a drop guard, as for
//! requests). Progress is two atomics (`received`, `total`) the node reads once per frame.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT_ENCODING, IF_RANGE, RANGE};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::file_claim::FileClaim;
use super::part_file::{self, Meta, PartPaths, PartWriter};
use super::resume::{Head, Held, Verdict, judge};
use super::{
    DownloadHandle, DownloadOutcome, DownloadSpec, TransferBase, TransferEvent, head_response,
};
use crate::core::events::EventSender;
use crate::core::http::classify::{chain, classify};
use crate::core::http::exec::{Simulated, pace_body, simulated_end, simulated_start};
use crate::core::http::retry::{
    RetryPolicy, backoff_delay, is_retryable_status, parse_retry_after,
};
use crate::core::http::{ErrorKind, Response};
use crate::core::simulate::http::BodyPace;

/// Bytes collected before one write to the part file: few enough system calls, little
/// memory (a download never holds more than this plus one network chunk).
const WRITE_BLOCK: usize = 256 * 1024;
/// Starts over from byte 0 within one download before it gives up (a server whose
/// answers contradict each other must not loop forever).
const MAX_RESTARTS: u32 = 3;

/// Request header fields a download sets itself (RFC 9110 sections 12.5.3, 13.1.5, 14.2);
/// others' values for them are not sent. `HTTPPool.download()` refuses them in its own
/// `headers` argument with a sentence.
pub const MANAGED_HEADERS: [&str; 3] = ["accept-encoding", "range", "if-range"];

/// Sends the download's one ending, also when the task is dropped (runtime shutdown).
struct Ending {
    events: EventSender<TransferEvent>,
    id: u64,
    file: PathBuf,
    url: String,
    sent: bool,
}

impl Ending {
    fn send(&mut self, outcome: DownloadOutcome) {
        self.sent = true;
        self.events.send(TransferEvent::Download {
            id: self.id,
            outcome,
        });
    }
}

impl Drop for Ending {
    fn drop(&mut self) {
        if !self.sent {
            let response = Response::failed(
                ErrorKind::Cancelled,
                "the download was stopped because netkit's runtime shut down; the part file is kept",
                &self.url,
            );
            self.send(DownloadOutcome {
                response,
                file: self.file.clone(),
                bytes: 0,
                total: None,
                sha256: String::new(),
                resumes: 0,
                restarts: 0,
            });
        }
    }
}

/// Runs the download to its one ending.
pub(super) async fn run(
    base: TransferBase,
    spec: DownloadSpec,
    handle: DownloadHandle,
    events: EventSender<TransferEvent>,
    slots: Arc<Semaphore>,
) {
    let mut ending = Ending {
        events,
        id: handle.id,
        file: spec.file.clone(),
        url: spec.url.clone(),
        sent: false,
    };
    let mut job = Job {
        pace: None,
        paths: PartPaths::new(&spec.file),
        base,
        spec,
        handle,
        writer: None,
        offset: 0,
        validator: None,
        total: None,
        resumes: 0,
        restarts: 0,
        attempts: 0,
        high_water: 0,
        range_end: None,
        started: Instant::now(),
        sha256: String::new(),
    };
    let token = job.handle.token.clone();
    let started = tokio::select! {
        biased;
        _ = token.cancelled() => None,
        slot = slots.acquire_owned() => match slot {
            Ok(slot) => Some((slot, FileClaim::wait(&job.spec.file).await)),
            Err(_) => None,
        },
    };
    let Some((_slot, claim)) = started else {
        // Nothing was touched: the part file, if any, is another download's.
        let message = "the download was cancelled before it started";
        let outcome = job.outcome(job.failed(ErrorKind::Cancelled, message));
        return ending.send(outcome);
    };
    let Some(_claim) = claim else {
        let message = format!(
            "{} is already being downloaded by another download; wait for it or cancel it",
            job.spec.file.display()
        );
        let outcome = job.outcome(job.failed(ErrorKind::File, message));
        return ending.send(outcome);
    };
    let result = tokio::select! {
        biased;
        _ = token.cancelled() => None,
        outcome = job.run() => Some(outcome),
    };
    let outcome = match result {
        Some(outcome) => outcome,
        None => job.cancelled().await,
    };
    ending.send(outcome);
}

/// What one attempt led to.
enum Step {
    /// The download ended.
    Done(Response),
    /// A transient failure: retry after backoff.
    Retry { response: Response },
    /// Start the next attempt at once (after starting over from byte 0).
    Again,
}

struct Job {
    /// The pace simulated conditions set for the current attempt's body, if any.
    pace: Option<BodyPace>,
    base: TransferBase,
    spec: DownloadSpec,
    handle: DownloadHandle,
    paths: PartPaths,
    /// The part file, while open; `None` before the first attempt or during a write.
    writer: Option<PartWriter>,
    /// Bytes in the part file.
    offset: u64,
    /// The `If-Range` value for a resume; without one a resume would be unsafe.
    validator: Option<String>,
    total: Option<u64>,
    resumes: u32,
    restarts: u32,
    attempts: u32,
    /// The furthest the part file ever reached in this download: only bytes beyond it are
    /// progress. A server that drops every connection before the point where the last one
    /// dropped (after a restart from byte 0) must not reset the retry count forever.
    high_water: u64,
    /// Where the current 206 answer's range ends (exclusive), from its Content-Range.
    range_end: Option<u64>,
    started: Instant,
    sha256: String,
}

impl Job {
    fn policy(&self) -> RetryPolicy {
        let s = &self.base.settings;
        RetryPolicy {
            max_retries: s.max_retries,
            base_delay: s.retry_base_delay,
            max_delay: s.retry_max_delay,
            window: s.retry_window,
        }
    }

    fn failed(&self, kind: ErrorKind, message: impl Into<String>) -> Response {
        Response::failed(kind, message, &self.spec.url)
    }

    fn outcome(&self, mut response: Response) -> DownloadOutcome {
        response.attempts = self.attempts;
        response.elapsed = self.started.elapsed();
        DownloadOutcome {
            response,
            file: self.spec.file.clone(),
            bytes: self.offset,
            total: self.total,
            sha256: self.sha256.clone(),
            resumes: self.resumes,
            restarts: self.restarts,
        }
    }

    async fn run(&mut self) -> DownloadOutcome {
        let clients = match &self.base.clients {
            Ok(clients) => clients.clone(),
            Err(message) => return self.outcome(self.failed(ErrorKind::Tls, message.clone())),
        };
        if let Err(response) = self.look_for_part().await {
            return self.outcome(response);
        }
        let policy = self.policy();
        let mut failures = 0;
        loop {
            self.attempts += 1;
            // Simulated network conditions (`core::simulate`) delay or fail the attempt.
            let step = match simulated_start(&clients, &self.spec.url, 0).await {
                Err(response) => Step::Retry { response },
                Ok(sim) => {
                    self.pace = Simulated::body_pace(sim);
                    let step = self.attempt(&clients.identity, clients.own_ca).await;
                    simulated_end(sim).await;
                    step
                }
            };
            match step {
                Step::Done(response) => return self.outcome(response),
                Step::Again => {}
                Step::Retry { mut response } => {
                    // New bytes prove the server works: only failures in a row count. Bytes
                    // fetched again after a restart are not new.
                    let progressed = self.offset > self.high_water;
                    self.high_water = self.high_water.max(self.offset);
                    failures = if progressed { 1 } else { failures + 1 };
                    if failures > policy.max_retries {
                        response.error_message.push_str(&format!(
                            " ({} bytes are kept in {}; download() again resumes there)",
                            self.offset,
                            self.paths.part.display()
                        ));
                        return self.outcome(response);
                    }
                    self.handle.progress.set(self.offset, self.total);
                    // A server's Retry-After (RFC 9110 section 10.2.3) is honoured when
                    // within retry_max_delay, as for requests.
                    let wait = response
                        .header("retry-after")
                        .and_then(|v| parse_retry_after(&v, SystemTime::now()))
                        .filter(|wait| *wait <= policy.max_delay)
                        .unwrap_or_else(|| backoff_delay(&policy, failures));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// A part file and sidecar from an earlier run for the same URL are resumed; anything
    /// else left there is removed.
    async fn look_for_part(&mut self) -> Result<(), Response> {
        let paths = self.paths.clone();
        let found = blocking(move || Ok(part_file::read_resumable(&paths))).await;
        match found {
            Ok(Some((meta, len))) if meta.url == self.spec.url && len > 0 => {
                self.validator = Some(meta.validator);
                self.total = meta.total;
                self.offset = len;
                self.high_water = len;
                self.handle.progress.set(len, meta.total);
                Ok(())
            }
            _ => {
                let paths = self.paths.clone();
                let dropped = blocking(move || {
                    let held = std::fs::metadata(&paths.part).map_or(0, |m| m.len());
                    part_file::remove_part(&paths).map(|()| held)
                })
                .await
                .map_err(|e| self.file_error("could not remove the old part file", &e))?;
                // Bytes of an earlier run that cannot be resumed (no sidecar with a
                // validator: the server gave none, or it is for another URL) are thrown
                // away and the download starts from byte 0: a restart, as `restarts` says.
                if dropped > 0 {
                    self.restarts += 1;
                }
                Ok(())
            }
        }
    }

    fn file_error(&self, what: &str, err: &std::io::Error) -> Response {
        self.failed(
            ErrorKind::File,
            format!("{what} {}: {err}", self.paths.part.display()),
        )
    }

    /// Opens the part file for this attempt: resumed when there is something to resume
    /// and a validator to resume it safely, else empty.
    async fn open(&mut self) -> Result<(), Response> {
        if self.writer.is_some() && (self.offset == 0 || self.validator.is_some()) {
            return Ok(());
        }
        let resume = self.offset > 0 && self.validator.is_some();
        if self.offset > 0 && !resume {
            self.restarts += 1;
        }
        let paths = self.paths.clone();
        self.writer = None;
        let writer = blocking(move || {
            if resume {
                PartWriter::resume(&paths)
            } else {
                PartWriter::create(&paths)
            }
        })
        .await
        .map_err(|e| self.file_error("could not open", &e))?;
        self.offset = writer.len();
        self.writer = Some(writer);
        Ok(())
    }

    /// Drops what the part file holds and starts the next attempt from byte 0.
    async fn start_over(&mut self) -> Step {
        self.restarts += 1;
        if self.restarts > MAX_RESTARTS {
            return Step::Done(self.failed(
                ErrorKind::HttpStatus,
                format!(
                    "the server's answers to range requests for {} kept contradicting each other; gave up after {MAX_RESTARTS} restarts",
                    self.spec.url
                ),
            ));
        }
        let paths = self.paths.clone();
        self.writer = None;
        match blocking(move || PartWriter::create(&paths)).await {
            Ok(writer) => {
                self.writer = Some(writer);
                self.offset = 0;
                self.validator = None;
                Step::Again
            }
            Err(e) => Step::Done(self.file_error("could not truncate", &e)),
        }
    }

    async fn attempt(&mut self, client: &reqwest::Client, own_ca: bool) -> Step {
        if let Err(response) = self.open().await {
            return Step::Done(response);
        }
        let url = self.spec.url.clone();
        let settings = self.base.settings.clone();
        let mut builder = client.get(&url);
        for (name, value) in &self.spec.headers {
            // The download sets these itself; a copy from the pool's default_headers (an
            // `Accept-Encoding: gzip` meant for API calls) would be sent beside netkit's
            // and break offsets, ranges or the hash.
            if MANAGED_HEADERS.iter().any(|m| name.eq_ignore_ascii_case(m)) {
                continue;
            }
            builder = builder.header(name.as_str(), value.as_str());
        }
        // Offsets count bytes of the file itself: no content coding may change them.
        builder = builder.header(ACCEPT_ENCODING, "identity");
        let ranged = self.offset > 0;
        if ranged && let Some(validator) = &self.validator {
            builder = builder
                .header(RANGE, format!("bytes={}-", self.offset))
                .header(IF_RANGE, validator.as_str());
        }
        let reply = match timeout(settings.timeout, builder.send()).await {
            Err(_) => {
                let message = format!(
                    "no answer from {url} within {:.1} s (the pool's timeout)",
                    settings.timeout.as_secs_f64()
                );
                return Step::Retry {
                    response: self.failed(ErrorKind::Timeout, message),
                };
            }
            Ok(Err(err)) => {
                let (kind, message) = classify(&err, &url, own_ca);
                let response = self.failed(kind, message);
                return match kind {
                    ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::ConnectionLost => {
                        Step::Retry { response }
                    }
                    _ => Step::Done(response),
                };
            }
            Ok(Ok(reply)) => reply,
        };
        let status = reply.status().as_u16();
        let mut head = head_response(&reply, self.attempts);
        self.range_end = None;
        let held = Held {
            offset: self.offset,
            validator: self.validator.clone(),
            total: self.total,
        };
        let answer = Head::read(status, reply.headers(), reply.content_length());
        match judge(&held, &answer, is_retryable_status) {
            Verdict::Resume { range_end, total } => {
                self.resumes += 1;
                self.total = total;
                self.range_end = Some(range_end);
            }
            Verdict::StartOver => return self.start_over().await,
            Verdict::Refuse(message) => {
                head.error = ErrorKind::Decode;
                head.error_message = message;
                return self.refused(head).await;
            }
            Verdict::Complete { total } => {
                self.total = Some(total);
                self.handle.progress.set(self.offset, self.total);
                self.resumes += 1;
                return Step::Done(self.finish(head).await);
            }
            Verdict::Whole {
                restart,
                validator,
                total,
            } => {
                if restart && let Step::Done(response) = self.start_over().await {
                    return Step::Done(response);
                }
                self.validator = validator;
                self.total = total;
                if let Some(validator) = self.validator.clone() {
                    let meta = Meta {
                        url: url.clone(),
                        validator,
                        total: self.total,
                    };
                    let paths = self.paths.clone();
                    if let Err(e) = blocking(move || part_file::write_meta(&paths, &meta)).await {
                        return Step::Done(self.file_error("could not write the sidecar of", &e));
                    }
                }
            }
            verdict @ (Verdict::Retry | Verdict::Fail) => {
                let reason = reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                head.error = ErrorKind::HttpStatus;
                head.error_message = format!("the server answered {status} {reason}")
                    .trim_end()
                    .to_string();
                if verdict == Verdict::Retry {
                    return Step::Retry { response: head };
                }
                let paths = self.paths.clone();
                self.writer = None;
                let _ = blocking(move || part_file::remove_part(&paths)).await;
                self.offset = 0;
                return Step::Done(head);
            }
        }
        self.handle.progress.set(self.offset, self.total);
        if let Some(total) = self.total
            && total > self.spec.max_bytes
        {
            return self.too_large(head, format!(
                "the file is {total} bytes, more than max_download_bytes ({}); it was not downloaded",
                self.spec.max_bytes
            )).await;
        }
        self.body(reply, head).await
    }

    /// Ends the download on an answer that cannot be used: a part file that can be resumed
    /// later is kept, one without a validator (or empty) is removed.
    async fn refused(&mut self, mut head: Response) -> Step {
        self.writer = None;
        if self.offset > 0 && self.validator.is_some() {
            head.error_message.push_str(&format!(
                "; the {} bytes from before are kept in {}",
                self.offset,
                self.paths.part.display()
            ));
        } else {
            let paths = self.paths.clone();
            let _ = blocking(move || part_file::remove_part(&paths)).await;
            self.offset = 0;
        }
        Step::Done(head)
    }

    async fn too_large(&mut self, mut head: Response, message: String) -> Step {
        head.error = ErrorKind::BodyTooLarge;
        head.error_message = message;
        let paths = self.paths.clone();
        self.writer = None;
        let _ = blocking(move || part_file::remove_part(&paths)).await;
        self.offset = 0;
        Step::Done(head)
    }

    async fn body(&mut self, mut reply: reqwest::Response, mut head: Response) -> Step {
        let stall = self.base.settings.timeout;
        let mut buffer = BytesMut::with_capacity(WRITE_BLOCK);
        loop {
            let chunk = match timeout(stall, reply.chunk()).await {
                Err(_) => {
                    let flushed = self.flush(&mut buffer).await;
                    head.error = ErrorKind::Timeout;
                    head.error_message = format!(
                        "no byte of {} arrived for {:.1} s (the pool's timeout) after {} bytes",
                        head.url,
                        stall.as_secs_f64(),
                        self.offset
                    );
                    return flushed.unwrap_or(Step::Retry { response: head });
                }
                Ok(chunk) => chunk,
            };
            match chunk {
                Ok(Some(chunk)) => {
                    pace_body(&mut self.pace, chunk.len()).await;
                    let size = self.offset + (buffer.len() + chunk.len()) as u64;
                    if let Some(end) = self.range_end.or(self.total)
                        && size > end
                    {
                        head.error = ErrorKind::Decode;
                        head.error_message = format!(
                            "the server sent more of {} than it announced ({end} bytes by its Content-Length or Content-Range); the download stopped and its part file was removed",
                            head.url
                        );
                        self.validator = None;
                        return self.refused(head).await;
                    }
                    if size > self.spec.max_bytes {
                        let message = format!(
                            "the file grew past max_download_bytes ({}); the download stopped and its part file was removed",
                            self.spec.max_bytes
                        );
                        return self.too_large(head, message).await;
                    }
                    buffer.extend_from_slice(&chunk);
                    self.handle.progress.set(size, self.total);
                    if buffer.len() >= WRITE_BLOCK
                        && let Some(step) = self.flush(&mut buffer).await
                    {
                        return step;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    if let Some(step) = self.flush(&mut buffer).await {
                        return step;
                    }
                    head.error = ErrorKind::ConnectionLost;
                    head.error_message = format!(
                        "the connection to {} broke after {} bytes of the file: {}",
                        head.url,
                        self.offset,
                        chain(&err)
                    );
                    return Step::Retry { response: head };
                }
            }
        }
        if let Some(step) = self.flush(&mut buffer).await {
            return step;
        }
        if let Some(total) = self.total
            && self.offset != total
        {
            head.error = ErrorKind::ConnectionLost;
            head.error_message = format!(
                "the body from {} ended after {} of {total} bytes",
                head.url, self.offset
            );
            return Step::Retry { response: head };
        }
        self.total = Some(self.offset);
        self.handle.progress.set(self.offset, self.total);
        Step::Done(self.finish(head).await)
    }

    /// Writes the buffer to the part file; `Some` with the ending when that failed.
    async fn flush(&mut self, buffer: &mut BytesMut) -> Option<Step> {
        if buffer.is_empty() {
            return None;
        }
        let bytes: Bytes = buffer.split().freeze();
        let mut writer = self.writer.take()?;
        match blocking(move || writer.write(&bytes).map(|()| writer)).await {
            Ok(writer) => {
                self.offset = writer.len();
                self.writer = Some(writer);
                None
            }
            Err(e) => Some(Step::Done(self.file_error("could not write to", &e))),
        }
    }

    /// Syncs, checks the hash and renames the file into place.
    async fn finish(&mut self, mut head: Response) -> Response {
        let Some(writer) = self.writer.take() else {
            return self.failed(ErrorKind::File, "the part file was lost");
        };
        let digest = match blocking(move || writer.finish()).await {
            Ok(digest) => digest,
            Err(e) => return self.file_error("could not sync", &e),
        };
        let actual = part_file::hex(&digest);
        if let Some(expected) = self.spec.sha256
            && expected != digest
        {
            let paths = self.paths.clone();
            let _ = blocking(move || part_file::remove_part(&paths)).await;
            head.error = ErrorKind::HashMismatch;
            head.error_message = format!(
                "the SHA-256 of the file from {} is {actual}, not the expected {}; the downloaded bytes were removed and {} was not written",
                head.url,
                part_file::hex(&expected),
                self.spec.file.display()
            );
            self.offset = 0;
            return head;
        }
        let paths = self.paths.clone();
        if let Err(e) = blocking(move || part_file::commit(&paths)).await {
            head.error = ErrorKind::File;
            head.error_message = format!(
                "could not move {} into place as {}: {e}",
                self.paths.part.display(),
                self.spec.file.display()
            );
            return head;
        }
        self.sha256 = actual;
        head
    }

    /// The ending of a cancelled download: the part file stays for a later resume unless
    /// the game asked to delete it.
    async fn cancelled(&mut self) -> DownloadOutcome {
        self.writer = None;
        let delete = self
            .handle
            .progress
            .delete_part_on_cancel
            .load(std::sync::atomic::Ordering::Acquire);
        let message = if delete {
            let paths = self.paths.clone();
            let _ = blocking(move || part_file::remove_part(&paths)).await;
            self.offset = 0;
            "the download was cancelled; its part file was removed".to_string()
        } else {
            format!(
                "the download was cancelled; {} keeps the bytes so far and download() again resumes there",
                self.paths.part.display()
            )
        };
        self.outcome(self.failed(ErrorKind::Cancelled, message))
    }
}

/// Runs blocking file work on tokio's blocking pool, so no worker thread waits on a disk.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("file task failed: {e}"))))
}
