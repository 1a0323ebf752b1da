//! What a caller asks for, already converted from engine types on the main thread.

use bytes::Bytes;
use url::Url;

/// The HTTP methods, numbered as Godot's `HTTPClient.Method` so GDScript can pass its enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
    /// CONNECT
    Connect,
    /// PATCH
    Patch,
}

impl Method {
    /// Maps Godot's `HTTPClient.Method` value; `None` for values it does not define.
    pub fn from_godot(value: i64) -> Option<Method> {
        Some(match value {
            0 => Method::Get,
            1 => Method::Head,
            2 => Method::Post,
            3 => Method::Put,
            4 => Method::Delete,
            5 => Method::Options,
            6 => Method::Trace,
            7 => Method::Connect,
            8 => Method::Patch,
            _ => return None,
        })
    }

    /// The method as reqwest wants it.
    pub fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Options => reqwest::Method::OPTIONS,
            Method::Trace => reqwest::Method::TRACE,
            Method::Connect => reqwest::Method::CONNECT,
            Method::Patch => reqwest::Method::PATCH,
        }
    }
}

/// A request body with the content type it implies.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RequestBody {
    /// No body.
    #[default]
    Empty,
    /// JSON text (from a Dictionary or Array), sent as `application/json`.
    Json(Bytes),
    /// Plain text, sent as `text/plain; charset=utf-8`.
    Text(Bytes),
    /// Raw bytes, sent as `application/octet-stream`.
    Binary(Bytes),
}

impl RequestBody {
    /// The Content-Type used when the caller sets none.
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            RequestBody::Empty => None,
            RequestBody::Json(_) => Some("application/json"),
            RequestBody::Text(_) => Some("text/plain; charset=utf-8"),
            RequestBody::Binary(_) => Some("application/octet-stream"),
        }
    }

    /// The bytes to send (cheap to clone, so retries and 307/308 redirects can resend).
    pub fn bytes(&self) -> Option<Bytes> {
        match self {
            RequestBody::Empty => None,
            RequestBody::Json(b) | RequestBody::Text(b) | RequestBody::Binary(b) => Some(b.clone()),
        }
    }
}

/// One request, ready for a worker thread.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// The absolute URL (see [`build_url`]).
    pub url: String,
    /// Headers, the pool's defaults already merged in; later entries win.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: RequestBody,
    /// A 500 answer is the server's last word and is not retried; 502-504, 408, 429,
    /// connection failures and timeouts still are. Agones' sidecar answers every SDK
    /// error ("not found", "out of range") with 500, and repeating those for 30 s would
    /// only delay the sentence.
    pub final_500: bool,
}

impl RequestSpec {
    /// The value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// True when `path` starts with a URL scheme and `://` (RFC 3986 section 3.1: a letter,
/// then letters, digits, `+`, `-` or `.`). Schemes are case-insensitive, so `HTTP://x/`
/// is absolute; an absolute URL with another scheme is then refused by name rather than
/// glued to the base URL.
fn has_scheme(path: &str) -> bool {
    let Some((scheme, _)) = path.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Why `path` (not an absolute URL) cannot be a relative path either, if so. RFC 3986
/// section 4.2: the first segment of a relative-path reference cannot hold a colon, since
/// it would be read as a scheme; so `ht!tp://x`, `://x` or `localhost:8080/x` are broken
/// absolute URLs, and joining them after the base URL would send a request the game never
/// meant (and report the server's 404 instead of the typo).
fn not_a_path(path: &str) -> Option<String> {
    let first = path.split(['/', '?', '#']).next().unwrap_or_default();
    let (scheme, _) = first.split_once(':')?;
    Some(if path.contains("://") {
        format!(
            "'{path}' is not a valid URL: '{scheme}' before '://' is not a scheme (a letter, then letters, digits, '+', '-' or '.'); use http:// or https://"
        )
    } else {
        format!(
            "'{path}' is not a valid URL: a colon in the first segment of a path makes it read as a scheme (RFC 3986 section 4.2); for a URL write http://{path}, for a path relative to base_url write ./{path}"
        )
    })
}

/// Joins a pool's base URL and a request path the way a game developer expects:
/// `"https://api.x.com/v1" + "/scores"` is `https://api.x.com/v1/scores` (not `/scores`, as
/// RFC 3986 resolution would give). A path that is an absolute URL (`scheme://...`, the
/// scheme in any case) is used as is; one that is neither (a colon in its first segment,
/// as `ht!tp://x`) is refused, and so is a relative path without a base URL.
pub fn build_url(base: &str, path: &str) -> Result<Url, String> {
    let path = path.trim();
    if !has_scheme(path) {
        if let Some(why) = not_a_path(path) {
            return Err(why);
        }
        if base.is_empty() && !path.is_empty() {
            return Err(format!(
                "'{path}' is a relative path and base_url is empty: set base_url (e.g. \"https://api.example.com\") or pass a full URL starting with http:// or https://"
            ));
        }
    }
    let joined = if has_scheme(path) || base.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        base.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    };
    if joined.is_empty() {
        return Err("the URL is empty: set base_url or pass a full URL".to_string());
    }
    let url = Url::parse(&joined).map_err(|e| format!("'{joined}' is not a valid URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "'{joined}' uses the scheme '{other}'; only http and https are supported"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{joined}' has no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_path_concatenate() {
        let url = build_url("https://api.example.com/v1/", "/scores?x=1").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/v1/scores?x=1");
        let url = build_url("https://api.example.com", "http://other.org/a").unwrap();
        assert_eq!(url.as_str(), "http://other.org/a");
    }

    #[test]
    fn schemes_are_case_insensitive() {
        for path in [
            "HTTP://other.org/a",
            "Http://other.org/a",
            " hTTp://other.org/a",
        ] {
            let url = build_url("https://api.example.com/v1", path).unwrap();
            assert_eq!(url.as_str(), "http://other.org/a", "{path}");
        }
        let url = build_url("http://x.org", "HTTPS://other.org:8443/a?b=1").unwrap();
        assert_eq!(url.as_str(), "https://other.org:8443/a?b=1");
        let err = build_url("https://api.example.com", "FTP://other.org/a").unwrap_err();
        assert!(err.contains("scheme 'ftp'"), "{err}");
        // Not a scheme: the path goes after the base.
        let url = build_url("https://api.example.com", "/q?next=http://x.org").unwrap();
        assert_eq!(url.as_str(), "https://api.example.com/q?next=http://x.org");
    }

    #[test]
    fn a_broken_absolute_url_is_refused_not_joined_after_the_base() {
        let base = "https://api.example.com/v1";
        for path in ["ht!tp://nope", "://nope", "http ://nope", "h_t://x/y"] {
            let err = build_url(base, path).unwrap_err();
            assert!(err.contains("is not a scheme"), "{path}: {err}");
        }
        for path in ["localhost:8080/scores", "mailto:me@example.com", "c:"] {
            let err = build_url(base, path).unwrap_err();
            assert!(err.contains("RFC 3986 section 4.2"), "{path}: {err}");
        }
        // Colons after the first segment, or after '?' or '#', are a path's own.
        for (path, want) in [
            (
                "scores?at=12:00",
                "https://api.example.com/v1/scores?at=12:00",
            ),
            ("/a/b:c", "https://api.example.com/v1/a/b:c"),
            ("./player:7", "https://api.example.com/v1/player:7"),
            (
                "/web/http://x.org",
                "https://api.example.com/v1/web/http://x.org",
            ),
            ("x#frag:1", "https://api.example.com/v1/x#frag:1"),
        ] {
            assert_eq!(build_url(base, path).unwrap().as_str(), want, "{path}");
        }
    }

    #[test]
    fn a_relative_path_without_a_base_url_says_to_set_it() {
        for path in ["/scores", "scores", "not a url"] {
            let err = build_url("", path).unwrap_err();
            assert!(
                err.contains("is a relative path and base_url is empty: set base_url"),
                "{path}: {err}"
            );
        }
        assert!(build_url("", "").unwrap_err().contains("the URL is empty"));
    }

    #[test]
    fn bad_urls_are_explained() {
        assert!(build_url("", "").unwrap_err().contains("empty"));
        assert!(
            build_url("ftp://x.org", "/a")
                .unwrap_err()
                .contains("scheme 'ftp'")
        );
        assert!(
            build_url("https://x.org", "http://exa mple.org/")
                .unwrap_err()
                .contains("not a valid URL")
        );
        assert!(build_url("http://", "").is_err());
    }
}
