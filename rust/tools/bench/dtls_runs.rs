//! The DTLS part of the benchmark: handshake rate (Godot's own DTLS, DTLSPeer, the raw
//! core), echo throughput into GDScript, and server memory per idle session.
//!
//! Godot rows run `godot_project/bench/dtls_bench.tscn` (see the comment at its top).
//! Echo and idle runs start that scene as a server in the background and connect clients
//! from this process with the engine-free core `DtlsClient`, as separate game clients
//! would be; their work therefore does not share the server's main thread.

use std::time::{Duration, Instant};

use netkit::core::dtls::{
    ClientCredentials, ClientOptions, DtlsClient, DtlsEvent, DtlsServer, ServerCredentials,
    ServerOptions, ServerVerification, Status, generate_self_signed,
};
use netkit::core::events::{Budget, EventQueue, channel};
use serde_json::Value;

use crate::godot_runs::GodotBench;
use crate::table::{Cell, Row, Samples, Table};

/// The scene every Godot DTLS run uses.
const SCENE: &str = "res://bench/dtls_bench.tscn";

/// A core client and its event queue.
type CoreClient = (DtlsClient, EventQueue<DtlsEvent>);

/// Every DTLS row, by id, for `--dtls`.
pub const ROWS: &[&str] = &["godot", "dtlspeer", "core", "echo", "idle", "lossy"];

/// What the command line asked for.
pub struct DtlsOptions {
    /// Clients per handshake run.
    pub handshake_clients: usize,
    /// Clients of the echo run.
    pub echo_clients: usize,
    /// Packets per second offered by all echo clients together; one row per rate.
    pub echo_rates: Vec<usize>,
    /// Seconds of sending in the echo run.
    pub echo_secs: u64,
    /// Clients of the idle-memory run.
    pub idle_clients: usize,
    /// Time cap of each handshake and idle run, seconds.
    pub cap_secs: u64,
    /// Which of [`ROWS`] to run.
    pub rows: Vec<String>,
}

/// One handshake run.
struct Handshakes {
    per_sec: f64,
    cpu_ms_each: f64,
    completed: f64,
    seconds: f64,
    capped: bool,
}

#[derive(Default)]
struct HandshakeRow {
    per_sec: Samples,
    cpu_ms: Samples,
    completed: Samples,
    seconds: Samples,
    capped: usize,
}

#[derive(Default)]
struct EchoRow {
    offered: Samples,
    delivered: Samples,
    loss: Samples,
    echoed: Samples,
    server_cpu_us: Samples,
}

#[derive(Default)]
struct IdleRow {
    connected: Samples,
    before: Samples,
    after: Samples,
    per_session: Samples,
}

/// Runs the selected rows `runs` times each and returns the DTLS tables.
pub fn run(o: &DtlsOptions, runs: usize, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let wants = |id: &str| o.rows.iter().any(|r| r == id);
    let mut hs: Vec<(&str, HandshakeRow)> = Vec::new();
    let mut echo: Vec<EchoRow> = o.echo_rates.iter().map(|_| EchoRow::default()).collect();
    let mut idle = IdleRow::default();
    for run in 1..=runs {
        for id in ["godot", "dtlspeer", "core"] {
            if !wants(id) {
                continue;
            }
            eprint!(
                "run {run}/{runs}: DTLS handshakes, {id}, {} clients ... ",
                o.handshake_clients
            );
            let h = match id {
                "core" => core_handshakes(o.handshake_clients, o.cap_secs)?,
                "godot" => scene_handshakes(godot, "godot_handshake", o)?,
                _ => scene_handshakes(godot, "peer_handshake", o)?,
            };
            eprintln!(
                "{:.0}/s ({} in {:.2} s{})",
                h.per_sec,
                h.completed,
                h.seconds,
                if h.capped { ", capped" } else { "" }
            );
            let row = match hs.iter().position(|(r, _)| *r == id) {
                Some(i) => &mut hs[i].1,
                None => {
                    hs.push((id, HandshakeRow::default()));
                    &mut hs.last_mut().expect("just pushed").1
                }
            };
            row.per_sec.push(h.per_sec);
            row.cpu_ms.push(h.cpu_ms_each);
            row.completed.push(h.completed);
            row.seconds.push(h.seconds);
            row.capped += usize::from(h.capped);
        }
        for (i, &rate) in o.echo_rates.iter().enumerate() {
            if !wants("echo") {
                break;
            }
            eprint!(
                "run {run}/{runs}: DTLS echo, {} clients at {rate} packets/s ... ",
                o.echo_clients
            );
            let g = godot.ok_or("Godot was not prepared")?;
            let e = echo_run(g, o, rate)?;
            eprintln!(
                "{:.0} packets/s into GDScript, {:.2} % lost, {:.1} % echoed back, {:.1} µs server CPU/packet",
                e.delivered, e.loss, e.echoed, e.server_cpu_us
            );
            let row = &mut echo[i];
            row.offered.push(e.offered);
            row.delivered.push(e.delivered);
            row.loss.push(e.loss);
            row.echoed.push(e.echoed);
            row.server_cpu_us.push(e.server_cpu_us);
        }
        if wants("idle") {
            eprint!(
                "run {run}/{runs}: DTLS idle sessions, {} clients ... ",
                o.idle_clients
            );
            let g = godot.ok_or("Godot was not prepared")?;
            let (connected, before, after) = idle_run(g, o)?;
            let per = (after - before) / connected.max(1.0);
            eprintln!(
                "{connected} connected, VmRSS {before:.0} -> {after:.0} KiB, {per:.1} KiB/session"
            );
            idle.connected.push(connected);
            idle.before.push(before / 1024.0);
            idle.after.push(after / 1024.0);
            idle.per_session.push(per);
        }
    }

    let mut tables = Vec::new();
    if !hs.is_empty() {
        let mut t = Table::new(
            &format!(
                "DTLS: handshakes/s, {} clients connecting to one server (ECDSA P-256, loopback)",
                o.handshake_clients
            ),
            &[
                "handshakes/s",
                "× Godot",
                "CPU ms/handshake, both sides",
                "completed",
                "seconds",
                "runs capped",
            ],
        );
        let godot_median = hs
            .iter()
            .find(|(id, _)| *id == "godot")
            .and_then(|(_, r)| r.per_sec.median());
        for (id, r) in &hs {
            let name = match *id {
                "godot" => format!(
                    "Godot DTLSServer + UDPServer, {} PacketPeerDTLS clients (one Godot process)",
                    o.handshake_clients
                ),
                "dtlspeer" => format!(
                    "DTLSPeer server + {} DTLSPeer clients (one Godot process)",
                    o.handshake_clients
                ),
                _ => format!(
                    "netkit core DtlsServer + {} DtlsClient, Rust, no engine",
                    o.handshake_clients
                ),
            };
            let ratio = match (r.per_sec.median(), godot_median) {
                (Some(x), Some(g)) if g > 0.0 => Cell::Text(format!("{:.1}", x / g)),
                _ => Cell::Empty,
            };
            t.rows.push(Row {
                name,
                cells: vec![
                    Cell::Stat(r.per_sec.clone(), 0),
                    ratio,
                    Cell::Stat(r.cpu_ms.clone(), 2),
                    Cell::Stat(r.completed.clone(), 0),
                    Cell::Stat(r.seconds.clone(), 2),
                    Cell::Text(format!("{}/{}", r.capped, runs)),
                ],
            });
        }
        tables.push(t);
    }
    if wants("echo") {
        let mut t = Table::new(
            &format!(
                "DTLS: echo of 256-byte datagrams, {} clients, fixed offered rate for {} s",
                o.echo_clients, o.echo_secs
            ),
            &[
                "offered packets/s",
                "packets/s into GDScript",
                "loss % (client → GDScript)",
                "echoes back at clients %",
                "server CPU µs/packet",
            ],
        );
        for (rate, e) in o.echo_rates.iter().zip(echo) {
            t.rows.push(Row {
                name: format!(
                    "DTLSPeer server echoing from GDScript, {} core DtlsClients (bench process), {rate}/s offered",
                    o.echo_clients
                ),
                cells: vec![
                    Cell::Stat(e.offered, 0),
                    Cell::Stat(e.delivered, 0),
                    Cell::Stat(e.loss, 2),
                    Cell::Stat(e.echoed, 1),
                    Cell::Stat(e.server_cpu_us, 1),
                ],
            });
        }
        tables.push(t);
    }
    if wants("idle") {
        let mut t = Table::new(
            &format!(
                "DTLS: server memory with {} idle clients connected",
                o.idle_clients
            ),
            &[
                "connected",
                "VmRSS before listening MiB",
                "VmRSS connected MiB",
                "KiB per session",
            ],
        );
        t.rows.push(Row {
            name: "DTLSPeer server (headless Godot), core DtlsClient clients (bench process)"
                .to_string(),
            cells: vec![
                Cell::Stat(idle.connected, 0),
                Cell::Stat(idle.before, 1),
                Cell::Stat(idle.after, 1),
                Cell::Stat(idle.per_session, 1),
            ],
        });
        tables.push(t);
    }
    Ok(tables)
}

/// A handshake run inside one headless Godot.
fn scene_handshakes(
    godot: Option<&GodotBench>,
    mode: &str,
    o: &DtlsOptions,
) -> Result<Handshakes, String> {
    let g = godot.ok_or("Godot was not prepared")?;
    let v = g.run_scene(
        SCENE,
        &[
            format!("--mode={mode}"),
            format!("--clients={}", o.handshake_clients),
            format!("--cap={}", o.cap_secs),
        ],
        Duration::from_secs(o.cap_secs + 120),
    )?;
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    if num("failed") > 0.0 {
        eprint!(
            "({} failed, first: {}) ",
            v["failed"],
            v["first_error"].as_str().unwrap_or("")
        );
    }
    Ok(Handshakes {
        per_sec: num("handshakes_per_sec"),
        cpu_ms_each: 1000.0 * num("cpu_seconds") / num("completed").max(1.0),
        completed: num("completed"),
        seconds: num("seconds"),
        capped: v["capped"].as_bool().unwrap_or(false),
    })
}

/// Options for core clients pinning `fingerprint`, staying connected while idle.
fn client_options(fingerprint: &str) -> ClientOptions {
    let mut o = ClientOptions::new(ClientCredentials::Certificate(ServerVerification::Pinned {
        sha256_fingerprint: fingerprint.to_string(),
    }));
    o.session.handshake_timeout = Duration::from_secs(30);
    o.session.idle_timeout = Duration::from_secs(600);
    o.session.send_queue = 1024;
    o
}

/// The raw core: a DtlsServer and `n` DtlsClients in this process, no engine.
fn core_handshakes(n: usize, cap_secs: u64) -> Result<Handshakes, String> {
    let id = generate_self_signed("localhost", &["localhost".to_string()])?;
    let mut so = ServerOptions::new(ServerCredentials::Certificate {
        certificate_pem: id.certificate_pem.clone(),
        private_key_pem: id.private_key_pem.clone(),
    });
    so.max_clients = n.max(2000);
    so.max_pending_handshakes = 256;
    so.session.handshake_timeout = Duration::from_secs(30);
    so.session.idle_timeout = Duration::from_secs(600);
    let (tx, server_events) = channel();
    let server = DtlsServer::bind("127.0.0.1:0".parse().expect("a literal address"), so, tx)?;
    let port = server.local_addr().port();
    let copts = client_options(&id.sha256_fingerprint);
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = channel();
        clients.push((
            DtlsClient::connect("127.0.0.1", port, copts.clone(), tx)?,
            rx,
        ));
    }
    let (done, failed, last, capped) = wait_connected(&clients, start, cap_secs);
    let cpu = cpu_seconds() - cpu_start;
    drop(server_events);
    drop(clients);
    drop(server);
    if done == 0 {
        return Err(format!("no core handshake completed ({failed} failed)"));
    }
    let seconds = last.duration_since(start).as_secs_f64().max(1e-6);
    Ok(Handshakes {
        per_sec: done as f64 / seconds,
        cpu_ms_each: 1000.0 * cpu / done as f64,
        completed: done as f64,
        seconds,
        capped,
    })
}

/// User + system CPU time of this process so far, all threads, from /proc/self/stat
/// (clock ticks, 100 per second on Linux); 0 where /proc is missing.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// Polls client statuses until every client is connected or failed, or the cap passes.
/// Returns (connected, failed, when the last one connected, capped).
fn wait_connected(
    clients: &[CoreClient],
    start: Instant,
    cap_secs: u64,
) -> (usize, usize, Instant, bool) {
    let mut last = start;
    let mut done = 0;
    loop {
        let mut connected = 0;
        let mut failed = 0;
        for (c, _) in clients {
            match c.status() {
                Status::Connected => connected += 1,
                Status::Handshaking => {}
                _ => failed += 1,
            }
        }
        if connected > done {
            done = connected;
            last = Instant::now();
        }
        if connected + failed >= clients.len() {
            return (connected, failed, last, false);
        }
        if start.elapsed() > Duration::from_secs(cap_secs) {
            return (connected, failed, last, true);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Connects `n` core clients to a scene's server, at most `in_flight` handshakes at a time
/// (below the server's `max_pending_handshakes`), within the cap.
fn connect_many(
    port: u16,
    fingerprint: &str,
    n: usize,
    in_flight: usize,
    cap_secs: u64,
) -> Result<(Vec<CoreClient>, usize), String> {
    let copts = client_options(fingerprint);
    let start = Instant::now();
    let mut clients: Vec<CoreClient> = Vec::with_capacity(n);
    loop {
        let mut pending = 0;
        let mut connected = 0;
        let mut failed = 0;
        for (c, _) in &clients {
            match c.status() {
                Status::Connected => connected += 1,
                Status::Handshaking => pending += 1,
                _ => failed += 1,
            }
        }
        while clients.len() < n && pending < in_flight {
            let (tx, rx) = channel();
            clients.push((
                DtlsClient::connect("127.0.0.1", port, copts.clone(), tx)?,
                rx,
            ));
            pending += 1;
        }
        if connected + failed >= n {
            if failed > 0 {
                eprint!("({failed} clients failed to connect) ");
            }
            return Ok((clients, connected));
        }
        if start.elapsed() > Duration::from_secs(cap_secs) {
            eprint!("(capped at {cap_secs} s with {connected} connected) ");
            return Ok((clients, connected));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads the `READY {json}` line of a background scene.
fn ready(scene: &mut crate::godot_runs::LiveScene) -> Result<(u16, String, Value), String> {
    let line = scene.wait_line("READY ", Duration::from_secs(120))?;
    let v: Value =
        serde_json::from_str(&line).map_err(|e| format!("unreadable READY line ({e}): {line}"))?;
    let port = v["port"].as_u64().ok_or("READY without a port")? as u16;
    let fp = v["fingerprint"]
        .as_str()
        .ok_or("READY without a fingerprint")?
        .to_string();
    Ok((port, fp, v))
}

/// Waits for the scene's BENCH line and checks it.
fn finish(
    g: &GodotBench,
    scene: &mut crate::godot_runs::LiveScene,
    timeout: Duration,
) -> Result<Value, String> {
    scene.wait_line("BENCH ", timeout)?;
    g.check_output(scene.output())
}

/// One echo run's figures.
struct Echo {
    offered: f64,
    delivered: f64,
    loss: f64,
    echoed: f64,
    server_cpu_us: f64,
}

/// Echo: fixed offered rate, spread round-robin over the clients, for `echo_secs`.
fn echo_run(g: &GodotBench, o: &DtlsOptions, rate: usize) -> Result<Echo, String> {
    let mut scene = g.spawn_scene(
        SCENE,
        &[
            "--mode=echo_server".to_string(),
            format!("--cap={}", o.echo_secs + o.cap_secs + 60),
        ],
    )?;
    let (port, fp, _) = ready(&mut scene)?;
    let (clients, connected) = connect_many(port, &fp, o.echo_clients, 256, o.cap_secs)?;
    if connected < o.echo_clients {
        return Err(format!(
            "only {connected} of {} echo clients connected",
            o.echo_clients
        ));
    }
    let live: Vec<&CoreClient> = clients
        .iter()
        .filter(|(c, _)| c.status() == Status::Connected)
        .collect();
    let payload = vec![0xA5u8; 256];
    let all = Budget {
        max_events: 0,
        max_time: Duration::ZERO,
    };
    let mut echoed = 0u64;
    let count_echoes = |echoed: &mut u64| {
        for (_, q) in &live {
            *echoed += q
                .drain(all)
                .iter()
                .filter(|e| matches!(e, DtlsEvent::Packet { .. }))
                .count() as u64;
        }
    };
    let (mut sent, mut refused, mut next) = (0u64, 0u64, 0usize);
    let duration = Duration::from_secs(o.echo_secs);
    let start = Instant::now();
    while start.elapsed() < duration {
        let due = (rate as f64 * start.elapsed().as_secs_f64()) as u64;
        while sent + refused < due {
            let (c, _) = live[next % live.len()];
            next += 1;
            match c.send(1, &payload) {
                Ok(()) => sent += 1,
                Err(_) => refused += 1,
            }
        }
        count_echoes(&mut echoed);
        std::thread::sleep(Duration::from_millis(1));
    }
    let send_secs = start.elapsed().as_secs_f64();
    let drain_end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < drain_end {
        count_echoes(&mut echoed);
        std::thread::sleep(Duration::from_millis(10));
    }
    if refused > 0 {
        eprint!("({refused} sends refused by full client queues) ");
    }
    let v = finish(g, &mut scene, Duration::from_secs(o.cap_secs + 60))?;
    drop(clients);
    let packets = v["packets"].as_f64().unwrap_or(0.0);
    let per_sec = v["packets_per_sec"].as_f64().unwrap_or(f64::NAN);
    let sent_f = sent.max(1) as f64;
    Ok(Echo {
        offered: (sent + refused) as f64 / send_secs,
        delivered: per_sec,
        loss: 100.0 * (1.0 - packets / sent_f).max(0.0),
        echoed: 100.0 * echoed as f64 / sent_f,
        server_cpu_us: 1e6 * v["cpu_seconds"].as_f64().unwrap_or(f64::NAN) / packets.max(1.0),
    })
}

/// Idle sessions: VmRSS of the server before listening and with the clients connected.
/// Returns (connected, before KiB, after KiB).
fn idle_run(g: &GodotBench, o: &DtlsOptions) -> Result<(f64, f64, f64), String> {
    let mut scene = g.spawn_scene(
        SCENE,
        &[
            "--mode=idle_server".to_string(),
            format!("--clients={}", o.idle_clients),
            format!("--cap={}", o.cap_secs),
        ],
    )?;
    let (port, fp, _) = ready(&mut scene)?;
    let (clients, _) = connect_many(port, &fp, o.idle_clients, 200, o.cap_secs)?;
    let v = finish(g, &mut scene, Duration::from_secs(o.cap_secs + 60))?;
    drop(clients);
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok((num("connected"), num("rss_before_kb"), num("rss_after_kb")))
}
