//! The outcome of a request as plain data, built on a worker thread.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::error::ErrorKind;

/// How a request ended. Exactly one is produced per request, success or not.
#[derive(Clone, Debug)]
pub struct Response {
    /// The HTTP status, or 0 when no response arrived.
    pub status: u16,
    /// Response headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as received (decompressed); kept on errors where one arrived.
    pub body: Bytes,
    /// The body parsed as JSON when the server said it is JSON (or it looks like JSON).
    pub json: Option<Value>,
    /// `ErrorKind::None` on a 2xx with a usable body.
    pub error: ErrorKind,
    /// A sentence a developer can act on; empty on success.
    pub error_message: String,
    /// Attempts made, 1 for a first-try success, 0 when the request never started.
    pub attempts: u32,
    /// The final URL, after redirects.
    pub url: String,
    /// "HTTP/1.1", "HTTP/2" or empty.
    pub http_version: String,
    /// Time from the request leaving the queue to its end, retries included.
    pub elapsed: Duration,
}

impl Response {
    /// A response for a request that failed without an HTTP answer.
    pub fn failed(error: ErrorKind, message: impl Into<String>, url: &str) -> Response {
        Response {
            status: 0,
            headers: Vec::new(),
            body: Bytes::new(),
            json: None,
            error,
            error_message: message.into(),
            attempts: 0,
            url: url.to_string(),
            http_version: String::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// True for a 2xx whose body was read and decoded.
    pub fn ok(&self) -> bool {
        self.error == ErrorKind::None
    }

    /// The value of a header, case-insensitively. A field that came more than once gives
    /// its values joined with ", " in arrival order, the combination RFC 9110 section 5.3
    /// defines; `HTTPResponse.get_header()` and `headers` follow the same rule.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        let mut values = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next()?;
        match values.next() {
            None => Some(Cow::Borrowed(first)),
            Some(second) => {
                let mut joined = format!("{first}, {second}");
                for more in values {
                    joined.push_str(", ");
                    joined.push_str(more);
                }
                Some(Cow::Owned(joined))
            }
        }
    }

    /// The body as text; invalid UTF-8 becomes U+FFFD rather than an error.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
