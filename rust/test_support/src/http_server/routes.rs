//! Request routing and the endpoint handlers. The endpoint list is documented on the
//! `http_server` module.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue,
    LOCATION, RETRY_AFTER, VARY,
};
use hyper::{Request, StatusCode, Version};
use serde_json::{Map, Value, json};

use super::body::{self, Res, error, json, json_text};
use super::query::Query;
use super::state::State;
use super::{JSON_FIXTURE_HEAD, VERSION_HEADER};

/// Largest request body `/echo` reads; more is answered with 413.
const ECHO_LIMIT: usize = 64 * 1024 * 1024;
/// Longest wait any endpoint accepts, so no timer can overflow.
const MAX_WAIT_MS: u64 = 600_000;
/// Largest body a size parameter may ask for.
const MAX_BYTES: u64 = 1 << 40;

/// What a handler answers: a response, or a message for a 400.
type Outcome = Result<Res, String>;

/// What every handler may need about the request beyond its body.
struct Ctx<'a> {
    state: &'a State,
    query: &'a Query,
    version: Version,
    /// How many requests carried this request's `key` so far, this one included.
    key_count: Option<u64>,
}

/// Serves one request: control endpoints directly, everything else counted and tracked.
pub async fn handle(req: Request<Incoming>, state: Arc<State>) -> Res {
    let version = req.version();
    let path = req.uri().path().to_owned();
    let query = Query::parse(req.uri().query());
    let mut res = match control(&path, &query, &state) {
        Some(res) => res,
        None => tracked(req, &path, &query, &state).await,
    };
    res.headers_mut().insert(
        HeaderName::from_static(VERSION_HEADER),
        HeaderValue::from_static(version_name(version)),
    );
    res
}

/// Counts the request, logs its `id` and `key`, runs the endpoint and keeps the request
/// in flight until its body is sent.
async fn tracked(req: Request<Incoming>, path: &str, query: &Query, state: &Arc<State>) -> Res {
    let in_flight = state.request_started();
    if let Some(id) = query.get("id") {
        state.record_arrival(id);
    }
    let ctx = Ctx {
        state,
        query,
        version: req.version(),
        key_count: query.get("key").map(|key| state.bump_key(key)),
    };
    let res = endpoint(req, path, &ctx)
        .await
        .unwrap_or_else(|message| error(StatusCode::BAD_REQUEST, &message));
    res.map(|inner| body::tracked(inner, in_flight))
}

/// The endpoints tests use to read and reset the server's bookkeeping.
fn control(path: &str, query: &Query, state: &State) -> Option<Res> {
    let res = match path {
        "/stats" => json(StatusCode::OK, &state.stats().to_json()),
        "/stats/reset" => {
            state.reset_stats();
            json(StatusCode::OK, &state.stats().to_json())
        }
        "/order" => json(StatusCode::OK, &json!(state.arrivals())),
        "/order/reset" => {
            state.clear_arrivals();
            json(StatusCode::OK, &json!([]))
        }
        "/count" => {
            let count = query.get("key").map_or(0, |key| state.key_count(key));
            json(StatusCode::OK, &json!({ "count": count }))
        }
        "/self-signed" => json(
            StatusCode::OK,
            &json!({ "url": state.self_signed.0, "pem": state.self_signed.1 }),
        ),
        "/ca.pem" => body::with_type(
            StatusCode::OK,
            "application/x-pem-file",
            body::full(state.ca_pem.clone()),
        ),
        _ => return None,
    };
    Some(res)
}

/// Routes a counted request to its handler.
async fn endpoint(req: Request<Incoming>, path: &str, ctx: &Ctx<'_>) -> Outcome {
    match path {
        "/json" => fixture_json(ctx),
        "/delay" => delay(ctx).await,
        "/flaky" => flaky(ctx),
        "/retry-after" => retry_after(ctx),
        "/echo" => echo(req, ctx).await,
        "/headers" => Ok(json(StatusCode::OK, &headers_json(req.headers()))),
        "/redirect-loop" => Ok(redirect_to(StatusCode::FOUND, "/redirect-loop")),
        "/gzip" => Ok(gzip(req.headers())),
        "/big" => big(ctx),
        "/trickle" => trickle(ctx),
        "/reset-mid-body" => Ok(reset_mid_body()),
        "/bad-json" => Ok(json_text(StatusCode::OK, r#"{"a": 1,,}"#)),
        "/deep-json" => deep_json(ctx),
        "/non-utf8" => Ok(non_utf8()),
        "/many-headers" => many_headers(ctx),
        "/big-header" => big_header(ctx),
        p if p.starts_with("/outbox/") => super::outbox_routes::handle(req, p, ctx.query).await,
        "/repeated-header" => Ok(repeated_header()),
        "/bom-json" => Ok(json_text(
            StatusCode::OK,
            &b"\xEF\xBB\xBF{\"bom\":true}"[..],
        )),
        "/huge-number" => Ok(json_text(
            StatusCode::OK,
            r#"{"ratio":1e400,"negative":-1e400,"ok":1}"#,
        )),
        _ => {
            if let Some(outcome) =
                super::transfer_routes::endpoint(req.headers(), path, ctx.query, ctx.key_count)
            {
                outcome
            } else if let Some(code) = path.strip_prefix("/status/") {
                status(code, ctx.query)
            } else if let Some(code) = path.strip_prefix("/redirect/") {
                redirect(code, ctx)
            } else {
                Ok(json(
                    StatusCode::NOT_FOUND,
                    &json!({ "error": "no such endpoint", "path": path }),
                ))
            }
        }
    }
}

/// How a version is spelled in `x-http-version` and in `/json`.
fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "unknown",
    }
}

/// `/json`: the fixed document, or with `bytes=N` a padded object of N bytes.
fn fixture_json(ctx: &Ctx<'_>) -> Outcome {
    if let Some(size) = ctx.query.number("bytes")? {
        if size > MAX_BYTES {
            return Err(format!("bytes={size} is above {MAX_BYTES}"));
        }
        return Ok(json_text(StatusCode::OK, padded_json(size)));
    }
    let version = version_name(ctx.version);
    Ok(json_text(
        StatusCode::OK,
        format!("{JSON_FIXTURE_HEAD}{version}\"}}"),
    ))
}

/// `{"bytes":N,"padding":"xxx…"}`, exactly `size` bytes long unless `size` is smaller
/// than the object with empty padding.
fn padded_json(size: u64) -> String {
    let head = format!(r#"{{"bytes":{size},"padding":""#);
    let tail = "\"}";
    let used = (head.len() + tail.len()) as u64;
    let padding = usize::try_from(size.saturating_sub(used)).unwrap_or(0);
    let mut text = String::with_capacity(head.len() + padding + tail.len());
    text.push_str(&head);
    text.extend(std::iter::repeat_n('x', padding));
    text.push_str(tail);
    text
}

/// `/delay?ms=N`: answers after N milliseconds.
async fn delay(ctx: &Ctx<'_>) -> Outcome {
    let ms = ctx.query.number_or("ms", 0, MAX_WAIT_MS)?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(json(StatusCode::OK, &json!({ "delayed_ms": ms })))
}

/// `/flaky?key=K&fail=N[&code=503]`: fails the first N requests for K, then succeeds.
fn flaky(ctx: &Ctx<'_>) -> Outcome {
    let attempt = ctx.key_count.ok_or("/flaky needs key=K")?;
    let fail = ctx.query.number_or("fail", 1, u64::MAX)?;
    let code = status_param(ctx.query, "code", StatusCode::SERVICE_UNAVAILABLE)?;
    if attempt <= fail {
        let body = json!({ "attempt": attempt, "status": code.as_u16() });
        return Ok(json(code, &body));
    }
    Ok(json(StatusCode::OK, &json!({ "attempt": attempt })))
}

/// `/retry-after?key=K&seconds=S[&code=429]`: refuses the first request for K with a
/// `Retry-After`, then reports how long the client waited.
fn retry_after(ctx: &Ctx<'_>) -> Outcome {
    let key = ctx.query.get("key").ok_or("/retry-after needs key=K")?;
    let seconds = ctx.query.number_or("seconds", 1, MAX_WAIT_MS / 1000)?;
    let code = status_param(ctx.query, "code", StatusCode::TOO_MANY_REQUESTS)?;
    match ctx.state.retry_first_seen(key) {
        None => {
            let mut res = json(code, &json!({ "retry_after": seconds }));
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
            Ok(res)
        }
        Some(first) => {
            let waited = u64::try_from(first.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok(json(StatusCode::OK, &json!({ "waited_ms": waited })))
        }
    }
}

/// Reads an optional status-code parameter, rejecting codes that are not 100..=599.
fn status_param(query: &Query, name: &str, default: StatusCode) -> Result<StatusCode, String> {
    match query.number(name)? {
        None => Ok(default),
        Some(code) => parse_status(&code.to_string()),
    }
}

/// A status code from text, if it is a real one (100..=599).
fn parse_status(text: &str) -> Result<StatusCode, String> {
    text.parse::<u16>()
        .ok()
        .filter(|code| (100..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| format!("{text:?} is not a status code in 100..=599"))
}

/// `/echo`: describes the request back as JSON.
async fn echo(req: Request<Incoming>, ctx: &Ctx<'_>) -> Outcome {
    let (parts, incoming) = req.into_parts();
    let bytes = match Limited::new(incoming, ECHO_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let message = "request body too large or broken";
            return Ok(error(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
    };
    let body = json!({
        "method": parts.method.as_str(),
        "headers": headers_json(&parts.headers),
        "body": String::from_utf8_lossy(&bytes),
        "body_len": bytes.len(),
        "query": ctx.query.raw(),
        "http_version": version_name(ctx.version),
    });
    Ok(json(StatusCode::OK, &body))
}

/// Request headers as `{lowercase name: value}`; repeated headers are joined with ", ".
fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        map.insert(name.as_str().to_owned(), Value::String(values.join(", ")));
    }
    Value::Object(map)
}

/// `/status/CODE[?padding=N]`: that status with `{"status":CODE}`, or with
/// `{"status":CODE,"padding":"xxx…"}` and N `x` (a backend's long error page); no body for
/// 204, 205 and 304.
fn status(code: &str, query: &Query) -> Outcome {
    let status = parse_status(code)?;
    let padding = query.number_or("padding", 0, 16 * 1024 * 1024)? as usize;
    let res = match status.as_u16() {
        204 | 205 | 304 => {
            let mut res = json_text(status, Bytes::new());
            res.headers_mut().remove(hyper::header::CONTENT_TYPE);
            res
        }
        code if padding > 0 => json(
            status,
            &json!({ "status": code, "padding": "x".repeat(padding) }),
        ),
        code => json(status, &json!({ "status": code })),
    };
    Ok(res)
}

/// `/redirect/CODE?to=PATH`: a redirect of that kind to `to` (default `/echo`).
fn redirect(code: &str, ctx: &Ctx<'_>) -> Outcome {
    let status = parse_status(code)?;
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return Err(format!(
            "{code} is not a redirect code (301, 302, 303, 307, 308)"
        ));
    }
    let to = ctx.query.get("to").unwrap_or("/echo");
    if HeaderValue::from_str(to).is_err() {
        return Err(format!("to={to:?} cannot be a Location header"));
    }
    Ok(redirect_to(status, to))
}

/// A redirect response; `to` must already be a valid header value.
fn redirect_to(status: StatusCode, to: &str) -> Res {
    let mut res = json(status, &json!({ "location": to }));
    if let Ok(location) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, location);
    }
    res
}

/// `/gzip`: the same JSON either way, gzip-encoded only if the client accepts gzip.
fn gzip(headers: &HeaderMap) -> Res {
    let accepts_gzip = headers.get_all(ACCEPT_ENCODING).iter().any(|value| {
        String::from_utf8_lossy(value.as_bytes())
            .to_ascii_lowercase()
            .contains("gzip")
    });
    let text = json!({
        "compressed": accepts_gzip,
        "text": "the quick brown fox jumps over the lazy dog ".repeat(20),
    })
    .to_string();
    let mut res = match accepts_gzip.then(|| gzip_bytes(text.as_bytes())) {
        Some(Ok(compressed)) => {
            let mut res = json_text(StatusCode::OK, compressed);
            res.headers_mut()
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            res
        }
        Some(Err(_)) => error(StatusCode::INTERNAL_SERVER_ERROR, "gzip failed"),
        None => json_text(StatusCode::OK, text),
    };
    res.headers_mut()
        .insert(VARY, HeaderValue::from_static("accept-encoding"));
    res
}

/// Gzip-compresses `data` in memory.
fn gzip_bytes(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data)?;
    encoder.finish()
}

/// `/big?bytes=N[&chunked=1]`: N bytes of filler, streamed, with a `Content-Length`
/// unless `chunked=1`.
fn big(ctx: &Ctx<'_>) -> Outcome {
    let size = ctx.query.number_or("bytes", 1_000_000, MAX_BYTES)?;
    let mut res = body::with_type(StatusCode::OK, "application/json", body::filler(size));
    if !ctx.query.flag("chunked") {
        res.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(size));
    }
    Ok(res)
}

/// `/trickle?chunks=N&interval_ms=M`: N small chunks, M ms apart.
fn trickle(ctx: &Ctx<'_>) -> Outcome {
    let chunks = ctx.query.number_or("chunks", 5, 1_000_000)?;
    let interval = ctx.query.number_or("interval_ms", 100, MAX_WAIT_MS)?;
    let stream = body::trickle(chunks, Duration::from_millis(interval));
    Ok(body::with_type(StatusCode::OK, "text/plain", stream))
}

/// `/reset-mid-body`: promises 10000 bytes, sends 100, then kills the connection.
fn reset_mid_body() -> Res {
    let mut res = body::with_type(
        StatusCode::OK,
        "application/octet-stream",
        body::broken(100),
    );
    res.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("10000"));
    res
}

/// `/deep-json?depth=N`: N nested arrays.
fn deep_json(ctx: &Ctx<'_>) -> Outcome {
    let depth = ctx.query.number_or("depth", 1000, 100_000_000)?;
    let depth = usize::try_from(depth).map_err(|_| "depth too large".to_owned())?;
    let text = "[".repeat(depth) + &"]".repeat(depth);
    Ok(json_text(StatusCode::OK, text))
}

/// `/non-utf8`: text that claims UTF-8 but is not.
fn non_utf8() -> Res {
    body::with_type(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        body::full(&[0xff_u8, 0xfe, 0x41, 0x80][..]),
    )
}

/// Most fields `/many-headers` sends; beyond any client's limit, below a runaway.
const MAX_FIELDS: u64 = 100_000;

/// `/many-headers?count=N`: N extra fields `x-field-0: value-0` … `x-field-<N-1>`.
fn many_headers(ctx: &Ctx<'_>) -> Outcome {
    let count = ctx.query.number_or("count", 300, MAX_FIELDS)?;
    let mut res = json(StatusCode::OK, &json!({ "fields": count }));
    for i in 0..count {
        let name =
            HeaderName::from_bytes(format!("x-field-{i}").as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(&format!("value-{i}")).map_err(|e| e.to_string())?;
        res.headers_mut().insert(name, value);
    }
    Ok(res)
}

/// `/big-header?bytes=N`: one field `x-big` whose value is N bytes of `a`.
fn big_header(ctx: &Ctx<'_>) -> Outcome {
    let size = ctx.query.number_or("bytes", 60_000, 16 * 1024 * 1024)?;
    let size = usize::try_from(size).map_err(|_| "bytes too large".to_owned())?;
    let value = HeaderValue::from_str(&"a".repeat(size)).map_err(|e| e.to_string())?;
    let mut res = json(StatusCode::OK, &json!({ "bytes": size }));
    res.headers_mut()
        .insert(HeaderName::from_static("x-big"), value);
    Ok(res)
}

/// `/repeated-header`: `x-dup: first` and `x-dup: second`, as two fields.
fn repeated_header() -> Res {
    let mut res = json(StatusCode::OK, &json!({ "repeated": "x-dup" }));
    let name = HeaderName::from_static("x-dup");
    res.headers_mut()
        .append(name.clone(), HeaderValue::from_static("first"));
    res.headers_mut()
        .append(name, HeaderValue::from_static("second"));
    res
}
