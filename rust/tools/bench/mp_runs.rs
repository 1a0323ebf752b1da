//! The high-level multiplayer part of the benchmark: SceneMultiplayer over
//! DTLSMultiplayerPeer against ENetMultiplayerPeer, side by side in one run.
//!
//! Each run is two headless Godot processes on `godot_project/bench/mp_bench.tscn` (see
//! the comment at its top), a dedicated server and a client, both at 60 frames/s on
//! loopback, measuring connect time, RPC round trip, reliable RPCs per second and
//! main-thread µs per RPC (both processes' together).

use std::time::Duration;

use serde_json::Value;

use crate::godot_runs::GodotBench;
use crate::table::{Cell, Row, Samples, Table};

/// The scene every multiplayer run uses.
const SCENE: &str = "res://bench/mp_bench.tscn";

/// Transports, in row order: (id for `--transport`, row label).
const TRANSPORTS: &[(&str, &str)] = &[
    ("enet", "ENetMultiplayerPeer (plain UDP, no encryption)"),
    (
        "enet_dtls",
        "ENetMultiplayerPeer with ENetConnection DTLS (mbedTLS, verified certificate)",
    ),
    (
        "dtls",
        "DTLSMultiplayerPeer (DTLS 1.2, ECDSA P-256, pinned certificate)",
    ),
];

/// What the command line asked for.
pub struct MpOptions {
    /// Round trips measured per run (one per frame at 60 frames/s).
    pub rtt_frames: usize,
    /// Reliable RPCs of the throughput phase.
    pub rpcs: usize,
    /// Time cap of one run, seconds.
    pub cap_secs: u64,
}

#[derive(Default)]
struct MpRow {
    connect_ms: Samples,
    rtt_p50: Samples,
    rtt_p99: Samples,
    rpcs_per_sec: Samples,
    main_us: Samples,
    /// Why the row could not run in this Godot build, if it could not.
    unavailable: Option<String>,
}

/// What Godot prints when it was built without ENet's DTLS layer (distribution builds
/// against the system ENet library).
const NO_ENET_DTLS: &str = "ENet DTLS support not available in this build";

/// Runs every transport `runs` times and returns the table.
pub fn run(o: &MpOptions, runs: usize, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let g = godot.ok_or("Godot was not prepared")?;
    let mut rows: Vec<MpRow> = TRANSPORTS.iter().map(|_| MpRow::default()).collect();
    for run in 1..=runs {
        for (i, (id, _)) in TRANSPORTS.iter().enumerate() {
            if rows[i].unavailable.is_some() {
                continue;
            }
            eprint!("run {run}/{runs}: multiplayer over {id} ... ");
            let (v, server) = match one_run(g, o, id) {
                Err(e) if e.contains(NO_ENET_DTLS) => {
                    eprintln!("not available: {NO_ENET_DTLS}");
                    rows[i].unavailable = Some(NO_ENET_DTLS.to_string());
                    continue;
                }
                other => other?,
            };
            let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let main_us = (num("main_usec") + server["main_usec"].as_f64().unwrap_or(f64::NAN))
                / num("rpcs").max(1.0);
            eprintln!(
                "connect {:.1} ms, round trip p50 {:.1} / p99 {:.1} ms, {:.0} RPCs/s, {main_us:.1} µs/RPC",
                num("connect_ms"),
                num("rtt_p50_ms"),
                num("rtt_p99_ms"),
                num("rpcs_per_sec"),
            );
            let r = &mut rows[i];
            r.connect_ms.push(num("connect_ms"));
            r.rtt_p50.push(num("rtt_p50_ms"));
            r.rtt_p99.push(num("rtt_p99_ms"));
            r.rpcs_per_sec.push(num("rpcs_per_sec"));
            r.main_us.push(main_us);
        }
    }
    let mut t = Table::new(
        &format!(
            "Multiplayer: SceneMultiplayer, a dedicated server and a client (two headless \
             Godot processes at 60 frames/s, loopback); {} round trips, {} reliable RPCs",
            o.rtt_frames, o.rpcs
        ),
        &[
            "connect ms",
            "RPC round trip p50 ms",
            "RPC round trip p99 ms",
            "reliable RPCs/s",
            "main thread µs/RPC, both sides",
        ],
    );
    for ((_, label), r) in TRANSPORTS.iter().zip(rows) {
        if let Some(why) = r.unavailable {
            t.rows.push(Row {
                name: format!("{label}: not run (Godot says \"{why}\")"),
                cells: Vec::new(),
            });
            continue;
        }
        t.rows.push(Row {
            name: label.to_string(),
            cells: vec![
                Cell::Stat(r.connect_ms, 1),
                Cell::Stat(r.rtt_p50, 1),
                Cell::Stat(r.rtt_p99, 1),
                Cell::Stat(r.rpcs_per_sec, 0),
                Cell::Stat(r.main_us, 1),
            ],
        });
    }
    Ok(vec![t])
}

/// One run: the server in the background, the client to completion; returns the client's
/// and the server's BENCH figures.
fn one_run(g: &GodotBench, o: &MpOptions, transport: &str) -> Result<(Value, Value), String> {
    let common = [
        format!("--transport={transport}"),
        format!("--rtt-frames={}", o.rtt_frames),
        format!("--rpcs={}", o.rpcs),
        format!("--cap={}", o.cap_secs),
    ];
    let mut server_args = vec!["--role=server".to_string()];
    server_args.extend(common.iter().cloned());
    let mut server = g.spawn_scene(SCENE, &server_args)?;
    let line = server.wait_line("READY ", Duration::from_secs(60))?;
    let ready: Value =
        serde_json::from_str(&line).map_err(|e| format!("unreadable READY line ({e}): {line}"))?;
    let port = ready["port"].as_u64().ok_or("READY without a port")?;
    let fingerprint = ready["fingerprint"].as_str().unwrap_or("");
    let mut client_args = vec![
        "--role=client".to_string(),
        format!("--port={port}"),
        format!("--fingerprint={fingerprint}"),
    ];
    client_args.extend(common.iter().cloned());
    let client = g.run_scene(SCENE, &client_args, Duration::from_secs(o.cap_secs + 60))?;
    server.wait_line("BENCH ", Duration::from_secs(30))?;
    let server_figures = g.check_output(server.output())?;
    Ok((client, server_figures))
}
