//! Runs one request to its end on a worker thread: attempts, retries, body streaming under
//! the size limit, JSON parsing, and turning every failure into an [`ErrorKind`].

use std::error::Error as _;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use super::error::ErrorKind;
use super::json::{claims_json, parse_json, wants_json};
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
}

/// Retries counted across the pool (for stats).
pub(crate) trait RetryCounter: Send + Sync {
    fn on_retry(&self);
}

/// Runs `spec` with retries and returns exactly one response.
pub(crate) async fn execute(
    client: &reqwest::Client,
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
        let mut response =
            match tokio::time::timeout(limits.timeout, attempt_once(client, spec, limits)).await {
                Ok(response) => response,
                Err(_) => Response::failed(
                    ErrorKind::Timeout,
                    format!(
                        "no complete answer from {} within {:.1} s (the pool's timeout)",
                        spec.url,
                        limits.timeout.as_secs_f64()
                    ),
                    &spec.url,
                ),
            };
        response.attempts = attempt;
        response.elapsed = started.elapsed();

        let retryable = match response.error {
            ErrorKind::Connect | ErrorKind::Timeout => true,
            ErrorKind::HttpStatus => is_retryable_status(response.status),
            _ => false,
        };
        if !retryable || attempt > policy.max_retries || !idempotent {
            if retryable && !idempotent && attempt == 1 && policy.max_retries > 0 {
                response.error_message.push_str(
                    " (not retried: the method is not idempotent; add an Idempotency-Key header to allow retries)",
                );
            }
            return response;
        }
        let wait = match response
            .header("retry-after")
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
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
        counter.on_retry();
        tokio::time::sleep(wait).await;
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    spec: &RequestSpec,
    limits: AttemptLimits,
) -> Response {
    let mut builder = client.request(spec.method.as_reqwest(), spec.url.as_str());
    let mut has_content_type = false;
    for (name, value) in &spec.headers {
        has_content_type |= name.eq_ignore_ascii_case("content-type");
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(bytes) = spec.body.bytes() {
        if !has_content_type && let Some(ct) = spec.body.content_type() {
            builder = builder.header("content-type", ct);
        }
        builder = builder.body(bytes);
    }

    let mut reply = match builder.send().await {
        Ok(reply) => reply,
        Err(err) => {
            let (kind, message) = classify(&err, &spec.url);
            return Response::failed(kind, message, &spec.url);
        }
    };

    let status = reply.status().as_u16();
    let headers: Vec<(String, String)> = reply
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Bytes::new(),
        json: None,
        error: ErrorKind::None,
        error_message: String::new(),
        attempts: 0,
        url: reply.url().to_string(),
        http_version: version_name(reply.version()).to_string(),
        elapsed: Duration::ZERO,
    };

    if let Some(len) = reply.content_length()
        && len > limits.max_body_bytes
    {
        response.error = ErrorKind::BodyTooLarge;
        response.error_message = format!(
            "the body is {len} bytes, more than max_body_bytes ({}); it was not downloaded",
            limits.max_body_bytes
        );
        return response;
    }

    let mut body = BytesMut::new();
    loop {
        match reply.chunk().await {
            Ok(Some(chunk)) => {
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
                    return response;
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
                        spec.url,
                        chain(&err)
                    )
                } else {
                    format!(
                        "the connection to {} broke after {} bytes of the body: {}; `body` holds what arrived",
                        spec.url,
                        response.body.len(),
                        chain(&err)
                    )
                };
                return response;
            }
        }
    }
    response.body = body.freeze();

    let content_type = response.header("content-type").map(str::to_string);
    if !response.body.is_empty() && wants_json(content_type.as_deref(), &response.body) {
        match parse_json(&response.body) {
            Ok(value) => response.json = Some(value),
            Err(message) if claims_json(content_type.as_deref()) => {
                response.error = ErrorKind::Decode;
                response.error_message = format!("{message}; `body` and `text` hold what arrived");
                return response;
            }
            Err(_) => {}
        }
    }

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
    response
}

/// Maps a reqwest error to a kind and a sentence naming the URL and the root cause.
fn classify(err: &reqwest::Error, url: &str) -> (ErrorKind, String) {
    let cause = chain(err);
    if err.is_redirect() {
        return (
            ErrorKind::TooManyRedirects,
            format!("too many redirects from {url} (max_redirects): {cause}"),
        );
    }
    if err.is_builder() {
        return (
            ErrorKind::InvalidRequest,
            format!("the request to {url} could not be built: {cause}"),
        );
    }
    if is_tls(err) {
        return (
            ErrorKind::Tls,
            format!(
                "the TLS handshake with {url} failed: {cause}; for a self-signed development server set trusted_ca_pem"
            ),
        );
    }
    if err.is_timeout() {
        return (
            ErrorKind::Timeout,
            format!("connecting to {url} timed out (connect_timeout): {cause}"),
        );
    }
    if err.is_connect() {
        return (
            ErrorKind::Connect,
            format!("could not connect to {url}: {cause}"),
        );
    }
    (
        ErrorKind::ConnectionLost,
        format!("the connection to {url} failed: {cause}"),
    )
}

/// True when a body error came from the connection (hyper), not from decompression.
fn is_transport(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>().is_some()
            || e.downcast_ref::<std::io::Error>().is_some()
        {
            return true;
        }
        source = e.source();
    }
    false
}

fn is_tls(err: &reqwest::Error) -> bool {
    // rustls errors travel inside io::Error and boxed connector errors; their text is the
    // stable part ("invalid peer certificate", "received fatal alert").
    let text = chain(err).to_ascii_lowercase();
    if text.contains("peer certificate")
        || text.contains("fatal alert")
        || text.contains("tls handshake")
    {
        return true;
    }
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The error and its causes in one line, deduplicated (hyper and reqwest repeat themselves).
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
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
