//! A backend that honours `Idempotency-Key`, for the durable outbox tests. State lives in
//! named buckets (one per test, so tests sharing a server never mix), process-wide.
//!
//! - `/outbox/save?bucket=B` (any method): needs an `Idempotency-Key` header (else 400).
//!   While B's mode is a failure code, answers that code (with `Retry-After` when set) and
//!   counts a refusal. Otherwise the first request with a key applies it (200
//!   `{"key","replayed":false}`); a later one with the same key is a duplicate, answered 200
//!   `{"key","replayed":true}` without applying it again.
//! - `/outbox/mode?bucket=B&code=C[&retry_after=S]`: from now on `/outbox/save` in B answers
//!   C (`code=0`: accepts). `{"bucket","code"}`.
//! - [`set_slow`]: B applies each save at once but answers it only after a delay (a
//!   backend whose 2xx arrives after the client gave up waiting).
//! - [`set_hang`]: B applies every Nth save and never answers it (a backend that reads a
//!   call and hangs); the call is held until the client closes its connection.
//! - `/outbox/report?bucket=B`: `{"applied":{key:1,...},"duplicates":N,"refused":N,
//!   "authorization":[values seen, in order],"bodies":{key:text},"hung":N,"hanging":N,
//!   "applied_while_hanging":N}`: calls left unanswered so far, those the client has not
//!   closed yet, and saves applied (the first time) while at least one hung call was open.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use super::body::{Res, error, json};
use super::query::Query;

/// Largest body `/outbox/save` reads.
const SAVE_LIMIT: usize = 1024 * 1024;

/// One test's backend.
#[derive(Default)]
struct Bucket {
    code: u16,
    retry_after: Option<u64>,
    applied: BTreeMap<String, u64>,
    bodies: BTreeMap<String, String>,
    duplicates: u64,
    refused: u64,
    authorization: Vec<String>,
    slow_ms: u64,
    /// Every `hang_every`th save is applied and never answered (0: none).
    hang_every: u64,
    saves: u64,
    hung: u64,
    hanging: u64,
    applied_while_hanging: u64,
}

static BUCKETS: Mutex<Option<HashMap<String, Bucket>>> = Mutex::new(None);

fn buckets() -> MutexGuard<'static, Option<HashMap<String, Bucket>>> {
    BUCKETS.lock().unwrap_or_else(|p| p.into_inner())
}

fn with_bucket<T>(name: &str, f: impl FnOnce(&mut Bucket) -> T) -> T {
    let mut guard = buckets();
    let map = guard.get_or_insert_with(HashMap::new);
    f(map.entry(name.to_string()).or_default())
}

/// Sets bucket `name` to answer `code` (0: accept) from now on.
pub fn set_mode(name: &str, code: u16, retry_after: Option<u64>) {
    with_bucket(name, |b| {
        b.code = code;
        b.retry_after = retry_after;
    });
}

/// Makes bucket `name` answer each save `ms` milliseconds after applying it.
pub fn set_slow(name: &str, ms: u64) {
    with_bucket(name, |b| b.slow_ms = ms);
}

/// Makes bucket `name` apply every `every`th save and never answer it (0: answer all).
pub fn set_hang(name: &str, every: u64) {
    with_bucket(name, |b| b.hang_every = every);
}

/// One hung call of a bucket while its future lives (until the client closes the
/// connection and the server drops the request).
struct Hanging(String);

impl Drop for Hanging {
    fn drop(&mut self) {
        with_bucket(&self.0, |b| b.hanging -= 1);
    }
}

/// What bucket `name` has seen (the `/outbox/report` document).
pub fn report(name: &str) -> Value {
    with_bucket(name, |b| {
        json!({
            "applied": b.applied,
            "duplicates": b.duplicates,
            "refused": b.refused,
            "authorization": b.authorization,
            "bodies": b.bodies,
            "hung": b.hung,
            "hanging": b.hanging,
            "applied_while_hanging": b.applied_while_hanging,
        })
    })
}

/// Serves `/outbox/...`.
pub async fn handle(req: Request<Incoming>, path: &str, query: &Query) -> Result<Res, String> {
    let bucket = query
        .get("bucket")
        .ok_or("/outbox/* needs bucket=B")?
        .to_string();
    match path {
        "/outbox/mode" => {
            let code = query.number_or("code", 0, 599)? as u16;
            let retry_after = query.number("retry_after")?;
            set_mode(&bucket, code, retry_after);
            Ok(json(
                StatusCode::OK,
                &json!({ "bucket": bucket, "code": code }),
            ))
        }
        "/outbox/report" => Ok(json(StatusCode::OK, &report(&bucket))),
        "/outbox/save" => save(req, &bucket).await,
        _ => Ok(error(StatusCode::NOT_FOUND, "no such outbox endpoint")),
    }
}

async fn save(req: Request<Incoming>, bucket: &str) -> Result<Res, String> {
    let (parts, incoming) = req.into_parts();
    let Some(key) = parts
        .headers
        .get("idempotency-key")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    else {
        return Ok(error(StatusCode::BAD_REQUEST, "no Idempotency-Key header"));
    };
    let body = match Limited::new(incoming, SAVE_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, "body too large")),
    };
    let auth = parts
        .headers
        .get(AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (answer, slow_ms, hang) = with_bucket(bucket, |b| {
        b.saves += 1;
        let hang = b.hang_every > 0 && b.saves % b.hang_every == 0;
        let answer = answer(b, key, auth, &body);
        if hang {
            b.hung += 1;
            b.hanging += 1;
        }
        (answer, b.slow_ms, hang)
    });
    if hang {
        let _held = Hanging(bucket.to_string());
        std::future::pending::<()>().await;
    }
    if slow_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow_ms)).await;
    }
    answer
}

/// Applies (or refuses, or recognises) one save in bucket `b`.
fn answer(b: &mut Bucket, key: String, auth: Option<String>, body: &[u8]) -> Result<Res, String> {
    {
        if let Some(auth) = auth {
            b.authorization.push(auth);
        }
        if b.code != 0 {
            b.refused += 1;
            let status = StatusCode::from_u16(b.code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut res = json(status, &json!({ "refused": b.code }));
            if let Some(secs) = b.retry_after {
                res.headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            return Ok(res);
        }
        if b.applied.contains_key(&key) {
            b.duplicates += 1;
            return Ok(json(
                StatusCode::OK,
                &json!({ "key": key, "replayed": true }),
            ));
        }
        b.applied.insert(key.clone(), 1);
        if b.hanging > 0 {
            b.applied_while_hanging += 1;
        }
        b.bodies
            .insert(key.clone(), String::from_utf8_lossy(body).into_owned());
        Ok(json(
            StatusCode::OK,
            &json!({ "key": key, "replayed": false }),
        ))
    }
}
