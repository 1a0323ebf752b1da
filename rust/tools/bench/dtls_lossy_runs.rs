//! DTLS handshakes through a lossy path (issue 9's 20 % lost, 5 % duplicated, 10 %
//! reordered), Godot's own DTLS and DTLSPeer side by side in one run.
//!
//! Each run is `godot_project/bench/dtls_lossy_bench.tscn` (see the comment at its top):
//! server and clients in one headless Godot, every datagram between them crossing the
//! relay of the tests (`rust/test_support/src/relay.rs`), which runs in this process. The
//! same seed for both implementations, so both face the same kind of path.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::godot_runs::GodotBench;
use crate::table::{Cell, Row, Samples, Table};
use netkit_test_support::relay::{PathConfig, Relay};

const SCENE: &str = "res://bench/dtls_lossy_bench.tscn";

/// Handshakes per run, at most this many at once, and the time each may take (DTLSPeer's
/// default `handshake_timeout`).
const CLIENTS: usize = 100;
const PARALLEL: usize = 20;
const TIMEOUT_SECS: f64 = 10.0;

/// Implementations, in row order: (`--impl` value, row label).
const IMPLS: &[(&str, &str)] = &[
    (
        "godot",
        "Godot DTLSServer + PacketPeerDTLS (mbedTLS, polled once per frame)",
    ),
    ("dtlspeer", "DTLSPeer server + DTLSPeer clients (netkit)"),
];

#[derive(Default)]
struct LossyRow {
    completed: Samples,
    p50: Samples,
    p90: Samples,
    sessions: Samples,
    lost: Samples,
    failures: String,
}

/// Runs both implementations `runs` times and returns the table.
pub fn run(runs: usize, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let g = godot.ok_or("Godot was not prepared")?;
    let mut rows: Vec<LossyRow> = IMPLS.iter().map(|_| LossyRow::default()).collect();
    for run in 1..=runs {
        for (i, (id, _)) in IMPLS.iter().enumerate() {
            eprint!("run {run}/{runs}: DTLS handshakes through the lossy path, {id} ... ");
            let (v, lost) = one_run(g, id, run as u64)?;
            let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            eprintln!(
                "{} / {CLIENTS} within {TIMEOUT_SECS} s, p50 {:.0} ms, p90 {:.0} ms, server sessions {}, failures {}",
                v["completed"],
                num("p50_ms"),
                num("p90_ms"),
                v["server_sessions"],
                v["failures"]
            );
            let r = &mut rows[i];
            r.completed.push(num("completed"));
            r.p50.push(num("p50_ms"));
            r.p90.push(num("p90_ms"));
            r.sessions.push(num("server_sessions"));
            r.lost.push(lost as f64);
            if v["failures"].as_object().is_some_and(|f| !f.is_empty()) {
                r.failures = v["failures"].to_string();
            }
        }
    }
    let mut t = Table::new(
        &format!(
            "DTLS: {CLIENTS} handshakes through a lossy path (20 % lost, 5 % duplicated, \
             10 % reordered), {PARALLEL} at a time, each given {TIMEOUT_SECS} s; server and \
             clients in one headless Godot"
        ),
        &[
            "completed in time",
            "p50 connect ms",
            "p90 connect ms",
            "server sessions at the end",
            "datagrams lost by the path",
            "why the others failed (last run)",
        ],
    );
    for ((_, label), r) in IMPLS.iter().zip(rows) {
        t.rows.push(Row {
            name: label.to_string(),
            cells: vec![
                Cell::Stat(r.completed, 0),
                Cell::Stat(r.p50, 0),
                Cell::Stat(r.p90, 0),
                Cell::Stat(r.sessions, 0),
                Cell::Stat(r.lost, 0),
                Cell::Text(if r.failures.is_empty() {
                    "none".into()
                } else {
                    r.failures
                }),
            ],
        });
    }
    Ok(vec![t])
}

/// One run of `impl_id` behind a fresh relay; returns the scene's figures and the
/// datagrams the path dropped.
fn one_run(g: &GodotBench, impl_id: &str, seed: u64) -> Result<(Value, u64), String> {
    let port = free_udp_port()?;
    let relay = Relay::start(
        SocketAddr::from(([127, 0, 0, 1], port)),
        PathConfig::lossy(seed),
    );
    let v = g.run_scene(
        SCENE,
        &[
            format!("--impl={impl_id}"),
            format!("--port={port}"),
            format!("--relay={}", relay.addr.port()),
            format!("--clients={CLIENTS}"),
            format!("--parallel={PARALLEL}"),
            format!("--timeout={TIMEOUT_SECS}"),
        ],
        Duration::from_secs(180),
    )?;
    Ok((v, relay.stats.lost.load(Ordering::Relaxed)))
}

/// A UDP port on 127.0.0.1 that was free a moment ago, for the scene's server to listen on
/// (the relay has to know it before the scene starts).
pub fn free_udp_port() -> Result<u16, String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("no free UDP port: {e}"))?;
    s.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free UDP port: {e}"))
}
