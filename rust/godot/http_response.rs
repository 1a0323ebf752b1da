//! `HTTPResponse`: how a request ended, as GDScript reads it.

use std::cell::OnceCell;

use godot::prelude::*;

use super::json_variant::json_to_variant;
use crate::core::http::{ErrorKind, Response};

/// The result of an [HTTPPool] request. Every request produces exactly one, whether it
/// succeeded, got an HTTP error status, or failed (then [member error] says how and
/// [member error_message] says why in a sentence).
///
/// [member json] is parsed on a background thread and converted to Godot types the first
/// time it is read: integers stay [int], other numbers are [float].
#[derive(GodotClass)]
#[class(no_init, base = RefCounted, rename = HTTPResponse)]
pub struct HttpResponse {
    /// True for a 2xx status whose body arrived complete and, when JSON, parsed.
    #[var(no_set)]
    ok: bool,
    /// The HTTP status code, or 0 when no response arrived.
    #[var(no_set)]
    status: i64,
    /// One of the `ERR_*` constants; [constant ERR_NONE] when [member ok] is true.
    #[var(no_set)]
    error: i64,
    /// A sentence explaining [member error]; empty on success.
    // Converted on first read, like the body: most games never read it on success.
    #[allow(dead_code)]
    #[var(get = get_error_message, no_set)]
    error_message: GString,
    /// Attempts made: 1 for a first-try success, more after retries, 0 if never sent.
    #[var(no_set)]
    attempts: i64,
    /// The final URL, after redirects.
    // Converted on first read, like the body: most games never read it on success.
    #[allow(dead_code)]
    #[var(get = get_url, no_set)]
    url: GString,
    /// "HTTP/1.1" or "HTTP/2" (empty when no response arrived).
    // Converted on first read, like the body: most games never read it on success.
    #[allow(dead_code)]
    #[var(get = get_http_version, no_set)]
    http_version: GString,
    /// Milliseconds from leaving the queue to the end, retries included.
    #[var(no_set)]
    elapsed_ms: f64,
    /// The id of the [HTTPTask] this answers.
    #[var(no_set)]
    task_id: i64,
    /// The parsed JSON body (Dictionary, Array, ...) or null when the body is not JSON.
    #[var(get = get_json, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    json: Variant,
    /// The body as text; invalid UTF-8 is replaced, never an error.
    #[var(get = get_text, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    text: GString,
    /// The raw body bytes (decompressed).
    #[var(get = get_body, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    body: PackedByteArray,
    /// Response headers, names lowercased. A field that came more than once has its values
    /// joined with ", " in arrival order (RFC 9110 section 5.3), as `get_header()` gives them.
    #[var(get = get_headers, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    headers: VarDictionary,
    inner: Response,
    json_cache: OnceCell<Variant>,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpResponse {
    /// The request succeeded.
    #[constant]
    const ERR_NONE: i32 = ErrorKind::None as i32;
    /// The URL could not be parsed, or is not http/https.
    #[constant]
    const ERR_INVALID_URL: i32 = ErrorKind::InvalidUrl as i32;
    /// No connection could be made (refused, unreachable, name not resolved).
    #[constant]
    const ERR_CONNECT: i32 = ErrorKind::Connect as i32;
    /// The TLS handshake failed, usually an untrusted certificate (see [member HTTPPool.trusted_ca_pem]).
    #[constant]
    const ERR_TLS: i32 = ErrorKind::Tls as i32;
    /// An attempt took longer than [member HTTPPool.timeout].
    #[constant]
    const ERR_TIMEOUT: i32 = ErrorKind::Timeout as i32;
    /// The connection broke after the request was sent; [member body] holds what arrived.
    #[constant]
    const ERR_CONNECTION_LOST: i32 = ErrorKind::ConnectionLost as i32;
    /// The body exceeded [member HTTPPool.max_body_bytes].
    #[constant]
    const ERR_BODY_TOO_LARGE: i32 = ErrorKind::BodyTooLarge as i32;
    /// The body could not be decoded (invalid JSON, broken compression); [member body] is kept.
    #[constant]
    const ERR_DECODE: i32 = ErrorKind::Decode as i32;
    /// More redirects than [member HTTPPool.max_redirects].
    #[constant]
    const ERR_TOO_MANY_REDIRECTS: i32 = ErrorKind::TooManyRedirects as i32;
    /// Cancelled by [method HTTPTask.cancel], [method HTTPPool.cancel_all] or the pool leaving the tree.
    #[constant]
    const ERR_CANCELLED: i32 = ErrorKind::Cancelled as i32;
    /// [member HTTPPool.max_queued] requests were already waiting.
    #[constant]
    const ERR_QUEUE_FULL: i32 = ErrorKind::QueueFull as i32;
    /// The server answered with a status outside 200-299; [member body] and [member json] are kept.
    #[constant]
    const ERR_HTTP_STATUS: i32 = ErrorKind::HttpStatus as i32;
    /// The request could not be built (unsupported body type, bad header, bad method).
    #[constant]
    const ERR_INVALID_REQUEST: i32 = ErrorKind::InvalidRequest as i32;
    /// The response's header section is larger than the pool accepts: more than 512 fields
    /// or more than 408 KiB (status line and fields). It is not read; `error_message` says so.
    #[constant]
    const ERR_HEADERS_TOO_LARGE: i32 = ErrorKind::HeadersTooLarge as i32;

    /// Returns the sentence explaining [member error].
    #[func]
    pub fn get_error_message(&self) -> GString {
        GString::from(self.inner.error_message.as_str())
    }

    /// Returns the final URL, after redirects.
    #[func]
    pub fn get_url(&self) -> GString {
        GString::from(self.inner.url.as_str())
    }

    /// Returns "HTTP/1.1" or "HTTP/2" (empty when no response arrived).
    #[func]
    pub fn get_http_version(&self) -> GString {
        GString::from(self.inner.http_version.as_str())
    }

    /// Returns the parsed JSON body, converting it on first read.
    #[func]
    pub fn get_json(&self) -> Variant {
        self.json_cache
            .get_or_init(|| {
                self.inner
                    .json
                    .as_ref()
                    .map(json_to_variant)
                    .unwrap_or_default()
            })
            .clone()
    }

    /// Returns the body decoded as UTF-8, with invalid bytes replaced.
    #[func]
    pub fn get_text(&self) -> GString {
        GString::from(self.inner.text().as_str())
    }

    /// Returns the raw body.
    #[func]
    pub fn get_body(&self) -> PackedByteArray {
        PackedByteArray::from(self.inner.body.as_ref())
    }

    /// Returns the headers as a Dictionary of lowercased name to value; a repeated field's
    /// values are joined with ", " in arrival order.
    #[func]
    pub fn get_headers(&self) -> VarDictionary {
        let mut dict = VarDictionary::new();
        for (name, _) in &self.inner.headers {
            let key = GString::from(name.as_str()).to_variant();
            if dict.contains_key(&key) {
                continue;
            }
            let value = self.inner.header(name).unwrap_or_default();
            dict.set(&key, &GString::from(value.as_ref()).to_variant());
        }
        dict
    }

    /// Returns one header's value (name case-insensitive), or `default` when absent. A
    /// field that came more than once gives all its values joined with ", " in arrival
    /// order (RFC 9110 section 5.3), the same text as `headers[name]`.
    #[func]
    pub fn get_header(&self, name: GString, #[opt(default = "")] default: GString) -> GString {
        self.inner
            .header(&name.to_string())
            .map(|v| GString::from(v.as_ref()))
            .unwrap_or(default)
    }

    /// Returns the name of an `ERR_*` value, e.g. "ERR_TIMEOUT", for logs.
    #[func]
    pub fn get_error_name(&self) -> GString {
        let kind = ErrorKind::ALL
            .iter()
            .find(|k| k.code() as i64 == self.error)
            .copied()
            .unwrap_or(ErrorKind::None);
        GString::from(kind.constant_name())
    }
}

impl HttpResponse {
    /// Wraps a core response; cheap, since bodies and JSON convert lazily.
    pub fn from_core(task_id: u64, inner: Response) -> Gd<HttpResponse> {
        Gd::from_init_fn(|base| HttpResponse {
            ok: inner.ok(),
            status: i64::from(inner.status),
            error: i64::from(inner.error.code()),
            error_message: GString::new(),
            attempts: i64::from(inner.attempts),
            url: GString::new(),
            http_version: GString::new(),
            elapsed_ms: inner.elapsed.as_secs_f64() * 1000.0,
            task_id: task_id as i64,
            json: Variant::nil(),
            text: GString::new(),
            body: PackedByteArray::new(),
            headers: VarDictionary::new(),
            inner,
            json_cache: OnceCell::new(),
            base,
        })
    }
}
