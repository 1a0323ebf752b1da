//! `cargo run --bin demo`: the whole dedicated-server flow on loopback, with no setup.
//!
//! 1. An embedded backend (login with signed expiring tokens, token validation for game
//!    servers, profiles, scores, leaderboard, a server registry with heartbeats).
//! 2. A headless Godot dedicated server that registers and heartbeats through HTTPPool and
//!    runs SceneMultiplayer over DTLSMultiplayerPeer: its `auth_callback` validates each
//!    joining player's token (sent with `send_auth`) with the backend and calls
//!    `complete_auth` only on a yes; a MultiplayerSpawner spawns the player and a
//!    MultiplayerSynchronizer replicates its position.
//! 3. A headless Godot client that logs in, lists servers, joins, moves its player with
//!    `@rpc` calls and sees the synchronized position, posts a score and reads the
//!    leaderboard; then clients with a forged and an expired token, which the server
//!    refuses at authentication, before any RPC of theirs reaches game code.
//!    The server saves each leaving player's result, and the world at shutdown, through
//!    HTTPPool's durable outbox (on disk first, `Idempotency-Key`, retried until the backend
//!    accepts it); the backend applies each save once per key.
//! 4. SIGTERM to the server, which saves the world, deregisters and quits cleanly.
//!
//! Prints a readable log and exits 0 only when every step happened.
//!
//! The scenes are `godot_project/demo/server.tscn` and `client.tscn`;
//! `rust/tools/tests/demo_flow.rs` runs this binary and checks every step of its log. The
//! server gets a fresh outbox file per run (`--outbox=`), since a stored entry names the
//! backend's URL and the backend's port is new each run. Each scene roots its own
//! SceneMultiplayer at itself (`SceneTree.set_multiplayer(mp, get_path())`, before the
//! world enters the tree, since a spawner registers with the multiplayer it finds on
//! entering) and adds the shared `demo/world.gd` as `World`, so RPC and replication paths,
//! relative to that root, are the same on both sides although the scenes' root nodes
//! differ. The client answers `peer_authenticating` with `send_auth(token)`; the server's
//! `auth_callback` asks the backend (`/tokens/validate` through HTTPPool) and on a yes
//! sends `welcome:NAME` and calls `complete_auth`, on a no sends `refused:REASON` and
//! disconnects the peer a few frames later; the client calls `complete_auth` only on a
//! welcome. The player's synchronizer replicates `position` on change; `move` is an
//! `any_peer` reliable RPC the server checks (sender has a player, finite, within the
//! world) before applying and acknowledging.

mod server_process;

use netkit_tools::demo::backend;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use godot_runner::{GodotCmd, extension};

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("demo: every step happened");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("demo: FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    let backend = runtime
        .block_on(backend::start())
        .map_err(|e| format!("cannot start the demo backend: {e}"))?;
    step(&format!("backend listening on {}", backend.url));

    let godot = godot_runner::godot_command()?;
    let lib = extension::stage_extension(&godot_runner::repo_dir())?;
    godot_runner::ensure_imported(&godot, &godot_runner::project_dir())?;
    step(&format!("Godot {} with {}", godot.version(), lib.display()));

    // A fresh outbox per run: its entries name this run's backend port.
    let outbox =
        std::env::temp_dir().join(format!("netkit-demo-outbox-{}.redb", std::process::id()));
    let _ = std::fs::remove_file(&outbox);
    let mut server = server_process::start(&godot, &backend.url, &backend.server_key, &outbox)?;
    let registered = wait_until(Duration::from_secs(20), || !backend.servers().is_empty());
    print_log(&backend);
    if !registered {
        server.stop();
        return Err("the dedicated server did not register with the backend".into());
    }
    let game = backend.servers().remove(0);
    step(&format!(
        "server {} is listed at {}:{}",
        game.id, game.host, game.port
    ));

    let backend_arg = format!("--backend-url={}", backend.url);
    let port_arg = format!("--server-port={}", game.port);
    let fp_arg = format!("--fingerprint={}", game.fingerprint);
    // NETKIT_DEMO_SKIP=clients runs only the server part (for debugging the server alone).
    let skip = std::env::var("NETKIT_DEMO_SKIP").unwrap_or_default();
    let mut result = if skip.contains("clients") {
        Ok(())
    } else {
        run_client(
            &godot,
            "alice",
            &[&backend_arg, "--player=alice", "--password=wonderland"],
            &backend,
        )
    };

    if result.is_ok() && !skip.contains("clients") && !skip.contains("refused") {
        let forged = format!("--token=bob.{}.{}", backend::now() + 600, "00".repeat(32));
        result = run_client(
            &godot,
            "bob (forged token)",
            &[
                &backend_arg,
                "--player=bob",
                &forged,
                &port_arg,
                &fp_arg,
                "--expect=refused",
            ],
            &backend,
        );
    }
    if result.is_ok() && !skip.contains("clients") && !skip.contains("refused") {
        let expired = format!(
            "--token={}",
            backend.issue_token("carol", backend::now() - 60)
        );
        result = run_client(
            &godot,
            "carol (expired token)",
            &[
                &backend_arg,
                "--player=carol",
                &expired,
                &port_arg,
                &fp_arg,
                "--expect=refused",
            ],
            &backend,
        );
    }

    step("sending SIGTERM to the dedicated server");
    let exit = server.terminate(Duration::from_secs(10));
    print_log(&backend);
    let _ = std::fs::remove_file(&outbox);
    result?;
    let exit = exit?;
    if exit != Some(0) {
        return Err(format!(
            "the dedicated server exited with {exit:?} after SIGTERM, not 0"
        ));
    }
    if !backend.servers().is_empty() {
        return Err("the dedicated server is still registered after shutting down".into());
    }
    if let Some(problem) = server.problems() {
        return Err(format!(
            "the dedicated server reported problems:\n{problem}"
        ));
    }
    step("the server saved its state (deregistered) and quit with exit code 0");
    Ok(())
}

fn run_client(
    godot: &GodotCmd,
    who: &str,
    args: &[&str],
    backend: &backend::Backend,
) -> Result<(), String> {
    step(&format!("starting client {who}"));
    let mut all = vec!["res://demo/client.tscn", "--"];
    all.extend_from_slice(args);
    let out = godot_runner::run_project_echo(
        godot,
        &godot_runner::project_dir(),
        &all,
        &[],
        Duration::from_secs(40),
        false,
    );
    for line in out.stdout.lines().filter(|l| l.starts_with("[client")) {
        println!("  {line}");
    }
    print_log(backend);
    let problems: Vec<&str> = out
        .combined
        .lines()
        .filter(|l| l.contains("SCRIPT ERROR") || l.contains("ERROR:") || l.contains("leaked"))
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "client {who}: Godot reported problems:\n{}",
            problems.join("\n")
        ));
    }
    match out.exit_code {
        Some(0) => Ok(()),
        other => Err(format!(
            "client {who} did not reach its expected outcome (exit {other:?}, timed out: {})",
            out.timed_out
        )),
    }
}

fn print_log(backend: &backend::Backend) {
    for line in backend.take_log() {
        println!("  [backend] {line}");
    }
}

fn step(text: &str) {
    println!("demo: {text}");
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
