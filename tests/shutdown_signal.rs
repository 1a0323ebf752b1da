//! SIGTERM to a headless Godot running netkit: the game hears `Netkit.shutdown_requested`
//! on the main thread, saves through HTTPPool, and quits cleanly with exit code 0.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use godot_runner::{ensure_imported, godot_command, project_dir, repo_dir};

#[test]
fn sigterm_lets_the_game_save_then_quit() {
    let godot = godot_command().unwrap_or_else(|e| panic!("{e}"));
    godot_runner::extension::stage_extension(&repo_dir()).unwrap_or_else(|e| panic!("{e}"));
    ensure_imported(&godot, &project_dir()).unwrap_or_else(|e| panic!("{e}"));
    let server = support::http_server::start_blocking();

    let mut child = godot
        .command()
        .arg("--headless")
        .arg("--path")
        .arg(project_dir())
        .arg("res://shutdown_check/shutdown_check.tscn")
        .arg("--")
        .arg(format!("--url={}", server.http_url))
        .arg("--key=sigterm-save")
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

    let mut lines = Vec::new();
    let wait_for = |prefix: &str, lines: &mut Vec<String>| -> bool {
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
            let hit = line.starts_with(prefix);
            lines.push(line);
            if hit {
                return true;
            }
        }
        false
    };
    assert!(
        wait_for("SHUTDOWN_CHECK ready 0", &mut lines),
        "the scene never got ready: {lines:?}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    assert!(
        wait_for("SHUTDOWN_CHECK requested", &mut lines),
        "no shutdown_requested: {lines:?}"
    );
    assert!(
        lines.last().unwrap().contains("grace=5.0 main_thread=true"),
        "{lines:?}"
    );
    assert!(
        wait_for("SHUTDOWN_CHECK handler", &mut lines),
        "the handler did not get past freeing a pool: {lines:?}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .contains("callback=true freed_task=ERR_CANCELLED"),
        "a handler of shutdown_requested may call back into Netkit and free a pool: {lines:?}"
    );
    assert!(
        wait_for("SHUTDOWN_CHECK saved 200", &mut lines),
        "the save did not complete: {lines:?}"
    );

    let exit = child.wait().expect("wait for Godot");
    let stderr = err_thread.join().unwrap_or_default();
    assert_eq!(
        exit.code(),
        Some(0),
        "Godot should quit cleanly after saving; stderr:\n{stderr}"
    );
    assert!(!stderr.contains("SCRIPT ERROR"), "{stderr}");
    assert!(!stderr.contains("leaked"), "{stderr}");
    assert_eq!(
        server.key_count("sigterm-save"),
        1,
        "the save reached the backend once"
    );
}
