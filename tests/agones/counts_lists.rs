//! Counters and Lists through the engine-free client against the test SDK server: the
//! calls, the sidecar's refusals as sentences after one attempt (its 500 is final), and
//! a sidecar that starts after the game.

use std::time::{Duration, Instant};

use netkit::core::agones::{
    ClientOptions, CounterUpdate, CountsCall, ListUpdate, SdkCall, explain,
};
use netkit::core::http::{ErrorKind, Response};
use netkit_test_support::agones_sdk::AgonesSdkServer;
use serde_json::json;

use super::core::{client, finish, runtime};

fn options() -> ClientOptions {
    ClientOptions {
        health_enabled: false,
        watch: false,
        ..ClientOptions::default()
    }
}

/// Makes `call` and returns its answer as the node hands it over.
fn call(c: &netkit::core::agones::AgonesClient, call: CountsCall) -> Response {
    let mut res = finish(
        c,
        c.call(&SdkCall::Counts(call.clone())),
        Duration::from_secs(20),
    );
    explain(&call, &mut res);
    res
}

#[test]
fn counters_count_within_their_capacity() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start()
    };
    let c = client(&rt, &server, options());
    let res = call(&c, CountsCall::GetCounter("rooms".into()));
    assert!(res.ok(), "{}", res.error_message);
    assert_eq!(
        res.json,
        Some(json!({"name": "rooms", "count": 0, "capacity": 10}))
    );
    let update = |count, capacity, count_diff| {
        CountsCall::UpdateCounter(
            "rooms".into(),
            CounterUpdate {
                count,
                capacity,
                count_diff,
            },
        )
    };
    let res = call(&c, update(Some(5), Some(6), 0));
    assert_eq!(res.json.unwrap()["count"], json!(5));
    let res = call(&c, update(None, None, 1));
    assert_eq!(res.json.unwrap()["count"], json!(6));
    let res = call(&c, update(None, None, 1));
    assert_eq!(res.error, ErrorKind::HttpStatus);
    assert_eq!(res.attempts, 1, "a refusal is not retried");
    assert!(
        res.error_message
            .contains("the Counter 'rooms' would leave the range 0 to its capacity"),
        "{}",
        res.error_message
    );
    let res = call(&c, CountsCall::GetCounter("lobbies".into()));
    assert_eq!(res.attempts, 1);
    assert!(
        res.error_message
            .starts_with("get_counter('lobbies'): the Counter 'lobbies' does not exist"),
        "{}",
        res.error_message
    );
    // The GameServer record shows what the calls did.
    assert_eq!(
        server.game_server()["status"]["counters"]["rooms"],
        json!({"count": "6", "capacity": "6"})
    );
    // At the largest int64 count, one more is refused (as the sidecar's wrapped sum is),
    // not answered with the count unchanged.
    let res = call(&c, update(Some(i64::MAX), Some(i64::MAX), 0));
    assert!(res.ok(), "{}", res.error_message);
    let res = call(&c, update(None, None, 1));
    assert_eq!(res.error, ErrorKind::HttpStatus, "{:?}", res.json);
    assert!(
        res.error_message.contains("would leave the range"),
        "{}",
        res.error_message
    );
}

#[test]
fn lists_hold_values_up_to_their_capacity() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start()
    };
    let c = client(&rt, &server, options());
    let res = call(
        &c,
        CountsCall::UpdateList(
            "players".into(),
            ListUpdate {
                capacity: Some(2),
                values: None,
            },
        ),
    );
    assert_eq!(
        res.json,
        Some(json!({"name": "players", "capacity": 2, "values": []}))
    );
    let add = |v: &str| CountsCall::AddListValue("players".into(), v.into());
    assert!(call(&c, add("a")).ok());
    let res = call(&c, add("a"));
    assert!(
        res.error_message
            .contains("'a' is already in the List 'players'"),
        "{}",
        res.error_message
    );
    let res = call(&c, add("b"));
    assert_eq!(res.json.unwrap()["values"], json!(["a", "b"]));
    let res = call(&c, add("c"));
    assert_eq!(res.attempts, 1);
    assert!(
        res.error_message.contains("the List 'players' is full"),
        "{}",
        res.error_message
    );
    let res = call(
        &c,
        CountsCall::RemoveListValue("players".into(), "z".into()),
    );
    assert!(
        res.error_message
            .contains("'z' is not in the List 'players'"),
        "{}",
        res.error_message
    );
    let res = call(
        &c,
        CountsCall::RemoveListValue("players".into(), "a".into()),
    );
    assert_eq!(res.json.unwrap()["values"], json!(["b"]));
    let res = call(&c, CountsCall::GetList("players".into()));
    assert_eq!(
        res.json,
        Some(json!({"name": "players", "capacity": 2, "values": ["b"]}))
    );
    let res = call(
        &c,
        CountsCall::UpdateList(
            "players".into(),
            ListUpdate {
                capacity: None,
                values: Some(vec!["x".into(), "y".into()]),
            },
        ),
    );
    assert_eq!(res.json.unwrap()["values"], json!(["x", "y"]));
    let res = call(&c, CountsCall::AddListValue("teams".into(), "red".into()));
    assert!(
        res.error_message
            .contains("the List 'teams' does not exist"),
        "{}",
        res.error_message
    );
    // Refused before sending: nothing reached the sidecar.
    let before = server.requests().len();
    let res = call(
        &c,
        CountsCall::AddListValue("players".into(), String::new()),
    );
    assert_eq!(res.error, ErrorKind::InvalidRequest);
    assert_eq!(server.requests().len(), before);
}

#[test]
fn counter_calls_wait_for_a_sidecar_that_starts_after_the_game() {
    let rt = runtime();
    let server = {
        let _guard = rt.enter();
        AgonesSdkServer::start_after(Duration::from_millis(1500))
    };
    let c = client(&rt, &server, options());
    let started = Instant::now();
    let res = call(
        &c,
        CountsCall::UpdateCounter(
            "rooms".into(),
            CounterUpdate {
                count_diff: 1,
                ..CounterUpdate::default()
            },
        ),
    );
    assert!(res.ok(), "{}", res.error_message);
    assert!(res.attempts > 1, "attempts: {}", res.attempts);
    assert!(started.elapsed() >= Duration::from_millis(1400));
    assert_eq!(res.json.unwrap()["count"], json!(1));
}
