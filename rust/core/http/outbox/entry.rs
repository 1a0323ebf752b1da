//! What the outbox writes to disk for one durable request, and what it decides about each
//! answer: delivered, refused for good (a dead letter), or try again.
//!
//! An entry holds the method, URL, the request's own headers (credential headers excluded),
//! body kind, creation and expiry times (Unix ms: ages survive restarts, so wall clock),
//! and the `Idempotency-Key`: a UUID v4 made once (or the caller's own `Idempotency-Key`
//! header), stored, and sent with every attempt in every run. A 2xx delivers (even with an
//! unusable body: the backend accepted it); a 4xx other than 408 and 429, a final 3xx, or
//! an unusable URL or header is final (a dead letter); everything else is tried again.

use serde::{Deserialize, Serialize};

use super::super::error::ErrorKind;
use super::super::request::{Method, RequestBody};
use super::super::response::Response;
use super::super::retry::is_retryable_status;

/// Headers that carry credentials. They are never written to the store: a request sent
/// again after a restart gets them from the pool's `default_headers` at send time.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// The header that makes a repeated delivery harmless at a backend that honours it.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// One durable request as stored, without its body (kept apart so listing entries does
/// not read every body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryRecord {
    /// The entry's id in its store; ids are never reused.
    pub id: u64,
    /// The `Idempotency-Key` sent with every attempt of this entry.
    pub key: String,
    /// The method name, e.g. `POST`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The request's own headers, credentials and `Idempotency-Key` left out.
    pub headers: Vec<(String, String)>,
    /// `empty`, `json`, `text` or `binary`: how the body was given, for its Content-Type.
    pub body_kind: String,
    /// When it was made, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it is given up unless delivered, milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// An entry the backend refused for good, or that outlived its max age.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadRecord {
    /// The entry as it was stored.
    pub entry: EntryRecord,
    /// The last HTTP status, 0 when no answer arrived.
    pub status: u16,
    /// The last error kind's code (`HTTPResponse.Error`).
    pub error: i32,
    /// Why it was given up, a sentence.
    pub reason: String,
    /// Attempts made in the run that gave it up.
    pub attempts: u32,
    /// When it was given up, milliseconds since the Unix epoch.
    pub dead_ms: u64,
}

/// What one answer means for a durable entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the backend has it; the entry leaves the store.
    Delivered,
    /// A status or error that repeating cannot fix: the entry becomes a dead letter.
    Refused(String),
    /// Anything that may pass later: network errors, timeouts, 5xx, 408, 429.
    Retry,
}

/// Decides from one attempt's response. A 2xx counts as delivered even when its body was
/// unusable (too large, bad JSON): the backend accepted the request, and sending it again
/// would not change its answer.
pub fn verdict(response: &Response) -> Verdict {
    let status = response.status;
    if (200..300).contains(&status) {
        return Verdict::Delivered;
    }
    if status != 0 {
        if is_retryable_status(status) || status >= 500 {
            return Verdict::Retry;
        }
        // The response's own sentence names the status ("the server answered 400 Bad
        // Request"), so it is not named again here.
        let said = if response.error_message.is_empty() {
            format!("the server answered {status}")
        } else {
            response.error_message.clone()
        };
        return Verdict::Refused(format!(
            "the backend refused it for good (a 4xx other than 408 or 429, or a redirect that was not followed, is final): {said}"
        ));
    }
    match response.error {
        ErrorKind::InvalidUrl | ErrorKind::InvalidRequest => {
            Verdict::Refused(format!("it cannot be sent: {}", response.error_message))
        }
        // Connect, TLS (a certificate may be fixed by trusted_ca_pem), timeouts, broken
        // connections and too many redirects may all pass on a later attempt.
        _ => Verdict::Retry,
    }
}

/// True for a header the store must not keep.
pub fn is_credential(name: &str) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|c| c.eq_ignore_ascii_case(name))
}

/// The stored form of a body's kind.
pub fn body_kind(body: &RequestBody) -> &'static str {
    match body {
        RequestBody::Empty => "empty",
        RequestBody::Json(_) => "json",
        RequestBody::Text(_) => "text",
        RequestBody::Binary(_) => "binary",
    }
}

/// Rebuilds a body from its stored kind and bytes.
pub fn body_from(kind: &str, bytes: Vec<u8>) -> RequestBody {
    let bytes = bytes::Bytes::from(bytes);
    match kind {
        "json" => RequestBody::Json(bytes),
        "text" => RequestBody::Text(bytes),
        "binary" => RequestBody::Binary(bytes),
        _ if bytes.is_empty() => RequestBody::Empty,
        _ => RequestBody::Binary(bytes),
    }
}

/// The method's name as stored.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Connect => "CONNECT",
        Method::Patch => "PATCH",
    }
}

/// The method from its stored name; `None` for a name netkit never writes.
pub fn method_from(name: &str) -> Option<Method> {
    Some(match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "CONNECT" => Method::Connect,
        "PATCH" => Method::Patch,
        _ => return None,
    })
}

/// Milliseconds since the Unix epoch: entry ages survive restarts, so they use the wall
/// clock, not `Instant`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> Response {
        let mut r = Response::failed(ErrorKind::HttpStatus, "the server answered", "http://x/");
        r.status = status;
        if (200..300).contains(&status) {
            r.error = ErrorKind::None;
        }
        r
    }

    #[test]
    fn statuses_decide() {
        assert_eq!(verdict(&answered(200)), Verdict::Delivered);
        assert_eq!(verdict(&answered(204)), Verdict::Delivered);
        for retry in [408, 429, 500, 502, 503, 504, 507] {
            assert_eq!(verdict(&answered(retry)), Verdict::Retry, "{retry}");
        }
        for refused in [400, 401, 403, 404, 409, 422, 304] {
            assert!(
                matches!(verdict(&answered(refused)), Verdict::Refused(_)),
                "{refused}"
            );
        }
        let mut bad = Response::failed(
            ErrorKind::HttpStatus,
            "the server answered 400 Bad Request",
            "http://x/",
        );
        bad.status = 400;
        let Verdict::Refused(why) = verdict(&bad) else {
            panic!("a 400 is final")
        };
        assert_eq!(why.matches("400").count(), 1, "the status once: {why}");
        assert!(
            why.ends_with("the server answered 400 Bad Request"),
            "{why}"
        );
        let refused = Response::failed(ErrorKind::Connect, "refused", "http://x/");
        assert_eq!(verdict(&refused), Verdict::Retry);
        let bad = Response::failed(ErrorKind::InvalidUrl, "bad", "x");
        assert!(matches!(verdict(&bad), Verdict::Refused(_)));
    }

    #[test]
    fn credentials_are_recognised_in_any_case() {
        assert!(is_credential("Authorization"));
        assert!(is_credential("COOKIE"));
        assert!(is_credential("proxy-authorization"));
        assert!(!is_credential("Content-Type"));
    }

    #[test]
    fn methods_round_trip() {
        for value in 0..9 {
            let m = Method::from_godot(value).unwrap();
            assert_eq!(method_from(method_name(m)), Some(m));
        }
    }
}
