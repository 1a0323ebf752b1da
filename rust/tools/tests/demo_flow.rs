//! Runs the README's demo command end to end: backend, headless dedicated server on
//! SceneMultiplayer over DTLSMultiplayerPeer, clients (one admitted through `send_auth` /
//! `auth_callback` / `complete_auth`, spawned, moved by RPC and synchronized; one with a
//! forged and one with an expired token, refused at authentication), then SIGTERM to the
//! server, which must deregister and exit 0.

use std::process::Command;
use std::sync::Mutex;

/// One demo at a time: each stages the extension and runs several Godot processes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

use netkit_tools::demo::backend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs the demo, under `NETKIT_SIMULATE=simulate` when given, and returns its stdout and
/// stderr once it succeeded.
fn run_demo(simulate: Option<&str>) -> (String, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut demo = Command::new(env!("CARGO_BIN_EXE_demo"));
    match simulate {
        Some(conditions) => demo.env("NETKIT_SIMULATE", conditions),
        None => demo.env_remove("NETKIT_SIMULATE"),
    };
    let out = demo.output().expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the demo failed:\n{stderr}");
    (stdout, stderr)
}

#[test]
fn demo_runs_the_whole_dedicated_server_flow() {
    let (stdout, _) = run_demo(None);
    for expected in [
        "[server] registered as server",
        "[client alice] logged in as alice",
        "[client alice] DTLS connected (certificate pinned), sending the token with send_auth",
        "connected from 127.0.0.1:",
        "is alice: token valid, authentication complete",
        "[client alice] welcome, alice",
        "[client alice] authenticated and joined as peer ",
        "(alice) joined: spawned player ",
        "[client alice] spawned: player ",
        "[client alice] move 1 acknowledged by RPC: tick 1 at (10, 5)",
        "[client alice] synchronized position (10, 5)",
        "[client alice] move 3 acknowledged by RPC: tick 3 at (30, 15)",
        "[client alice] synchronized position (30, 15)",
        "(alice) left",
        "; 3 move RPCs handled",
        "[client alice] posted score",
        "[server] alice's result is on disk in the outbox, sending it to the backend",
        "[backend] stored the result of alice (3 moves) from server 1, once (Idempotency-Key ",
        "[server] outbox: save 1 delivered",
        "[server] world state saved through the outbox: delivered",
        "[backend] stored the world of server 1 (0 players online) from server 1, once",
        "[client alice] leaderboard: ",
        "refused at authentication: token signature is invalid (RPCs from it that reached game code: 0)",
        "[client bob] refused by the server: token signature is invalid",
        "refused at authentication: token has expired (RPCs from it that reached game code: 0)",
        "[client carol] refused by the server: token has expired",
        "[netkit] shutdown requested by signal",
        "[server] deregistered from the backend: yes",
        "[backend] server 1 deregistered",
        "demo: every step happened",
    ] {
        assert!(
            stdout.contains(expected),
            "missing from the demo's log: {expected}"
        );
    }
    // Refused players never reach the game: no spawn, no join, for bob or carol.
    for line in stdout.lines() {
        assert!(
            !((line.contains("(bob)") || line.contains("(carol)")) && line.contains("joined")),
            "a refused player joined the game: {line}"
        );
        assert!(
            !(line.starts_with("[client bob]") || line.starts_with("[client carol]"))
                || !line.contains("spawned"),
            "a refused player was spawned: {line}"
        );
    }
}

/// The same flow over a bad network, simulated by netkit in every process of the demo
/// (`NETKIT_SIMULATE`, as README's "Bad networks on demand" says): 80 ms each way with
/// 20 ms of jitter and 3 % of datagrams lost still lets every step happen, and the server
/// shuts down cleanly with a player still online (under loss a client's goodbye can be
/// lost, so it is still in the world at SIGTERM).
#[test]
fn demo_completes_over_a_simulated_bad_network() {
    let (stdout, stderr) = run_demo(Some("latency=80ms jitter=20ms loss=3% seed=4"));
    for expected in [
        "[netkit] simulating network conditions (NETKIT_SIMULATE): latency=80ms jitter=20ms loss=3% seed=4",
        "[client alice] synchronized position (30, 15)",
        "[server] world state saved through the outbox: delivered",
        "[client bob] refused by the server: ",
        "[client carol] refused by the server: ",
        "demo: every step happened",
    ] {
        assert!(
            stdout.contains(expected) || stderr.contains(expected),
            "missing from the demo's log: {expected}"
        );
    }
}

/// Sends `request` (a whole HTTP/1.1 request, `Connection: close`) to the backend at
/// `url` and returns the status line and headers, lower-cased, and the body.
async fn exchange(url: &str, request: &str) -> (String, String) {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the backend answers within 10 s")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_lowercase(), body.to_string())
}

/// What a browser does before a Web export's `HTTPRequest` with a bearer token and a JSON
/// body: the preflight must allow the origin, the method and both headers, or the browser
/// never sends the request; then the answer itself (an error too, so the game can read
/// it) must carry `Access-Control-Allow-Origin`, or the browser hides it from the game.
#[test]
fn demo_backend_answers_browsers_cors() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let backend = backend::start().await.expect("backend");
        let (head, body) = exchange(
            &backend.url,
            "OPTIONS /scores HTTP/1.1\r\nHost: api\r\nOrigin: https://game.itch.zone\r\n\
             Access-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: authorization, content-type\r\n\
             Connection: close\r\n\r\n",
        )
        .await;
        assert!(head.starts_with("http/1.1 204"), "preflight: {head}");
        assert!(body.is_empty(), "a preflight answer has no body: {body}");
        for expected in [
            "access-control-allow-origin: *",
            "access-control-allow-methods: get, post, put, delete",
            "access-control-allow-headers: authorization, content-type, idempotency-key",
            "access-control-max-age: 600",
        ] {
            assert!(
                head.contains(expected),
                "preflight lacks {expected}: {head}"
            );
        }

        let (head, body) = exchange(
            &backend.url,
            "GET /leaderboard HTTP/1.1\r\nHost: api\r\nOrigin: https://game.itch.zone\r\n\
             Connection: close\r\n\r\n",
        )
        .await;
        assert!(head.starts_with("http/1.1 200"), "leaderboard: {head}");
        assert!(head.contains("access-control-allow-origin: *"), "{head}");
        assert!(body.contains("yuki"), "the leaderboard itself: {body}");

        let (head, body) = exchange(
            &backend.url,
            "POST /scores HTTP/1.1\r\nHost: api\r\nOrigin: https://game.itch.zone\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\n{}",
        )
        .await;
        assert!(head.starts_with("http/1.1 401"), "no token: {head}");
        assert!(head.contains("access-control-allow-origin: *"), "{head}");
        assert!(body.contains("missing bearer token"), "{body}");
    });
}
