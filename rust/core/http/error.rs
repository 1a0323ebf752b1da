//! The stable list of ways a request can fail, shared by the Rust API and GDScript.

/// Why a request did not succeed. The numeric values are part of the GDScript API
/// (`HTTPResponse.ERR_*`) and never change meaning; new kinds get new numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorKind {
    /// The request succeeded with a 2xx status.
    None = 0,
    /// The URL could not be parsed, or is not http/https.
    InvalidUrl = 1,
    /// No connection could be made: refused, unreachable, or the name did not resolve.
    Connect = 2,
    /// The TLS handshake failed, usually an untrusted or mismatched certificate.
    Tls = 3,
    /// An attempt took longer than the pool's `timeout`.
    Timeout = 4,
    /// The connection broke after the request was sent, e.g. reset in the middle of the body.
    ConnectionLost = 5,
    /// The body is larger than `max_body_bytes`.
    BodyTooLarge = 6,
    /// The body could not be decoded: invalid JSON, or a broken compressed stream.
    Decode = 7,
    /// The server redirected more than `max_redirects` times.
    TooManyRedirects = 8,
    /// The request was cancelled by `cancel()`, `cancel_all()` or its node leaving.
    Cancelled = 9,
    /// The queue already held `max_queued` requests.
    QueueFull = 10,
    /// The server answered with a status outside 200-299.
    HttpStatus = 11,
    /// The request itself is unusable: a body type that cannot be sent, a bad header.
    InvalidRequest = 12,
    /// The response's header section is beyond the pool's bound
    /// ([`MAX_RESPONSE_HEADERS`](super::MAX_RESPONSE_HEADERS) fields or
    /// [`MAX_RESPONSE_HEAD_BYTES`](super::MAX_RESPONSE_HEAD_BYTES) bytes).
    HeadersTooLarge = 13,
    /// A download's SHA-256 is not the one expected; its partial file was removed.
    HashMismatch = 14,
    /// A download's file could not be written, synced or renamed into place, or the
    /// durable outbox's store could not be opened or written.
    File = 15,
}

impl ErrorKind {
    /// Every kind, in numeric order (for registering constants and for tests).
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::None,
        ErrorKind::InvalidUrl,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::ConnectionLost,
        ErrorKind::BodyTooLarge,
        ErrorKind::Decode,
        ErrorKind::TooManyRedirects,
        ErrorKind::Cancelled,
        ErrorKind::QueueFull,
        ErrorKind::HttpStatus,
        ErrorKind::InvalidRequest,
        ErrorKind::HeadersTooLarge,
        ErrorKind::HashMismatch,
        ErrorKind::File,
    ];

    /// The GDScript constant name, e.g. `ERR_QUEUE_FULL`.
    pub fn constant_name(self) -> &'static str {
        match self {
            ErrorKind::None => "ERR_NONE",
            ErrorKind::InvalidUrl => "ERR_INVALID_URL",
            ErrorKind::Connect => "ERR_CONNECT",
            ErrorKind::Tls => "ERR_TLS",
            ErrorKind::Timeout => "ERR_TIMEOUT",
            ErrorKind::ConnectionLost => "ERR_CONNECTION_LOST",
            ErrorKind::BodyTooLarge => "ERR_BODY_TOO_LARGE",
            ErrorKind::Decode => "ERR_DECODE",
            ErrorKind::TooManyRedirects => "ERR_TOO_MANY_REDIRECTS",
            ErrorKind::Cancelled => "ERR_CANCELLED",
            ErrorKind::QueueFull => "ERR_QUEUE_FULL",
            ErrorKind::HttpStatus => "ERR_HTTP_STATUS",
            ErrorKind::InvalidRequest => "ERR_INVALID_REQUEST",
            ErrorKind::HeadersTooLarge => "ERR_HEADERS_TOO_LARGE",
            ErrorKind::HashMismatch => "ERR_HASH_MISMATCH",
            ErrorKind::File => "ERR_FILE",
        }
    }

    /// The value GDScript sees.
    pub fn code(self) -> i32 {
        self as i32
    }
}
