//! A script's call turned into a [`RequestSpec`], or refused with a typed reason: the one
//! place where the base URL and path, the method number, the pool's default headers and
//! the call's `"Name: value"` lines are checked and merged. `HTTPPool.request()`,
//! `download()`, `stream()` and `request_durable()` all go through it.
//!
//! The call's header lines are taken once per name, the call's winning over
//! `default_headers`, case-insensitively; a refusal is a typed `Rejected` whose `Display`
//! is the sentence the game sees. `request_durable()` keeps only the call's own headers,
//! since defaults are applied at each attempt. AgonesSDK's calls go through the same
//! parser.
//!
//! URLs: `base_url + path` is concatenation (`https://x/v1` + `/scores` is
//! `https://x/v1/scores`), not RFC 3986 resolution, which would drop `/v1`. A path that
//! starts with a scheme and `://` (in any case: `HTTP://x` too) is used as is, and one with
//! a scheme other than http or https is refused by name.

use std::fmt;

use super::ErrorKind;
use super::request::{Method, RequestBody, RequestSpec, build_url};

/// Why a call was refused before anything was sent. `Display` is the sentence the game
/// sees in `HTTPResponse.error_message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The base URL and the path do not make a URL this pool can request.
    Url {
        /// What the URL would have been (base and path as given).
        url: String,
        /// Why not.
        why: String,
    },
    /// The method is not an `HTTPClient.Method` value.
    Method { url: String, value: i64 },
    /// A header line is not of the form `Name: value`.
    HeaderLine { url: String, line: String },
    /// A header name HTTP does not allow.
    HeaderName { url: String, name: String },
    /// A header value with characters HTTP does not allow.
    HeaderValue { url: String, name: String },
    /// The body cannot be sent (the binding layer says why, e.g. an Object in a Dictionary).
    Body { url: String, why: String },
    /// A rule of the call itself (a download's own headers, its file, its hash).
    Call {
        url: String,
        kind: ErrorKind,
        why: String,
    },
}

impl Rejected {
    /// The `HTTPResponse.Error` the call ends with.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Url { .. } => ErrorKind::InvalidUrl,
            Self::Call { kind, .. } => *kind,
            _ => ErrorKind::InvalidRequest,
        }
    }

    /// The URL the refused call was for, as far as it was built.
    pub fn url(&self) -> &str {
        match self {
            Self::Url { url, .. }
            | Self::Method { url, .. }
            | Self::HeaderLine { url, .. }
            | Self::HeaderName { url, .. }
            | Self::HeaderValue { url, .. }
            | Self::Body { url, .. }
            | Self::Call { url, .. } => url,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url { why, .. } | Self::Call { why, .. } => f.write_str(why),
            Self::Method { value, .. } => write!(
                f,
                "{value} is not an HTTPClient.Method value (use HTTPClient.METHOD_GET, METHOD_POST, ...)"
            ),
            Self::HeaderLine { line, .. } => {
                write!(f, "the header '{line}' is not of the form 'Name: value'")
            }
            Self::HeaderName { name, .. } => write!(f, "'{name}' is not a valid header name"),
            Self::HeaderValue { name, .. } => write!(
                f,
                "the value of header '{name}' contains characters HTTP does not allow"
            ),
            Self::Body { why, .. } => write!(f, "the body cannot be sent: {why}"),
        }
    }
}

/// A checked call: the spec to send, and the header fields the call gave itself (without
/// the pool's defaults), which the durable outbox stores while defaults are applied at
/// each attempt.
#[derive(Clone, Debug)]
pub struct ParsedRequest {
    /// Defaults and the call's own headers merged; the call's win.
    pub spec: RequestSpec,
    /// The call's own header fields, checked.
    pub own_headers: Vec<(String, String)>,
}

impl RequestSpec {
    /// Checks and merges a call, in the order a developer would fix it: the URL, the
    /// method, the headers (defaults first, each name once, the later one winning,
    /// case-insensitively), then the body, which `body` converts only when all else holds.
    pub fn parse(
        method: i64,
        base_url: &str,
        path: &str,
        defaults: Vec<(String, String)>,
        lines: &[String],
        body: impl FnOnce() -> Result<RequestBody, String>,
    ) -> Result<ParsedRequest, Rejected> {
        let url = build_url(base_url, path)
            .map_err(|why| Rejected::Url {
                url: format!("{base_url}{path}"),
                why,
            })?
            .to_string();
        let method = Method::from_godot(method).ok_or_else(|| Rejected::Method {
            url: url.clone(),
            value: method,
        })?;
        let own_headers = header_lines(&url, lines)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in defaults.into_iter().chain(own_headers.iter().cloned()) {
            check_field(&url, &name, &value)?;
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
            headers.push((name, value));
        }
        let body = body().map_err(|why| Rejected::Body {
            url: url.clone(),
            why,
        })?;
        Ok(ParsedRequest {
            spec: RequestSpec {
                method,
                url,
                headers,
                body,
                final_500: false,
            },
            own_headers,
        })
    }
}

/// `"Name: value"` lines (as `HTTPRequest.request()` takes them) as trimmed pairs.
fn header_lines(url: &str, lines: &[String]) -> Result<Vec<(String, String)>, Rejected> {
    lines
        .iter()
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or_else(|| Rejected::HeaderLine {
                url: url.to_string(),
                line: line.clone(),
            })?;
            Ok((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// A field HTTP allows (RFC 9110 section 5: a token name, a value of visible characters).
fn check_field(url: &str, name: &str, value: &str) -> Result<(), Rejected> {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(Rejected::HeaderName {
            url: url.to_string(),
            name: name.to_string(),
        });
    }
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(Rejected::HeaderValue {
            url: url.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn lines(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    fn parse(defaults: &[(&str, &str)], own: &[&str]) -> Result<ParsedRequest, Rejected> {
        RequestSpec::parse(
            2,
            "https://api.example.com/v1",
            "/scores",
            pairs(defaults),
            &lines(own),
            || Ok(RequestBody::Empty),
        )
    }

    #[test]
    fn the_calls_headers_win_over_the_defaults_case_insensitively() {
        let p = parse(
            &[("Authorization", "Bearer old"), ("X-Game", "1")],
            &["authorization: Bearer new", "Accept:  text/plain  "],
        )
        .unwrap();
        assert_eq!(p.spec.url, "https://api.example.com/v1/scores");
        assert_eq!(p.spec.method, Method::Post);
        assert_eq!(
            p.spec.headers,
            pairs(&[
                ("X-Game", "1"),
                ("authorization", "Bearer new"),
                ("Accept", "text/plain")
            ])
        );
        assert_eq!(
            p.own_headers,
            pairs(&[("authorization", "Bearer new"), ("Accept", "text/plain")]),
            "the call's own fields, without the defaults"
        );
    }

    #[test]
    fn each_kind_of_bad_input_is_refused_with_its_reason() {
        let line = parse(&[], &["no colon"]).unwrap_err();
        assert_eq!(line.kind(), ErrorKind::InvalidRequest);
        assert!(
            line.to_string().contains("'no colon' is not of the form"),
            "{line}"
        );
        let name = parse(&[], &["bad name: x"]).unwrap_err();
        assert!(
            name.to_string()
                .contains("'bad name' is not a valid header name")
        );
        let value = parse(&[("X-A", "line\nbreak")], &[]).unwrap_err();
        assert_eq!(
            value,
            Rejected::HeaderValue {
                url: "https://api.example.com/v1/scores".into(),
                name: "X-A".into()
            },
            "a default header is checked too"
        );
        let method =
            RequestSpec::parse(99, "", "http://x/", vec![], &[], || Ok(RequestBody::Empty))
                .unwrap_err();
        assert!(
            method
                .to_string()
                .starts_with("99 is not an HTTPClient.Method")
        );
        let url = RequestSpec::parse(0, "", "not a url", vec![], &[], || Ok(RequestBody::Empty))
            .unwrap_err();
        assert_eq!(url.kind(), ErrorKind::InvalidUrl);
        assert_eq!(url.url(), "not a url");
        let body = RequestSpec::parse(2, "", "http://x/", vec![], &[], || Err("an Object".into()))
            .unwrap_err();
        assert_eq!(body.to_string(), "the body cannot be sent: an Object");
    }

    #[test]
    fn the_body_is_converted_only_when_everything_else_holds() {
        let mut converted = false;
        let _ = RequestSpec::parse(2, "", "http://x/", vec![], &lines(&["bad"]), || {
            converted = true;
            Ok(RequestBody::Empty)
        });
        assert!(!converted);
    }
}
