//! `cargo run --bin demo`: starts the demo backend on loopback and runs the demo scene in
//! a headless Godot that logs in, posts a score and shows the leaderboard through
//! HTTPPool. Exits 0 when every step worked.

mod backend;
#[path = "../../../tests/support/extension.rs"]
mod extension;
#[path = "../../../tests/support/godot.rs"]
mod godot_runner;

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("demo: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    let backend = runtime
        .block_on(backend::start())
        .map_err(|e| format!("cannot start the demo backend: {e}"))?;
    println!("demo: backend listening on {}", backend.url);

    let godot = godot_runner::godot_command()?;
    let lib = extension::stage_extension(&godot_runner::repo_dir())?;
    println!("demo: Godot {} with {}", godot.version(), lib.display());

    let url_arg = format!("--backend-url={}", backend.url);
    let out = godot_runner::run_project_echo(
        &godot,
        &godot_runner::project_dir(),
        &["res://demo/demo.tscn", "--", &url_arg],
        &[],
        Duration::from_secs(60),
        false,
    );
    for line in out.stdout.lines().filter(|l| l.starts_with("[demo]")) {
        println!("{line}");
    }
    let problems: Vec<&str> = out
        .combined
        .lines()
        .filter(|l| l.contains("SCRIPT ERROR") || l.contains("ERROR:") || l.contains("leaked"))
        .collect();
    if !problems.is_empty() {
        return Err(format!("Godot reported problems:\n{}", problems.join("\n")));
    }
    match out.exit_code {
        Some(0) => Ok(()),
        _ => Err(format!(
            "the demo scene did not finish cleanly (exit {:?}, signal {:?}, timed out: {})\n{}",
            out.exit_code, out.signal, out.timed_out, out.stderr
        )),
    }
}
