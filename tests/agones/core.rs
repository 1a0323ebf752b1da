//! The engine-free Agones client against the test SDK server (rust/test_support/src/agones_sdk.rs)
//! on 127.0.0.1: the lifecycle as the watch stream shows it, labels, a sidecar that starts
//! after the game, health pings that follow the main loop's proof of life, no sidecar.

use std::time::{Duration, Instant};

use netkit::core::agones::{AgonesClient, AgonesEvent, ClientOptions, Endpoint, SdkCall};
use netkit::core::http::{ErrorKind, RequestId, Response};
use netkit_test_support::agones_sdk::AgonesSdkServer;
use serde_json::Value;
use tokio::runtime::Runtime;

pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub(crate) fn client(
    rt: &Runtime,
    server: &AgonesSdkServer,
    options: ClientOptions,
) -> AgonesClient {
    AgonesClient::with_runtime(
        Endpoint::Sidecar {
            port: server.port,
            source: "test",
        },
        options,
        rt.handle().clone(),
    )
}

/// Waits for call `id` to end (other calls' events are not expected here).
pub(crate) fn finish(client: &AgonesClient, id: RequestId, within: Duration) -> Response {
    let deadline = Instant::now() + within;
    loop {
        if let Some(event) = client.next_call_event() {
            assert_eq!(event.id, id, "calls end in the order they were made");
            return event.response;
        }
        assert!(
            Instant::now() < deadline,
            "call {id} did not end within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Collects GameServer records from the watch stream until one has `state`.
fn wait_state(client: &AgonesClient, state: &str, seen: &mut Vec<String>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.next_event() {
            Some(AgonesEvent::GameServer(gs)) => {
                let s = gs["status"]["state"].as_str().unwrap_or("?").to_owned();
                seen.push(s.clone());
                if s == state {
                    return gs;
                }
            }
            Some(_) => {}
            None => {
                assert!(
                    Instant::now() < deadline,
                    "no {state} from the watch stream; saw {seen:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[test]
fn lifecycle_and_labels_through_the_watch_stream() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start()
    };
    let client = client(&rt, &server, ClientOptions::default());
    let mut seen = Vec::new();
    wait_state(&client, "Scheduled", &mut seen);

    let res = finish(
        &client,
        client.call(&SdkCall::Ready),
        Duration::from_secs(10),
    );
    assert!(res.ok(), "{}", res.error_message);
    wait_state(&client, "Ready", &mut seen);
    assert_eq!(seen, ["Scheduled", "RequestReady", "Ready"]);

    let id = client.call(&SdkCall::SetLabel("mode".into(), "ranked".into()));
    assert!(finish(&client, id, Duration::from_secs(10)).ok());
    let id = client.call(&SdkCall::SetAnnotation("note".into(), "free text ✓".into()));
    assert!(finish(&client, id, Duration::from_secs(10)).ok());
    let gs = client.call(&SdkCall::GetGameServer);
    let gs = finish(&client, gs, Duration::from_secs(10))
        .json
        .expect("JSON");
    assert_eq!(gs["object_meta"]["labels"]["agones.dev/sdk-mode"], "ranked");
    assert_eq!(
        gs["object_meta"]["annotations"]["agones.dev/sdk-note"],
        "free text ✓"
    );

    // Made back to back: they reach the sidecar in this order, so the end state is Allocated.
    let reserve = client.call(&SdkCall::Reserve(1));
    let allocate = client.call(&SdkCall::Allocate);
    assert!(finish(&client, reserve, Duration::from_secs(10)).ok());
    assert!(finish(&client, allocate, Duration::from_secs(10)).ok());
    wait_state(&client, "Allocated", &mut seen);
    assert!(
        seen.ends_with(&["Reserved".to_owned(), "Allocated".to_owned()]),
        "{seen:?}"
    );
    // The 1 s reservation ended by allocation must not bring it back to Ready.
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(server.state(), "Allocated");

    let res = finish(
        &client,
        client.call(&SdkCall::Shutdown),
        Duration::from_secs(10),
    );
    assert!(res.ok());
    wait_state(&client, "Shutdown", &mut seen);
    let requests = server.requests();
    let lifecycle: Vec<&String> = requests
        .iter()
        .filter(|r| !r.contains("/health") && !r.contains("/watch"))
        .collect();
    assert_eq!(
        lifecycle,
        [
            "POST /ready",
            "PUT /metadata/label",
            "PUT /metadata/annotation",
            "GET /gameserver",
            "POST /reserve",
            "POST /allocate",
            "POST /shutdown"
        ]
    );
}

#[test]
fn bad_labels_fail_before_reaching_the_sidecar() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start()
    };
    let client = client(&rt, &server, ClientOptions::default());
    let id = client.call(&SdkCall::SetLabel("has space".into(), "v".into()));
    let res = finish(&client, id, Duration::from_secs(5));
    assert_eq!(res.error, ErrorKind::InvalidRequest);
    assert!(
        res.error_message.contains("agones.dev/sdk-has space"),
        "{}",
        res.error_message
    );
    let id = client.call(&SdkCall::Reserve(-3));
    assert_eq!(
        finish(&client, id, Duration::from_secs(5)).error,
        ErrorKind::InvalidRequest
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.contains("/metadata") || r.contains("/reserve")),
        "{:?}",
        server.requests()
    );
}

#[test]
fn calls_wait_for_a_sidecar_that_starts_after_the_game() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start_after(Duration::from_millis(1500))
    };
    let client = client(&rt, &server, ClientOptions::default());
    let started = Instant::now();
    let res = finish(
        &client,
        client.call(&SdkCall::Ready),
        Duration::from_secs(20),
    );
    assert!(res.ok(), "{}", res.error_message);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert!(
        res.attempts > 1,
        "the first attempts were refused: {}",
        res.attempts
    );
    let mut seen = Vec::new();
    wait_state(&client, "Ready", &mut seen);
}

#[test]
fn health_pings_follow_the_main_loop() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start()
    };
    let client = client(
        &rt,
        &server,
        ClientOptions {
            health_interval: Duration::from_millis(100),
            health_tolerance: Duration::from_millis(400),
            watch: false,
            ..ClientOptions::default()
        },
    );
    let origin = Instant::now();
    let alive_until = origin + Duration::from_millis(1000);
    while Instant::now() < alive_until {
        client.mark_alive();
        std::thread::sleep(Duration::from_millis(20));
    }
    // "Hung" from here on for 1.5 s: no stamps.
    let hung_at = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let pings = server.health_pings();
    // Server times are from the server's creation, which came just before `origin`.
    let before = |d: Duration| pings.iter().filter(|p| **p < d).count();
    let hung_ms = hung_at.duration_since(origin);
    let alive_pings = before(hung_ms);
    assert!(alive_pings >= 5, "pings while alive: {pings:?}");
    // Tolerance 400 ms, interval 100 ms, plus 300 ms for a loaded machine.
    let quiet_from = hung_ms + Duration::from_millis(800);
    let late: Vec<&Duration> = pings.iter().filter(|p| **p > quiet_from).collect();
    assert!(
        late.is_empty(),
        "pings kept coming from a hung loop: {late:?} (hung at {hung_ms:?})"
    );
    assert!(client.health_counts().skipped > 0);
    let paused = std::iter::from_fn(|| client.next_event())
        .any(|e| matches!(e, AgonesEvent::HealthPaused { frame_age } if frame_age > Duration::from_millis(400)));
    assert!(paused, "a HealthPaused event says why pings stopped");

    // Alive again: pings resume and the pause is reported with its length.
    let count = server.health_pings().len();
    for _ in 0..25 {
        client.mark_alive();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.health_pings().len() > count, "pings resumed");
    let resumed = std::iter::from_fn(|| client.next_event())
        .any(|e| matches!(e, AgonesEvent::HealthResumed { paused_for } if paused_for >= Duration::from_millis(500)));
    assert!(resumed);
}

#[test]
fn without_a_sidecar_calls_fail_at_once_and_nothing_is_sent() {
    let rt = runtime();
    let client = AgonesClient::with_runtime(
        Endpoint::Absent("not running under Agones (test)".into()),
        ClientOptions::default(),
        rt.handle().clone(),
    );
    let started = Instant::now();
    let res = finish(
        &client,
        client.call(&SdkCall::Ready),
        Duration::from_secs(2),
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(res.error, ErrorKind::Connect);
    assert_eq!(res.error_message, "ready: not running under Agones (test)");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(client.health_counts().sent, 0);
    assert!(client.next_event().is_none());
}
