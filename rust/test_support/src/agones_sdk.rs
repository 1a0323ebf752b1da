//! A real HTTP server on 127.0.0.1 implementing the Agones SDK REST contract, standing in
//! for Agones' own sidecar (`sdk-server --local`, a Go binary that is not installable
//! here). The contract followed is Agones' "REST Game Server Client API" page and the
//! SDK's `sdk.proto` / `alpha.proto` HTTP mappings:
//!
//! - `POST /ready` (body `{}`): state `RequestReady`, then ~20 ms later `Ready`, as the
//!   controller would do it (two watch updates).
//! - `POST /allocate`: `Allocated`. `POST /shutdown`: `Shutdown` (final: later lifecycle
//!   calls succeed but change nothing, the pod is going away).
//! - `POST /reserve` `{"seconds": "N"}` (a string, as grpc-gateway writes int64, or a
//!   number): `Reserved`; after N seconds (N > 0) back to `Ready` unless another call moved
//!   it meanwhile. A missing, negative or non-integer `seconds` gets 400.
//! - `POST /health` (body `{}`): one health ping, counted with its arrival time.
//! - `PUT /metadata/label` and `PUT /metadata/annotation` `{"key": K, "value": V}`:
//!   stored as `agones.dev/sdk-K` in `object_meta.labels` / `.annotations`. A body without
//!   string `key` and `value` gets 400.
//! - `GET /gameserver`: the record (see `game_server.rs` for its shape: snake_case, int64
//!   as strings).
//! - `GET /watch/gameserver`: a response that never ends, one line per update,
//!   `{"result": GameServer}\n`, the current record first.
//! - Alpha player tracking: `POST /alpha/player/connect` and `/disconnect`
//!   `{"playerID": ID}` → `{"bool": B}` (connect beyond capacity: 500, as the local SDK
//!   server answers), `PUT /alpha/player/capacity` `{"count": "N"}`, `GET
//!   /alpha/player/capacity` and `/count` → `{"count": "N"}`, `GET /alpha/player/connected`
//!   → `{"list": [...]}`, `GET /alpha/player/connected/ID` → `{"bool": B}`.
//! - Beta Counters and Lists (`beta.proto`): `GET`/`PATCH /v1beta1/counters/NAME`,
//!   `GET`/`PATCH /v1beta1/lists/NAME`, `POST /v1beta1/lists/NAME:addValue` and
//!   `:removeValue`, with the rules and messages of Agones' own SDK server (see
//!   `counts_lists.rs`): not found, out of range (full List, count outside `[0,
//!   capacity]`) and already exists are HTTP 500, code 2. Every GameServer declares the
//!   Counter `rooms` (count 0, capacity 10) and the List `players` (capacity 8, empty).
//! - Anything else: 404 `{"code": 5, "message": "Not Found"}` (grpc-gateway's error shape);
//!   a body that is not JSON: 400 `{"code": 3, "message": ...}`.
//!
//! Test control endpoints (not part of Agones, under `/test/`, never logged):
//! - `GET /test/pings` → `{"now_ms", "count", "times_ms": [...]}`: health pings, in ms
//!   since this instance was created.
//! - `GET /test/requests` → `{"now_ms", "requests": [{"at_ms", "line": "POST /ready"}]}`.
//! - `POST /test/allocate` → the record: moves it to `Allocated` the way a
//!   GameServerAllocation from a matchmaker does, without the game asking.
//! - `POST /test/new?delay_ms=N` → `{"port", "url"}`: a fresh, independent instance (its
//!   own GameServer in state `Scheduled`) whose port is reserved now and accepts
//!   connections only after N ms, like a sidecar that starts after the game. Until then a
//!   connection is refused (the socket is bound but not listening), not left hanging.

mod counts_lists;
mod game_server;
pub mod hostile;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast;

use game_server::GameServer;
pub use game_server::GsState;

/// Largest request body read; the SDK's bodies are tiny.
const BODY_LIMIT: usize = 64 * 1024;
/// How long the simulated controller takes to move RequestReady to Ready.
const CONTROLLER_DELAY: Duration = Duration::from_millis(20);
/// Updates a slow watcher may fall behind before it is sent the current record instead.
const WATCH_BACKLOG: usize = 256;
/// The UDP port every test GameServer publishes in `status.ports`.
const GAME_PORT: u16 = 7777;

type ResBody = UnsyncBoxBody<Bytes, Infallible>;
type Res = Response<ResBody>;

/// One test SDK server (an "instance": one GameServer, one port). Cloning shares it.
#[derive(Clone)]
pub struct AgonesSdkServer {
    /// The port, as a game reads it from `AGONES_SDK_HTTP_PORT`.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    inner: Arc<Instance>,
}

struct Instance {
    created: Instant,
    gs: Mutex<GameServer>,
    updates: broadcast::Sender<Value>,
    pings: Mutex<Vec<Duration>>,
    requests: Mutex<Vec<(Duration, String)>>,
}

/// Names instances `netkit-test-1`, `-2`, ... across the process.
static NEXT_NAME: AtomicU64 = AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AgonesSdkServer {
    /// Starts an instance listening now. Must be called inside a tokio runtime, which
    /// then serves it.
    pub fn start() -> AgonesSdkServer {
        Self::start_after(Duration::ZERO)
    }

    /// Starts an instance whose port is reserved now and that listens after `delay`.
    /// Must be called inside a tokio runtime.
    ///
    /// Panics when 127.0.0.1 cannot be bound: no test can run then.
    pub fn start_after(delay: Duration) -> AgonesSdkServer {
        let socket = TcpSocket::new_v4().expect("agones test server: cannot create a socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("agones test server: cannot bind 127.0.0.1:0");
        let port = socket
            .local_addr()
            .expect("agones test server: bound socket has no address")
            .port();
        let name = format!("netkit-test-{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed));
        let inner = Arc::new(Instance {
            created: Instant::now(),
            gs: Mutex::new(GameServer::new(name, GAME_PORT)),
            updates: broadcast::channel(WATCH_BACKLOG).0,
            pings: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let server = AgonesSdkServer {
            port,
            url: format!("http://127.0.0.1:{port}"),
            inner,
        };
        let serving = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            // Bound but not listening until now: connections were refused, as with a
            // sidecar container that has not started yet.
            let listener = socket
                .listen(1024)
                .expect("agones test server: cannot listen on its reserved port");
            serving.accept_loop(listener).await;
        });
        server
    }

    /// Starts an instance on its own runtime in a background thread, listening now; it
    /// lives until the process exits (for plain `#[test]`s such as the Godot drivers).
    pub fn start_blocking() -> AgonesSdkServer {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("agones-test-sdk".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("agones test server: cannot build its tokio runtime");
                runtime.block_on(async move {
                    let _ = sender.send(AgonesSdkServer::start());
                    std::future::pending::<()>().await;
                });
            })
            .expect("agones test server: cannot spawn its thread");
        receiver
            .recv()
            .expect("agones test server: its thread stopped before listening")
    }

    /// `status.state` now, e.g. `"Ready"`.
    pub fn state(&self) -> String {
        lock(&self.inner.gs).state.name().to_owned()
    }

    /// The record as `GET /gameserver` returns it.
    pub fn game_server(&self) -> Value {
        lock(&self.inner.gs).to_json()
    }

    /// Arrival times of health pings since the instance was created.
    pub fn health_pings(&self) -> Vec<Duration> {
        lock(&self.inner.pings).clone()
    }

    /// SDK requests in arrival order, as `"METHOD /path"` (test endpoints excluded).
    pub fn requests(&self) -> Vec<String> {
        lock(&self.inner.requests)
            .iter()
            .map(|(_, line)| line.clone())
            .collect()
    }

    async fn accept_loop(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(self.clone().serve(stream));
                }
                // Out of descriptors or an aborted connection: wait and keep going.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    async fn serve(self, stream: TcpStream) {
        let service = service_fn(move |req| {
            let server = self.clone();
            async move { Ok::<_, Infallible>(server.handle(req).await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).keep_alive(true);
        // A connection error is the client's doing: nothing to do.
        let _ = builder
            .serve_connection(TokioIo::new(stream), service)
            .await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Res {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        if let Some(rest) = path.strip_prefix("/test/") {
            return self.control(&method, rest, &query).await;
        }
        lock(&self.inner.requests).push((self.inner.created.elapsed(), format!("{method} {path}")));
        let body = match read_json(req).await {
            Ok(body) => body,
            Err(message) => return grpc_error(StatusCode::BAD_REQUEST, 3, &message),
        };
        match self.route(&method, &path, &body) {
            Ok(res) => res,
            Err((status, code, message)) => grpc_error(status, code, &message),
        }
    }

    fn route(
        &self,
        method: &Method,
        path: &str,
        body: &Value,
    ) -> Result<Res, (StatusCode, u8, String)> {
        let bad = |message: String| (StatusCode::BAD_REQUEST, 3u8, message);
        match (method.as_str(), path) {
            ("POST", "/ready") => {
                self.change(|gs| gs.set_state(GsState::RequestReady));
                let server = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(CONTROLLER_DELAY).await;
                    server.change(|gs| {
                        gs.state == GsState::RequestReady && gs.set_state(GsState::Ready)
                    });
                });
                Ok(empty())
            }
            ("POST", "/allocate") => {
                self.change(|gs| gs.set_state(GsState::Allocated));
                Ok(empty())
            }
            ("POST", "/shutdown") => {
                self.change(|gs| gs.set_state(GsState::Shutdown));
                Ok(empty())
            }
            ("POST", "/reserve") => {
                let seconds = int_field(body, "seconds")
                    .filter(|s| *s >= 0)
                    .ok_or_else(|| {
                        bad(format!(
                            "reserve needs {{\"seconds\": \"N\"}} with N >= 0, got {body}"
                        ))
                    })?;
                let mut generation = 0;
                self.change(|gs| {
                    gs.reserve_generation += 1;
                    generation = gs.reserve_generation;
                    gs.set_state(GsState::Reserved)
                });
                if seconds > 0 {
                    let server = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(seconds as u64)).await;
                        server.change(|gs| {
                            gs.reserve_generation == generation
                                && gs.state == GsState::Reserved
                                && gs.set_state(GsState::Ready)
                        });
                    });
                }
                Ok(empty())
            }
            ("POST", "/health") => {
                lock(&self.inner.pings).push(self.inner.created.elapsed());
                Ok(empty())
            }
            ("PUT", "/metadata/label" | "/metadata/annotation") => {
                let (Some(key), Some(value)) = (str_field(body, "key"), str_field(body, "value"))
                else {
                    return Err(bad(format!(
                        "expected {{\"key\": string, \"value\": string}}, got {body}"
                    )));
                };
                let label = path.ends_with("label");
                self.change(|gs| {
                    if label {
                        gs.set_label(key, value);
                    } else {
                        gs.set_annotation(key, value);
                    }
                    true
                });
                Ok(empty())
            }
            ("GET", "/gameserver") => Ok(json_res(StatusCode::OK, &self.game_server())),
            ("GET", "/watch/gameserver") => Ok(self.watch()),
            (_, p) if p.starts_with("/alpha/player/") => self.players(method, p, body),
            (m, p) if p.starts_with("/v1beta1/") => {
                let mut gs = lock(&self.inner.gs);
                match counts_lists::route(&mut gs, m, p, body) {
                    None => Err((StatusCode::NOT_FOUND, 5, "Not Found".to_owned())),
                    Some(Err(refusal)) => Err(refusal),
                    Some(Ok((answer, changed))) => {
                        if changed {
                            let snapshot = gs.to_json();
                            drop(gs);
                            let _ = self.inner.updates.send(snapshot);
                        }
                        Ok(json_res(StatusCode::OK, &answer))
                    }
                }
            }
            _ => Err((StatusCode::NOT_FOUND, 5, "Not Found".to_owned())),
        }
    }

    /// Alpha player tracking, with the local SDK server's rules.
    fn players(
        &self,
        method: &Method,
        path: &str,
        body: &Value,
    ) -> Result<Res, (StatusCode, u8, String)> {
        let rest = path.trim_start_matches("/alpha/player/");
        let player = || {
            str_field(body, "playerID")
                .map(str::to_owned)
                .ok_or_else(|| {
                    (
                        StatusCode::BAD_REQUEST,
                        3u8,
                        format!("expected {{\"playerID\": string}}, got {body}"),
                    )
                })
        };
        let boolean = |b: bool| Ok(json_res(StatusCode::OK, &json!({ "bool": b })));
        match (method.as_str(), rest) {
            ("POST", "connect") => {
                let id = player()?;
                let mut gs = lock(&self.inner.gs);
                if gs.players.contains(&id) {
                    return boolean(false);
                }
                if gs.players.len() as i64 >= gs.player_capacity {
                    return Err((
                        StatusCode::INTERNAL_SERVER_ERROR,
                        2,
                        "Players are already at capacity".to_owned(),
                    ));
                }
                gs.players.push(id);
                gs.resource_version += 1;
                let snapshot = gs.to_json();
                drop(gs);
                let _ = self.inner.updates.send(snapshot);
                boolean(true)
            }
            ("POST", "disconnect") => {
                let id = player()?;
                let mut removed = false;
                self.change(|gs| {
                    let before = gs.players.len();
                    gs.players.retain(|p| *p != id);
                    removed = gs.players.len() != before;
                    if removed {
                        gs.resource_version += 1;
                    }
                    removed
                });
                boolean(removed)
            }
            ("PUT", "capacity") => {
                let count = int_field(body, "count")
                    .filter(|c| *c >= 0)
                    .ok_or_else(|| {
                        (
                            StatusCode::BAD_REQUEST,
                            3u8,
                            format!("expected {{\"count\": \"N\"}}, got {body}"),
                        )
                    })?;
                self.change(|gs| {
                    gs.player_capacity = count;
                    gs.resource_version += 1;
                    true
                });
                Ok(empty())
            }
            ("GET", "capacity") => {
                let n = lock(&self.inner.gs).player_capacity;
                Ok(json_res(StatusCode::OK, &json!({ "count": n.to_string() })))
            }
            ("GET", "count") => {
                let n = lock(&self.inner.gs).players.len();
                Ok(json_res(StatusCode::OK, &json!({ "count": n.to_string() })))
            }
            ("GET", "connected") => {
                let list = lock(&self.inner.gs).players.clone();
                Ok(json_res(StatusCode::OK, &json!({ "list": list })))
            }
            ("GET", id) if id.starts_with("connected/") => {
                let id = id.trim_start_matches("connected/");
                let connected = lock(&self.inner.gs).players.iter().any(|p| p == id);
                boolean(connected)
            }
            _ => Err((StatusCode::NOT_FOUND, 5, "Not Found".to_owned())),
        }
    }

    /// Applies `f` to the record; when it reports a change, every watcher gets the new record.
    fn change(&self, f: impl FnOnce(&mut GameServer) -> bool) {
        let mut gs = lock(&self.inner.gs);
        if f(&mut gs) {
            let snapshot = gs.to_json();
            drop(gs);
            // No watcher is not an error.
            let _ = self.inner.updates.send(snapshot);
        }
    }

    /// The never-ending watch response: the current record, then every update.
    fn watch(&self) -> Res {
        let rx = self.inner.updates.subscribe();
        let first = self.game_server();
        let server = self.clone();
        let lines = stream::unfold((Some(first), rx), move |(first, mut rx)| {
            let server = server.clone();
            async move {
                let value = match first {
                    Some(value) => value,
                    None => match rx.recv().await {
                        Ok(value) => value,
                        // Fell behind: the current record says everything that matters.
                        Err(broadcast::error::RecvError::Lagged(_)) => server.game_server(),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                };
                let line = format!("{}\n", json!({ "result": value }));
                Some((
                    Ok::<_, Infallible>(Frame::data(Bytes::from(line))),
                    (None, rx),
                ))
            }
        });
        let mut res = Response::new(StreamBody::new(lines).boxed_unsync());
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }

    async fn control(&self, method: &Method, rest: &str, query: &str) -> Res {
        let now_ms = self.inner.created.elapsed().as_millis() as u64;
        let ms = |d: &Duration| d.as_millis() as u64;
        match (method.as_str(), rest) {
            ("GET", "pings") => {
                let times: Vec<u64> = lock(&self.inner.pings).iter().map(ms).collect();
                json_res(
                    StatusCode::OK,
                    &json!({ "now_ms": now_ms, "count": times.len(), "times_ms": times }),
                )
            }
            ("GET", "requests") => {
                let requests: Vec<Value> = lock(&self.inner.requests)
                    .iter()
                    .map(|(at, line)| json!({ "at_ms": ms(at), "line": line }))
                    .collect();
                json_res(
                    StatusCode::OK,
                    &json!({ "now_ms": now_ms, "requests": requests }),
                )
            }
            ("POST", "allocate") => {
                self.change(|gs| gs.set_state(GsState::Allocated));
                json_res(StatusCode::OK, &self.game_server())
            }
            ("POST", "new") => {
                let delay_ms = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("delay_ms="))
                    .map_or(Ok(0), str::parse::<u64>);
                let Ok(delay_ms) = delay_ms else {
                    return grpc_error(StatusCode::BAD_REQUEST, 3, "delay_ms must be an integer");
                };
                let fresh =
                    AgonesSdkServer::start_after(Duration::from_millis(delay_ms.min(600_000)));
                json_res(
                    StatusCode::OK,
                    &json!({ "port": fresh.port, "url": fresh.url }),
                )
            }
            _ => grpc_error(StatusCode::NOT_FOUND, 5, "Not Found"),
        }
    }
}

/// The request body as JSON; an empty body is `{}` (as grpc-gateway treats it).
async fn read_json(req: Request<Incoming>) -> Result<Value, String> {
    let bytes = Limited::new(req.into_body(), BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| format!("cannot read the body: {e}"))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("the body is not JSON: {e}"))
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)?.as_str()
}

/// An int64 field as grpc-gateway accepts it: a JSON number or a decimal string.
fn int_field(body: &Value, name: &str) -> Option<i64> {
    match body.get(name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn json_res(status: StatusCode, value: &Value) -> Res {
    let mut res = Response::new(Full::new(Bytes::from(value.to_string())).boxed_unsync());
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// The SDK's empty answer, `{}`.
fn empty() -> Res {
    json_res(StatusCode::OK, &json!({}))
}

/// grpc-gateway's error body: `{"code": <gRPC code>, "message": ..., "details": []}`.
fn grpc_error(status: StatusCode, code: u8, message: &str) -> Res {
    json_res(
        status,
        &json!({ "code": code, "message": message, "details": [] }),
    )
}
