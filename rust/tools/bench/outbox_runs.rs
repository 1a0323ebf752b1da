//! The durable outbox's cost: HTTPPool.request_durable against HTTPPool.request, one POST
//! after another to the bench's hyper server, in the GDScript scene
//! godot_project/bench/outbox_bench.tscn. The durable call commits the entry to disk (an
//! fsync) before it returns, so its main-thread time is mostly the disk's.

use std::time::Duration;

use super::godot_runs::GodotBench;
use super::server::BenchServer;
use super::table::{Cell, Row, Samples, Table};

/// Longest one scene run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// The two rows: scene key and label.
const ROWS: &[(&str, &str)] = &[
    ("plain", "HTTPPool.request (POST)"),
    ("durable", "HTTPPool.request_durable (POST, stored first)"),
    (
        "durable_background",
        "HTTPPool.request_durable, outbox_sync_write off",
    ),
];

/// Figures of one row, across runs.
#[derive(Default)]
struct Figures {
    call_p50: Samples,
    call_p99: Samples,
    latency_p50: Samples,
    latency_p99: Samples,
}

/// Runs the scene `runs` times with `requests` POSTs per mode.
pub fn run(requests: usize, runs: usize, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let g = godot.ok_or("Godot was not prepared")?;
    let server = BenchServer::start(2)?;
    let dir = godot_runner::repo_dir().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut figures: Vec<Figures> = ROWS.iter().map(|_| Figures::default()).collect();
    for run in 1..=runs {
        let store = dir.join(format!("outbox-bench-{run}.redb"));
        let _ = std::fs::remove_file(&store);
        eprint!("run {run}/{runs}: outbox, {requests} plain and {requests} durable POSTs ... ");
        let v = g.run_scene(
            "res://bench/outbox_bench.tscn",
            &[
                format!("--url={}", server.url()),
                format!("--store={}", store.display()),
                format!("--requests={requests}"),
            ],
            RUN_TIMEOUT,
        )?;
        let _ = std::fs::remove_file(&store);
        let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        for (i, (key, _)) in ROWS.iter().enumerate() {
            let f = &mut figures[i];
            f.call_p50.push(num(&format!("{key}_call_us_p50")));
            f.call_p99.push(num(&format!("{key}_call_us_p99")));
            f.latency_p50.push(num(&format!("{key}_latency_ms_p50")));
            f.latency_p99.push(num(&format!("{key}_latency_ms_p99")));
        }
        eprintln!(
            "call p50 {:.0} / {:.0} / {:.0} µs, latency p50 {:.2} / {:.2} / {:.2} ms (plain / durable / background write)",
            num("plain_call_us_p50"),
            num("durable_call_us_p50"),
            num("durable_background_call_us_p50"),
            num("plain_latency_ms_p50"),
            num("durable_latency_ms_p50"),
            num("durable_background_latency_ms_p50")
        );
    }
    let mut table = Table::new(
        &format!(
            "Durable outbox: {requests} POSTs one after another, plain against durable (bench hyper server)"
        ),
        &[
            "main thread µs per call, p50",
            "p99",
            "call to completed ms, p50",
            "p99",
        ],
    );
    for (f, (_, label)) in figures.into_iter().zip(ROWS) {
        table.rows.push(Row {
            name: label.to_string(),
            cells: vec![
                Cell::Stat(f.call_p50, 0),
                Cell::Stat(f.call_p99, 0),
                Cell::Stat(f.latency_p50, 2),
                Cell::Stat(f.latency_p99, 2),
            ],
        });
    }
    Ok(vec![table])
}
