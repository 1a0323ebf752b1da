//! What a download does with the head of an answer, given what its part file holds: the
//! range-request rules of RFC 9110 as plain data and one pure function, tested without
//! sockets, files or clocks. `download.rs` carries the verdict out.
//!
//! The rules (RFC 9110 sections 8.8.2.2, 13.1.5, 13.2.2, 14 and 15.3.7):
//! - A resume sends `Range: bytes=N-` with `If-Range` carrying a strong ETag, else a
//!   Last-Modified at least one second older than the response's `Date`; a weak ETag or no
//!   validator means a drop restarts from byte 0.
//! - Start over on: a 206 whose `Content-Range` does not start at N or is malformed (end
//!   before start, end beyond the length); a 206 naming another version than the part
//!   file's (a different strong `ETag` or `Last-Modified`, or another total length: a
//!   server or CDN that ignores `If-Range`); a 200 (no ranges, or the validator changed); a
//!   416 (Range Not Satisfiable). Three restarts in one download end it.
//! - A 416 whose `bytes */N` equals the part's length means the part is the whole file (a
//!   failed If-Range would have brought a 200; the game stopped between the last byte and
//!   the rename): it is hashed and renamed, not fetched again.
//! - A 206 to a request without `Range` is the file only when its `Content-Range` covers
//!   all of it, else `ERR_DECODE`.

use reqwest::header::{CONTENT_ENCODING, CONTENT_RANGE, DATE, ETAG, HeaderMap, LAST_MODIFIED};
use std::time::SystemTime;

use super::part_file;

/// What the part file holds when the request goes out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Held {
    /// Bytes in the part file.
    pub offset: u64,
    /// The validator sent in `If-Range`; a `Range` is sent only with one.
    pub validator: Option<String>,
    /// The file's length as an earlier answer gave it.
    pub total: Option<u64>,
}

impl Held {
    /// A `Range` (with `If-Range`) went out: there are bytes to resume from and a validator
    /// that makes resuming safe.
    pub fn asked_range(&self) -> bool {
        self.offset > 0 && self.validator.is_some()
    }
}

/// The parts of an answer's head the rules read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Head {
    pub status: u16,
    /// A `Content-Encoding` other than identity, lowercased.
    pub coding: Option<String>,
    /// `Content-Range` as sent, for messages.
    pub content_range_text: Option<String>,
    /// `Content-Range` when well formed.
    pub content_range: Option<ContentRange>,
    /// The N of a 416's `Content-Range: bytes */N`.
    pub unsatisfied_length: Option<u64>,
    /// `ETag`, as sent.
    pub etag: Option<String>,
    /// `Last-Modified`, as sent.
    pub last_modified: Option<String>,
    /// The validator this answer offers for later resumes (see [`validator`]).
    pub validator: Option<String>,
    /// `Content-Length`.
    pub content_length: Option<u64>,
}

impl Head {
    /// Reads a head from the status and header fields.
    pub fn read(status: u16, headers: &HeaderMap, content_length: Option<u64>) -> Self {
        let text = |name| {
            headers.get(name).map(|v: &reqwest::header::HeaderValue| {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            })
        };
        Self {
            status,
            coding: text(CONTENT_ENCODING)
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
            content_range_text: text(CONTENT_RANGE),
            content_range: content_range(headers),
            unsatisfied_length: unsatisfied_length(headers),
            etag: headers
                .get(ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            last_modified: headers
                .get(LAST_MODIFIED)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            validator: validator(headers),
            content_length,
        }
    }
}

/// What to do with the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The body continues the part file: bytes from `Held::offset` up to `range_end`
    /// (exclusive); `total` is the file's length when the answer says it.
    Resume { range_end: u64, total: Option<u64> },
    /// The whole file follows, from byte 0: start the part file over first when `restart`
    /// (it holds bytes of some version); keep `validator` for later resumes.
    Whole {
        restart: bool,
        validator: Option<String>,
        total: Option<u64>,
    },
    /// The part file already holds the whole file, `total` bytes: verify and rename it.
    Complete { total: u64 },
    /// The answer contradicts the part file: empty it and ask again for the whole file.
    StartOver,
    /// An answer that is not the file (a coded body, a partial one to a plain request):
    /// nothing of it is written; the sentence says why.
    Refuse(String),
    /// A status worth retrying after backoff (RFC 9110's transient ones, 408, 429).
    Retry,
    /// A final status: the download ends with it and the part file goes.
    Fail,
}

/// The rules, in the order they apply (RFC 9110 section numbers in each arm).
pub(super) fn judge(held: &Held, head: &Head, retryable: impl Fn(u16) -> bool) -> Verdict {
    let status = head.status;
    let success = (200..300).contains(&status);
    if success && let Some(coding) = &head.coding {
        // Section 8.4: a content coding changes the bytes; the download asked for
        // identity, and offsets, Content-Range and the SHA-256 count the file's own bytes.
        return Verdict::Refuse(format!(
            "the server sent the file with Content-Encoding '{coding}' although the download asked for identity; a coded body cannot be resumed or hashed as the file, so nothing of this answer was written"
        ));
    }
    match status {
        206 if held.asked_range() => match head.content_range {
            // Section 15.3.7: a 206 to our Range, starting where the part file ends, of
            // the version the part file holds.
            Some(range)
                if range.start == held.offset && same_representation(held, head, range.total) =>
            {
                Verdict::Resume {
                    range_end: range.end + 1,
                    total: range.total.or(held.total),
                }
            }
            _ => Verdict::StartOver,
        },
        // Section 15.3.7: 206 answers a Range request only. Without one, a 206 is the file
        // only when its Content-Range covers all of it; a part written as the whole would
        // pass for complete.
        206 if !matches!(
            head.content_range,
            Some(ContentRange { start: 0, end, total: Some(total) }) if end + 1 == total
        ) =>
        {
            Verdict::Refuse(format!(
                "the server answered a request for the whole file with 206 Partial Content ({}); that is not the file, so nothing was written",
                head.content_range_text
                    .as_ref()
                    .map_or("without Content-Range".to_string(), |r| format!(
                        "Content-Range '{r}'"
                    ))
            ))
        }
        // Section 13.1.5: a 200 to If-Range means the representation changed or the server
        // ignores ranges; the whole file follows. A 2xx to a plain request is the file.
        200..=299 => Verdict::Whole {
            restart: held.offset > 0,
            validator: head.validator.clone(),
            total: head.content_length,
        },
        // Section 13.2.2: a failed If-Range would have brought a 200, so a 416 whose
        // `bytes */N` is the part file's length says the part is the whole file (the game
        // stopped between its last byte and the rename, or the rename failed).
        416 if held.asked_range() => match head.unsatisfied_length {
            Some(n) if n == held.offset => Verdict::Complete { total: n },
            _ => Verdict::StartOver,
        },
        s if retryable(s) => Verdict::Retry,
        _ => Verdict::Fail,
    }
}

/// Whether a 206 belongs to the version the part file holds. A server that ignores
/// `If-Range` (RFC 9110 section 13.1.5) still names its version: a 206 carries the `ETag`
/// a 200 would (section 15.3.7), and its Content-Range the file's length.
fn same_representation(held: &Held, head: &Head, total: Option<u64>) -> bool {
    if let (Some(before), Some(now)) = (held.total, total)
        && before != now
    {
        return false;
    }
    let Some(ours) = &held.validator else {
        return true;
    };
    let theirs = if ours.starts_with('"') {
        &head.etag
    } else {
        &head.last_modified
    };
    theirs.as_ref().is_none_or(|theirs| theirs == ours)
}

/// A `Content-Range: bytes START-END/TOTAL` (RFC 9110 section 14.4), END inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ContentRange {
    pub start: u64,
    pub end: u64,
    /// `None` for `*` (length unknown).
    pub total: Option<u64>,
}

/// The response's Content-Range, when well formed: START <= END, and END < TOTAL when the
/// total is known (section 14.4 calls anything else invalid).
fn content_range(headers: &HeaderMap) -> Option<ContentRange> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let (start, end): (u64, u64) = (start.trim().parse().ok()?, end.trim().parse().ok()?);
    // END + 1 is a length, so it must fit in a u64: `bytes 5-18446744073709551615/*` would
    // overflow the range's end (a panic in debug builds, and a part file thrown away as
    // "more than announced" in release ones).
    end.checked_add(1)?;
    (start <= end && total.is_none_or(|t| end < t)).then_some(ContentRange { start, end, total })
}

/// The N of a 416's `Content-Range: bytes */N` (RFC 9110 section 14.4): the file's length.
fn unsatisfied_length(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    value.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

/// The validator to send back in `If-Range`: a strong ETag, else a Last-Modified date that
/// is strong by RFC 9110 section 8.8.2.2 (at least one second before the response's
/// `Date`). A weak ETag or a recent date cannot be used (section 13.1.5), and then a
/// dropped download starts over rather than risk mixing two versions.
fn validator(headers: &HeaderMap) -> Option<String> {
    if let Some(etag) = headers.get(ETAG).and_then(|v| v.to_str().ok())
        && part_file::usable_validator(etag)
    {
        return Some(etag.to_string());
    }
    let modified = headers.get(LAST_MODIFIED)?.to_str().ok()?;
    let date = headers.get(DATE)?.to_str().ok()?;
    let (m, d): (SystemTime, SystemTime) = (
        httpdate::parse_http_date(modified).ok()?,
        httpdate::parse_http_date(date).ok()?,
    );
    (m + std::time::Duration::from_secs(1) <= d).then(|| modified.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    fn head(status: u16, pairs: &[(&'static str, &str)]) -> Head {
        let map = headers(pairs);
        let length = map
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok());
        Head::read(status, &map, length)
    }

    /// 400 bytes of the version with ETag "v1", of a 1,000-byte file.
    fn resuming() -> Held {
        Held {
            offset: 400,
            validator: Some("\"v1\"".into()),
            total: Some(1000),
        }
    }

    fn judged(held: &Held, head: &Head) -> Verdict {
        judge(held, head, |s| matches!(s, 408 | 429 | 500..=599))
    }

    /// Section 15.3.7: the 206 that continues the part file resumes it.
    #[test]
    fn a_matching_206_resumes() {
        let h = head(
            206,
            &[("content-range", "bytes 400-999/1000"), ("etag", "\"v1\"")],
        );
        assert_eq!(
            judged(&resuming(), &h),
            Verdict::Resume {
                range_end: 1000,
                total: Some(1000)
            }
        );
    }

    /// Section 13.1.5 (a server that ignores If-Range) and 15.3.7 (a 206 carries the ETag a
    /// 200 would): a 206 of another version, another length or another start starts over.
    #[test]
    fn a_range_ending_past_any_length_starts_over() {
        let head = head(
            206,
            &[
                ("content-range", "bytes 400-18446744073709551615/*"),
                ("etag", "\"v1\""),
            ],
        );
        assert_eq!(head.content_range, None);
        assert_eq!(judged(&resuming(), &head), Verdict::StartOver);
    }

    #[test]
    fn a_206_of_another_version_length_or_start_starts_over() {
        for pairs in [
            [("content-range", "bytes 400-999/1000"), ("etag", "\"v2\"")],
            [("content-range", "bytes 400-1199/1200"), ("etag", "\"v1\"")],
            [("content-range", "bytes 0-999/1000"), ("etag", "\"v1\"")],
            [("content-range", "bytes 999-400/1000"), ("etag", "\"v1\"")],
        ] {
            assert_eq!(
                judged(&resuming(), &head(206, &pairs)),
                Verdict::StartOver,
                "{pairs:?}"
            );
        }
    }

    /// Section 15.3.7: to a request without Range, a 206 is the file only when it covers
    /// all of it.
    #[test]
    fn a_206_to_a_plain_request_is_the_file_only_when_whole() {
        let fresh = Held::default();
        let whole = head(
            206,
            &[
                ("content-range", "bytes 0-999/1000"),
                ("content-length", "1000"),
            ],
        );
        assert!(matches!(
            judged(&fresh, &whole),
            Verdict::Whole { restart: false, .. }
        ));
        for range in ["bytes 0-499/1000", "bytes 500-999/1000", "bytes 0-999/*"] {
            let part = head(206, &[("content-range", range)]);
            let Verdict::Refuse(why) = judged(&fresh, &part) else {
                panic!("{range}: accepted a part as the file");
            };
            assert!(why.contains(range), "{why}");
        }
        let Verdict::Refuse(why) = judged(&fresh, &head(206, &[])) else {
            panic!("a 206 without Content-Range");
        };
        assert!(why.contains("without Content-Range"), "{why}");
    }

    /// Section 13.1.5: a 200 to If-Range is the whole (changed) file; the part file starts
    /// over, and the new validator is kept.
    #[test]
    fn a_200_to_if_range_restarts_with_the_whole_file() {
        let h = head(200, &[("etag", "\"v2\""), ("content-length", "1200")]);
        assert_eq!(
            judged(&resuming(), &h),
            Verdict::Whole {
                restart: true,
                validator: Some("\"v2\"".into()),
                total: Some(1200)
            }
        );
    }

    /// Section 13.2.2: a 416 whose length is the part file's means the part is complete;
    /// any other 416 starts over.
    #[test]
    fn a_416_of_the_part_files_length_is_complete() {
        let held = Held {
            offset: 1000,
            ..resuming()
        };
        let done = head(416, &[("content-range", "bytes */1000")]);
        assert_eq!(judged(&held, &done), Verdict::Complete { total: 1000 });
        let other = head(416, &[("content-range", "bytes */1200")]);
        assert_eq!(judged(&held, &other), Verdict::StartOver);
        assert_eq!(judged(&held, &head(416, &[])), Verdict::StartOver);
        assert_eq!(
            judged(&Held::default(), &done),
            Verdict::Fail,
            "a 416 to a plain request is a final error"
        );
    }

    /// Section 8.4: a coded body is not the file, whatever its status.
    #[test]
    fn a_content_coding_is_refused() {
        for status in [200, 206] {
            let h = head(
                status,
                &[
                    ("content-encoding", "gzip"),
                    ("content-range", "bytes 400-999/1000"),
                ],
            );
            let Verdict::Refuse(why) = judged(&resuming(), &h) else {
                panic!("{status}: a gzip body accepted");
            };
            assert!(why.contains("'gzip'"), "{why}");
        }
        let identity = head(200, &[("content-encoding", "Identity")]);
        assert!(matches!(
            judged(&Held::default(), &identity),
            Verdict::Whole { .. }
        ));
    }

    /// Section 15.5 and 15.6: transient statuses are retried, others end the download.
    #[test]
    fn other_statuses_retry_or_fail() {
        for s in [408, 429, 500, 503] {
            assert_eq!(judged(&resuming(), &head(s, &[])), Verdict::Retry, "{s}");
        }
        for s in [301, 400, 403, 404, 410] {
            assert_eq!(judged(&resuming(), &head(s, &[])), Verdict::Fail, "{s}");
        }
    }

    #[test]
    fn content_range_start_and_total() {
        let cr = |v| content_range(&headers(&[("content-range", v)]));
        let range = |start, end, total| Some(ContentRange { start, end, total });
        assert_eq!(cr("bytes 100-199/1000"), range(100, 199, Some(1000)));
        assert_eq!(cr("bytes 100-199/*"), range(100, 199, None));
        assert_eq!(cr("bytes 200-100/1000"), None, "end before start");
        assert_eq!(cr("bytes 100-1000/1000"), None, "end beyond the length");
        assert_eq!(cr("bytes */1000"), None, "the 416 form has no start");
        assert_eq!(cr("items 1-2/3"), None);
    }

    #[test]
    fn only_strong_validators_are_used() {
        let date = "Fri, 04 Dec 2026 00:00:00 GMT";
        assert_eq!(
            validator(&headers(&[("etag", "\"abc\"")])),
            Some("\"abc\"".into())
        );
        assert_eq!(
            validator(&headers(&[("etag", "W/\"abc\"")])),
            None,
            "weak ETag"
        );
        let old = "Thu, 03 Dec 2026 00:00:00 GMT";
        assert_eq!(
            validator(&headers(&[("last-modified", old), ("date", date)])),
            Some(old.into())
        );
        assert_eq!(
            validator(&headers(&[("last-modified", date), ("date", date)])),
            None,
            "modified in the same second as the answer: weak (RFC 9110 section 8.8.2.2)"
        );
        assert_eq!(
            validator(&headers(&[("last-modified", old)])),
            None,
            "no Date to compare"
        );
    }
}
