//! Redirects, followed by the pool itself rather than by reqwest, whose policy can only say
//! "follow" or "stop" and forwards every header but four to any host. Here the pool
//! decides what the next request is and what may go with it.
//!
//! The rule for credentials: on a redirect to another origin (scheme, host or port differ,
//! RFC 6454), the next request carries no header the game set, neither from
//! `default_headers` nor from the request itself (where games put `Authorization`,
//! `Cookie`, API keys and tokens), only the pool's `User-Agent` and, when the body is sent
//! again (307, 308), its `Content-Type`, plus its `Idempotency-Key`, which is no secret and
//! is what lets the other origin apply a retried request once. Once dropped they stay dropped, even if a later
//! redirect comes back to the first origin.
//!
//! Methods: 303 becomes GET (HEAD stays), 301 and 302 turn POST into GET, 307 and 308 keep
//! method and body. The outbox follows only 307 and 308 (see `outbox/worker.rs`).

use bytes::Bytes;
use url::Url;

/// One request on the way: the original, or what a redirect turned it into.
#[derive(Clone, Debug)]
pub(crate) struct Hop {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

/// What a response means for the redirect chain.
#[derive(Debug)]
pub(crate) enum Next {
    /// Not a redirect (or one without a Location): the response is the answer.
    Done,
    /// Send this next.
    Follow(Hop),
    /// A redirect that cannot be followed; the sentence says why.
    Refused(String),
}

/// Headers that describe a body and go away with it (RFC 9110 section 15.4).
const BODY_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
];

/// The request that follows `status` with `location`, per RFC 9110 section 15.4 and the
/// Fetch standard: 303 becomes GET (HEAD stays HEAD), 301 and 302 turn POST into GET, 307
/// and 308 keep the method and the body.
pub(crate) fn next_hop(current: &Hop, status: u16, location: Option<&str>) -> Next {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return Next::Done;
    }
    let Some(location) = location else {
        return Next::Done;
    };
    let url = match current.url.join(location.trim()) {
        Ok(url) => url,
        Err(e) => {
            return Next::Refused(format!(
                "the server redirected to '{location}', which is not a valid URL ({e})"
            ));
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Next::Refused(format!(
            "the server redirected to '{url}'; only http and https redirects are followed"
        ));
    }
    let to_get = match status {
        303 => current.method != reqwest::Method::HEAD,
        301 | 302 => current.method == reqwest::Method::POST,
        _ => false,
    };
    let mut next = Hop {
        method: if to_get {
            reqwest::Method::GET
        } else {
            current.method.clone()
        },
        body: if to_get { None } else { current.body.clone() },
        headers: current.headers.clone(),
        url,
    };
    if to_get {
        next.headers
            .retain(|(name, _)| !BODY_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)));
    }
    if next.url.origin() != current.url.origin() {
        let keep_type = next.body.is_some();
        next.headers.retain(|(name, _)| {
            (keep_type && name.eq_ignore_ascii_case("content-type"))
                || name.eq_ignore_ascii_case("idempotency-key")
        });
    }
    Next::Follow(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(method: reqwest::Method, url: &str) -> Hop {
        Hop {
            method,
            url: Url::parse(url).unwrap(),
            headers: vec![
                ("Authorization".into(), "Bearer t".into()),
                ("X-Api-Key".into(), "k".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: Some(Bytes::from_static(b"{}")),
        }
    }

    fn follow(next: Next) -> Hop {
        match next {
            Next::Follow(hop) => hop,
            other => panic!("expected a hop, got {other:?}"),
        }
    }

    #[test]
    fn same_origin_keeps_headers_other_origin_drops_them() {
        let post = hop(reqwest::Method::POST, "http://a.test:8080/x");
        let same = follow(next_hop(&post, 307, Some("/y")));
        assert_eq!(same.headers.len(), 3);
        assert_eq!(same.url.as_str(), "http://a.test:8080/y");
        for other in [
            "http://b.test:8080/y",
            "http://a.test:8081/y",
            "https://a.test:8080/y",
        ] {
            let next = follow(next_hop(&post, 307, Some(other)));
            assert_eq!(
                next.headers,
                vec![("Content-Type".to_string(), "application/json".to_string())],
                "{other}"
            );
            let next = follow(next_hop(&post, 302, Some(other)));
            assert!(next.headers.is_empty(), "{other}");
        }
    }

    #[test]
    fn methods_follow_rfc_9110() {
        let post = hop(reqwest::Method::POST, "http://a.test/x");
        for (status, method, body) in [
            (301, "GET", false),
            (302, "GET", false),
            (303, "GET", false),
            (307, "POST", true),
            (308, "POST", true),
        ] {
            let next = follow(next_hop(&post, status, Some("/y")));
            assert_eq!(next.method.as_str(), method, "{status}");
            assert_eq!(next.body.is_some(), body, "{status}");
            assert_eq!(
                next.headers.iter().any(|(n, _)| n == "Content-Type"),
                body,
                "{status}"
            );
        }
        let put = hop(reqwest::Method::PUT, "http://a.test/x");
        assert_eq!(follow(next_hop(&put, 301, Some("/y"))).method, "PUT");
        let head = hop(reqwest::Method::HEAD, "http://a.test/x");
        assert_eq!(follow(next_hop(&head, 303, Some("/y"))).method, "HEAD");
    }

    #[test]
    fn odd_redirects() {
        let get = hop(reqwest::Method::GET, "http://a.test/x");
        assert!(matches!(next_hop(&get, 200, Some("/y")), Next::Done));
        assert!(matches!(next_hop(&get, 302, None), Next::Done));
        assert!(matches!(
            next_hop(&get, 302, Some("ftp://a.test/")),
            Next::Refused(_)
        ));
        assert!(matches!(
            next_hop(&get, 302, Some("http://[::1")),
            Next::Refused(_)
        ));
    }
}
