//! The multiplayer figures that need to see the wire: bytes per small RPC, server memory
//! per connected peer, and reliable delivery through the lossy path, for
//! DTLSMultiplayerPeer and ENetMultiplayerPeer side by side in one run.
//!
//! The same two-process scene as mp_runs.rs (`godot_project/bench/mp_bench.tscn`), but the
//! client reaches the server through the relay of the tests (`rust/test_support/src/relay.rs`)
//! running in this process: clean for counting bytes, 20 % lost / 5 % duplicated / 10 %
//! reordered for delivery latency.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::godot_runs::{GodotBench, LiveScene};
use crate::mp_runs::MpOptions;
use crate::table::{Cell, Row, Samples, Table};
use netkit_test_support::relay::{PathConfig, Relay};

const SCENE: &str = "res://bench/mp_bench.tscn";

/// Transports of this table, in row order (the encrypted ENet row cannot run on the
/// Debian build, see mp_runs.rs, and the crowd mode does not set its DTLS up).
const TRANSPORTS: &[(&str, &str)] = &[
    ("enet", "ENetMultiplayerPeer (plain UDP, no encryption)"),
    (
        "dtls",
        "DTLSMultiplayerPeer (DTLS 1.2, ECDSA P-256, pinned certificate)",
    ),
];

/// Clients of the memory run, all in one client process.
pub const CROWD: usize = 50;

/// Frames the client waits for the last pongs through the lossy path (10 s at 60 fps):
/// a reliable message lost several times over needs that long.
const LOSSY_DRAIN_FRAMES: usize = 600;

#[derive(Default)]
struct PathRow {
    bytes_per_rpc: Samples,
    datagrams_per_rpc: Samples,
    kib_per_peer: Samples,
    one_way_p50: Samples,
    one_way_p99: Samples,
    rtt_p50: Samples,
    rtt_p99: Samples,
}

/// Runs the three measurements for each transport `runs` times and returns the table.
pub fn run(o: &MpOptions, runs: usize, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let g = godot.ok_or("Godot was not prepared")?;
    let mut rows: Vec<PathRow> = TRANSPORTS.iter().map(|_| PathRow::default()).collect();
    for run in 1..=runs {
        for (i, (id, _)) in TRANSPORTS.iter().enumerate() {
            let r = &mut rows[i];
            eprint!("run {run}/{runs}: multiplayer bytes on the wire over {id} ... ");
            let (bytes, datagrams) = wire_run(g, o, id)?;
            eprintln!("{bytes:.1} B and {datagrams:.2} datagrams per RPC");
            r.bytes_per_rpc.push(bytes);
            r.datagrams_per_rpc.push(datagrams);

            eprint!("run {run}/{runs}: multiplayer server memory, {CROWD} peers over {id} ... ");
            let kib = crowd_run(g, o, id)?;
            eprintln!("{kib:.1} KiB per peer");
            r.kib_per_peer.push(kib);

            eprint!("run {run}/{runs}: multiplayer through the lossy path over {id} ... ");
            // A transport that cannot finish its round trips through the lossy path (ENet's
            // resends back off for seconds through 20 % loss) is reported, not the end of
            // the whole bench: its row shows no figure and this line says why.
            let (client, server) = match lossy_run(g, o, id, run as u64) {
                Ok(figures) => figures,
                Err(why) => {
                    eprintln!("did not complete: {why}");
                    (Value::Null, Value::Null)
                }
            };
            let num = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            eprintln!(
                "one way p50 {:.1} / p99 {:.1} ms, round trip p50 {:.1} / p99 {:.1} ms",
                num(&server, "one_way_p50_ms"),
                num(&server, "one_way_p99_ms"),
                num(&client, "rtt_p50_ms"),
                num(&client, "rtt_p99_ms"),
            );
            r.one_way_p50.push(num(&server, "one_way_p50_ms"));
            r.one_way_p99.push(num(&server, "one_way_p99_ms"));
            r.rtt_p50.push(num(&client, "rtt_p50_ms"));
            r.rtt_p99.push(num(&client, "rtt_p99_ms"));
        }
    }
    let mut t = Table::new(
        &format!(
            "Multiplayer: the wire, server memory and a lossy path (two headless Godot \
             processes at 60 frames/s through a relay on loopback); {} reliable pings, \
             {CROWD} peers for memory",
            o.rtt_frames
        ),
        &[
            "UDP payload bytes per small reliable RPC",
            "datagrams per RPC",
            "server RSS KiB per connected peer",
            "lossy path: one-way reliable delivery p50 ms",
            "lossy path: one-way p99 ms",
            "lossy path: round trip p50 ms",
            "lossy path: round trip p99 ms",
        ],
    );
    for ((_, label), r) in TRANSPORTS.iter().zip(rows) {
        t.rows.push(Row {
            name: label.to_string(),
            cells: vec![
                Cell::Stat(r.bytes_per_rpc, 1),
                Cell::Stat(r.datagrams_per_rpc, 2),
                Cell::Stat(r.kib_per_peer, 1),
                Cell::Stat(r.one_way_p50, 1),
                Cell::Stat(r.one_way_p99, 1),
                Cell::Stat(r.rtt_p50, 1),
                Cell::Stat(r.rtt_p99, 1),
            ],
        });
    }
    Ok(vec![t])
}

/// A server in the background; returns it with its READY figures.
fn start_server(g: &GodotBench, args: &[String]) -> Result<(LiveScene, Value), String> {
    let mut server_args = vec!["--role=server".to_string()];
    server_args.extend(args.iter().cloned());
    let mut server = g.spawn_scene(SCENE, &server_args)?;
    let line = server.wait_line("READY ", Duration::from_secs(60))?;
    let ready: Value =
        serde_json::from_str(&line).map_err(|e| format!("unreadable READY line ({e}): {line}"))?;
    Ok((server, ready))
}

/// The arguments every process of a run gets.
fn common(o: &MpOptions, transport: &str, drain_frames: usize) -> Vec<String> {
    vec![
        format!("--transport={transport}"),
        format!("--rtt-frames={}", o.rtt_frames),
        "--phases=rtt".to_string(),
        format!("--drain-frames={drain_frames}"),
        format!("--cap={}", o.cap_secs),
    ]
}

/// The relay in front of the server of `ready`.
fn relay_for(ready: &Value, config: PathConfig) -> Result<Relay, String> {
    let port = ready["port"].as_u64().ok_or("READY without a port")? as u16;
    Ok(Relay::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        config,
    ))
}

/// Client arguments that reach the server through `relay`.
fn client_args(relay: &Relay, ready: &Value, common: &[String]) -> Vec<String> {
    let mut args = vec![
        "--role=client".to_string(),
        format!("--port={}", relay.addr.port()),
        format!(
            "--fingerprint={}",
            ready["fingerprint"].as_str().unwrap_or("")
        ),
    ];
    args.extend(common.iter().cloned());
    args
}

/// Bytes (UDP payload, both directions, acknowledgements and keep-alives included) and
/// datagrams per RPC over the round-trip phase: one reliable ping per frame and the
/// server's reliable pong.
fn wire_run(g: &GodotBench, o: &MpOptions, transport: &str) -> Result<(f64, f64), String> {
    let common = common(o, transport, 120);
    let (mut server, ready) = start_server(g, &common)?;
    let relay = relay_for(&ready, PathConfig::clean())?;
    let mut client = g.spawn_scene(SCENE, &client_args(&relay, &ready, &common))?;
    let timeout = Duration::from_secs(o.cap_secs + 60);
    client.wait_line("PHASE rtt", timeout)?;
    let counted = || {
        let s = &relay.stats;
        (
            s.bytes_up.load(Ordering::Relaxed) + s.bytes_down.load(Ordering::Relaxed),
            s.datagrams_up.load(Ordering::Relaxed) + s.datagrams_down.load(Ordering::Relaxed),
        )
    };
    let (bytes0, datagrams0) = counted();
    client.wait_line("BENCH ", timeout)?;
    let (bytes1, datagrams1) = counted();
    let figures = g.check_output(client.output())?;
    server.wait_line("BENCH ", Duration::from_secs(30))?;
    g.check_output(server.output())?;
    let rpcs = 2.0 * figures["rtt_samples"].as_f64().unwrap_or(f64::NAN);
    Ok((
        (bytes1 - bytes0) as f64 / rpcs,
        (datagrams1 - datagrams0) as f64 / rpcs,
    ))
}

/// Server VmRSS per connected peer: before `create_server`, and 1 s after [`CROWD`]
/// clients (one process, a SceneMultiplayer each) are connected.
fn crowd_run(g: &GodotBench, o: &MpOptions, transport: &str) -> Result<f64, String> {
    let mut args = common(o, transport, 120);
    args.push(format!("--expect={CROWD}"));
    let (mut server, ready) = start_server(g, &args)?;
    let mut crowd_args = vec![
        "--role=crowd".to_string(),
        format!("--clients={CROWD}"),
        format!("--port={}", ready["port"]),
        format!(
            "--fingerprint={}",
            ready["fingerprint"].as_str().unwrap_or("")
        ),
    ];
    crowd_args.extend(args.iter().cloned());
    let _crowd = g.spawn_scene(SCENE, &crowd_args)?;
    let line = server.wait_line("MEM ", Duration::from_secs(o.cap_secs + 60))?;
    let mem: Value =
        serde_json::from_str(&line).map_err(|e| format!("unreadable MEM line ({e}): {line}"))?;
    let kb = |k: &str| mem[k].as_f64().unwrap_or(f64::NAN);
    Ok((kb("rss_after_kb") - kb("rss_before_kb")) / mem["peers"].as_f64().unwrap_or(f64::NAN))
}

/// The round-trip phase through the lossy path; returns the client's and the server's
/// figures (round trip, and one-way delivery of each ping).
fn lossy_run(
    g: &GodotBench,
    o: &MpOptions,
    transport: &str,
    seed: u64,
) -> Result<(Value, Value), String> {
    let common = common(o, transport, LOSSY_DRAIN_FRAMES);
    let (mut server, ready) = start_server(g, &common)?;
    let relay = relay_for(&ready, PathConfig::lossy(seed))?;
    let client = g.run_scene(
        SCENE,
        &client_args(&relay, &ready, &common),
        Duration::from_secs(o.cap_secs + 60),
    )?;
    server.wait_line("BENCH ", Duration::from_secs(60))?;
    let server_figures = g.check_output(server.output())?;
    Ok((client, server_figures))
}
