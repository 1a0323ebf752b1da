//! `NETKIT_SIMULATE` on an unmodified game in a real headless Godot: read at start-up and
//! announced in the output; a malformed value is an error naming the token, and the game
//! runs unsimulated.

use std::time::Duration;

use godot_runner::{SceneProcess, godot_command, project_dir, scene_command};

/// Runs the check scene with `NETKIT_SIMULATE=value`; returns the GET's milliseconds and
/// everything the game printed (stdout, then stderr).
fn run_with(value: &str) -> (u64, String) {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    crate::stage_once();
    let server = netkit_test_support::http_server::start_blocking();
    let mut cmd = scene_command(
        &godot,
        &project_dir(),
        "res://simulate_check/simulate_check.tscn",
        &[format!("--url={}", server.http_url)],
    );
    cmd.env("NETKIT_SIMULATE", value);
    let mut game = SceneProcess::spawn(cmd).expect("start Godot");
    let line = game
        .wait_for("SIMULATE_CHECK done", Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the game never finished its GET: {:?}", game.seen));
    let exit = game.child.wait().expect("wait for Godot");
    let output = format!("{}\n{}", game.seen.join("\n"), game.stderr());
    assert_eq!(exit.code(), Some(0), "{output}");
    assert!(line.ends_with("ok=true"), "{line}");
    let ms = line
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable line {line}"));
    (ms, output)
}

#[test]
fn netkit_simulate_applies_to_an_unmodified_game_and_says_so() {
    let (ms, output) = run_with("latency=300ms seed=5");
    assert!(
        ms >= 300,
        "the GET took {ms} ms under latency=300ms\n{output}"
    );
    assert!(
        output.contains("[netkit] simulating network conditions (NETKIT_SIMULATE): latency=300ms"),
        "{output}"
    );
}

#[test]
fn a_malformed_netkit_simulate_is_an_error_naming_the_token_and_nothing_applies() {
    let (_, output) = run_with("latency=300ms jitter=lots");
    assert!(
        output.contains("NETKIT_SIMULATE: cannot read network conditions at \"jitter=lots\""),
        "{output}"
    );
    assert!(output.contains("the network is not simulated"), "{output}");
    assert!(!output.contains("[netkit] simulating"), "{output}");
}
