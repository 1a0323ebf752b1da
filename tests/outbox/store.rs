//! The durable outbox against the real test server: outages, restarts, dead letters, a
//! corrupted store, credentials kept off the disk, and the max age.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netkit::core::events::Budget;
use netkit::core::http::outbox::{
    DEAD_LETTER_ANSWER_BYTES, OpenError, Outbox, OutboxConfig, OutboxEvent, Write,
};
use netkit::core::http::{HttpPool, Method, PoolSettings, RequestBody, RequestSpec};
use netkit_test_support::http_server::outbox_routes::{report, set_mode};
use netkit_test_support::http_server::{TestServer, start_blocking};
use netkit_test_support::outbox::{DAY, SYNC, Scratch, free_port, pool, wait_until};
use serde_json::Value;

fn config(path: &Path, send_headers: Vec<(&str, &str)>) -> OutboxConfig {
    OutboxConfig {
        path: path.to_path_buf(),
        max_pending: 10_000,
        send_headers: pairs(send_headers),
    }
}

fn pairs(headers: Vec<(&str, &str)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn open(pool: &HttpPool, path: &Path) -> Outbox {
    let (outbox, set_aside) = Outbox::open(config(path, vec![]), pool).expect("open the outbox");
    assert_eq!(set_aside, None, "a fresh store is not set aside");
    outbox
}

fn save(url: String, n: usize, headers: Vec<(&str, &str)>) -> RequestSpec {
    RequestSpec {
        method: Method::Post,
        url,
        headers: pairs(headers),
        body: RequestBody::Json(format!("{{\"save\":{n}}}").into()),
        final_500: false,
    }
}

/// Waits until `n` delivered or dead-lettered events arrived; a store error fails the test.
fn wait_events(outbox: &Outbox, n: usize) -> Vec<OutboxEvent> {
    let got = netkit_test_support::outbox::wait_events(outbox, n);
    if let Some(OutboxEvent::StoreError(e)) =
        got.iter().find(|e| matches!(e, OutboxEvent::StoreError(_)))
    {
        panic!("store error: {e}");
    }
    got
}

fn applied(bucket: &str) -> serde_json::Map<String, Value> {
    report(bucket)["applied"].as_object().cloned().unwrap()
}

/// Forwards TCP from `listen` to `target` on its own runtime: the backend "comes up" on an
/// address that refused connections before.
fn forward(listen: SocketAddr, target: SocketAddr) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(listen))
        .expect("bind the freed port again");
    runtime.spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    runtime
}

#[test]
fn outage_then_recovery_delivers_each_of_50_saves_exactly_once() {
    let server: TestServer = start_blocking();
    let bucket = "outage-50";
    let down = free_port();
    let pool = pool();
    let scratch = Scratch::new("outage");
    let path = scratch.file();
    let outbox = open(&pool, &path);
    let url = format!("http://{down}/outbox/save?bucket={bucket}");
    let ids: Vec<u64> = (0..50)
        .map(|n| {
            outbox
                .submit(save(url.clone(), n, vec![]), DAY, SYNC)
                .expect("stored")
        })
        .collect();
    assert_eq!(outbox.stats().pending, 50);

    // Connection refused for a while: attempts are made, nothing ends.
    wait_until("attempts against the refused port", || {
        outbox.stats().attempts >= 100
    });
    assert!(
        outbox.drain(Budget::default()).is_empty(),
        "nothing ends while down"
    );

    // The backend comes up answering 503, then recovers.
    set_mode(bucket, 503, None);
    let _forwarder = forward(down, server.http_addr);
    wait_until("503s at the backend", || {
        report(bucket)["refused"].as_u64().unwrap() >= 50
    });
    assert_eq!(outbox.stats().pending, 50, "a 503 is retried, not dropped");
    set_mode(bucket, 0, None);

    let events = wait_events(&outbox, 50);
    let mut delivered: Vec<u64> = events
        .iter()
        .map(|e| match e {
            OutboxEvent::Delivered { entry, response } => {
                assert_eq!(response.status, 200, "{response:?}");
                *entry
            }
            other => panic!("expected deliveries only: {other:?}"),
        })
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, ids, "every entry delivered once");
    let applied = applied(bucket);
    assert_eq!(
        applied.len(),
        50,
        "50 distinct Idempotency-Keys reached the backend"
    );
    assert!(applied.values().all(|c| c == 1));
    assert_eq!(report(bucket)["duplicates"], 0, "{}", report(bucket));
    let stats = outbox.stats();
    assert_eq!((stats.pending, stats.delivered), (0, 50));

    // Nothing is left to replay.
    drop(outbox);
    let outbox = open(&pool, &path);
    assert_eq!(outbox.stats().pending, 0);
}

#[test]
fn pending_entries_are_replayed_with_their_keys_when_the_store_reopens() {
    let server = start_blocking();
    let bucket = "replay";
    set_mode(bucket, 503, None);
    let scratch = Scratch::new("replay");
    let path = scratch.file();
    {
        let pool = pool();
        let outbox = open(&pool, &path);
        let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
        for n in 0..3 {
            outbox
                .submit(save(url.clone(), n, vec![]), DAY, SYNC)
                .unwrap();
        }
        wait_until("refusals", || {
            report(bucket)["refused"].as_u64().unwrap() >= 6
        });
    }
    let refused_keys = report(bucket)["refused"].as_u64().unwrap();
    assert!(refused_keys >= 6);
    // Refusing until counted: the reopened outbox starts sending at once.
    set_mode(bucket, 503, None);
    let pool = pool();
    let outbox = open(&pool, &path);
    assert_eq!(
        outbox.stats().pending,
        3,
        "the reopened store replays what it held"
    );
    set_mode(bucket, 0, None);
    let events = wait_events(&outbox, 3);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, OutboxEvent::Delivered { .. }))
    );
    let applied = applied(bucket);
    assert_eq!(applied.len(), 3);
    let bodies = report(bucket)["bodies"].clone();
    let mut saves: Vec<String> = bodies
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    saves.sort();
    assert_eq!(saves, ["{\"save\":0}", "{\"save\":1}", "{\"save\":2}"]);
}

#[test]
fn a_400_becomes_a_dead_letter_that_can_be_listed_and_dropped() {
    let server = start_blocking();
    let pool = pool();
    let scratch = Scratch::new("dead");
    let path = scratch.file();
    let outbox = open(&pool, &path);
    let id = outbox
        .submit(
            save(
                format!("{}/status/400", server.http_url),
                7,
                vec![("X-Game", "demo")],
            ),
            DAY,
            SYNC,
        )
        .unwrap();
    let kept = outbox
        .submit(
            save(format!("{}/status/422", server.http_url), 8, vec![]),
            DAY,
            SYNC,
        )
        .unwrap();
    let events = wait_events(&outbox, 2);
    for event in &events {
        match event {
            OutboxEvent::DeadLettered { response, .. } => {
                assert!(!response.ok());
                assert!(
                    response.error_message.contains("given up")
                        && response.error_message.contains("refused"),
                    "{}",
                    response.error_message
                );
            }
            other => panic!("expected dead letters: {other:?}"),
        }
    }
    let stats = outbox.stats();
    assert_eq!((stats.pending, stats.dead_letters), (0, 2));
    let dead = outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 2);
    let first = dead.iter().find(|d| d.id == id).expect("listed");
    assert_eq!(first.status, 400);
    assert_eq!(first.method, "POST");
    assert!(first.url.ends_with("/status/400"));
    assert_eq!(first.body, b"{\"save\":7}");
    assert!(
        first
            .reason
            .ends_with("the server answered 400 Bad Request")
            && first.reason.matches("400").count() == 1,
        "the status named once: {}",
        first.reason
    );
    assert_eq!(
        first.answer, b"{\"status\":400}",
        "the backend's answer body is kept"
    );
    assert!(first.headers.contains(&("X-Game".into(), "demo".into())));
    assert_eq!(first.attempts, 1, "a 400 is not retried");
    assert!(!first.key.is_empty());

    // Dead letters are kept on disk.
    drop(outbox);
    let outbox = open(&pool, &path);
    assert_eq!(outbox.stats().dead_letters, 2);
    let reopened = outbox.dead_letters().unwrap();
    let again = reopened.iter().find(|d| d.id == id).unwrap();
    assert_eq!(again.answer, first.answer, "the answer is on disk too");
    assert!(outbox.drop_dead_letter(id).unwrap());
    assert!(!outbox.drop_dead_letter(id).unwrap(), "already dropped");
    let left: Vec<u64> = outbox
        .dead_letters()
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, [kept]);
    assert_eq!(outbox.clear_dead_letters().unwrap(), 1);
    assert!(outbox.dead_letters().unwrap().is_empty());
    assert_eq!(outbox.stats().dead_letters, 0);
}

#[test]
fn a_dead_letter_keeps_only_the_start_of_a_long_refusal() {
    let server = start_blocking();
    let pool = pool();
    let scratch = Scratch::new("dead-long-answer");
    let outbox = open(&pool, &scratch.file());
    // A backend's 400 page of about 1 MB.
    let url = format!("{}/status/400?padding=1000000", server.http_url);
    outbox.submit(save(url, 1, vec![]), DAY, SYNC).unwrap();
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(&events[0], OutboxEvent::DeadLettered { response, .. } if response.body.len() > 1_000_000),
        "{events:?}"
    );
    let dead = outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].answer.len(), DEAD_LETTER_ANSWER_BYTES, "bounded");
    assert!(
        dead[0]
            .answer
            .starts_with(b"{\"status\":400,\"padding\":\"xxx"),
        "the start of the answer: {:?}",
        String::from_utf8_lossy(&dead[0].answer[..40])
    );
}

#[test]
fn a_corrupted_store_is_set_aside_and_the_pool_keeps_working() {
    let server = start_blocking();
    let scratch = Scratch::new("corrupt");
    let path = scratch.file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &garbage).unwrap();

    let pool = pool();
    let (outbox, set_aside) = Outbox::open(config(&path, vec![]), &pool).expect("opens anew");
    let message = set_aside.expect("the broken file is reported");
    assert!(
        message.contains("renamed to") && message.contains(".corrupt-"),
        "{message}"
    );
    assert_eq!(outbox.stats().set_aside, 1);
    let aside: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(&aside[0]).unwrap(),
        garbage,
        "the old file is kept as it was"
    );

    let bucket = "corrupt";
    outbox
        .submit(
            save(
                format!("{}/outbox/save?bucket={bucket}", server.http_url),
                1,
                vec![],
            ),
            DAY,
            SYNC,
        )
        .unwrap();
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(events[0], OutboxEvent::Delivered { .. }),
        "{events:?}"
    );
    assert_eq!(applied(bucket).len(), 1);
}

#[test]
fn credentials_are_sent_but_never_written_to_the_store() {
    let server = start_blocking();
    let bucket = "credentials";
    set_mode(bucket, 503, None);
    let scratch = Scratch::new("credentials");
    let path = scratch.file();
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    {
        let pool = pool();
        let (outbox, _) = Outbox::open(
            config(&path, vec![("Authorization", "Bearer DEFAULT-TOKEN-1111")]),
            &pool,
        )
        .unwrap();
        outbox
            .submit(
                save(
                    url.clone(),
                    1,
                    vec![
                        ("Authorization", "Bearer REQUEST-TOKEN-2222"),
                        ("Cookie", "session=COOKIE-SECRET-3333"),
                        ("Proxy-Authorization", "Basic PROXY-SECRET-4444"),
                        ("X-Save-Slot", "slot-kept-on-disk"),
                    ],
                ),
                DAY,
                SYNC,
            )
            .unwrap();
        outbox
            .submit(save(url.clone(), 2, vec![]), DAY, SYNC)
            .unwrap();
        wait_until("refusals", || {
            report(bucket)["refused"].as_u64().unwrap() >= 4
        });
        let seen = report(bucket)["authorization"].clone();
        let seen: Vec<&str> = seen
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            seen.contains(&"Bearer REQUEST-TOKEN-2222"),
            "the request's own credential is sent: {seen:?}"
        );
        assert!(
            seen.contains(&"Bearer DEFAULT-TOKEN-1111"),
            "default headers are applied: {seen:?}"
        );

        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("slot-kept-on-disk"),
            "the store holds the entry's other headers"
        );
        assert!(text.contains("{\"save\":1}"), "and its body");
        for secret in [
            "TOKEN-1111",
            "TOKEN-2222",
            "COOKIE-SECRET",
            "PROXY-SECRET",
            "Bearer",
        ] {
            assert!(!text.contains(secret), "{secret} was written to the store");
        }
    }
    // After a restart only the credentials of the new run exist.
    set_mode(bucket, 0, None);
    let pool = pool();
    let (outbox, _) = Outbox::open(
        config(&path, vec![("Authorization", "Bearer RESTART-TOKEN-5555")]),
        &pool,
    )
    .unwrap();
    wait_events(&outbox, 2);
    let seen = report(bucket)["authorization"].clone();
    let last_two: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(last_two, ["Bearer RESTART-TOKEN-5555"; 2]);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("RESTART-TOKEN"));
}

#[test]
fn an_entry_older_than_its_max_age_becomes_a_dead_letter() {
    let server = start_blocking();
    let bucket = "max-age";
    set_mode(bucket, 503, None);
    let pool = pool();
    let scratch = Scratch::new("max-age");
    let outbox = open(&pool, &scratch.file());
    let started = Instant::now();
    outbox
        .submit(
            save(
                format!("{}/outbox/save?bucket={bucket}", server.http_url),
                1,
                vec![],
            ),
            Duration::from_secs(1),
            SYNC,
        )
        .unwrap();
    let events = wait_events(&outbox, 1);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "not before its max age"
    );
    let OutboxEvent::DeadLettered { response, .. } = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(response.status, 503, "the last answer is kept");
    assert!(
        response.error_message.contains("max age"),
        "{}",
        response.error_message
    );
    let dead = outbox.dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].status, 503);
    assert!(
        dead[0].attempts >= 2,
        "retried until then: {}",
        dead[0].attempts
    );
    assert!(
        dead[0].reason.contains("outbox_max_age"),
        "{}",
        dead[0].reason
    );
    assert_eq!(applied(bucket).len(), 0);
}

#[test]
fn retry_after_is_honoured_between_attempts() {
    let server = start_blocking();
    let bucket = "retry-after";
    set_mode(bucket, 429, Some(1));
    // Retry-After is honoured up to retry_max_delay: room for the 1 s asked.
    let pool = HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_secs(5),
        ..PoolSettings::default()
    });
    let scratch = Scratch::new("retry-after");
    let outbox = open(&pool, &scratch.file());
    let started = Instant::now();
    outbox
        .submit(
            save(
                format!("{}/outbox/save?bucket={bucket}", server.http_url),
                1,
                vec![],
            ),
            DAY,
            SYNC,
        )
        .unwrap();
    wait_until("the first refusal", || {
        report(bucket)["refused"].as_u64().unwrap() >= 1
    });
    set_mode(bucket, 0, None);
    let events = wait_events(&outbox, 1);
    assert!(matches!(events[0], OutboxEvent::Delivered { .. }));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "the second attempt waited for Retry-After: 1 (backoff alone would be 20 ms): {:?}",
        started.elapsed()
    );
    assert_eq!(report(bucket)["refused"], 1);
}

#[test]
fn a_second_pool_cannot_open_the_same_store() {
    let scratch = Scratch::new("locked");
    let path = scratch.file();
    let first_pool = pool();
    let first = open(&first_pool, &path);
    let second_pool = pool();
    match Outbox::open(config(&path, vec![]), &second_pool) {
        Err(OpenError::AlreadyOpen(message)) => {
            assert!(message.contains("already open"), "{message}");
            assert!(
                message.contains("outbox_path"),
                "says what to do: {message}"
            );
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("two pools opened one store"),
    }
    assert!(path.exists(), "the file in use is not set aside");
    drop(first);
    open(&second_pool, &path);
}

#[test]
fn a_full_outbox_refuses_new_entries_without_storing_them() {
    let scratch = Scratch::new("full");
    let path = scratch.file();
    let pool = pool();
    let down = free_port();
    let (outbox, _) = Outbox::open(
        OutboxConfig {
            path: path.clone(),
            max_pending: 2,
            send_headers: vec![],
        },
        &pool,
    )
    .unwrap();
    let url = format!("http://{down}/outbox/save?bucket=full");
    outbox
        .submit(save(url.clone(), 1, vec![]), DAY, SYNC)
        .unwrap();
    outbox
        .submit(save(url.clone(), 2, vec![]), DAY, SYNC)
        .unwrap();
    let (kind, message) = outbox.submit(save(url, 3, vec![]), DAY, SYNC).unwrap_err();
    assert_eq!(kind, netkit::core::http::ErrorKind::QueueFull);
    assert!(message.contains("outbox_max_pending"), "{message}");
    assert_eq!(outbox.stats().pending, 2);
}

#[test]
fn background_writes_are_batched_delivered_and_committed_when_the_outbox_closes() {
    let server = start_blocking();
    let bucket = "background";
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    let scratch = Scratch::new("background");
    let path = scratch.file();

    // Delivered like any entry once the writer committed them.
    let pool = pool();
    let outbox = open(&pool, &path);
    let ids: Vec<u64> = (0..10)
        .map(|n| {
            outbox
                .submit(save(url.clone(), n, vec![]), DAY, Write::Background)
                .unwrap()
        })
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 10, "ids are allocated at submit: {ids:?}");
    let events = wait_events(&outbox, 10);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, OutboxEvent::Delivered { .. }))
    );
    assert_eq!(applied(bucket).len(), 10);

    // Closed right after submitting (as on quit): everything queued is on disk.
    set_mode(bucket, 503, None);
    for n in 10..40 {
        outbox
            .submit(save(url.clone(), n, vec![]), DAY, Write::Background)
            .unwrap();
    }
    drop(outbox);
    // Still refusing while the store is reopened and counted: the reopened outbox starts
    // sending at once, and a save delivered before the count would leave it one short.
    let outbox = open(&pool, &path);
    assert_eq!(
        outbox.stats().pending,
        30,
        "the close committed what was queued"
    );
    set_mode(bucket, 0, None);
    let events = wait_events(&outbox, 30);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, OutboxEvent::Delivered { entry, .. } if !ids.contains(entry)))
    );
    let applied = applied(bucket);
    assert_eq!(applied.len(), 40);
    assert!(applied.values().all(|c| c == 1));
}

#[test]
fn a_dead_letter_can_be_sent_again_with_its_key() {
    let server = start_blocking();
    let bucket = "revive";
    set_mode(bucket, 401, None);
    let pool = pool();
    let scratch = Scratch::new("revive");
    let outbox = open(&pool, &scratch.file());
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    let id = outbox.submit(save(url, 1, vec![]), DAY, SYNC).unwrap();
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(events[0], OutboxEvent::DeadLettered { .. }),
        "a 401 is final: {events:?}"
    );
    let key = outbox.dead_letters().unwrap()[0].key.clone();

    // The game refreshed its credentials; the backend accepts now (after a moment of
    // 503, so the retried entry is still pending when counted).
    set_mode(bucket, 503, None);
    assert!(outbox.retry_dead_letter(id, DAY).unwrap());
    assert_eq!(outbox.stats().dead_letters, 0);
    assert_eq!(outbox.stats().pending, 1);
    set_mode(bucket, 0, None);
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(events[0], OutboxEvent::Delivered { entry, .. } if entry == id),
        "{events:?}"
    );
    let applied = applied(bucket);
    assert_eq!(
        applied.keys().collect::<Vec<_>>(),
        [&key],
        "sent with the same Idempotency-Key"
    );
    assert!(
        !outbox.retry_dead_letter(id, DAY).unwrap(),
        "no longer a dead letter"
    );
}
