//! The fleet server's end of life under Agones, in a real headless Godot: started with
//! `AGONES_SDK_HTTP_PORT` pointing at the test SDK server, it marks itself Ready and sends
//! health pings; on SIGTERM it saves through HTTPPool, calls `AgonesSDK.shutdown()`, and
//! quits with exit code 0 well within the grace period.

use std::process::Command;
use std::time::{Duration, Instant};

use godot_runner::{
    SceneProcess, ensure_imported, godot_command, project_dir, repo_dir, scene_command,
};
use netkit_test_support::agones_sdk::AgonesSdkServer;

#[test]
fn sigterm_saves_then_calls_shutdown_then_quits() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    godot_runner::extension::stage_extension(&repo_dir()).unwrap_or_else(|e| panic!("{e}"));
    ensure_imported(&godot, &project_dir()).unwrap_or_else(|e| panic!("{e}"));
    let backend = netkit_test_support::http_server::start_blocking();
    let sidecar = AgonesSdkServer::start_blocking();

    let mut cmd = scene_command(
        &godot,
        &project_dir(),
        "res://agones_check/agones_check.tscn",
        &[format!("--save-url={}", backend.http_url)],
    );
    cmd.env("AGONES_SDK_HTTP_PORT", sidecar.port.to_string());
    let mut godot_process = SceneProcess::spawn(cmd).expect("start Godot");
    let limit = Duration::from_secs(30);
    let ready = godot_process
        .wait_for("AGONES_CHECK ready", limit)
        .unwrap_or_else(|| panic!("the server never called ready(): {:?}", godot_process.seen));
    assert_eq!(ready, "AGONES_CHECK ready err=0 ok=true under_agones=true");
    assert!(
        godot_process
            .wait_for("AGONES_CHECK state Ready", limit)
            .is_some(),
        "Ready never came through the watch stream: {:?}",
        godot_process.seen
    );
    assert!(
        !sidecar.health_pings().is_empty(),
        "no health ping reached the sidecar"
    );

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &godot_process.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    for step in [
        "AGONES_CHECK sigterm grace=5.0",
        "AGONES_CHECK saved 200",
        "AGONES_CHECK shutdown ok=true",
    ] {
        assert!(
            godot_process.wait_for(step, limit).is_some(),
            "missing {step:?} (the steps must come in this order): {:?}",
            godot_process.seen
        );
    }
    let exit = godot_process.child.wait().expect("wait for Godot");
    let took = signalled.elapsed();
    let stderr = godot_process.stderr();
    assert_eq!(
        exit.code(),
        Some(0),
        "clean exit expected; stderr:\n{stderr}"
    );
    assert!(
        took < Duration::from_secs(5),
        "quit after {took:?}, beyond the 5 s grace"
    );
    assert!(!stderr.contains("SCRIPT ERROR"), "{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
    assert_eq!(backend.key_count("agones-save"), 1, "saved exactly once");
    assert_eq!(sidecar.state(), "Shutdown");
    let calls: Vec<String> = sidecar
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST /ready") || r.starts_with("POST /shutdown"))
        .collect();
    assert_eq!(calls, ["POST /ready", "POST /shutdown"]);
}
