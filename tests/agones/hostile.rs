//! The client against sidecars that misbehave (rust/test_support/src/agones_sdk/hostile.rs):
//! nothing they send may grow memory without bound, hang a call past its stated limit, or
//! lose a record.

use std::time::{Duration, Instant};

use netkit::core::agones::{
    AgonesClient, AgonesEvent, ClientOptions, Endpoint, MAX_WAITING_RECORDS,
};
use netkit_test_support::agones_sdk::hostile::{Behaviour, HostileSidecar};

use super::core::runtime;

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
