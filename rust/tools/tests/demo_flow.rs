//! Runs the README's demo command end to end: backend, headless dedicated server, clients
//! (one admitted, one with a forged and one with an expired token), then SIGTERM to the
//! server, which must deregister and exit 0.

use std::process::Command;

#[test]
fn demo_runs_the_whole_dedicated_server_flow() {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the demo failed:\n{stderr}");
    for expected in [
        "[server] registered as server",
        "[client alice] logged in as alice",
        "[client alice] DTLS connected (certificate pinned)",
        "[client alice] welcome, alice",
        "[client alice] move 3 acknowledged",
        "[client alice] posted score",
        "[client alice] leaderboard: ",
        "[client bob] refused by the server: token signature is invalid",
        "[client carol] refused by the server: token has expired",
        "[netkit] shutdown requested by signal",
        "[server] deregistered from the backend: yes",
        "[backend] server 1 deregistered",
        "demo: every step happened",
    ] {
        assert!(
            stdout.contains(expected),
            "missing from the demo's log: {expected}"
        );
    }
}
