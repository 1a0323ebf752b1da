//! A dedicated server's cost at scale, DTLSMultiplayerPeer and ENetMultiplayerPeer side by
//! side in one run: server CPU (% of one core) and RSS per peer with 100, 500 and 1,000
//! idle clients, server CPU with 100 and 300 active clients (20 unreliable 64-byte state
//! packets/s and 2 small reliable packets/s each, every state packet relayed to 8 others),
//! and the bytes on the wire per unreliable state packet.
//!
//! Each figure is one server process and one crowd process on
//! `godot_project/bench/mp_scale_bench.tscn` (see the comment at its top); all clients of
//! a run start in the crowd's first frame, so the connect time of a run is a reconnect
//! storm of that many clients.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::godot_runs::{GodotBench, LiveScene};
use crate::table::{Cell, Row, Samples, Table};
use netkit_test_support::relay::{PathConfig, Relay};

const SCENE: &str = "res://bench/mp_scale_bench.tscn";

/// Transports, in row order: (id for `--transport`, row label).
const TRANSPORTS: &[(&str, &str)] = &[
    ("enet", "ENetMultiplayerPeer"),
    ("dtls", "DTLSMultiplayerPeer"),
];

/// Idle crowd sizes.
const IDLE: &[usize] = &[100, 500, 1000];
/// Active crowd sizes.
const ACTIVE: &[usize] = &[100, 300];
/// Unreliable state packets per second per active client.
const STATE_RATE: u32 = 20;
/// Small reliable packets per second per active client.
const RPC_RATE: u32 = 2;
/// Seconds each CPU figure is measured over.
const MEASURE_SECS: u64 = 10;

#[derive(Default)]
struct ScaleRow {
    connected: Samples,
    connect_s: Samples,
    cpu: Samples,
    kib_per_peer: Samples,
}

/// Runs every size for every transport `runs` times and returns the tables.
pub fn run(runs: usize, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let g = godot.ok_or("Godot was not prepared")?;
    let sizes: Vec<(usize, bool)> = IDLE
        .iter()
        .map(|n| (*n, false))
        .chain(ACTIVE.iter().map(|n| (*n, true)))
        .collect();
    let mut rows: Vec<Vec<ScaleRow>> = TRANSPORTS
        .iter()
        .map(|_| sizes.iter().map(|_| ScaleRow::default()).collect())
        .collect();
    let mut state_bytes: Vec<Samples> = TRANSPORTS.iter().map(|_| Samples::default()).collect();
    for run in 1..=runs {
        for (t, (id, _)) in TRANSPORTS.iter().enumerate() {
            for (s, &(n, active)) in sizes.iter().enumerate() {
                let what = if active { "active" } else { "idle" };
                eprint!("run {run}/{runs}: server with {n} {what} clients over {id} ... ");
                let v = crowd_run(g, id, n, active)?;
                let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
                let peers = num("peers");
                let kib = (num("rss_after_kb") - num("rss_before_kb")) / peers;
                eprintln!(
                    "{peers} connected in {:.1} s, {:.1} % of a core, {kib:.1} KiB per peer, {:.0} frames/s",
                    num("connect_s"),
                    num("cpu_pct"),
                    num("frames_per_s"),
                );
                let r = &mut rows[t][s];
                r.connected.push(peers);
                r.connect_s.push(num("connect_s"));
                r.cpu.push(num("cpu_pct"));
                r.kib_per_peer.push(kib);
            }
            eprint!("run {run}/{runs}: bytes per unreliable state packet over {id} ... ");
            let b = state_bytes_run(g, id)?;
            eprintln!("{b:.1} B");
            state_bytes[t].push(b);
        }
    }
    let mut idle = Table::new(
        "Multiplayer at scale: a dedicated server (headless Godot at 60 frames/s, `poll()` \
         each frame) and N clients in a second process, loopback; server CPU from \
         /proc/self/stat over 10 s",
        &[
            "clients connected",
            "connect s, all at once",
            "server CPU % of one core",
            "server RSS KiB per peer",
        ],
    );
    let mut active = Table::new(
        "Multiplayer at scale, active: every client sends 20 unreliable 64-byte state \
         packets/s and 2 small reliable packets/s, the server relays each state packet to 8 \
         others",
        &[
            "clients connected",
            "server CPU % of one core",
            "UDP payload bytes per unreliable state packet (one client)",
        ],
    );
    for (t, (_, label)) in TRANSPORTS.iter().enumerate() {
        for (s, &(n, is_active)) in sizes.iter().enumerate() {
            let r = std::mem::take(&mut rows[t][s]);
            if is_active {
                active.rows.push(Row {
                    name: format!("{label}, {n} clients"),
                    cells: vec![
                        Cell::Stat(r.connected, 0),
                        Cell::Stat(r.cpu, 1),
                        if n == ACTIVE[0] {
                            Cell::Stat(state_bytes[t].clone(), 1)
                        } else {
                            Cell::Empty
                        },
                    ],
                });
            } else {
                idle.rows.push(Row {
                    name: format!("{label}, {n} idle clients"),
                    cells: vec![
                        Cell::Stat(r.connected, 0),
                        Cell::Stat(r.connect_s, 1),
                        Cell::Stat(r.cpu, 1),
                        Cell::Stat(r.kib_per_peer, 1),
                    ],
                });
            }
        }
    }
    Ok(vec![idle, active])
}

/// A server in the background; returns it with its READY figures.
fn start_server(g: &GodotBench, args: &[String]) -> Result<(LiveScene, Value), String> {
    let mut server = g.spawn_scene(SCENE, args)?;
    let line = server.wait_line("READY ", Duration::from_secs(60))?;
    let ready: Value =
        serde_json::from_str(&line).map_err(|e| format!("unreadable READY line ({e}): {line}"))?;
    Ok((server, ready))
}

fn crowd_args(transport: &str, port: u64, ready: &Value, n: usize, active: bool) -> Vec<String> {
    let (state, rpc) = if active {
        (STATE_RATE, RPC_RATE)
    } else {
        (0, 0)
    };
    vec![
        "--role=crowd".to_string(),
        format!("--transport={transport}"),
        format!("--clients={n}"),
        format!("--port={port}"),
        format!(
            "--fingerprint={}",
            ready["fingerprint"].as_str().unwrap_or("")
        ),
        format!("--state-rate={state}"),
        format!("--rpc-rate={rpc}"),
    ]
}

/// One server with `n` clients; returns the server's figures.
fn crowd_run(g: &GodotBench, transport: &str, n: usize, active: bool) -> Result<Value, String> {
    let server_args = vec![
        "--role=server".to_string(),
        format!("--transport={transport}"),
        format!("--expect={n}"),
        format!("--measure={MEASURE_SECS}"),
        format!("--relay={}", u8::from(active)),
    ];
    let (mut server, ready) = start_server(g, &server_args)?;
    let port = ready["port"].as_u64().ok_or("READY without a port")?;
    let _crowd = g.spawn_scene(SCENE, &crowd_args(transport, port, &ready, n, active))?;
    server.wait_line("BENCH ", Duration::from_secs(180))?;
    g.check_output(server.output())
}

/// Bytes (UDP payload, both directions, acknowledgements and pings included) per state
/// packet of one client sending 20 a second and nothing else, through the relay.
fn state_bytes_run(g: &GodotBench, transport: &str) -> Result<f64, String> {
    let server_args = vec![
        "--role=server".to_string(),
        format!("--transport={transport}"),
        "--expect=1".to_string(),
        format!("--measure={MEASURE_SECS}"),
    ];
    let (mut server, ready) = start_server(g, &server_args)?;
    let port = ready["port"].as_u64().ok_or("READY without a port")? as u16;
    let relay = Relay::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        PathConfig::clean(),
    );
    let mut args = crowd_args(transport, u64::from(relay.addr.port()), &ready, 1, false);
    args.retain(|a| !a.starts_with("--state-rate"));
    args.push(format!("--state-rate={STATE_RATE}"));
    let _crowd = g.spawn_scene(SCENE, &args)?;
    let bytes = || {
        relay.stats.bytes_up.load(Ordering::Relaxed)
            + relay.stats.bytes_down.load(Ordering::Relaxed)
    };
    server.wait_line("MEASURE start", Duration::from_secs(60))?;
    let before = bytes();
    server.wait_line("BENCH ", Duration::from_secs(60))?;
    let after = bytes();
    let v = g.check_output(server.output())?;
    let packets = v["received_per_s"].as_f64().unwrap_or(f64::NAN) * MEASURE_SECS as f64;
    Ok((after - before) as f64 / packets)
}
