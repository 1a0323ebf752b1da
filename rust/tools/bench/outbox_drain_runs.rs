//! How fast the durable outbox drains a backlog of saves, against a backend that answers
//! every call and against one that reads one call in ten and never answers it (issue 21:
//! eight such calls used to hold every delivery slot). The engine-free core
//! (`netkit::core::http::outbox`) against the test support crate's outbox backend, which
//! honours `Idempotency-Key` and counts what it applied.

use std::time::{Duration, Instant};

use netkit::core::events::Budget;
use netkit::core::http::outbox::{Outbox, OutboxConfig, OutboxEvent, Write};
use netkit::core::http::{HttpPool, Method, PoolSettings, RequestBody, RequestSpec};
use netkit_test_support::http_server::outbox_routes::{report, set_hang};
use netkit_test_support::http_server::start_blocking;

use super::table::{Cell, Row, Samples, Table};

/// Saves pending when the drain starts.
const SAVES: usize = 2_000;
/// Longest one drain may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

/// The rows: label and "hang every Nth call" (0: none).
const ROWS: &[(&str, u64)] = &[
    ("backend answers every call", 0),
    ("backend never answers one call in ten", 10),
];

/// Figures of one row, across runs.
#[derive(Default)]
struct Figures {
    rate: Samples,
    longest_gap_ms: Samples,
    hung: Samples,
}

/// Drains `SAVES` saves `runs` times per row.
pub fn run(runs: usize) -> Result<Vec<Table>, String> {
    let server = start_blocking();
    let dir = godot_runner::repo_dir().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut figures: Vec<Figures> = ROWS.iter().map(|_| Figures::default()).collect();
    for run in 1..=runs {
        for (i, (label, hang_every)) in ROWS.iter().enumerate() {
            let bucket = format!("bench-drain-{run}-{i}");
            set_hang(&bucket, *hang_every);
            let url = format!("{}/outbox/save?bucket={bucket}", server.http_url);
            let store = dir.join(format!("outbox-drain-{run}-{i}.redb"));
            let _ = std::fs::remove_file(&store);
            eprint!("run {run}/{runs}: outbox drain of {SAVES} saves, {label} ... ");
            let drained = drain(&url, &store);
            let _ = std::fs::remove_file(&store);
            let (rate, gap, hung) = drained?;
            let applied = report(&bucket)["applied"]
                .as_object()
                .map_or(0, |a| a.len());
            if applied != SAVES {
                return Err(format!("{applied} of {SAVES} saves applied ({label})"));
            }
            eprintln!(
                "{rate:.1} saves/s, longest gap {:.0} ms, {hung} given up as hung",
                gap.as_secs_f64() * 1000.0
            );
            let f = &mut figures[i];
            f.rate.push(rate);
            f.longest_gap_ms.push(gap.as_secs_f64() * 1000.0);
            f.hung.push(hung as f64);
        }
    }
    let mut table = Table::new(
        &format!(
            "Durable outbox: draining {SAVES} pending saves (8 delivery slots, one fsync per delivered save)"
        ),
        &[
            "saves delivered per s",
            "longest gap between deliveries, ms",
            "attempts given up as hung",
        ],
    );
    for (f, (label, _)) in figures.into_iter().zip(ROWS) {
        table.rows.push(Row {
            name: label.to_string(),
            cells: vec![
                Cell::Stat(f.rate, 1),
                Cell::Stat(f.longest_gap_ms, 0),
                Cell::Stat(f.hung, 0),
            ],
        });
    }
    Ok(vec![table])
}

/// Submits `SAVES` saves (background writes) and waits until all are delivered; returns
/// saves per second from the first submit, the longest time without a delivery, and the
/// attempts given up as hung.
fn drain(url: &str, store: &std::path::Path) -> Result<(f64, Duration, u64), String> {
    let pool = HttpPool::new(PoolSettings {
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(300),
        ..PoolSettings::default()
    });
    let (outbox, _) = Outbox::open(
        OutboxConfig {
            path: store.to_path_buf(),
            max_pending: 100_000,
            send_headers: vec![],
        },
        &pool,
    )
    .map_err(|e| format!("cannot open the bench store: {e}"))?;
    let started = Instant::now();
    for n in 0..SAVES {
        let spec = RequestSpec {
            method: Method::Post,
            url: url.to_string(),
            headers: vec![],
            body: RequestBody::Json(format!("{{\"save\":{n}}}").into()),
            final_500: false,
        };
        outbox
            .submit(spec, Duration::from_secs(86_400), Write::Background)
            .map_err(|(_, why)| why)?;
    }
    let mut delivered = 0;
    let mut last = started;
    let mut longest_gap = Duration::ZERO;
    while delivered < SAVES {
        if started.elapsed() > DRAIN_TIMEOUT {
            return Err(format!(
                "{delivered} of {SAVES} delivered within {DRAIN_TIMEOUT:?}"
            ));
        }
        for event in outbox.drain(Budget::default()) {
            match event {
                OutboxEvent::Delivered { .. } => {
                    delivered += 1;
                    longest_gap = longest_gap.max(last.elapsed());
                    last = Instant::now();
                }
                other => return Err(format!("unexpected outbox event: {other:?}")),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let rate = SAVES as f64 / started.elapsed().as_secs_f64();
    Ok((rate, longest_gap, outbox.stats().hung_attempts))
}
