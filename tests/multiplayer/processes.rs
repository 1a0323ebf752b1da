//! DTLSMultiplayerPeer between two headless Godot processes under SceneMultiplayer: a
//! client joins a dedicated server, exchanges RPCs, stays connected while idle for longer
//! than the server's `idle_timeout`, and is then killed with SIGKILL (no goodbye, no
//! close_notify). The server must report it disconnected within the timeout. Meanwhile the
//! server's periodic stats log (`netkit/debug/stats_log_interval`) shows the peer: a
//! DTLSMultiplayerPeer is a RefCounted that no node's frame hook drives.
//!
//! The project is `godot_project/mp_process/` (one scene, `--role=server|client`, so RPC
//! paths match); the client stays idle past the server's `idle_timeout` (3 s), and the
//! server must report it disconnected, with the idle-timeout reason, within
//! `idle_timeout + 2 s`.

use std::time::{Duration, Instant};

use godot_runner::{
    GodotCmd, SceneProcess, ensure_imported, godot_command, project_dir, repo_dir, scene_command,
};

/// The server's `idle_timeout`, in seconds: a peer silent this long is gone.
const IDLE_TIMEOUT: f64 = 3.0;
/// Allowed beyond `IDLE_TIMEOUT` for the report to reach the script (the endpoint's timer
/// granularity plus a frame or two, with room for a machine loaded by other builds).
const SLACK: Duration = Duration::from_secs(2);

/// One side (server or client) of the test: the mp_process scene with `args`.
fn start(godot: &GodotCmd, args: &[String]) -> SceneProcess {
    SceneProcess::spawn(scene_command(
        godot,
        &project_dir(),
        "res://mp_process/mp_process.tscn",
        args,
    ))
    .expect("start Godot")
}

#[test]
fn a_killed_client_is_reported_disconnected_within_the_idle_timeout() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    godot_runner::extension::stage_extension(&repo_dir()).unwrap_or_else(|e| panic!("{e}"));
    ensure_imported(&godot, &project_dir()).unwrap_or_else(|e| panic!("{e}"));

    let mut server = start(
        &godot,
        &[
            "--role=server".into(),
            format!("--idle-timeout={IDLE_TIMEOUT}"),
            "--stats-log=0.5".into(),
        ],
    );
    let ready = server
        .wait_for("MP_PROCESS server ready ", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the server never got ready: {:?}", server.seen));
    let mut words = ready.split_whitespace().skip(3);
    let port = words.next().expect("port").to_string();
    let fingerprint = words.next().expect("fingerprint").to_string();

    let mut client = start(
        &godot,
        &[
            "--role=client".into(),
            format!("--port={port}"),
            format!("--fingerprint={fingerprint}"),
        ],
    );
    let joined = server
        .wait_for("MP_PROCESS server connected ", Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the client never joined: {:?}", server.seen));
    let id: i64 = joined
        .rsplit(' ')
        .next()
        .and_then(|w| w.parse().ok())
        .expect("peer id");
    assert!(id >= 2, "a client id is 2 or more: {joined}");
    assert!(
        server
            .wait_for("MP_PROCESS server ping ", Duration::from_secs(10))
            .is_some_and(|l| l == format!("MP_PROCESS server ping {id} hello")),
        "the client's RPC reached the server with its id: {:?}",
        server.seen
    );
    assert!(
        client
            .wait_for("MP_PROCESS client pong hello", Duration::from_secs(10))
            .is_some(),
        "the server's answering RPC reached the client: {:?}",
        client.seen
    );

    // Idle for longer than the timeout: a live client must not be dropped.
    let idle = Duration::from_secs_f64(IDLE_TIMEOUT) + SLACK;
    let early = server.wait_for("MP_PROCESS server disconnected", idle);
    assert!(
        early.is_none(),
        "a live, idle client was dropped: {early:?} ({:?})",
        server.seen
    );

    let log = server
        .seen
        .iter()
        .rev()
        .find(|l| l.starts_with("[netkit]") && l.contains("mp peers=1 "));
    let log = log.unwrap_or_else(|| panic!("no stats log line with the peer: {:?}", server.seen));
    assert!(
        log.contains("bytes_in=") && log.contains("bytes_out=") && log.contains("resent="),
        "{log}"
    );

    client.child.kill().expect("SIGKILL the client");
    let killed_at = Instant::now();
    let _ = client.child.wait();
    let gone = server
        .wait_for(
            "MP_PROCESS server disconnected ",
            Duration::from_secs_f64(IDLE_TIMEOUT) + SLACK * 5,
        )
        .unwrap_or_else(|| panic!("the killed client was never reported: {:?}", server.seen));
    let after = killed_at.elapsed();
    println!("killed client reported disconnected after {after:.2?}: {gone}");
    assert!(
        gone.starts_with(&format!("MP_PROCESS server disconnected {id} ")),
        "the killed client's id is reported: {gone}"
    );
    assert!(
        gone.contains("idle timeout"),
        "the reason says why (from get_last_disconnect_reason): {gone}"
    );
    assert!(
        after <= Duration::from_secs_f64(IDLE_TIMEOUT) + SLACK,
        "reported {after:.2?} after the kill; idle_timeout is {IDLE_TIMEOUT} s"
    );

    // The server then quits by itself (no peers left), cleanly.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = server.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the server did not quit");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = server.stderr();
    assert_eq!(status.code(), Some(0), "server exit; stderr:\n{stderr}");
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("leaked"),
        "the server reported problems:\n{stderr}"
    );
}
