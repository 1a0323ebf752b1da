//! A backend that reads some calls and never answers them: hung attempts are given up at
//! the outbox's deadline (see `core/http/outbox/deadline.rs`), so they do not hold the
//! delivery slots, and every save still arrives exactly once.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use netkit::core::events::Budget;
use netkit::core::http::outbox::{OUTBOX_CONCURRENCY, Outbox, OutboxConfig, OutboxEvent, Write};
use netkit::core::http::{HttpPool, Method, PoolSettings, RequestBody, RequestSpec};
use netkit_test_support::http_server::outbox_routes::{report, set_hang, set_slow};
use netkit_test_support::http_server::start_blocking;
use netkit_test_support::outbox::{DAY, Scratch, wait_events};

/// Saves pending at once.
const SAVES: usize = 2_000;
/// How long the whole drain may take: far below the pool's timeout, so a hung call that
/// held its slot until that timeout would fail the test.
const DRAIN_WITHIN: Duration = Duration::from_secs(400);

#[test]
fn a_backend_that_never_answers_one_call_in_ten_slows_the_outbox_but_loses_and_repeats_nothing() {
    let server = start_blocking();
    let bucket = "hang-one-in-ten";
    set_hang(bucket, 10);
    let pool = HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(300),
        // Longer than the test may take: only the outbox's own deadline frees hung calls.
        timeout: Duration::from_secs(600),
        connect_timeout: Duration::from_secs(5),
        ..PoolSettings::default()
    });
    let scratch = Scratch::new("hang-one-in-ten");
    let (outbox, _) = Outbox::open(
        OutboxConfig {
            path: scratch.file(),
            max_pending: 100_000,
            send_headers: vec![],
        },
        &pool,
    )
    .unwrap();
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    for n in 0..SAVES {
        let spec = RequestSpec {
            method: Method::Post,
            url: url.clone(),
            headers: vec![],
            body: RequestBody::Json(format!("{{\"save\":{n}}}").into()),
            final_500: false,
        };
        outbox.submit(spec, DAY, Write::Background).unwrap();
    }
    let started = std::time::Instant::now();
    let mut delivered = HashSet::new();
    let mut others = Vec::new();
    // Saves delivered after OUTBOX_CONCURRENCY calls had hung: before the change, the
    // eight delivery slots were all held by then and nothing more was delivered.
    let mut delivered_after_slots_hung = 0;
    let drained = netkit_test_support::wait::wait_until(DRAIN_WITHIN, || {
        let hung_so_far = report(bucket)["hung"].as_u64().unwrap();
        for event in outbox.drain(Budget::default()) {
            match event {
                OutboxEvent::Delivered { entry, .. } => {
                    assert!(delivered.insert(entry), "entry {entry} delivered twice");
                    if hung_so_far >= OUTBOX_CONCURRENCY as u64 {
                        delivered_after_slots_hung += 1;
                    }
                }
                other => others.push(other),
            }
        }
        delivered.len() >= SAVES
    });
    // Given-up calls' connections are closed, not left open at the backend.
    let closed = netkit_test_support::wait::wait_until(Duration::from_secs(20), || {
        report(bucket)["hanging"] == 0
    });
    let seen = report(bucket);
    let stats = outbox.stats();
    assert!(
        drained,
        "{} of {SAVES} saves delivered within {DRAIN_WITHIN:?}; backend: hung {} (open {}), duplicates {}; {stats:?}",
        delivered.len(),
        seen["hung"],
        seen["hanging"],
        seen["duplicates"]
    );
    assert!(
        others.is_empty(),
        "no dead letter or store error: {others:?}"
    );
    assert!(
        closed,
        "hung calls still open at the backend: {}",
        seen["hanging"]
    );
    assert_eq!(stats.pending, 0, "{stats:?}");
    assert!(
        delivered_after_slots_hung > SAVES / 2,
        "most saves were delivered after eight calls had hung ({delivered_after_slots_hung})"
    );
    assert!(
        seen["applied_while_hanging"].as_u64().unwrap() > (SAVES / 2) as u64,
        "saves kept being applied while hung calls were open at the backend: {}",
        seen["applied_while_hanging"]
    );
    let hung = seen["hung"].as_u64().unwrap();
    assert!(hung >= (SAVES / 10) as u64, "one call in ten hung: {hung}");
    assert!(
        stats.hung_attempts >= hung - OUTBOX_CONCURRENCY as u64,
        "the outbox gave up the hung calls ({} of {hung})",
        stats.hung_attempts
    );
    // Nothing lost, nothing applied twice: each save's body applied under one key.
    let applied = seen["applied"].as_object().unwrap();
    assert_eq!(applied.len(), SAVES, "each save applied once");
    let bodies: BTreeSet<String> = seen["bodies"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let sent: BTreeSet<String> = (0..SAVES).map(|n| format!("{{\"save\":{n}}}")).collect();
    assert_eq!(
        bodies, sent,
        "every save arrived, none twice under two keys"
    );
    assert!(
        seen["duplicates"].as_u64().unwrap() >= hung / 2,
        "a hung call was applied, and its repeat with the same key was recognised: {seen}",
    );
    eprintln!(
        "{SAVES} saves in {:.1} s, {hung} hung calls ({} still open at the server), {} duplicates recognised, {} attempts, {} given up as hung, {} applied while a hung call was open",
        started.elapsed().as_secs_f64(),
        seen["hanging"],
        seen["duplicates"],
        stats.attempts,
        stats.hung_attempts,
        seen["applied_while_hanging"]
    );
}

#[test]
fn a_backend_that_answers_every_call_after_a_second_and_a_half_is_waited_for() {
    let server = start_blocking();
    let bucket = "slow-but-answering";
    set_slow(bucket, 1_500);
    let pool = HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(300),
        ..PoolSettings::default()
    });
    let scratch = Scratch::new("slow-but-answering");
    let (outbox, _) = Outbox::open(
        OutboxConfig {
            path: scratch.file(),
            max_pending: 1_000,
            send_headers: vec![],
        },
        &pool,
    )
    .unwrap();
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    let saves = 3 * OUTBOX_CONCURRENCY;
    for n in 0..saves {
        let spec = RequestSpec {
            method: Method::Post,
            url: url.clone(),
            headers: vec![],
            body: RequestBody::Json(format!("{{\"save\":{n}}}").into()),
            final_500: false,
        };
        outbox.submit(spec, DAY, Write::Background).unwrap();
    }
    let events = wait_events(&outbox, saves);
    assert!(
        events.iter().all(
            |e| matches!(e, OutboxEvent::Delivered { response, .. } if response.status == 200)
        ),
        "{events:?}"
    );
    let stats = outbox.stats();
    assert_eq!(
        (stats.hung_attempts, stats.attempts),
        (0, saves as u64),
        "each save was waited for and sent once: {stats:?}"
    );
    assert_eq!(report(bucket)["duplicates"], 0);
}
