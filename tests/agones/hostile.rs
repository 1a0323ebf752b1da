//! The client against sidecars that misbehave (rust/test_support/src/agones_sdk/hostile.rs):
//! nothing they send may grow memory without bound, hang a call past its stated limit, or
//! lose a record.

use std::time::{Duration, Instant};

use netkit::core::agones::{
    AgonesClient, AgonesEvent, ClientOptions, CountsCall, Endpoint, MAX_WAITING_RECORDS, SdkCall,
};
use netkit::core::http::ErrorKind;
use netkit_test_support::agones_sdk::hostile::{Behaviour, HostileSidecar};

use super::core::{finish, runtime};

fn generation(event: &AgonesEvent) -> u64 {
    match event {
        AgonesEvent::GameServer(gs) => gs["object_meta"]["generation"]
            .as_str()
            .and_then(|g| g.parse().ok())
            .expect("a flood record has a generation"),
        other => panic!("only records were expected, got {other:?}"),
    }
}

#[test]
fn a_flooding_watch_stream_waits_for_the_game_and_loses_nothing() {
    let rt = runtime();
    let sidecar = {
        let _guard = rt.enter();
        HostileSidecar::start(Behaviour::FloodWatch)
    };
    let client = AgonesClient::with_runtime(
        Endpoint::Sidecar {
            port: sidecar.port,
            source: "test",
        },
        ClientOptions {
            health_enabled: false,
            ..ClientOptions::default()
        },
        rt.handle().clone(),
    );
    // The game takes nothing for a second (a long frame) while the sidecar floods.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sidecar.records_sent() < 1000 {
        assert!(Instant::now() < deadline, "the flood did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    let mut waiting = Vec::new();
    while let Some(event) = client.next_event() {
        waiting.push(event);
    }
    assert!(
        !waiting.is_empty() && waiting.len() <= 2 * MAX_WAITING_RECORDS,
        "{} records waited for the game after a 1 s frame; at most {MAX_WAITING_RECORDS} may \
         (the stream must stop being read, not buffer)",
        waiting.len()
    );
    // Then it takes them at a frame's pace: the stream resumes, in order, none dropped.
    let mut last = generation(&waiting[0]);
    for event in &waiting[1..] {
        let g = generation(event);
        assert_eq!(g, last + 1, "records are delivered in order with none lost");
        last = g;
    }
    let first = last;
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        for _ in 0..64 {
            let Some(event) = client.next_event() else {
                break;
            };
            let g = generation(&event);
            assert_eq!(g, last + 1, "records are delivered in order with none lost");
            last = g;
        }
        std::thread::sleep(Duration::from_millis(16));
    }
    assert!(
        last - first > MAX_WAITING_RECORDS as u64,
        "the stream resumed once the game took records ({} more)",
        last - first
    );
}

#[test]
fn a_sidecar_that_never_answers_fails_a_call_within_the_retry_window() {
    let rt = runtime();
    let sidecar = {
        let _guard = rt.enter();
        HostileSidecar::start(Behaviour::HangCalls)
    };
    // Scaled down from the defaults (10 s per attempt, a 30 s window, 60 retries).
    let client = AgonesClient::with_runtime(
        Endpoint::Sidecar {
            port: sidecar.port,
            source: "test",
        },
        ClientOptions {
            health_enabled: false,
            watch: false,
            call_timeout: Duration::from_millis(500),
            retry_window: Duration::from_secs(2),
            ..ClientOptions::default()
        },
        rt.handle().clone(),
    );
    let started = Instant::now();
    let id = client.call(&SdkCall::Counts(CountsCall::GetCounter("rooms".into())));
    // 61 attempts of 0.5 s each would take over 30 s.
    let res = finish(&client, id, Duration::from_secs(20));
    assert_eq!(res.error, ErrorKind::Timeout, "{}", res.error_message);
    assert!(
        res.attempts >= 2 && res.attempts <= 6,
        "retried within the window only: {} attempts in {:?}",
        res.attempts,
        started.elapsed()
    );
    assert!(
        res.error_message.contains("gave up after"),
        "{}",
        res.error_message
    );
    assert_eq!(sidecar.calls_received(), u64::from(res.attempts));
}

#[test]
fn a_sidecar_that_never_starts_fails_a_call_saying_how_long_it_was_retried() {
    let rt = runtime();
    let never = {
        let _guard = rt.enter();
        netkit_test_support::agones_sdk::AgonesSdkServer::start_after(Duration::from_secs(600))
    };
    let client = AgonesClient::with_runtime(
        Endpoint::Sidecar {
            port: never.port,
            source: "test",
        },
        ClientOptions {
            health_enabled: false,
            watch: false,
            // Ended by the count of retries here (the window has its own test above).
            max_retries: 3,
            ..ClientOptions::default()
        },
        rt.handle().clone(),
    );
    let id = client.call(&SdkCall::Ready);
    let res = finish(&client, id, Duration::from_secs(20));
    assert_eq!(res.error, ErrorKind::Connect, "{}", res.error_message);
    assert_eq!(res.attempts, 4, "refused connections are retried");
    assert!(
        res.error_message
            .contains(&format!("gave up after {} attempts, ", res.attempts)),
        "{}",
        res.error_message
    );
}
