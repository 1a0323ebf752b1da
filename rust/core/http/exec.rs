//! Runs one request to its end on a worker thread: attempts, retries, redirects, body
//! streaming under the size limit and the deadline, JSON parsing, and turning every
//! failure into an [`ErrorKind`].
//!
//! Bodies: `max_body_bytes` is checked against `Content-Length` before reading and again
//! while streaming; on overflow the bytes read so far are kept. A connection reset mid-body
//! gives `ERR_CONNECTION_LOST` with the partial body; the timeout running out mid-body
//! gives `ERR_TIMEOUT` with the status, headers and partial body (the timeout is a deadline
//! checked around each read, not a wrapper that drops the attempt). Invalid JSON gives
//! `ERR_DECODE` with the body kept; a non-2xx status gives `ERR_HTTP_STATUS` with body and
//! JSON kept. Response heads beyond `client::MAX_RESPONSE_HEADERS` fields or
//! `client::MAX_RESPONSE_HEAD_BYTES` give `ERR_HEADERS_TOO_LARGE`; a repeated field is one
//! value joined with ", " in arrival order (RFC 9110 section 5.3).
//!
//! Stale keep-alive connections: a server closes an idle keep-alive connection on its own
//! timer (Node.js and Apache after 5 s), and a request sent just then is read by a dying
//! connection and never answered. A request whose connection ended (FIN or RST) before any
//! byte of a response arrived was not processed by the server's application, so an
//! idempotent one is sent again at once, without spending a retry, through
//! `Clients::fresh`, which keeps no idle connection and so certainly opens a new one; a
//! second failure of that kind is reported. A non-idempotent request is never sent twice
//! (its message says how to allow it). reqwest and hyper-util retry only requests that were
//! never written to the connection (hyper's "canceled" case on a reused connection, HTTP/2
//! REFUSED_STREAM and GOAWAY); this case, written and then dropped, they report as
//! "connection closed before message completed".

use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use tokio::time::{Instant as Deadline, timeout_at};
use url::Url;

use crate::core::simulate::{self, http::HttpFailure};

use super::classify::{
    chain, classify, closed_before_response, head_over_bound, head_too_large_message, is_transport,
};
use super::client::Clients;
use super::error::ErrorKind;
use super::json::{claims_json, parse_json, wants_json};
use super::redirect::{Hop, Next, next_hop};
use super::request::RequestSpec;
use super::response::Response;
use super::retry::{
    RetryPolicy, backoff_delay, is_idempotent, is_retryable_status, parse_retry_after,
};

/// What one attempt needs besides the request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttemptLimits {
    pub timeout: Duration,
    pub max_body_bytes: u64,
    pub max_redirects: usize,
    /// A redirect must resend the same method and body (the durable outbox: a 301, 302 or
    /// 303 that turns a POST into a GET would "deliver" a save the backend never got).
    pub keep_method: bool,
}

/// Counters kept across the pool (for stats).
pub(crate) trait RetryCounter: Send + Sync {
    /// A retry after backoff, spending one of `max_retries`.
    fn on_retry(&self);
    /// A request sent again at once on a new connection because a reused one was closing.
    fn on_stale_resend(&self);
}

/// How one attempt ended, and whether it failed the way a stale keep-alive connection fails.
struct Attempt {
    response: Response,
    closed_before_response: bool,
}

/// Runs `spec` with retries and returns exactly one response.
pub(crate) async fn execute(
    clients: &Clients,
    spec: &RequestSpec,
    limits: AttemptLimits,
    policy: RetryPolicy,
    counter: &dyn RetryCounter,
) -> Response {
    let started = Instant::now();
    let idempotent = is_idempotent(spec);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let first = simulated_attempt(clients, spec, limits).await;
        let stale = first.closed_before_response;
        let mut response = if stale && idempotent {
            // The connection ended before any byte of a response: on a connection reused
            // from the pool that is the server closing it as idle while our request was on
            // the way, and the request never reached its application. Send it again at once
            // on a connection that is certainly new; this spends no retry. A second failure
            // of the same kind is the server's own doing and is reported.
            counter.on_stale_resend();
            attempt_once(&clients.fresh, clients.own_ca, spec, limits)
                .await
                .response
        } else {
            first.response
        };
        response.attempts = attempt;
        response.elapsed = started.elapsed();

        let retryable = match response.error {
            ErrorKind::Connect | ErrorKind::Timeout => true,
            ErrorKind::HttpStatus => {
                is_retryable_status(response.status) && !(spec.final_500 && response.status == 500)
            }
            _ => false,
        };
        if !retryable || attempt > policy.max_retries || !idempotent {
            // A failure that was retried says for how long: "could not connect" alone
            // hides the half minute of retries before it.
            if retryable && (response.error == ErrorKind::Timeout || attempt > 1) {
                response
                    .error_message
                    .push_str(&gave_up_note(attempt, response.elapsed));
            }
            if !idempotent && stale {
                response.error_message.push_str(
                    " (not sent again: the method is not idempotent and the server may have received it; add an Idempotency-Key header to allow it)",
                );
            } else if retryable && !idempotent && attempt == 1 && policy.max_retries > 0 {
                response.error_message.push_str(
                    " (not retried: the method is not idempotent; add an Idempotency-Key header to allow retries)",
                );
            }
            return response;
        }
        let wait = match response
            .header("retry-after")
            .and_then(|v| parse_retry_after(&v, SystemTime::now()))
        {
            Some(wait) if wait > policy.max_delay => {
                response.error_message.push_str(&format!(
                    " (not retried: the server asked to wait {:.0} s, more than retry_max_delay)",
                    wait.as_secs_f64()
                ));
                return response;
            }
            Some(wait) => wait,
            None => backoff_delay(&policy, attempt),
        };
        if !policy.within_window(started.elapsed(), wait) {
            response
                .error_message
                .push_str(&gave_up_note(attempt, started.elapsed()));
            return response;
        }
        counter.on_retry();
        tokio::time::sleep(wait).await;
    }
}

/// One attempt under the simulated network conditions, if any apply (`core::simulate`):
/// delayed, or failed as a refused connection or a 503 that the retry policy then sees.
async fn simulated_attempt(
    clients: &Clients,
    spec: &RequestSpec,
    limits: AttemptLimits,
) -> Attempt {
    let upload = spec.body.bytes().map_or(0, |b| b.len());
    match simulated_start(clients, &spec.url, upload).await {
        Err(response) => done(response),
        Ok(sim) => {
            let pace = Simulated::body_pace(sim);
            let attempt =
                attempt_once_paced(&clients.pooled, clients.own_ca, spec, limits, pace).await;
            simulated_end(sim).await;
            attempt
        }
    }
}

/// The start of an attempt (a request's, a download's, a stream's connection) under the
/// simulated conditions: waits the outbound delay, then either fails the attempt as the
/// conditions decide (the response to end it with) or lets it go ahead, returning what
/// [`simulated_end`] waits once its answer is in. `Ok(None)` when nothing is simulated.
pub(crate) async fn simulated_start(
    clients: &Clients,
    url: &str,
    upload_bytes: usize,
) -> Result<Option<Simulated>, Response> {
    let Some(conditions) = simulate::effective(clients.simulate.as_ref()) else {
        return Ok(None);
    };
    let fate = match conditions.seed {
        Some(seed) => {
            simulate::with_seeded_rng(seed, |rng| simulate::http::judge_attempt(&conditions, rng))
        }
        None => simulate::http::judge_attempt(&conditions, &mut rand::rng()),
    };
    // A request body goes out through the outbound bandwidth before the answer can start.
    let upload = conditions.outbound.bandwidth.map_or(Duration::ZERO, |b| {
        simulate::http::transmit_time(upload_bytes as u64, b)
    });
    tokio::time::sleep(fate.before + upload).await;
    let Some(failure) = fate.failure else {
        return Ok(Some(Simulated {
            after: fate.after,
            body_bandwidth: conditions.inbound.bandwidth,
        }));
    };
    simulate::count_drop();
    let share = conditions.outbound.failure.max(conditions.inbound.failure) * 100.0;
    let mut response = Response::failed(ErrorKind::Connect, String::new(), url);
    match failure {
        HttpFailure::Refused => {
            response.error_message = format!(
                "could not connect to {url}: connection refused (simulated: network conditions with failure={share}%)"
            );
        }
        HttpFailure::Unavailable => {
            response.status = 503;
            response.error = ErrorKind::HttpStatus;
            response.error_message = format!(
                "{url} answered 503 Service Unavailable (simulated: network conditions with failure={share}%)"
            );
        }
    }
    Err(response)
}

/// What simulated conditions still do to an attempt under way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Simulated {
    /// Wait before the answer is delivered (`in:latency`).
    after: Duration,
    /// The answer's body arrives no faster than this (`in:bandwidth`), bits per second.
    pub body_bandwidth: Option<u64>,
}

impl Simulated {
    /// The pace of the answer's body, if it has one.
    pub fn body_pace(sim: Option<Self>) -> Option<simulate::http::BodyPace> {
        sim.and_then(|s| s.body_bandwidth)
            .map(|b| simulate::http::BodyPace::new(b, std::time::Instant::now()))
    }
}

/// Waits the inbound delay [`simulated_start`] returned, before the answer is delivered.
pub(crate) async fn simulated_end(sim: Option<Simulated>) {
    if let Some(sim) = sim {
        tokio::time::sleep(sim.after).await;
    }
}

/// Waits what a body's pace asks after `n` more bytes.
pub(crate) async fn pace_body(pace: &mut Option<simulate::http::BodyPace>, n: usize) {
    if let Some(pace) = pace {
        let wait = pace.wait_after(n, std::time::Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// What a request that ended on a timeout adds to its sentence: the per-attempt timeout
/// alone would hide that retries made the whole request take several times as long.
fn gave_up_note(attempts: u32, elapsed: Duration) -> String {
    let plural = if attempts == 1 { "" } else { "s" };
    format!(
        "; gave up after {attempts} attempt{plural}, {:.1} s in total",
        elapsed.as_secs_f64()
    )
}

/// The sentence for an attempt that ran out of time.
fn timeout_message(url: &str, limits: AttemptLimits, after: &str) -> String {
    format!(
        "no complete answer from {url} within {:.1} s (the pool's timeout){after}",
        limits.timeout.as_secs_f64()
    )
}

/// One attempt: the request and the redirects it leads to, under one deadline.
async fn attempt_once(
    client: &reqwest::Client,
    own_ca: bool,
    spec: &RequestSpec,
    limits: AttemptLimits,
) -> Attempt {
    attempt_once_paced(client, own_ca, spec, limits, None).await
}

/// [`attempt_once`] with the answer's body paced to simulated conditions.
async fn attempt_once_paced(
    client: &reqwest::Client,
    own_ca: bool,
    spec: &RequestSpec,
    limits: AttemptLimits,
    mut pace: Option<simulate::http::BodyPace>,
) -> Attempt {
    let deadline = Deadline::now() + limits.timeout;
    let failed = |kind, message: String, url: &str| Attempt {
        response: Response::failed(kind, message, url),
        closed_before_response: false,
    };
    let url = match Url::parse(&spec.url) {
        Ok(url) => url,
        Err(e) => {
            let message = format!("'{}' is not a valid URL: {e}", spec.url);
            return failed(ErrorKind::InvalidUrl, message, &spec.url);
        }
    };
    let mut hop = Hop {
        method: spec.method.as_reqwest(),
        url,
        headers: spec.headers.clone(),
        body: spec.body.bytes(),
    };
    let mut redirects = 0;
    let mut reply = loop {
        let url = hop.url.to_string();
        let reply = match timeout_at(deadline, send(client, &hop, spec)).await {
            Err(_) => {
                return failed(ErrorKind::Timeout, timeout_message(&url, limits, ""), &url);
            }
            Ok(Err(err)) => {
                let (kind, message) = classify(&err, &url, own_ca);
                let stale = kind == ErrorKind::ConnectionLost && closed_before_response(&err);
                let mut attempt = failed(kind, message, &url);
                attempt.closed_before_response = stale;
                return attempt;
            }
            Ok(Ok(reply)) => reply,
        };
        if head_over_bound(reply.headers()) {
            let mut attempt = done(head_of(&reply));
            attempt.response.error = ErrorKind::HeadersTooLarge;
            attempt.response.error_message = head_too_large_message(&url);
            return attempt;
        }
        if limits.max_redirects == 0 {
            break reply;
        }
        let location = reply
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        match next_hop(&hop, reply.status().as_u16(), location) {
            Next::Done => break reply,
            Next::Refused(why) => {
                let mut attempt = Attempt {
                    response: head_of(&reply),
                    closed_before_response: false,
                };
                attempt.response.error = ErrorKind::HttpStatus;
                attempt.response.error_message = format!("{why} (from {url})");
                return attempt;
            }
            Next::Follow(next) if limits.keep_method && next.method != hop.method => {
                let mut attempt = Attempt {
                    response: head_of(&reply),
                    closed_before_response: false,
                };
                attempt.response.error = ErrorKind::HttpStatus;
                attempt.response.error_message = format!(
                    "the server answered {} redirecting to {}, which would send this durable request again as a {} without its body; a durable request follows only 307 and 308 redirects (RFC 9110 section 15.4), so point it at the final URL (from {url})",
                    reply.status().as_u16(),
                    next.url,
                    next.method
                );
                return attempt;
            }
            Next::Follow(next) => {
                redirects += 1;
                if redirects > limits.max_redirects {
                    let message = format!(
                        "too many redirects from {} (more than max_redirects, {}); the last went to {}",
                        spec.url, limits.max_redirects, next.url
                    );
                    return failed(ErrorKind::TooManyRedirects, message, &url);
                }
                hop = next;
            }
        }
    };

    let mut response = head_of(&reply);
    if let Some(len) = reply.content_length()
        && len > limits.max_body_bytes
    {
        response.error = ErrorKind::BodyTooLarge;
        response.error_message = format!(
            "the body is {len} bytes, more than max_body_bytes ({}); it was not downloaded",
            limits.max_body_bytes
        );
        return done(response);
    }

    let mut body = BytesMut::new();
    loop {
        let chunk = match timeout_at(deadline, reply.chunk()).await {
            Ok(chunk) => chunk,
            Err(_) => {
                response.body = body.freeze();
                response.error = ErrorKind::Timeout;
                let after = format!(
                    " after {} bytes of the body; `status`, `headers` and `body` hold what arrived",
                    response.body.len()
                );
                response.error_message = timeout_message(&response.url, limits, &after);
                return done(response);
            }
        };
        match chunk {
            Ok(Some(chunk)) => {
                pace_body(&mut pace, chunk.len()).await;
                if body.len() as u64 + chunk.len() as u64 > limits.max_body_bytes {
                    let room = (limits.max_body_bytes as usize).saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..room.min(chunk.len())]);
                    response.body = body.freeze();
                    response.error = ErrorKind::BodyTooLarge;
                    response.error_message = format!(
                        "the body grew past max_body_bytes ({}); reading stopped there and `body` holds the first {} bytes",
                        limits.max_body_bytes,
                        response.body.len()
                    );
                    return done(response);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => {
                response.body = body.freeze();
                let decode = err.is_decode() && !is_transport(&err);
                response.error = if decode {
                    ErrorKind::Decode
                } else {
                    ErrorKind::ConnectionLost
                };
                response.error_message = if decode {
                    format!(
                        "the body from {} could not be decompressed: {}",
                        response.url,
                        chain(&err)
                    )
                } else {
                    format!(
                        "the connection to {} broke after {} bytes of the body: {}; `body` holds what arrived",
                        response.url,
                        response.body.len(),
                        chain(&err)
                    )
                };
                return done(response);
            }
        }
    }
    response.body = body.freeze();
    finish_body(&mut response);
    done(response)
}

fn done(response: Response) -> Attempt {
    Attempt {
        response,
        closed_before_response: false,
    }
}

/// Sends one hop. The body's own Content-Type is added unless a header sets one.
async fn send(
    client: &reqwest::Client,
    hop: &Hop,
    spec: &RequestSpec,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut builder = client.request(hop.method.clone(), hop.url.clone());
    let mut has_content_type = false;
    for (name, value) in &hop.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(bytes) = &hop.body {
        if !has_content_type && let Some(ct) = spec.body.content_type() {
            builder = builder.header("content-type", ct);
        }
        builder = builder.body(bytes.clone());
    }
    builder.send().await
}

/// The status line and headers of a reply, as a response without a body yet.
fn head_of(reply: &reqwest::Response) -> Response {
    let headers = reply
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Response {
        status: reply.status().as_u16(),
        headers,
        body: bytes::Bytes::new(),
        json: None,
        error: ErrorKind::None,
        error_message: String::new(),
        attempts: 0,
        url: reply.url().to_string(),
        http_version: version_name(reply.version()).to_string(),
        elapsed: Duration::ZERO,
    }
}

/// Parses JSON and turns a non-2xx status into an error, once the body is complete.
fn finish_body(response: &mut Response) {
    let content_type = response.header("content-type").map(|c| c.into_owned());
    if !response.body.is_empty() && wants_json(content_type.as_deref(), &response.body) {
        match parse_json(&response.body) {
            Ok(value) => response.json = Some(value),
            Err(message) if claims_json(content_type.as_deref()) => {
                response.error = ErrorKind::Decode;
                response.error_message = format!("{message}; `body` and `text` hold what arrived");
                return;
            }
            Err(_) => {}
        }
    }
    let status = response.status;
    if !(200..300).contains(&status) {
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        response.error = ErrorKind::HttpStatus;
        response.error_message = format!("the server answered {status} {reason}")
            .trim_end()
            .to_string();
    }
}

fn version_name(version: reqwest::Version) -> &'static str {
    match version {
        reqwest::Version::HTTP_09 => "HTTP/0.9",
        reqwest::Version::HTTP_10 => "HTTP/1.0",
        reqwest::Version::HTTP_11 => "HTTP/1.1",
        reqwest::Version::HTTP_2 => "HTTP/2",
        reqwest::Version::HTTP_3 => "HTTP/3",
        _ => "",
    }
}
