//! One entry's delivery: attempts without a count limit, capped exponential backoff with
//! full jitter (or the server's `Retry-After`), until a 2xx, a final refusal, or the
//! entry's max age. An attempt unanswered past its deadline ([`super::deadline`]) is given
//! up as hung, which frees its delivery slot.
//!
//! Each attempt is one `exec::execute` with `max_retries = 0` through the pool's current
//! client and limits (`pool.rs`'s `AttemptSource`, a weak handle: the outbox never keeps a
//! freed pool alive). Between attempts it waits `backoff_delay` (`retry_base_delay`,
//! `retry_max_delay`) or the server's `Retry-After`, honoured up to `retry_max_delay` (a
//! backend asking for a day would otherwise park the save until its max age). Past
//! `outbox_max_age` (default a week) the entry becomes a dead letter whose reason names the
//! max age and the last error. Store reads and writes run in `spawn_blocking`; a failed one
//! is reported (the node prints it and counts it in `outbox_store_errors`) and loses
//! nothing (a delivered entry that cannot be removed is sent again at the next open, with
//! its key).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use super::deadline::MIN_DEADLINE;
use super::entry::{DeadRecord, EntryRecord, Verdict, now_ms, verdict};
use super::{Inner, OutboxEvent, lock, record_method};
use crate::core::http::{ErrorKind, Response, backoff_delay, parse_retry_after};

/// Delivers `record` or gives it up; returns early (entry left in the store) when the
/// outbox is dropped or its pool is gone.
pub(super) async fn deliver(inner: Arc<Inner>, record: EntryRecord) {
    let Some(method) = record_method(&record) else {
        let why = format!(
            "the stored method '{}' is not an HTTP method netkit sends",
            record.method
        );
        let response = Response::failed(ErrorKind::InvalidRequest, why.clone(), &record.url);
        return give_up(&inner, record, response, why, 0).await;
    };
    let mut attempts: u32 = 0;
    // Attempts of this entry given up as hung in this run: each doubles the next deadline.
    let mut hung: u32 = 0;
    let mut last: Option<Response> = None;
    loop {
        if now_ms() >= record.expires_ms {
            let age = record.expires_ms.saturating_sub(record.created_ms) as f64 / 1000.0;
            let before = last.as_ref().map_or_else(
                || "no attempt was made in this run".to_string(),
                |r| format!("the last attempt ended with: {}", r.error_message),
            );
            let why = format!(
                "it was not delivered within its max age ({age:.0} s, outbox_max_age) after {attempts} attempts in this run; {before}"
            );
            let mut response = last.take().unwrap_or_else(|| {
                Response::failed(ErrorKind::Timeout, String::new(), &record.url)
            });
            response.error_message = why.clone();
            if response.error == ErrorKind::None {
                response.error = ErrorKind::Timeout;
            }
            return give_up(&inner, record, response, why, attempts).await;
        }
        let permit = tokio::select! {
            biased;
            _ = inner.cancel.cancelled() => return,
            permit = inner.permits.acquire() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let id = record.id;
        let body = match inner.blocking(move |s| s.body(id)).await {
            Ok(body) => body.unwrap_or_default(),
            Err(e) => {
                drop(permit);
                inner.report_store_error(format!(
                    "{e}; entry {id} stays pending and is tried again"
                ));
                attempts += 1;
                if !pause(&inner, &record, attempts, None).await {
                    return;
                }
                continue;
            }
        };
        let spec = inner.spec_for(&record, method, body);
        let Some(timeout) = inner.source.timeout() else {
            return;
        };
        let sent = Instant::now();
        // In a block of its own: a given-up attempt's future (and its connection) is
        // dropped at once, not after the backoff below.
        let response = {
            let attempt = inner.source.attempt(&spec);
            tokio::pin!(attempt);
            // The deadline is looked at again every MIN_DEADLINE, since answers of other
            // attempts move it (before the first answers it is the pool's whole timeout). Past
            // it the attempt's future is dropped, which closes its connection.
            loop {
                let deadline = lock(&inner.answer_times).deadline(timeout, hung);
                let left = deadline.saturating_sub(sent.elapsed());
                if left.is_zero() {
                    hung += 1;
                    inner.hung.fetch_add(1, Ordering::Relaxed);
                    let why = hung_message(&spec.url, deadline);
                    break Response::failed(ErrorKind::Timeout, why, &spec.url);
                }
                tokio::select! {
                    biased;
                    _ = inner.cancel.cancelled() => return,
                    response = &mut attempt => match response {
                        Some(response) => {
                            if response.status != 0 {
                                lock(&inner.answer_times).answered(sent.elapsed());
                            }
                            break response;
                        }
                        None => return,
                    },
                    _ = tokio::time::sleep(left.min(MIN_DEADLINE)) => {}
                }
            }
        };
        drop(permit);
        attempts += 1;
        inner.attempts.fetch_add(1, Ordering::Relaxed);
        match verdict(&response) {
            Verdict::Delivered => return delivered(&inner, record, response).await,
            Verdict::Refused(why) => return give_up(&inner, record, response, why, attempts).await,
            Verdict::Retry => {}
        }
        let asked = response
            .header("retry-after")
            .and_then(|v| parse_retry_after(&v, SystemTime::now()));
        last = Some(response);
        if !pause(&inner, &record, attempts, asked).await {
            return;
        }
    }
}

/// The sentence of an attempt given up as hung.
fn hung_message(url: &str, deadline: Duration) -> String {
    format!(
        "no answer from {url} within {:.2} s, the outbox's deadline for a hung call ({} times the slowest recent answer, at least {:.2} s, at most the pool's timeout); the attempt was given up to free its delivery slot and the save is sent again with the same Idempotency-Key",
        deadline.as_secs_f64(),
        super::deadline::FACTOR,
        super::deadline::MIN_DEADLINE.as_secs_f64()
    )
}

/// Waits before the next attempt, never past the entry's max age; false when cancelled.
async fn pause(
    inner: &Inner,
    record: &EntryRecord,
    attempts: u32,
    asked: Option<Duration>,
) -> bool {
    let Some(policy) = inner.source.backoff() else {
        return false;
    };
    // A `Retry-After` is honoured up to retry_max_delay, the cap the pool documents for it:
    // a backend asking for a day (or a year) would otherwise park the save until its max
    // age and dead-letter it after a single attempt.
    let wait = asked.map_or_else(
        || backoff_delay(&policy, attempts),
        |asked| asked.min(policy.max_delay),
    );
    let left = Duration::from_millis(record.expires_ms.saturating_sub(now_ms()));
    tokio::select! {
        biased;
        _ = inner.cancel.cancelled() => false,
        _ = tokio::time::sleep(wait.min(left)) => true,
    }
}

/// The backend has it: out of the store, then tell the owner.
async fn delivered(inner: &Arc<Inner>, record: EntryRecord, response: Response) {
    let id = record.id;
    if let Err(e) = inner.blocking(move |s| s.remove(id)).await {
        inner.report_store_error(format!(
            "{e}; entry {id} was delivered but stays in the store, so it is sent again (with the same Idempotency-Key) when the store is next opened"
        ));
    }
    lock(&inner.secrets).remove(&id);
    inner.pending.fetch_sub(1, Ordering::AcqRel);
    inner.delivered.fetch_add(1, Ordering::Relaxed);
    inner.events.send(OutboxEvent::Delivered {
        entry: id,
        response,
    });
}

/// Refused for good or too old: into the dead letters, then tell the owner.
async fn give_up(
    inner: &Arc<Inner>,
    record: EntryRecord,
    mut response: Response,
    reason: String,
    attempts: u32,
) {
    let id = record.id;
    let dead = DeadRecord {
        entry: record,
        status: response.status,
        error: response.error.code(),
        reason: reason.clone(),
        attempts,
        dead_ms: now_ms(),
    };
    let keep = response.body.len().min(super::DEAD_LETTER_ANSWER_BYTES);
    let answer = response.body.slice(..keep);
    match inner.blocking(move |s| s.dead_letter(&dead, &answer)).await {
        Ok(()) => {
            inner.dead_letters.fetch_add(1, Ordering::AcqRel);
        }
        Err(e) => inner.report_store_error(format!(
            "{e}; entry {id} could not be moved to the dead letters and stays pending until the store is next opened"
        )),
    }
    lock(&inner.secrets).remove(&id);
    inner.pending.fetch_sub(1, Ordering::AcqRel);
    response.error_message = format!("the durable request was given up: {reason}");
    inner.events.send(OutboxEvent::DeadLettered {
        entry: id,
        response,
    });
}
