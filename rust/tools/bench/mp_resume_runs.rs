//! Resumption (issue 23): the time from a network change to traffic flowing again. A client
//! endpoint sends a numbered reliable message every 10 ms through the relay of the tests
//! (`rust/test_support/src/relay.rs`), which then moves it to a new source address and port
//! (127.0.0.2 and 127.0.0.3 in turn), as a phone leaving Wi-Fi does; the figure is the time
//! from the move until the server receives the first message sent after it. No Godot: the
//! multiplayer core on both sides, `resume_window` 20 s, `resume_after` as the row says
//! (the client can only notice a move by its silence, so that setting is most of the time).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::table::{Cell, Row, Samples, Table};
use netkit::core::multiplayer::{Endpoint, EndpointConfig, MpEvent, Target, TransferMode};
use netkit_test_support::mp::{identity, join, start_server};
use netkit_test_support::relay::{PathConfig, Relay};

/// Address changes per run.
const MOVES: usize = 50;

/// `resume_after` of each row, in seconds: the default, and a quick one.
const AFTERS: &[f64] = &[2.0, 0.5];

/// Runs `MOVES` moves per row `runs` times and returns the table.
pub fn run(runs: usize) -> Result<Vec<Table>, String> {
    let mut t = Table::new(
        &format!(
            "Multiplayer resumption: time from an address change to traffic flowing again, \
             {MOVES} moves per run (multiplayer core on loopback, resume_window 20 s)"
        ),
        &["p50 ms", "p99 ms", "moves resumed"],
    );
    for &after in AFTERS {
        let (mut p50, mut p99, mut resumed) =
            (Samples::default(), Samples::default(), Samples::default());
        for run in 1..=runs {
            eprint!("run {run}/{runs}: {MOVES} address changes, resume_after {after} s ... ");
            let times = moves(after)?;
            let (a, b) = (percentile(&times, 0.5), percentile(&times, 0.99));
            eprintln!("p50 {a:.0} ms, p99 {b:.0} ms, {} resumed", times.len());
            p50.push(a);
            p99.push(b);
            resumed.push(times.len() as f64);
        }
        t.rows.push(Row {
            name: format!("DTLSMultiplayerPeer core, resume_after {after} s"),
            cells: vec![
                Cell::Stat(p50, 0),
                Cell::Stat(p99, 0),
                Cell::Stat(resumed, 0),
            ],
        });
    }
    Ok(vec![t])
}

/// One run: the milliseconds from each move to the first message sent after it arriving.
fn moves(after: f64) -> Result<Vec<f64>, String> {
    let config = EndpointConfig {
        resume_window: Duration::from_secs(20),
        resume_after: Duration::from_secs_f64(after),
        ..EndpointConfig::default()
    };
    let id = identity();
    let server = start_server(&id, config.clone());
    let addr = server.local_addr().ok_or("the server has no address")?;
    let relay = Relay::start_from(addr, PathConfig::clean(), IpAddr::from([127, 0, 0, 2]));
    let (client, _) = join(&server, &id, relay.addr, config);
    let mut times = Vec::new();
    let mut sent = 0u32;
    for m in 0..MOVES {
        // Traffic flows before every move, so each starts from a live session.
        settle(&server, &client, &mut sent)?;
        let first_after = sent;
        let moved = Instant::now();
        relay.move_to(IpAddr::from([127, 0, 0, if m % 2 == 0 { 3 } else { 2 }]));
        let deadline = moved + Duration::from_secs(20);
        'wait: loop {
            if Instant::now() > deadline {
                return Err(format!("move {m}: no traffic within 20 s"));
            }
            send(&client, &mut sent)?;
            std::thread::sleep(Duration::from_millis(10));
            while let Some(e) = server.next_event() {
                match e {
                    MpEvent::Packet { data, .. } if number(&data) >= first_after => {
                        times.push(moved.elapsed().as_secs_f64() * 1000.0);
                        break 'wait;
                    }
                    MpEvent::PeerDisconnected { reason, .. } => {
                        return Err(format!("move {m}: the client was disconnected: {reason}"));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(times)
}

/// Sends for half a second and drains both sides.
fn settle(server: &Endpoint, client: &Endpoint, sent: &mut u32) -> Result<(), String> {
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        send(client, sent)?;
        std::thread::sleep(Duration::from_millis(10));
        while server.next_event().is_some() {}
        while client.next_event().is_some() {}
    }
    Ok(())
}

fn send(client: &Endpoint, sent: &mut u32) -> Result<(), String> {
    client
        .send(
            Target::Peer(1),
            0,
            TransferMode::Reliable,
            sent.to_le_bytes().to_vec(),
        )
        .map_err(|e| format!("send refused: {e:?}"))?;
    *sent += 1;
    Ok(())
}

fn number(data: &[u8]) -> u32 {
    data.try_into().map(u32::from_le_bytes).unwrap_or(0)
}

/// The value below which `q` of `values` fall (nearest rank).
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied().unwrap_or(f64::NAN)
}
