//! SIGTERM to a headless Godot running netkit: the game hears `Netkit.shutdown_requested`
//! on the main thread, saves through HTTPPool, and quits cleanly with exit code 0; a game
//! that does not quit within the grace period is quit by netkit with exit code 124.

use std::process::Command;
use std::time::Duration;

use godot_runner::{GodotCmd, SceneProcess, godot_command, project_dir, scene_command};

/// Godot, with the extension staged once for this binary's tests (`stage_once`).
fn prepare() -> GodotCmd {
    crate::stage_once();
    godot_command().unwrap_or_else(|e| panic!("{e}"))
}

/// Starts the shutdown scene with `args` (after the test server's URL), waits until it is
/// ready, sends it SIGTERM and waits until the game heard `shutdown_requested`.
fn start_and_terminate(server_url: &str, args: &[&str]) -> SceneProcess {
    let godot = prepare();
    let mut all = vec![format!("--url={server_url}")];
    all.extend(args.iter().map(|a| a.to_string()));
    let mut game = SceneProcess::spawn(scene_command(
        &godot,
        &project_dir(),
        "res://shutdown_check/shutdown_check.tscn",
        &all,
    ))
    .expect("start Godot");
    let limit = Duration::from_secs(30);
    assert!(
        game.wait_for("SHUTDOWN_CHECK ready 0", limit).is_some(),
        "the scene never got ready: {:?}",
        game.seen
    );
    let status = Command::new("kill")
        .args(["-TERM", &game.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    assert!(
        game.wait_for("SHUTDOWN_CHECK requested", limit).is_some(),
        "no shutdown_requested: {:?}",
        game.seen
    );
    game
}

#[test]
fn sigterm_lets_the_game_save_then_quit() {
    let server = netkit_test_support::http_server::start_blocking();
    let mut game = start_and_terminate(&server.http_url, &["--key=sigterm-save"]);
    let limit = Duration::from_secs(30);
    assert!(
        game.seen
            .last()
            .unwrap()
            .contains("grace=5.0 main_thread=true"),
        "{:?}",
        game.seen
    );
    assert!(
        game.wait_for("SHUTDOWN_CHECK handler", limit).is_some(),
        "the handler did not get past freeing a pool: {:?}",
        game.seen
    );
    assert!(
        game.seen
            .last()
            .unwrap()
            .contains("callback=true freed_task=ERR_CANCELLED"),
        "a handler of shutdown_requested may call back into Netkit and free a pool: {:?}",
        game.seen
    );
    assert!(
        game.wait_for("SHUTDOWN_CHECK saved 200", limit).is_some(),
        "the save did not complete: {:?}",
        game.seen
    );

    let exit = game.child.wait().expect("wait for Godot");
    let stderr = game.stderr();
    assert_eq!(
        exit.code(),
        Some(0),
        "Godot should quit cleanly after saving; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("SCRIPT ERROR"), "{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
    assert!(
        game.wait_for("SHUTDOWN_CHECK awaited at quit: ERR_CANCELLED", limit)
            .is_some(),
        "a request awaited when the game quit should end cancelled: {:?}",
        game.seen
    );
    assert_eq!(
        server.key_count("sigterm-save"),
        1,
        "the save reached the backend once"
    );
}

#[test]
fn a_game_that_does_not_quit_within_the_grace_period_exits_with_124_not_0() {
    let server = netkit_test_support::http_server::start_blocking();
    let mut game = start_and_terminate(&server.http_url, &["--grace=0.5", "--hang"]);
    let exit = game.child.wait().expect("wait for Godot");
    let stderr = game.stderr();
    assert_eq!(
        exit.code(),
        Some(124),
        "the grace period ran out: not the clean exit code; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("grace period ended before the game quit; quitting now with exit code 124"),
        "{stderr}"
    );
}
