//! The durable outbox against faults of its file and of its backend: a store damaged in
//! the middle of a valid file or cut short, read-only, a store path that is a folder, the
//! file deleted while the game runs, a 10,000-entry store, a body of many MB, redirects
//! that would drop the save or its key, a 2xx after the timeout, and a `Retry-After` far
//! in the future.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use netkit::core::events::Budget;
use netkit::core::http::outbox::{OpenError, Outbox, OutboxConfig, OutboxEvent, Write};
use netkit::core::http::{HttpPool, Method, PoolSettings, RequestBody, RequestSpec};
use netkit_test_support::http_server::outbox_routes::{report, set_mode};
use netkit_test_support::http_server::start_blocking;
use netkit_test_support::outbox::{DAY, SYNC, Scratch, free_port, pool, wait_events, wait_until};
use serde_json::Value;

fn open_at(pool: &HttpPool, path: &Path) -> Result<(Outbox, Option<String>), OpenError> {
    Outbox::open(
        OutboxConfig {
            path: path.to_path_buf(),
            max_pending: 100_000,
            send_headers: vec![],
        },
        pool,
    )
}

fn save(url: &str, n: usize) -> RequestSpec {
    RequestSpec {
        method: Method::Post,
        url: url.to_string(),
        headers: vec![],
        body: RequestBody::Json(format!("{{\"save\":{n}}}").into()),
        final_500: false,
    }
}

/// A closed store holding `n` pending saves for a port nobody listens on.
fn store_with_pending(path: &Path, n: usize) {
    let pool = pool();
    let (outbox, _) = open_at(&pool, path).unwrap();
    let url = format!("http://{}/outbox/save?bucket=never", free_port());
    for i in 0..n {
        outbox.submit(save(&url, i), DAY, SYNC).unwrap();
    }
    drop(outbox);
}

/// Opening a damaged store never panics: it either reads every entry back or sets the
/// file aside (kept as it was) and starts empty.
fn reopen_damaged(path: &Path, n: usize, damaged: &[u8]) {
    let pool = pool();
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open_at(&pool, path)));
    let (outbox, set_aside) = opened
        .expect("opening a damaged store does not panic")
        .expect("a damaged store is replaced, not refused");
    match set_aside {
        Some(message) => {
            assert!(message.contains(".corrupt-"), "{message}");
            assert_eq!(outbox.stats().pending, 0);
            let aside: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(".corrupt-"))
                .collect();
            assert_eq!(aside.len(), 1, "{aside:?}");
            assert_eq!(std::fs::read(&aside[0]).unwrap(), damaged, "kept as it was");
        }
        None => assert_eq!(
            outbox.stats().pending + outbox.stats().unreadable,
            n as u64,
            "a store read back is read back whole"
        ),
    }
    // Either way the store works.
    let server = start_blocking();
    let url = format!("{}/outbox/save?bucket=after-damage", server.http_url);
    let before = report("after-damage")["applied"].as_object().unwrap().len();
    outbox.submit(save(&url, 1), DAY, SYNC).unwrap();
    wait_until("the save after the damage", || {
        report("after-damage")["applied"].as_object().unwrap().len() > before
    });
}

#[test]
fn a_store_damaged_in_the_middle_is_set_aside_without_a_panic() {
    let scratch = Scratch::new("middle");
    let path = scratch.file();
    store_with_pending(&path, 300);
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    assert!(len > 64 * 1024, "the store has pages to damage: {len}");
    // Overwrite pages in the middle with a plausible-looking but wrong pattern.
    for (i, b) in bytes[len / 3..len / 3 + 16 * 1024].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    reopen_damaged(&path, 300, &bytes);
}

#[test]
fn a_store_cut_short_is_set_aside_without_a_panic() {
    let scratch = Scratch::new("short");
    let path = scratch.file();
    store_with_pending(&path, 300);
    let bytes = std::fs::read(&path).unwrap();
    let cut = bytes[..bytes.len() / 2].to_vec();
    std::fs::write(&path, &cut).unwrap();
    reopen_damaged(&path, 300, &cut);
}

#[test]
fn a_store_path_that_is_a_folder_is_refused_and_the_folder_left_alone() {
    let scratch = Scratch::new("folder");
    let path = scratch.file();
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("keep.txt"), b"the game's own file").unwrap();
    let pool = pool();
    match open_at(&pool, &path) {
        Err(OpenError::Unusable(message)) => {
            assert!(message.contains("folder"), "{message}");
        }
        Err(other) => panic!("expected Unusable, got {other:?}"),
        Ok((_, set_aside)) => panic!("a folder is not a store: opened, set aside {set_aside:?}"),
    }
    assert_eq!(
        std::fs::read(path.join("keep.txt")).unwrap(),
        b"the game's own file",
        "the folder was not renamed or touched"
    );
}

#[test]
fn a_store_deleted_while_open_is_made_again_and_loses_no_save() {
    let scratch = Scratch::new("deleted");
    // Its folder goes too, as when a player clears the game's data folder.
    let path = scratch.0.join("saves").join("outbox.redb");
    let pool = pool();
    let (outbox, _) = open_at(&pool, &path).unwrap();
    let url = format!("http://{}/outbox/save?bucket=never", free_port());
    outbox.submit(save(&url, 0), DAY, SYNC).unwrap();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    outbox
        .submit(save(&url, 1), DAY, SYNC)
        .expect("a save after the delete is stored");
    outbox
        .submit(save(&url, 2), DAY, Write::Background)
        .expect("a background save after the delete is queued");
    assert!(path.is_file(), "the store file is there again");
    let events = outbox.drain(Budget::default());
    assert!(
        events.iter().any(
            |e| matches!(e, OutboxEvent::StoreError(m) if m.contains("deleted") && m.contains("nothing was lost"))
        ),
        "the game is told: {events:?}"
    );
    drop(outbox);
    let (outbox, set_aside) = open_at(&pool, &path).unwrap();
    assert_eq!(set_aside, None);
    assert_eq!(
        outbox.stats().pending,
        3,
        "the save from before the delete and both after it are in the file"
    );
}

#[test]
fn a_redirect_that_would_turn_a_durable_post_into_a_get_is_a_dead_letter() {
    let server = start_blocking();
    let pool = pool();
    let scratch = Scratch::new("redirect-303");
    let (outbox, _) = open_at(&pool, &scratch.file()).unwrap();
    for code in [301, 302, 303] {
        let url = format!("{}/redirect/{code}?to=%2Fecho", server.http_url);
        outbox.submit(save(&url, code), DAY, SYNC).unwrap();
        let events = wait_events(&outbox, 1);
        match &events[0] {
            OutboxEvent::DeadLettered { response, .. } => assert!(
                response.error_message.contains("307"),
                "{code}: {}",
                response.error_message
            ),
            other => panic!("{code}: the save never reached a POST handler: {other:?}"),
        }
    }
}

#[test]
fn a_cross_origin_307_keeps_the_idempotency_key_but_not_the_credentials() {
    let server = start_blocking();
    let bucket = "cross-origin";
    let pool = pool();
    let scratch = Scratch::new("redirect-307");
    let (outbox, _) = open_at(&pool, &scratch.file()).unwrap();
    // Same server, another origin: "localhost" instead of "127.0.0.1".
    let to = format!(
        "http://localhost:{}/outbox/save?bucket={bucket}",
        server.http_addr.port()
    );
    let encoded: String = to
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}/redirect/307?to={encoded}", server.http_url);
    let mut spec = save(&url, 7);
    spec.headers
        .push(("Authorization".into(), "Bearer secret".into()));
    outbox.submit(spec, DAY, SYNC).unwrap();
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(events[0], OutboxEvent::Delivered { .. }),
        "{events:?}"
    );
    let report: Value = report(bucket);
    assert_eq!(report["applied"].as_object().unwrap().len(), 1, "{report}");
    assert_eq!(
        report["authorization"].as_array().map_or(0, Vec::len),
        0,
        "the token did not cross origins: {report}"
    );
}

#[test]
fn a_retry_after_far_in_the_future_is_capped_by_retry_max_delay() {
    let server = start_blocking();
    let bucket = "retry-after-huge";
    set_mode(bucket, 503, Some(100_000));
    let pool = pool();
    let scratch = Scratch::new("retry-after-huge");
    let (outbox, _) = open_at(&pool, &scratch.file()).unwrap();
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    outbox.submit(save(&url, 1), DAY, SYNC).unwrap();
    wait_until("the first refusal", || {
        report(bucket)["refused"].as_u64().unwrap() >= 1
    });
    set_mode(bucket, 0, None);
    // retry_max_delay is 300 ms here: the next attempt comes well within the minute.
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(events[0], OutboxEvent::Delivered { .. }),
        "{events:?}"
    );
}

#[test]
fn ten_thousand_pending_entries_reopen_whole_and_quickly() {
    let scratch = Scratch::new("ten-thousand");
    let path = scratch.file();
    let url = format!("http://{}/outbox/save?bucket=never", free_port());
    {
        let pool = pool();
        let (outbox, _) = open_at(&pool, &path).unwrap();
        // Background writes: one commit per batch, so the setup is quick.
        for i in 0..10_000 {
            outbox
                .submit(save(&url, i), DAY, Write::Background)
                .unwrap();
        }
        // The first sync write waits for the background commits; the second is the cost.
        outbox.submit(save(&url, 10_000), DAY, SYNC).unwrap();
        let started = Instant::now();
        outbox.submit(save(&url, 10_001), DAY, SYNC).unwrap();
        eprintln!(
            "a durable submit with 10001 pending: {:?}",
            started.elapsed()
        );
    }
    let size = std::fs::metadata(&path).unwrap().len();
    let pool = pool();
    let started = Instant::now();
    let (outbox, set_aside) = open_at(&pool, &path).unwrap();
    let took = started.elapsed();
    eprintln!(
        "open with the integrity check and replay of 10002 entries ({} KiB): {took:?}",
        size / 1024
    );
    assert_eq!(set_aside, None);
    assert_eq!(outbox.stats().pending, 10_002, "every entry is back");
    assert!(
        took < Duration::from_secs(20),
        "opening a full outbox stays well under a frame hitch budget: {took:?}"
    );
    let started = Instant::now();
    assert!(outbox.dead_letters().unwrap().is_empty());
    eprintln!("dead_letters() with 10002 pending: {:?}", started.elapsed());
}

#[test]
fn a_2xx_that_arrives_after_the_timeout_is_retried_with_the_same_key_and_applied_once() {
    let server = start_blocking();
    let bucket = "slow-2xx";
    // The backend applies the save at once but answers after 2.5 s; we wait 1 s.
    netkit_test_support::http_server::outbox_routes::set_slow(bucket, 2_500);
    let pool = HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(300),
        timeout: Duration::from_secs(1),
        ..PoolSettings::default()
    });
    let scratch = Scratch::new("slow-2xx");
    let (outbox, _) = open_at(&pool, &scratch.file()).unwrap();
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    outbox.submit(save(&url, 1), DAY, SYNC).unwrap();
    wait_until("a timed-out attempt and its retry", || {
        report(bucket)["duplicates"].as_u64().unwrap() >= 1
    });
    // Now answer in time: the next attempt is delivered.
    netkit_test_support::http_server::outbox_routes::set_slow(bucket, 0);
    let events = wait_events(&outbox, 1);
    assert!(
        matches!(&events[0], OutboxEvent::Delivered { response, .. } if response.status == 200),
        "{events:?}"
    );
    assert!(outbox.stats().attempts >= 2, "{:?}", outbox.stats());
    let seen = report(bucket);
    assert_eq!(
        seen["applied"].as_object().unwrap().len(),
        1,
        "every attempt carried the one key, so the backend applied it once: {seen}"
    );
}

#[test]
fn a_body_of_many_megabytes_is_stored_sent_and_a_413_makes_it_a_dead_letter() {
    let server = start_blocking();
    let bucket = "big-body";
    let pool = pool();
    let scratch = Scratch::new("big-body");
    let (outbox, _) = open_at(&pool, &scratch.file()).unwrap();
    let body: Vec<u8> = (0..48 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
    let started = Instant::now();
    let id = outbox
        .submit(
            RequestSpec {
                method: Method::Put,
                url: url.clone(),
                headers: vec![],
                body: RequestBody::Binary(body.clone().into()),
                final_500: false,
            },
            DAY,
            SYNC,
        )
        .unwrap();
    eprintln!("a durable submit of 48 MiB: {:?}", started.elapsed());
    // The test backend reads at most 1 MiB: 413, final.
    let events = wait_events(&outbox, 1);
    match &events[0] {
        OutboxEvent::DeadLettered { entry, response } => {
            assert_eq!(*entry, id);
            assert_eq!(response.status, 413, "{response:?}");
        }
        other => panic!("expected a dead letter: {other:?}"),
    }
    let started = Instant::now();
    let letters = outbox.dead_letters().unwrap();
    eprintln!("dead_letters() with a 48 MiB body: {:?}", started.elapsed());
    assert_eq!(letters.len(), 1);
    assert!(letters[0].body == body, "the body is kept whole");
}

#[test]
fn a_store_deleted_just_before_the_pool_closes_is_made_again_with_its_entries() {
    let scratch = Scratch::new("deleted-at-close");
    let path = scratch.file();
    let pool = pool();
    let (outbox, _) = open_at(&pool, &path).unwrap();
    let url = format!("http://{}/outbox/save?bucket=never", free_port());
    for i in 0..3 {
        outbox.submit(save(&url, i), DAY, SYNC).unwrap();
    }
    std::fs::remove_file(&path).unwrap();
    // No store operation in between: the close itself must notice.
    drop(outbox);
    let (outbox, _) = open_at(&pool, &path).unwrap();
    assert_eq!(
        outbox.stats().pending,
        3,
        "the quit kept every pending save"
    );
}

/// Makes `path` unwritable: mode 0444, and for root (whom modes do not stop) the
/// immutable attribute. Returns how to undo it.
fn make_read_only(path: &Path) -> impl FnOnce() {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let writable = || std::fs::OpenOptions::new().write(true).open(path).is_ok();
    let mut immutable = false;
    if writable() {
        let status = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .expect("run chattr (running as root, a mode does not make a file read-only)");
        assert!(status.success(), "chattr +i failed");
        immutable = true;
        assert!(!writable(), "the file is still writable");
    }
    let path = path.to_path_buf();
    move || {
        if immutable {
            let _ = std::process::Command::new("chattr")
                .arg("-i")
                .arg(&path)
                .status();
        }
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644));
    }
}

#[test]
fn a_read_only_store_is_refused_not_renamed_and_opens_whole_once_writable() {
    let scratch = Scratch::new("read-only");
    let path = scratch.file();
    store_with_pending(&path, 5);
    let before = std::fs::read(&path).unwrap();
    let undo = make_read_only(&path);
    let pool = pool();
    let opened = open_at(&pool, &path);
    let untouched = std::fs::read(&path).unwrap() == before;
    let names: Vec<String> = std::fs::read_dir(&scratch.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    undo();
    match opened {
        Err(OpenError::Unusable(message)) => {
            assert!(message.contains("nothing was renamed"), "{message}")
        }
        Err(other) => panic!("expected Unusable: {other:?}"),
        Ok((_, set_aside)) => panic!("a read-only store was opened: set aside {set_aside:?}"),
    }
    assert!(untouched, "the file was not changed");
    assert_eq!(
        names,
        vec!["outbox.redb".to_string()],
        "nothing was renamed"
    );
    let (outbox, set_aside) = open_at(&pool, &path).unwrap();
    assert_eq!(set_aside, None);
    assert_eq!(outbox.stats().pending, 5, "its saves are all there");
}

#[test]
fn dead_letters_count_toward_the_bound_so_a_refusing_backend_cannot_grow_the_store() {
    let server = start_blocking();
    let pool = pool();
    let scratch = Scratch::new("dead-bound");
    let (outbox, _) = Outbox::open(
        OutboxConfig {
            path: scratch.file(),
            max_pending: 3,
            send_headers: vec![],
        },
        &pool,
    )
    .unwrap();
    let url = format!("{}/status/400", server.http_url);
    for i in 0..3 {
        outbox.submit(save(&url, i), DAY, SYNC).unwrap();
    }
    wait_events(&outbox, 3);
    assert_eq!(outbox.stats().dead_letters, 3);
    let (kind, message) = outbox.submit(save(&url, 3), DAY, SYNC).unwrap_err();
    assert_eq!(kind, netkit::core::http::ErrorKind::QueueFull);
    assert!(
        message.contains("3 dead letters") && message.contains("drop_dead_letter"),
        "{message}"
    );
    let first = outbox.dead_letters().unwrap()[0].id;
    assert!(outbox.drop_dead_letter(first).unwrap());
    outbox
        .submit(save(&url, 4), DAY, SYNC)
        .expect("room again after a dead letter was dropped");
}
