//! The fleet server's end of life under Agones, in a real headless Godot: started with
//! `AGONES_SDK_HTTP_PORT` pointing at the test SDK server, it marks itself Ready and sends
//! health pings; on SIGTERM it saves through HTTPPool, calls `AgonesSDK.shutdown()`, and
//! quits with exit code 0 well within the grace period.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use godot_runner::{ensure_imported, godot_command, project_dir, repo_dir};
use support::agones_sdk::AgonesSdkServer;

#[test]
fn sigterm_saves_then_calls_shutdown_then_quits() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    godot_runner::extension::stage_extension(&repo_dir()).unwrap_or_else(|e| panic!("{e}"));
    ensure_imported(&godot, &project_dir()).unwrap_or_else(|e| panic!("{e}"));
    let backend = support::http_server::start_blocking();
    let sidecar = AgonesSdkServer::start_blocking();

    let mut child = godot
        .command()
        .env("AGONES_SDK_HTTP_PORT", sidecar.port.to_string())
        .arg("--headless")
        .arg("--path")
        .arg(project_dir())
        .arg("res://agones_check/agones_check.tscn")
        .arg("--")
        .arg(format!("--save-url={}", backend.http_url))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start Godot");

    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("godot| {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr = child.stderr.take().expect("piped stderr");
    let err_thread = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });

    let mut lines: Vec<String> = Vec::new();
    let wait_for = |prefix: &str, lines: &mut Vec<String>| -> Option<String> {
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            lines.push(line.clone());
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
        None
    };
    let ready = wait_for("AGONES_CHECK ready", &mut lines)
        .unwrap_or_else(|| panic!("the server never called ready(): {lines:?}"));
    assert_eq!(ready, "AGONES_CHECK ready err=0 ok=true under_agones=true");
    assert!(
        wait_for("AGONES_CHECK state Ready", &mut lines).is_some(),
        "Ready never came through the watch stream: {lines:?}"
    );
    assert!(
        !sidecar.health_pings().is_empty(),
        "no health ping reached the sidecar"
    );

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    for step in [
        "AGONES_CHECK sigterm grace=5.0",
        "AGONES_CHECK saved 200",
        "AGONES_CHECK shutdown ok=true",
    ] {
        assert!(
            wait_for(step, &mut lines).is_some(),
            "missing {step:?} (the steps must come in this order): {lines:?}"
        );
    }
    let exit = child.wait().expect("wait for Godot");
    let took = signalled.elapsed();
    let stderr = err_thread.join().unwrap_or_default();
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
