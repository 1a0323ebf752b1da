//! A real HTTP server on 127.0.0.1 for the tests: one plain listener and one TLS listener
//! (ALPN `h2` and `http/1.1`), both serving the endpoints below over HTTP/1.1 and HTTP/2.
//!
//! Every response carries `x-http-version: HTTP/1.1` or `HTTP/2.0`, the version the
//! request came in on. Query parameters are plain `name=value` pairs; a bad number or a
//! missing required parameter gets 400 `{"error": "..."}`, an unknown path 404
//! `{"error":"no such endpoint","path":"..."}`.
//!
//! Counted endpoints (everything except the control endpoints below):
//! - `/json`: 200 `application/json`, exactly
//!   `{"int":42,"negative":-7,"float":3.5,"small_float":0.125,"big_int":123456789012345678901234,"bool":true,"null":null,"unicode":"héllo wörld ✓ 日本語 🎮","escaped":"quote\" backslash\\ tab\t newline\n \u00e9","nested":{"array":[1,2.5,[3,"four",{"five":5}]],"object":{"a":null,"b":[true,false]}},"empty_array":[],"empty_object":{},"http_version":"HTTP/1.1"}`
//!   (`"http_version"` is `"HTTP/2.0"` over h2). `/json?bytes=N`:
//!   `{"bytes":N,"padding":"xxx…"}`, exactly N bytes long (or the shortest such object).
//! - `/delay?ms=N`: waits N ms (default 0, at most 600000), then `{"delayed_ms":N}`.
//! - `/status/CODE` (100..=599): that status with `{"status":CODE}`; empty body for 204,
//!   205 and 304. `?padding=N` adds `"padding":"xxx…"` (N bytes) to the object.
//! - `/flaky?key=K&fail=N[&code=503]`: the first N requests carrying key K (default N=1)
//!   answer `code` with `{"attempt":M,"status":code}`, later ones 200 `{"attempt":M}`,
//!   M being the per-key count below (1-based).
//! - `/retry-after?key=K&seconds=S[&code=429]`: the first request for K answers `code`
//!   with `Retry-After: S` and `{"retry_after":S}`; every later one 200
//!   `{"waited_ms":N}`, the time since that first request.
//! - `/echo` (any method): `{"method","headers":{lowercase name: value},"body" (lossy
//!   UTF-8),"body_len","query" (raw, without `?`),"http_version"}`. Bodies over 64 MiB get
//!   413. `/headers`: just the headers object. Repeated headers are joined with ", ".
//! - `/redirect/CODE?to=PATH` (301, 302, 303, 307, 308; `to` defaults to `/echo`):
//!   `Location: PATH`. `/redirect-loop`: 302 to itself, forever.
//! - `/gzip`: `{"compressed":B,"text":"the quick brown fox…"}` with
//!   `Content-Encoding: gzip` only if `Accept-Encoding` mentions gzip; B says which.
//! - `/big?bytes=N[&chunked=1]`: N bytes (default 1000000) of `{"filler":"…"},\n` lines,
//!   streamed 64 KiB at a time, with `Content-Length` unless `chunked=1`.
//! - `/trickle?chunks=N&interval_ms=M` (defaults 5 and 100): `chunk 0\n`, `chunk 1\n`, …,
//!   the first at once, then one every M ms.
//! - `/reset-mid-body`: `Content-Length: 10000`, 100 bytes `x`, ~100 ms later the
//!   connection is closed (HTTP/1.1) or the stream reset (HTTP/2): clients report an
//!   incomplete body, never success.
//! - `/bad-json`: 200 `application/json` `{"a": 1,,}`.
//! - `/deep-json?depth=N` (default 1000): N `[` then N `]`.
//! - `/non-utf8`: 200 `text/plain; charset=utf-8` with bytes `ff fe 41 80`.
//! - `/many-headers?count=N` (default 300): `{"fields":N}` with N extra fields
//!   `x-field-I: value-I`. `/big-header?bytes=N` (default 60000): `{"bytes":N}` with one
//!   field `x-big` of N bytes `a`. `/repeated-header`: `x-dup: first` and `x-dup: second`
//!   as two fields.
//! - `/bom-json`: 200 `application/json`, a UTF-8 byte order mark then `{"bom":true}`.
//!   `/huge-number`: `{"ratio":1e400,"negative":-1e400,"ok":1}`.
//!
//! On counted endpoints, `key=K` adds one to K's count (shared by all endpoints, so use a
//! fresh key per test) and `id=X` appends X to the arrival log when the request's headers
//! arrive. Each counted request adds one to `requests` and stays in flight until its
//! response body is sent, which drives `in_flight` and `peak_concurrency`.
//!
//! Downloads and streams: `/download`, `/download/sha256`, `/sse`, `/sse/fixture`,
//! `/sse/plain`, `/lines`, `/transfer/log` (see [`transfer_routes`]).
//!
//! `/outbox/*`: a backend that honours `Idempotency-Key`, see [`outbox_routes`].
//!
//! Control endpoints (any method, never counted): `/stats` →
//! `{"connections","http_connections","https_connections","requests","in_flight",
//! "peak_concurrency"}`; `/stats/reset` (resets and returns them); `/order` → JSON array of
//! ids; `/order/reset`; `/count?key=K` → `{"count":N}`; `/ca.pem` → the CA to trust;
//! `/self-signed` → `{"url","pem"}` of the listener with an OpenSSL-style self-signed
//! certificate (see [`TestServer::self_signed_url`]).

mod body;
pub mod outbox_routes;
mod query;
pub mod raw;
mod routes;
mod state;
mod tls;
pub mod transfer_routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub use state::Stats;
use state::{Listener, State};

/// Header on every response naming the HTTP version the request came in on.
pub const VERSION_HEADER: &str = "x-http-version";

/// The body of `GET /json` up to the value of `"http_version"`; the full body is in the module docs.
pub const JSON_FIXTURE_HEAD: &str = concat!(
    r#"{"int":42,"negative":-7,"float":3.5,"small_float":0.125,"#,
    r#""big_int":123456789012345678901234,"bool":true,"null":null,"#,
    r#""unicode":"héllo wörld ✓ 日本語 🎮","#,
    r#""escaped":"quote\" backslash\\ tab\t newline\n \u00e9","#,
    r#""nested":{"array":[1,2.5,[3,"four",{"five":5}]],"object":{"a":null,"b":[true,false]}},"#,
    r#""empty_array":[],"empty_object":{},"http_version":""#
);

/// How long a client may take to finish a TLS handshake before its socket is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running test server: where to reach it, what to trust, and what it has seen.
/// Cloning shares the same server. It runs until its tokio runtime shuts down.
#[derive(Clone)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub http_url: String,
    /// `https://127.0.0.1:PORT`, no trailing slash; TLS with ALPN `h2` and `http/1.1`.
    pub https_url: String,
    /// PEM of the CA a client must trust for `https_url` (certificate SANs: `127.0.0.1`,
    /// `localhost`). Also served at `GET /ca.pem`.
    pub ca_pem: String,
    /// `https://127.0.0.1:PORT` of a third listener serving the same endpoints with an
    /// OpenSSL-style self-signed certificate (`basicConstraints CA:TRUE`, no chain) for
    /// `127.0.0.1` and `localhost`.
    pub self_signed_url: String,
    /// PEM of that self-signed certificate, the one thing a client must trust for it.
    pub self_signed_pem: String,
    /// Address of the plain HTTP listener.
    pub http_addr: SocketAddr,
    /// Address of the TLS listener.
    pub https_addr: SocketAddr,
    state: Arc<State>,
}

impl TestServer {
    /// Binds both listeners on `127.0.0.1:0` and serves them on the current tokio runtime.
    ///
    /// Panics if the loopback address cannot be bound or the certificate cannot be made:
    /// the test cannot run at all then.
    pub async fn start() -> TestServer {
        let tls = tls::generate().expect("test server: cannot generate TLS certificates");
        let own = tls::openssl_style_self_signed()
            .expect("test server: cannot generate the self-signed certificate");
        let http = bind().await;
        let https = bind().await;
        let self_signed = bind().await;
        let http_addr = local_addr(&http);
        let https_addr = local_addr(&https);
        let self_signed_url = format!("https://{}", local_addr(&self_signed));
        let state = Arc::new(State::new(
            tls.ca_pem.clone(),
            self_signed_url.clone(),
            own.ca_pem.clone(),
        ));
        tokio::spawn(accept_loop(http, None, Arc::clone(&state)));
        tokio::spawn(accept_loop(https, Some(tls.acceptor), Arc::clone(&state)));
        tokio::spawn(accept_loop(
            self_signed,
            Some(own.acceptor),
            Arc::clone(&state),
        ));
        TestServer {
            http_url: format!("http://{http_addr}"),
            https_url: format!("https://{https_addr}"),
            self_signed_url,
            self_signed_pem: own.ca_pem,
            ca_pem: tls.ca_pem,
            http_addr,
            https_addr,
            state,
        }
    }

    /// What the server has counted so far, so tests can assert on connection reuse and
    /// parallelism.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Zeroes the counters, so a test can measure only its own traffic.
    pub fn reset_stats(&self) {
        self.state.reset_stats();
    }

    /// The `id`s of requests in the order their headers arrived.
    pub fn order(&self) -> Vec<String> {
        self.state.arrivals()
    }

    /// Clears the arrival-order log.
    pub fn reset_order(&self) {
        self.state.clear_arrivals();
    }

    /// How many requests carried `key=K` (e.g. to prove a POST was sent only once).
    pub fn key_count(&self, key: &str) -> u64 {
        self.state.key_count(key)
    }
}

/// Starts a server on its own runtime in a background thread and returns once it listens.
/// It lives until the process exits; for plain `#[test]`s such as the Godot test driver.
pub fn start_blocking() -> TestServer {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-http-server".to_owned())
        .spawn(move || run_forever(sender))
        .expect("test server: cannot spawn its thread");
    receiver
        .recv()
        .expect("test server: its thread stopped before listening")
}

/// Body of the `start_blocking` thread: start, report, then serve until the process ends.
fn run_forever(sender: std::sync::mpsc::Sender<TestServer>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test server: cannot build its tokio runtime");
    runtime.block_on(async move {
        let server = TestServer::start().await;
        // The receiver only goes away if the caller's thread died; serve anyway.
        let _ = sender.send(server);
        std::future::pending::<()>().await;
    });
}

/// A listener on a free loopback port.
async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("test server: cannot bind 127.0.0.1:0")
}

/// The address a fresh listener got; cannot fail for a bound TCP listener.
fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("test server: bound listener has no address")
}

/// Accepts connections forever, counting each, and serves each on its own task.
async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, state: Arc<State>) {
    let kind = if tls.is_some() {
        Listener::Https
    } else {
        Listener::Http
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors or an aborted handshake: wait and keep going.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        state.connection_accepted(kind);
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_stream(stream, tls.clone(), Arc::clone(&state)));
    }
}

/// Runs the TLS handshake if needed, then serves HTTP on the stream.
async fn serve_stream(stream: TcpStream, tls: Option<TlsAcceptor>, state: Arc<State>) {
    let Some(acceptor) = tls else {
        return serve_http(stream, state).await;
    };
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    if let Ok(Ok(stream)) = handshake.await {
        serve_http(stream, state).await;
    }
}

/// Serves HTTP/1.1 (keep-alive) or HTTP/2 on one connection until the client leaves.
async fn serve_http<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(routes::handle(req, state).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    // A connection error is the client's doing (or a deliberate abort): nothing to do.
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}
