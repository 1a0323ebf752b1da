//! The durable outbox across real Godot processes: saves made while the backend is down
//! survive a SIGKILL and a SIGTERM, and the next start delivers each exactly once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use godot_runner::{
    SceneProcess, ensure_imported, godot_command, project_dir, repo_dir, scene_command,
};
use netkit_test_support::http_server::outbox_routes::{report, set_mode};
use netkit_test_support::http_server::{TestServer, start_blocking};

const LIMIT: Duration = Duration::from_secs(60);
const SCENE: &str = "res://outbox_check/outbox_check.tscn";

fn store_path(name: &str) -> PathBuf {
    std::env::temp_dir()
        .join(format!("netkit-outbox-proc-{name}-{}", std::process::id()))
        .join("outbox.redb")
}

fn start(
    server: &TestServer,
    store: &Path,
    bucket: &str,
    mode: &str,
    count: usize,
) -> SceneProcess {
    start_with(server, store, bucket, mode, count, true)
}

fn start_with(
    server: &TestServer,
    store: &Path,
    bucket: &str,
    mode: &str,
    count: usize,
    sync: bool,
) -> SceneProcess {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    SceneProcess::spawn(scene_command(
        &godot,
        &project_dir(),
        SCENE,
        &[
            format!("--url={}", server.http_url),
            format!("--store={}", store.display()),
            format!("--bucket={bucket}"),
            format!("--count={count}"),
            format!("--mode={mode}"),
            format!("--sync={sync}"),
        ],
    ))
    .expect("start Godot")
}

/// Stages the extension and imports the project once per test binary (the tests run in
/// parallel and would otherwise replace the library under each other), then starts a server.
fn prepare() -> TestServer {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
        godot_runner::extension::stage_extension(&repo_dir()).unwrap_or_else(|e| panic!("{e}"));
        ensure_imported(&godot, &project_dir()).unwrap_or_else(|e| panic!("{e}"));
    });
    start_blocking()
}

/// Waits for a line starting with `prefix`; on timeout fails with what Godot printed.
fn expect_line(game: &mut SceneProcess, prefix: &str) -> String {
    if let Some(line) = game.wait_for(prefix, LIMIT) {
        return line;
    }
    let seen = game.seen.clone();
    panic!("no '{prefix}' line: {seen:?}\nstderr:\n{}", game.stderr());
}

fn signal(game: &SceneProcess, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &game.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Starts a replaying run with the backend up and checks every entry arrives exactly once.
fn replay_delivers(server: &TestServer, store: &Path, bucket: &str, count: usize) {
    set_mode(bucket, 0, None);
    let mut game = start(server, store, bucket, "replay", count);
    let line = expect_line(&mut game, "OUTBOX_CHECK replaying");
    assert!(
        line.ends_with(&format!("pending={count}")),
        "the store held every save: {line}"
    );
    expect_line(&mut game, "OUTBOX_CHECK delivered");
    let exit = game.child.wait().expect("wait for Godot");
    let stderr = game.stderr();
    assert_eq!(exit.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("SCRIPT ERROR"), "{stderr}");
    let seen = report(bucket);
    let applied = seen["applied"].as_object().unwrap();
    assert_eq!(
        applied.len(),
        count,
        "each save reached the backend: {seen}"
    );
    assert!(applied.values().all(|n| n == 1), "{seen}");
    assert_eq!(seen["duplicates"], 0, "none was applied twice: {seen}");
    let auth = seen["authorization"].as_array().unwrap();
    assert!(
        auth.iter().all(|a| a == "Bearer process-token"),
        "credentials come from default_headers at send time: {seen}"
    );
    let bytes = std::fs::read(store).unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("process-token"),
        "no credential in the store file"
    );
}

#[test]
fn saves_pending_at_sigkill_are_delivered_once_at_the_next_start() {
    let server = prepare();
    let bucket = "proc-sigkill";
    let store = store_path("sigkill");
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
    set_mode(bucket, 503, None);
    let count = 20;

    let mut game = start(&server, &store, bucket, "save", count);
    let line = expect_line(&mut game, "OUTBOX_CHECK saved");
    assert!(line.ends_with(&format!("pending={count}")), "{line}");
    // Let the outage be felt (attempts answered 503), then kill without warning.
    let deadline = std::time::Instant::now() + LIMIT;
    while report(bucket)["refused"].as_u64().unwrap() < count as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "no attempts reached the backend"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&game, "KILL");
    let exit = game.child.wait().expect("wait for Godot");
    assert_eq!(exit.code(), None, "killed by a signal");
    assert!(report(bucket)["applied"].as_object().unwrap().is_empty());

    replay_delivers(&server, &store, bucket, count);
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
}

#[test]
fn a_save_made_on_sigterm_is_on_disk_before_exit_and_delivered_at_the_next_start() {
    sigterm_save_survives("proc-sigterm", true);
}

#[test]
fn a_background_write_made_on_sigterm_is_committed_before_exit() {
    // outbox_sync_write = false: request_durable only queues the entry, and the quit that
    // follows at once must commit it when the pool is freed.
    sigterm_save_survives("proc-sigterm-background", false);
}

fn sigterm_save_survives(bucket: &str, sync: bool) {
    let server = prepare();
    let store = store_path(bucket);
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
    set_mode(bucket, 503, None);

    let mut game = start_with(&server, &store, bucket, "sigterm", 1, sync);
    expect_line(&mut game, "OUTBOX_CHECK ready 0");
    signal(&game, "TERM");
    let line = expect_line(&mut game, "OUTBOX_CHECK stored");
    assert!(line.ends_with("pending=1"), "{line}");
    let exit = game.child.wait().expect("wait for Godot");
    let stderr = game.stderr();
    assert_eq!(exit.code(), Some(0), "quits at once, cleanly: {stderr}");
    assert!(!stderr.contains("SCRIPT ERROR"), "{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
    assert!(
        report(bucket)["applied"].as_object().unwrap().is_empty(),
        "the backend was down: nothing delivered yet"
    );

    replay_delivers(&server, &store, bucket, 1);
    let body = report(bucket)["bodies"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .cloned();
    assert_eq!(body.unwrap(), "{\"world\":\"final\",\"run\":\"sigterm\"}");
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
}

#[test]
fn sigkill_at_random_moments_of_continuous_saving_loses_and_repeats_nothing() {
    let server = prepare();
    let bucket = "proc-kill-loop";
    let store = store_path("kill-loop");
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
    set_mode(bucket, 0, None);
    let mut returned: Vec<String> = Vec::new();
    // Kill points spread over the first 1.5 s of saving, different in each run.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    for run in 0..6 {
        let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
        let mut game = SceneProcess::spawn(scene_command(
            &godot,
            &project_dir(),
            SCENE,
            &[
                format!("--url={}", server.http_url),
                format!("--store={}", store.display()),
                format!("--bucket={bucket}"),
                "--mode=stream".to_string(),
                format!("--run=r{run}"),
            ],
        ))
        .expect("start Godot");
        let line = expect_line(&mut game, "OUTBOX_CHECK streaming");
        assert!(
            line.ends_with("set_aside=0"),
            "run {run}: the store a SIGKILL left opens as it is: {line}"
        );
        expect_line(&mut game, "OUTBOX_CHECK returned");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(50 + seed % 1500));
        signal(&game, "KILL");
        let exit = game.child.wait().expect("wait for Godot");
        assert_eq!(exit.code(), None, "killed by a signal");
        // The rest of what it printed, up to the closed pipe.
        let _ = game.wait_for("\u{0}", Duration::from_secs(10));
        let stderr = game.stderr();
        assert!(!stderr.contains("SCRIPT ERROR"), "{stderr}");
        assert!(
            !game
                .seen
                .iter()
                .any(|l| l.starts_with("OUTBOX_CHECK refused")),
            "{:?}",
            game.seen
        );
        let tags: Vec<String> = game
            .seen
            .iter()
            .filter_map(|l| l.strip_prefix("OUTBOX_CHECK returned "))
            .map(str::to_string)
            .collect();
        assert!(!tags.is_empty(), "run {run} saved before the kill");
        returned.extend(tags);
    }

    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    let mut game = SceneProcess::spawn(scene_command(
        &godot,
        &project_dir(),
        SCENE,
        &[
            format!("--url={}", server.http_url),
            format!("--store={}", store.display()),
            format!("--bucket={bucket}"),
            "--mode=drain".to_string(),
        ],
    ))
    .expect("start Godot");
    let line = expect_line(&mut game, "OUTBOX_CHECK drained");
    assert!(line.ends_with("set_aside=0"), "{line}");
    assert_eq!(game.child.wait().expect("wait").code(), Some(0));

    // Every save whose request_durable returned reached the backend, applied once.
    let seen = report(bucket);
    let applied = seen["applied"].as_object().unwrap();
    assert!(applied.values().all(|n| n == 1), "{seen}");
    let mut bodies: Vec<String> = seen["bodies"]
        .as_object()
        .unwrap()
        .values()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(b.as_str().unwrap()).unwrap();
            format!("{}-{}", v["run"].as_str().unwrap(), v["save"])
        })
        .collect();
    bodies.sort();
    let unique = bodies.len();
    bodies.dedup();
    assert_eq!(unique, bodies.len(), "no save was applied under two keys");
    let missing: Vec<&String> = returned
        .iter()
        .filter(|t| bodies.binary_search(t).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} returned saves never arrived: {:?}",
        missing.len(),
        returned.len(),
        &missing[..missing.len().min(20)]
    );
    eprintln!(
        "{} saves returned over 6 SIGKILLed runs, {} applied, {} duplicates answered",
        returned.len(),
        applied.len(),
        seen["duplicates"]
    );
    let _ = std::fs::remove_dir_all(store.parent().unwrap());
}
