//! Turns reqwest's errors into an [`ErrorKind`] and a sentence naming the URL, the root
//! cause and, where there is one, what the developer can do about it.

use std::error::Error as _;
use std::io;

use super::client::{MAX_RESPONSE_HEAD_BYTES, MAX_RESPONSE_HEADERS};
use super::error::ErrorKind;

/// Maps an error from sending a request (no response yet) to a kind and a sentence.
/// `own_ca` says whether the game set `trusted_ca_pem`, which changes the TLS advice.
pub(crate) fn classify(err: &reqwest::Error, url: &str, own_ca: bool) -> (ErrorKind, String) {
    let cause = chain(err);
    if err.is_builder() {
        return (
            ErrorKind::InvalidRequest,
            format!("the request to {url} could not be built: {cause}"),
        );
    }
    if let Some(tls) = rustls_error(err) {
        return (ErrorKind::Tls, tls_message(tls, url, &cause, own_ca));
    }
    if is_tls_text(&cause) {
        let advice = if cause.contains("corrupt message") {
            PLAIN_HTTP_ADVICE
        } else {
            ""
        };
        return (
            ErrorKind::Tls,
            format!("the TLS handshake with {url} failed: {cause}{advice}"),
        );
    }
    if head_too_large(err) {
        return (ErrorKind::HeadersTooLarge, head_too_large_message(url));
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
        format!("the connection to {url} failed before any response arrived: {cause}"),
    )
}

/// What a server that answers TLS with plain HTTP (a 400 page) gets told.
const PLAIN_HTTP_ADVICE: &str =
    "; the server did not answer in TLS: is it plain http:// on that port?";

/// The sentence for a response head beyond the pool's limits.
pub(crate) fn head_too_large_message(url: &str) -> String {
    format!(
        "the response from {url} has a header section larger than netkit accepts (at most {MAX_RESPONSE_HEADERS} fields and {} KiB of names and values); its body was not read",
        MAX_RESPONSE_HEAD_BYTES / 1024
    )
}

/// True when a response head is beyond [`MAX_RESPONSE_HEADERS`] fields or
/// [`MAX_RESPONSE_HEAD_BYTES`] bytes (name, value and 4 bytes per field).
pub(crate) fn head_over_bound(headers: &reqwest::header::HeaderMap) -> bool {
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    headers.len() > MAX_RESPONSE_HEADERS || bytes > MAX_RESPONSE_HEAD_BYTES
}

/// True when a request failed the way a keep-alive connection the server is closing
/// fails: the connection ended (FIN or RST) before any byte of a response arrived. Such a
/// request never reached the server's application (the server closes a connection it
/// considers idle without handing it what arrives), so an idempotent one may go again.
pub(crate) fn closed_before_response(err: &reqwest::Error) -> bool {
    if err.is_connect() || err.is_timeout() || err.is_builder() || rustls_error(err).is_some() {
        return false;
    }
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return true;
            }
            if h.is_parse() || h.is_user() {
                return false;
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// True when a body error came from the connection (hyper), not from decompression.
pub(crate) fn is_transport(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>().is_some() || e.downcast_ref::<io::Error>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

fn head_too_large(err: &reqwest::Error) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_parse_too_large()
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The rustls error somewhere in the chain. rustls errors travel inside `io::Error`s,
/// sometimes nested (reqwest wraps the connector's), and `io::Error::source()` skips the
/// error it wraps, so each one is opened with `get_ref()`.
fn rustls_error(err: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source = err.source();
    while let Some(e) = source {
        let mut inner: &(dyn std::error::Error + 'static) = e;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            match inner
                .downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        source = e.source();
    }
    None
}

/// The stable parts of TLS failures that reach us only as text.
fn is_tls_text(cause: &str) -> bool {
    let text = cause.to_ascii_lowercase();
    text.contains("peer certificate")
        || text.contains("fatal alert")
        || text.contains("tls handshake")
        || text.contains("corrupt message")
}

fn tls_message(tls: &rustls::Error, url: &str, cause: &str, own_ca: bool) -> String {
    use rustls::{CertificateError, Error};
    let advice = match tls {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) if own_ca => {
            "; trusted_ca_pem is set but holds neither this server's certificate nor the CA that signed it"
        }
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "; for a self-signed development server put its certificate (or its CA) in trusted_ca_pem"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => "; the certificate was issued for another host name than the URL's",
        Error::InvalidMessage(_) => PLAIN_HTTP_ADVICE,
        _ => "",
    };
    format!("the TLS handshake with {url} failed: {cause}{advice}")
}

/// The error and its causes in one line, deduplicated (hyper and reqwest repeat themselves).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
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
