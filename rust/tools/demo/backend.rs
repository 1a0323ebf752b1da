//! The demo's game backend: a real HTTP server on loopback that issues signed, expiring
//! login tokens and keeps scores, the way a small game's backend would.
//!
//! hyper on loopback. Tokens are `name.expiry.signature`, HMAC-SHA256 signed with ring; the
//! server registry drops servers after 5 s without a heartbeat. `PUT /servers/saves`
//! applies each save once per `Idempotency-Key` and answers `{"replayed": true}` for a
//! repeat.
//!
//! Every answer carries CORS headers and `OPTIONS` preflights are answered, so a Web export
//! (which talks through the browser's `fetch`, not netkit) can use the same endpoints: see
//! [`CORS_ALLOW_HEADERS`].

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use ring::hmac;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How long a login token stays valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// A game server that misses heartbeats for this long is dropped from the registry.
pub const SERVER_TTL: Duration = Duration::from_secs(5);

/// The demo accounts: name and password.
pub const ACCOUNTS: &[(&str, &str)] = &[
    ("alice", "wonderland"),
    ("bob", "builder"),
    ("carol", "singer"),
];

/// A game server in the registry.
#[derive(Clone, Debug)]
pub struct GameServer {
    /// Registry id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Where clients connect (host).
    pub host: String,
    /// Where clients connect (UDP port).
    pub port: u16,
    /// SHA-256 fingerprint of the server's DTLS certificate, for clients to pin.
    pub fingerprint: String,
    /// Last heartbeat.
    pub seen: Instant,
}

/// Shared state of the running backend.
struct State {
    key: hmac::Key,
    server_key: String,
    scores: HashMap<String, i64>,
    servers: HashMap<u64, GameServer>,
    next_server_id: u64,
    /// `Idempotency-Key`s of the saves already applied: a repeat is answered, not applied.
    applied_saves: HashSet<String>,
    log: Vec<String>,
}

impl State {
    fn prune(&mut self) {
        let before: Vec<u64> = self.servers.keys().copied().collect();
        self.servers.retain(|_, s| s.seen.elapsed() < SERVER_TTL);
        for id in before {
            if !self.servers.contains_key(&id) {
                self.log
                    .push(format!("server {id} missed its heartbeats and was dropped"));
            }
        }
    }
}

/// A running backend; it serves until the process exits.
pub struct Backend {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The API key game servers authenticate with (`X-Server-Key`).
    pub server_key: String,
    state: Arc<Mutex<State>>,
}

impl Backend {
    /// Mints a token as the login endpoint would, with any expiry (the demo uses a past
    /// one to show that an expired token is refused).
    pub fn issue_token(&self, name: &str, expiry_unix: u64) -> String {
        issue(&self.lock().key, name, expiry_unix)
    }

    /// The game servers currently registered (expired ones dropped).
    pub fn servers(&self) -> Vec<GameServer> {
        let mut state = self.lock();
        state.prune();
        state.servers.values().cloned().collect()
    }

    /// What the backend did, in order, since the last call.
    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().log)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Starts the backend on 127.0.0.1 with a random port on the given runtime.
pub async fn start() -> std::io::Result<Backend> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let secret: [u8; 32] = rand::random();
    let server_key = hex(&rand::random::<[u8; 16]>());
    let state = Arc::new(Mutex::new(State {
        key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        server_key: server_key.clone(),
        scores: HashMap::from([("zed".to_string(), 120), ("yuki".to_string(), 300)]),
        servers: HashMap::new(),
        next_server_id: 1,
        applied_saves: HashSet::new(),
        log: Vec::new(),
    }));
    let backend = Backend {
        url: format!("http://{addr}"),
        server_key,
        state: state.clone(),
    };
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(backend)
}

/// Request headers a browser may send cross-origin (the preflight's
/// `Access-Control-Allow-Headers`): `Authorization` must be named, `*` does not cover it
/// (Fetch standard, "CORS-unsafe request-header names"); `Content-Type` for JSON bodies;
/// `Idempotency-Key` for saves. `X-Server-Key` is left out: game servers do not run in
/// browsers.
pub const CORS_ALLOW_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key";

/// Methods the endpoints take (the preflight's `Access-Control-Allow-Methods`).
pub const CORS_ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";

/// The CORS headers every answer carries. Any origin may call (`*`): the API is
/// authorized by bearer tokens, not cookies, so another site gains nothing a script
/// could not do anyway; a backend with cookie sessions must name its game's origin
/// instead. A preflight (an `OPTIONS` with `Access-Control-Request-Method`) also gets the
/// methods, headers, and how long the browser may cache the answer.
pub fn cors_headers(preflight: bool) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![("access-control-allow-origin", "*")];
    if preflight {
        headers.extend([
            ("access-control-allow-methods", CORS_ALLOW_METHODS),
            ("access-control-allow-headers", CORS_ALLOW_HEADERS),
            ("access-control-max-age", "600"),
        ]);
    }
    headers
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key("access-control-request-method");
    let mut res = if preflight {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = StatusCode::NO_CONTENT;
        res
    } else {
        route(state, req).await
    };
    for (name, value) in cors_headers(preflight) {
        res.headers_mut()
            .insert(name, hyper::header::HeaderValue::from_static(value));
    }
    Ok(res)
}

async fn route(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let server_key = req
        .headers()
        .get("x-server-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let idempotency_key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return reply(StatusCode::BAD_REQUEST, json!({"error": "unreadable body"}));
        }
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.prune();
    if path.starts_with("/servers/") || path == "/tokens/validate" {
        if server_key.as_deref() != Some(state.server_key.as_str()) {
            return reply(
                StatusCode::FORBIDDEN,
                json!({"error": "this endpoint needs a valid X-Server-Key"}),
            );
        }
        if path == "/servers/saves" {
            return save(&mut state, &method, idempotency_key, &body);
        }
        return game_server_api(&mut state, &method, &path, &body);
    }
    match (method, path.as_str()) {
        (Method::GET, "/servers") => match bearer.as_deref().map(|t| verify(&state.key, t)) {
            Some(Ok(_)) => list_servers(&state),
            Some(Err(why)) => reply(StatusCode::UNAUTHORIZED, json!({"error": why})),
            None => reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing bearer token"}),
            ),
        },
        (Method::POST, "/login") => login(&state, &body),
        (Method::GET, "/leaderboard") => leaderboard(&state),
        (Method::POST, "/scores") => match bearer.as_deref().map(|t| verify(&state.key, t)) {
            Some(Ok(name)) => post_score(&mut state, name, &body),
            Some(Err(why)) => reply(StatusCode::UNAUTHORIZED, json!({"error": why})),
            None => reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing bearer token"}),
            ),
        },
        (Method::GET, "/me") => match bearer.as_deref().map(|t| verify(&state.key, t)) {
            Some(Ok(name)) => {
                let best = state.scores.get(&name).copied();
                reply(StatusCode::OK, json!({"name": name, "best_score": best}))
            }
            Some(Err(why)) => reply(StatusCode::UNAUTHORIZED, json!({"error": why})),
            None => reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing bearer token"}),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "no such endpoint", "path": path}),
        ),
    }
}

/// The endpoints game servers call with their API key: register, heartbeat, deregister,
/// and validate a joining player's token.
fn game_server_api(
    state: &mut State,
    method: &Method,
    path: &str,
    body: &Value,
) -> Response<Full<Bytes>> {
    match (method, path) {
        (&Method::POST, "/servers/register") => {
            let id = state.next_server_id;
            state.next_server_id += 1;
            let server = GameServer {
                id,
                name: body["name"].as_str().unwrap_or("unnamed").to_string(),
                host: body["host"].as_str().unwrap_or("127.0.0.1").to_string(),
                port: body["port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                fingerprint: body["fingerprint"].as_str().unwrap_or("").to_string(),
                seen: Instant::now(),
            };
            state.log.push(format!(
                "server {id} '{}' registered at {}:{}",
                server.name, server.host, server.port
            ));
            state.servers.insert(id, server);
            reply(
                StatusCode::OK,
                json!({"server_id": id, "heartbeat_every": 1.0}),
            )
        }
        (&Method::POST, "/servers/heartbeat") => {
            let id = body["server_id"].as_u64().unwrap_or(0);
            match state.servers.get_mut(&id) {
                Some(server) => {
                    server.seen = Instant::now();
                    reply(StatusCode::OK, json!({"ok": true}))
                }
                None => reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": "unknown or expired server id; register again"}),
                ),
            }
        }
        (&Method::POST, "/servers/deregister") => {
            let id = body["server_id"].as_u64().unwrap_or(0);
            let known = state.servers.remove(&id).is_some();
            if known {
                state.log.push(format!("server {id} deregistered"));
            }
            reply(StatusCode::OK, json!({"removed": known}))
        }
        (&Method::POST, "/tokens/validate") => {
            let token = body["token"].as_str().unwrap_or("");
            match verify(&state.key, token) {
                Ok(name) => {
                    state
                        .log
                        .push(format!("token of {name} validated for a game server"));
                    reply(StatusCode::OK, json!({"valid": true, "name": name}))
                }
                Err(why) => {
                    state.log.push(format!("a token was refused: {why}"));
                    reply(StatusCode::OK, json!({"valid": false, "reason": why}))
                }
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "no such endpoint", "path": path}),
        ),
    }
}

/// `PUT /servers/saves`: what a game server saves through its durable outbox (a player's
/// result when they leave, the world at shutdown). Applied once per `Idempotency-Key`: a
/// repeat (the server sent it again after a lost answer or a restart) is answered as
/// already done, so an outbox's at-least-once delivery applies each save exactly once.
fn save(
    state: &mut State,
    method: &Method,
    key: Option<String>,
    body: &Value,
) -> Response<Full<Bytes>> {
    if method != Method::PUT {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "saves are PUT"}),
        );
    }
    let Some(key) = key else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "a save needs an Idempotency-Key header"}),
        );
    };
    if !state.applied_saves.insert(key.clone()) {
        state.log.push(format!(
            "a repeated save (key {key}) was recognised and not applied again"
        ));
        return reply(StatusCode::OK, json!({"replayed": true}));
    }
    let server = body["server_id"].as_u64().unwrap_or(0);
    let what = match body["kind"].as_str() {
        Some("player") => format!(
            "the result of {} ({} moves)",
            body["player"].as_str().unwrap_or("?"),
            body["moves"].as_u64().unwrap_or(0)
        ),
        Some("world") => format!(
            "the world of server {server} ({} players online)",
            body["players"].as_array().map_or(0, Vec::len)
        ),
        _ => "a save".to_string(),
    };
    state.log.push(format!(
        "stored {what} from server {server}, once (Idempotency-Key {key})"
    ));
    reply(StatusCode::OK, json!({"replayed": false}))
}

fn list_servers(state: &State) -> Response<Full<Bytes>> {
    let mut servers: Vec<&GameServer> = state.servers.values().collect();
    servers.sort_by_key(|s| s.id);
    let servers: Vec<Value> = servers
        .into_iter()
        .map(|s| json!({"id": s.id, "name": s.name, "host": s.host, "port": s.port, "fingerprint": s.fingerprint}))
        .collect();
    reply(StatusCode::OK, json!({"servers": servers}))
}

fn login(state: &State, body: &Value) -> Response<Full<Bytes>> {
    let name = body["name"].as_str().unwrap_or("");
    let password = body["password"].as_str().unwrap_or("");
    if !ACCOUNTS.iter().any(|(n, p)| *n == name && *p == password) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "wrong name or password"}),
        );
    }
    let token = issue(&state.key, name, now() + TOKEN_LIFETIME.as_secs());
    reply(
        StatusCode::OK,
        json!({"token": token, "expires_in": TOKEN_LIFETIME.as_secs(), "name": name}),
    )
}

fn post_score(state: &mut State, name: String, body: &Value) -> Response<Full<Bytes>> {
    let Some(score) = body["score"].as_i64() else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "score must be an integer"}),
        );
    };
    let best = state.scores.entry(name).or_insert(score);
    *best = (*best).max(score);
    let best = *best;
    let rank = 1 + state.scores.values().filter(|s| **s > best).count();
    reply(StatusCode::OK, json!({"best": best, "rank": rank}))
}

fn leaderboard(state: &State) -> Response<Full<Bytes>> {
    let mut entries: Vec<(&String, &i64)> = state.scores.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let entries: Vec<Value> = entries
        .into_iter()
        .take(10)
        .map(|(name, score)| json!({"name": name, "score": score}))
        .collect();
    reply(StatusCode::OK, json!({"entries": entries}))
}

/// A token is `name.expiry.signature`, the signature an HMAC-SHA256 over `name.expiry`.
pub fn issue(key: &hmac::Key, name: &str, expiry: u64) -> String {
    let payload = format!("{name}.{expiry}");
    let tag = hmac::sign(key, payload.as_bytes());
    format!("{payload}.{}", hex(tag.as_ref()))
}

/// Checks a token's signature and expiry; returns the player name or why it is refused.
pub fn verify(key: &hmac::Key, token: &str) -> Result<String, String> {
    let mut parts = token.rsplitn(2, '.');
    let (Some(sig), Some(payload)) = (parts.next(), parts.next()) else {
        return Err("malformed token".into());
    };
    let sig = unhex(sig).ok_or("malformed token signature")?;
    hmac::verify(key, payload.as_bytes(), &sig)
        .map_err(|_| "token signature is invalid".to_string())?;
    let (name, expiry) = payload.rsplit_once('.').ok_or("malformed token")?;
    let expiry: u64 = expiry.parse().map_err(|_| "malformed token expiry")?;
    if expiry <= now() {
        return Err("token has expired".into());
    }
    Ok(name.to_string())
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body.to_string())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
