//! `HTTPResponse`: how a request ended, as GDScript reads it.

use std::cell::OnceCell;

use godot::prelude::*;

use super::class_enums::HttpError;
use super::json_variant::json_to_variant;
use crate::core::http::{ErrorKind, Response};

/// How one [HTTPPool] request ended: its status, body and headers, or an error and why.
///
/// Every request produces exactly one, whether it succeeded, got an HTTP error status or
/// failed without an answer. On success [member ok] is `true` and [member error] is
/// [constant ERR_NONE]; otherwise [member error] says how it failed (one of
/// [enum HTTPResponse.Error]) and [member error_message] says why, in a sentence to log or
/// act on.
///
/// ```gdscript
/// var res: HTTPResponse = await pool.fetch("/leaderboard").completed
/// if res.ok:
///     for row in res.json["rows"]:
///         print(row["name"], " ", row["score"])
/// elif res.error == HTTPResponse.ERR_HTTP_STATUS and res.status == 401:
///     show_login()
/// else:
///     push_warning("%s: %s" % [res.get_error_name(), res.error_message])
/// ```
///
/// The body is read and JSON is parsed on a background thread; [member json], [member text],
/// [member body] and [member headers] become Godot values the first time they are read, so
/// a body nobody reads costs the main thread nothing. JSON integers that fit a 64-bit [int]
/// stay [int] (Godot's [JSON] makes every number a [float]); other numbers become [float],
/// and objects keep the server's key order.
#[derive(GodotClass)]
#[class(no_init, base = RefCounted, rename = HTTPResponse)]
pub struct HttpResponse {
    /// `true` when the server answered with a 2xx status and the body arrived whole and, when
    /// it is JSON, parsed; the same as `error == ERR_NONE`.
    #[var(no_set)]
    ok: bool,
    /// The HTTP status code of the final response, after redirects (int, e.g. 200 or 404);
    /// 0 when no response arrived.
    ///
    /// An int rather than [enum HTTPClient.ResponseCode], because servers answer with codes
    /// that enum does not list.
    #[var(no_set)]
    status: i64,
    /// How the request failed: one of [enum HTTPResponse.Error]; [constant ERR_NONE] when
    /// [member ok] is `true`. [method get_error_name] gives its name, for logs.
    #[var(get = get_error, no_set)]
    error: HttpError,
    /// A sentence explaining [member error] that names the URL and the cause, e.g.
    /// `"no complete answer from https://api.example.com/scores within 30.0 s (the pool's timeout); gave up after 3 attempts, 92.4 s in total"`;
    /// empty on success.
    // Converted on first read, like the body: most games never read it on success.
    #[allow(dead_code)]
    #[var(get = get_error_message, no_set)]
    error_message: GString,
    /// Attempts made (int): 1 for a first-try success, more after retries (see
    /// [member HTTPPool.max_retries]), 0 when the request never reached the network (bad
    /// input, full queue, cancelled while queued).
    #[var(no_set)]
    attempts: i64,
    /// The final URL, after redirects; the requested URL when no response arrived.
    // Converted on first read, like the body: most games never read it on success.
    #[allow(dead_code)]
    #[var(get = get_url, no_set)]
    url: GString,
    /// The protocol of the final response, `"HTTP/1.1"` or `"HTTP/2"` (HTTP/2 when the server
    /// offers it over TLS); empty when no response arrived.
    // Converted on first read, like the body: most games never read it on success.
    #[allow(dead_code)]
    #[var(get = get_http_version, no_set)]
    http_version: GString,
    /// Milliseconds (float) from the request leaving the queue to its end, retries and the
    /// waits between them included; 0 when it never started.
    #[var(no_set)]
    elapsed_ms: f64,
    /// The [member HTTPTask.id] of the task this answers.
    #[var(no_set)]
    task_id: i64,
    /// The body parsed as JSON: a Dictionary, Array, String, int, float or bool; `null` when
    /// the body is empty or not JSON.
    ///
    /// A body is parsed when its `Content-Type` names JSON, or when that header is missing
    /// or `text/plain` and the body starts with `{` or `[`. Invalid JSON under a JSON
    /// `Content-Type` ends the request with [constant ERR_DECODE], and [member text] and
    /// [member body] keep what arrived.
    #[var(get = get_json, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    json: Variant,
    /// The body decoded as UTF-8 text; invalid bytes become U+FFFD, never an error.
    #[var(get = get_text, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    text: GString,
    /// The body bytes, decompressed when the server sent gzip, deflate or brotli.
    ///
    /// Kept whenever a body arrived: also with [constant ERR_HTTP_STATUS] and
    /// [constant ERR_DECODE], and the part that arrived with [constant ERR_CONNECTION_LOST]
    /// and [constant ERR_BODY_TOO_LARGE].
    #[var(get = get_body, no_set)]
    // Only the property's custom getter is used; the field is a placeholder it requires.
    #[allow(dead_code)]
    body: PackedByteArray,
    /// The response headers as a Dictionary of lowercased name to value. A header sent several
    /// times has its values joined with `", "` (RFC 9110 section 5.3).
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
    // The `HTTPResponse.Error` enum is registered by `class_enums` (gdext 0.5's
    // `#[constant]` has no enum name). These declarations only carry its help text:
    // `cfg(any())` removes them from the build, so gdext does not register them a second
    // time, while its docs generator still reads their `///` comments.
    /// The request succeeded: a 2xx status and a usable body.
    #[constant]
    #[cfg(any())]
    const ERR_NONE: i64 = 0;
    /// The URL could not be parsed, has no host, or is not `http` or `https`.
    #[constant]
    #[cfg(any())]
    const ERR_INVALID_URL: i64 = 1;
    /// No connection could be made: refused, unreachable, or the name did not resolve.
    #[constant]
    #[cfg(any())]
    const ERR_CONNECT: i64 = 2;
    /// The TLS handshake failed, usually an untrusted or mismatched certificate; for a
    /// self-signed development server set [member HTTPPool.trusted_ca_pem].
    #[constant]
    #[cfg(any())]
    const ERR_TLS: i64 = 3;
    /// An attempt took longer than [member HTTPPool.timeout], or connecting took longer than
    /// [member HTTPPool.connect_timeout] (after the retries [member HTTPPool.max_retries]
    /// allows).
    #[constant]
    #[cfg(any())]
    const ERR_TIMEOUT: i64 = 4;
    /// The connection broke after the request was sent; [member body] holds what arrived.
    #[constant]
    #[cfg(any())]
    const ERR_CONNECTION_LOST: i64 = 5;
    /// The body is larger than [member HTTPPool.max_body_bytes]; [member body] holds the
    /// bytes read before the limit, if any. For a download: the file is larger than
    /// [member HTTPPool.max_download_bytes]. For a stream: a line or event is longer than
    /// [member HTTPPool.stream_max_line_bytes].
    #[constant]
    #[cfg(any())]
    const ERR_BODY_TOO_LARGE: i64 = 6;
    /// The body could not be decoded: invalid JSON under a JSON `Content-Type`, or a broken
    /// compressed stream; [member body] and [member text] keep what arrived.
    #[constant]
    #[cfg(any())]
    const ERR_DECODE: i64 = 7;
    /// The server redirected more often than [member HTTPPool.max_redirects] allows.
    #[constant]
    #[cfg(any())]
    const ERR_TOO_MANY_REDIRECTS: i64 = 8;
    /// Cancelled by [method HTTPTask.cancel], [method HTTPPool.cancel_all], the pool leaving
    /// the tree, or the pool being freed.
    #[constant]
    #[cfg(any())]
    const ERR_CANCELLED: i64 = 9;
    /// [member HTTPPool.max_queued] requests were already waiting; this one was not queued.
    #[constant]
    #[cfg(any())]
    const ERR_QUEUE_FULL: i64 = 10;
    /// The server answered with a status outside 200-299 (see [member status]); [member body]
    /// and [member json] are kept.
    #[constant]
    #[cfg(any())]
    const ERR_HTTP_STATUS: i64 = 11;
    /// The request could not be built: a method that is no [enum HTTPClient.Method], a
    /// malformed header, or a body that cannot be sent.
    #[constant]
    #[cfg(any())]
    const ERR_INVALID_REQUEST: i64 = 12;
    /// The response's header section is larger than the pool accepts: more than 512 fields
    /// or more than 256 KiB of header data. It is not read; [member error_message] says so.
    #[constant]
    #[cfg(any())]
    const ERR_HEADERS_TOO_LARGE: i64 = 13;
    /// A download's SHA-256 is not the one given to [method HTTPPool.download]; its bytes
    /// were removed and nothing was written to its file. [member error_message] names both
    /// digests.
    #[constant]
    #[cfg(any())]
    const ERR_HASH_MISMATCH: i64 = 14;
    /// A download's file could not be created, written, synced or renamed into place (a
    /// full disk, a read-only folder, a path under `res://` in an exported game), or another
    /// download is writing the same file.
    #[constant]
    #[cfg(any())]
    const ERR_FILE: i64 = 15;

    /// Getter of [member error].
    #[func]
    pub fn get_error(&self) -> HttpError {
        self.error
    }

    /// Getter of [member error_message].
    #[func]
    pub fn get_error_message(&self) -> GString {
        GString::from(self.inner.error_message.as_str())
    }

    /// Getter of [member url].
    #[func]
    pub fn get_url(&self) -> GString {
        GString::from(self.inner.url.as_str())
    }

    /// Getter of [member http_version].
    #[func]
    pub fn get_http_version(&self) -> GString {
        GString::from(self.inner.http_version.as_str())
    }

    /// Getter of [member json]; the conversion to Godot values happens on the first call.
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

    /// Getter of [member text].
    #[func]
    pub fn get_text(&self) -> GString {
        GString::from(self.inner.text().as_str())
    }

    /// Getter of [member body].
    #[func]
    pub fn get_body(&self) -> PackedByteArray {
        PackedByteArray::from(self.inner.body.as_ref())
    }

    /// Getter of [member headers].
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

    /// Returns the value of the header [param name], compared case-insensitively (RFC 9110
    /// section 5.1), or [param default] when the response has no such header.
    #[func]
    pub fn get_header(&self, name: GString, #[opt(default = "")] default: GString) -> GString {
        self.inner
            .header(&name.to_string())
            .map(|v| GString::from(v.as_ref()))
            .unwrap_or(default)
    }

    /// Returns the name of [member error], e.g. `"ERR_TIMEOUT"`, for logs; `"ERR_NONE"` on
    /// success.
    #[func]
    pub fn get_error_name(&self) -> GString {
        let kind = ErrorKind::ALL
            .iter()
            .find(|k| i64::from(k.code()) == self.error.0)
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
            error: HttpError::from(inner.error),
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
