//! `cargo run --release --bin bench`: measures HTTPPool against Godot's own HTTPRequest
//! and against plain reqwest, on two local servers (nginx from Debian's package, and the
//! bench's own hyper server), and prints one table per server and concurrency (also written
//! to `target/bench/results.md`; BENCHMARKS.md is updated by hand from it).
//!
//! Building with `--release` builds the release extension too (the library target is a
//! dependency of this binary); the bench stages that library for Godot.
//!
//! It also measures DTLSPeer against Godot's own DTLS (handshakes/s, echo throughput into
//! GDScript, server memory per idle session); see dtls_runs.rs.
//!
//! And SceneMultiplayer over DTLSMultiplayerPeer against ENetMultiplayerPeer (connect time,
//! RPC round trip at 60 frames/s, reliable RPCs/s, main-thread µs per RPC); see mp_runs.rs.
//! The same suite measures a dedicated server's CPU and memory with 100 to 1,000 clients
//! (mp_scale_runs.rs); `--suite mp-scale` runs that part alone, `--suite mp-path` the rest.
//!
//! And the durable outbox: HTTPPool.request_durable against HTTPPool.request (main-thread
//! µs per call, time to completion); see outbox_runs.rs. And how fast the outbox drains
//! 2,000 pending saves with and without a backend that hangs calls (outbox_drain_runs.rs);
//! `--suite outbox-drain` runs that part alone (no Godot needed). `--suite mp-resume` (part
//! of `mp`) times multiplayer resumption after an address change (mp_resume_runs.rs, no
//! Godot needed).
//!
//! Options: `--suite http,dtls,mp,outbox` (all four), `--runs N` (3), `--requests N` (5000),
//! `--concurrency 8,64`, `--servers nginx,hyper`,
//! `--clients httprequest,httprequest_threads,httppool,core,reqwest`,
//! `--dtls godot,dtlspeer,core,echo,idle,lossy`, `--handshake-clients 200`, `--echo-clients 50`,
//! `--echo-rate 25000,50000`, `--echo-secs 5`, `--idle-clients 1000`, `--dtls-cap 60`,
//! `--mp-rtt-frames 600`, `--mp-rpcs 20000`.

mod dtls_lossy_runs;
mod dtls_runs;
mod godot_runs;
mod mp_path_runs;
mod mp_resume_runs;
mod mp_runs;
mod mp_scale_runs;
mod nginx;
mod outbox_drain_runs;
mod outbox_runs;
mod reqwest_run;
mod server;
mod table;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use godot_runs::{GodotBench, SceneResult};
use server::BenchServer;
use table::{Cell, Row, Samples, Table};

/// What the command line asked for.
struct Options {
    runs: usize,
    requests: usize,
    concurrency: Vec<usize>,
    clients: Vec<String>,
    servers: Vec<String>,
    suites: Vec<String>,
    dtls: dtls_runs::DtlsOptions,
    mp: mp_runs::MpOptions,
}

/// Every client the HTTP table knows, in row order: (id, row label).
const CLIENTS: &[(&str, &str)] = &[
    ("httprequest", "Godot HTTPRequest ×{n}, use_threads off"),
    (
        "httprequest_threads",
        "Godot HTTPRequest ×{n}, use_threads on",
    ),
    ("httppool", "HTTPPool (max_concurrent {n})"),
    ("core", "netkit core HttpPool, Rust, no engine"),
    ("reqwest", "raw reqwest + serde_json, Rust (ceiling)"),
];

/// The HTTP servers every client is measured against, in table order: nginx (Debian's
/// package, the server people actually run) and the bench's own hyper server.
const SERVERS: &[&str] = &["nginx", "hyper"];

/// The columns of the HTTP table.
const COLUMNS: &[&str] = &[
    "requests/s",
    "× HTTPPool",
    "main thread µs/response",
    "handlers µs/response",
    "longest frame ms",
    "issue frame ms",
    "peak RSS MiB",
];

fn main() {
    if let Err(e) = run() {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        runs: 3,
        requests: 5000,
        concurrency: vec![8, 64],
        clients: CLIENTS.iter().map(|(id, _)| id.to_string()).collect(),
        servers: SERVERS.iter().map(|s| s.to_string()).collect(),
        suites: ["http", "dtls", "mp", "outbox"]
            .map(str::to_string)
            .to_vec(),
        dtls: dtls_runs::DtlsOptions {
            handshake_clients: 200,
            echo_clients: 50,
            echo_rates: vec![25_000, 50_000],
            echo_secs: 5,
            idle_clients: 1000,
            cap_secs: 60,
            rows: dtls_runs::ROWS.iter().map(|r| r.to_string()).collect(),
        },
        mp: mp_runs::MpOptions {
            rtt_frames: 600,
            rpcs: 20_000,
            cap_secs: 120,
        },
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{name} needs a value"))
        };
        let number = |v: &str| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name}: '{v}' is not a positive number"))
        };
        match name {
            "--runs" => o.runs = number(&value()?)?,
            "--requests" => o.requests = number(&value()?)?,
            "--concurrency" => {
                o.concurrency = value()?.split(',').map(number).collect::<Result<_, _>>()?
            }
            "--clients" => {
                o.clients = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = o
                    .clients
                    .iter()
                    .find(|c| !CLIENTS.iter().any(|(id, _)| id == c))
                {
                    return Err(format!("unknown client '{bad}'"));
                }
            }
            "--servers" => {
                o.servers = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = o.servers.iter().find(|s| !SERVERS.contains(&s.as_str())) {
                    return Err(format!("unknown server '{bad}' (nginx, hyper)"));
                }
            }
            "--suite" => {
                o.suites = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = o.suites.iter().find(|s| {
                    ![
                        "http",
                        "dtls",
                        "mp",
                        "mp-path",
                        "mp-resume",
                        "mp-scale",
                        "outbox",
                        "outbox-drain",
                    ]
                    .contains(&s.as_str())
                }) {
                    return Err(format!(
                        "unknown suite '{bad}' (http, dtls, mp, mp-path, mp-resume, mp-scale, outbox, outbox-drain)"
                    ));
                }
            }
            "--dtls" => {
                o.dtls.rows = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = o
                    .dtls
                    .rows
                    .iter()
                    .find(|r| !dtls_runs::ROWS.contains(&r.as_str()))
                {
                    return Err(format!("unknown DTLS row '{bad}'"));
                }
            }
            "--handshake-clients" => o.dtls.handshake_clients = number(&value()?)?,
            "--echo-clients" => o.dtls.echo_clients = number(&value()?)?,
            "--echo-rate" => {
                o.dtls.echo_rates = value()?.split(',').map(number).collect::<Result<_, _>>()?
            }
            "--echo-secs" => o.dtls.echo_secs = number(&value()?)? as u64,
            "--idle-clients" => o.dtls.idle_clients = number(&value()?)?,
            "--dtls-cap" => o.dtls.cap_secs = number(&value()?)? as u64,
            "--mp-rtt-frames" => o.mp.rtt_frames = number(&value()?)?,
            "--mp-rpcs" => o.mp.rpcs = number(&value()?)?,
            "--help" | "-h" => {
                println!(
                    "cargo run --release --bin bench -- [--suite http,dtls,mp,outbox] [--runs 3] \
                     [--requests 5000] [--concurrency 8,64] [--servers nginx,hyper] \
                     [--clients {}] [--dtls {}] \
                     [--handshake-clients 200] [--echo-clients 50] [--echo-rate 25000,50000] \
                     [--echo-secs 5] [--idle-clients 1000] [--dtls-cap 60] \
                     [--mp-rtt-frames 600] [--mp-rpcs 20000]",
                    CLIENTS
                        .iter()
                        .map(|(id, _)| *id)
                        .collect::<Vec<_>>()
                        .join(","),
                    dtls_runs::ROWS.join(",")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown option '{other}' (try --help)")),
        }
    }
    Ok(o)
}

/// All runs of one client at one concurrency.
#[derive(Default)]
struct Collected {
    rps: Samples,
    main_us: Samples,
    handler_us: Samples,
    max_frame_ms: Samples,
    submit_ms: Samples,
    rss_mib: Samples,
    godot: bool,
}

impl Collected {
    fn add_scene(&mut self, r: &SceneResult) {
        self.godot = true;
        self.rps.push(r.requests_per_sec);
        self.main_us.push(r.main_usec_per_response);
        self.handler_us.push(r.handler_usec_per_response);
        self.max_frame_ms.push(r.max_frame_ms);
        self.submit_ms.push(r.submit_ms);
        self.rss_mib.push(r.peak_rss_mib);
    }
}

fn run() -> Result<(), String> {
    let options = parse_options()?;
    let repo = godot_runner::repo_dir();
    let load_before = load_average();
    let suite = |s: &str| options.suites.iter().any(|x| x == s);
    let needs_godot = (suite("http") && options.clients.iter().any(|c| c.starts_with("http")))
        || (suite("dtls") && options.dtls.rows.iter().any(|r| r != "core"))
        || suite("mp")
        || suite("mp-path")
        || suite("mp-scale")
        || suite("outbox");
    let godot = if needs_godot {
        Some(GodotBench::prepare(&repo)?)
    } else {
        None
    };
    let mut tables = if suite("http") {
        http_tables(&options, godot.as_ref())?
    } else {
        Vec::new()
    };
    if suite("dtls") {
        tables.extend(dtls_runs::run(&options.dtls, options.runs, godot.as_ref())?);
        if options.dtls.rows.iter().any(|r| r == "lossy") {
            tables.extend(dtls_lossy_runs::run(options.runs, godot.as_ref())?);
        }
    }
    if suite("mp") || suite("mp-path") {
        tables.extend(mp_runs::run(&options.mp, options.runs, godot.as_ref())?);
        tables.extend(mp_path_runs::run(
            &options.mp,
            options.runs,
            godot.as_ref(),
        )?);
    }
    if suite("mp") || suite("mp-resume") {
        tables.extend(mp_resume_runs::run(options.runs)?);
    }
    if suite("mp") || suite("mp-scale") {
        tables.extend(mp_scale_runs::run(options.runs, godot.as_ref())?);
    }
    if suite("outbox") {
        let requests = options.requests.min(500);
        tables.extend(outbox_runs::run(requests, options.runs, godot.as_ref())?);
    }

    if suite("outbox") || suite("outbox-drain") {
        tables.extend(outbox_drain_runs::run(options.runs)?);
    }

    let report = render_report(&options, godot.as_ref(), &tables, &load_before);
    println!("\n{report}");
    let out_dir = repo.join("target/bench");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let out = out_dir.join("results.md");
    std::fs::write(&out, &report).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("written to {}", out.display());
    Ok(())
}

/// The HTTP suite: against every server, every client at every concurrency, `runs` times;
/// one table per server and concurrency.
fn http_tables(options: &Options, godot: Option<&GodotBench>) -> Result<Vec<Table>, String> {
    let mut tables = Vec::new();
    for server in &options.servers {
        // Both servers get the two CPUs' worth of workers.
        let (url, name, _running): (String, String, Box<dyn std::any::Any>) = if server == "nginx" {
            let work = godot_runner::repo_dir().join("target/bench/nginx");
            let nginx = nginx::NginxServer::start(&work, 2)?;
            let name = format!("{} (Debian package, 2 workers)", nginx.version());
            (nginx.url(), name, Box::new(nginx))
        } else {
            let hyper = BenchServer::start(2)?;
            let name = "the bench's hyper server (2 threads)".to_string();
            (hyper.url(), name, Box::new(hyper))
        };
        eprintln!("server: {name}");
        tables.extend(http_tables_for(options, godot, &url, &name)?);
    }
    Ok(tables)
}

/// Every client at every concurrency against one server at `url`.
fn http_tables_for(
    options: &Options,
    godot: Option<&GodotBench>,
    url: &str,
    server: &str,
) -> Result<Vec<Table>, String> {
    let mut results: BTreeMap<(usize, &str), Collected> = BTreeMap::new();
    for run in 1..=options.runs {
        for &n in &options.concurrency {
            for (id, _) in CLIENTS {
                if !options.clients.iter().any(|c| c == id) {
                    continue;
                }
                eprint!("run {run}/{}: {id} at concurrency {n} ... ", options.runs);
                let entry = results.entry((n, id)).or_default();
                match *id {
                    "core" => {
                        let rps = reqwest_run::netkit_core(url, options.requests, n)?;
                        entry.rps.push(rps);
                        eprintln!("{rps:.0} req/s");
                    }
                    "reqwest" => {
                        let rps = reqwest_run::raw_reqwest(url, options.requests, n)?;
                        entry.rps.push(rps);
                        eprintln!("{rps:.0} req/s");
                    }
                    scene => {
                        let godot = godot.ok_or("Godot was not prepared")?;
                        let r = godot.run(scene, url, options.requests, n)?;
                        eprintln!(
                            "{:.0} req/s, {:.1} µs/response on the main thread, longest frame {:.2} ms",
                            r.requests_per_sec, r.main_usec_per_response, r.max_frame_ms
                        );
                        entry.add_scene(&r);
                    }
                }
            }
        }
    }

    let mut tables = Vec::new();
    for &n in &options.concurrency {
        let title = format!(
            "HTTP against {server}: {} GETs of a 1 KB JSON body, concurrency {n}",
            options.requests
        );
        let mut t = Table::new(&title, COLUMNS);
        let pool_median = results.get(&(n, "httppool")).and_then(|c| c.rps.median());
        for (id, label) in CLIENTS {
            let Some(c) = results.get(&(n, id)) else {
                continue;
            };
            let ratio = match (c.rps.median(), pool_median) {
                (Some(x), Some(p)) if p > 0.0 => Cell::Text(format!("{:.2}", x / p)),
                _ => Cell::Empty,
            };
            let godot_only = |s: &Samples, d: usize| {
                if c.godot {
                    Cell::Stat(s.clone(), d)
                } else {
                    Cell::Empty
                }
            };
            t.rows.push(Row {
                name: label.replace("{n}", &n.to_string()),
                cells: vec![
                    Cell::Stat(c.rps.clone(), 0),
                    ratio,
                    godot_only(&c.main_us, 1),
                    godot_only(&c.handler_us, 1),
                    godot_only(&c.max_frame_ms, 2),
                    godot_only(&c.submit_ms, 1),
                    godot_only(&c.rss_mib, 0),
                ],
            });
        }
        tables.push(t);
    }
    Ok(tables)
}

fn render_report(
    options: &Options,
    godot: Option<&GodotBench>,
    tables: &[Table],
    load_before: &str,
) -> String {
    let mut out = String::new();
    let command = std::iter::once("cargo run --release --bin bench".to_string())
        .chain(
            Some(std::env::args().skip(1).collect::<Vec<_>>().join(" "))
                .filter(|a| !a.is_empty())
                .map(|a| format!("-- {a}")),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let _ = writeln!(out, "## netkit benchmark results\n");
    let _ = writeln!(out, "- date (UTC): {}", utc_now());
    let _ = writeln!(out, "- command: `{command}`");
    let _ = writeln!(
        out,
        "- Godot: {}",
        godot.map_or("not run".to_string(), |g| g.version())
    );
    let _ = writeln!(out, "- CPUs available: {cpus}");
    let _ = writeln!(
        out,
        "- load average before / after: {} / {}",
        load_before.trim(),
        load_average().trim()
    );
    let per_run = if options.suites.iter().any(|s| s == "http") {
        format!("; {} requests per HTTP run", options.requests)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "- each figure: median of {} runs, (min–max) in brackets{per_run}\n",
        options.runs
    );
    for t in tables {
        let _ = writeln!(out, "{}", t.to_markdown());
    }
    if options.suites.iter().any(|s| s == "http") {
        out.push_str(METHOD_NOTES);
    }
    if options.suites.iter().any(|s| s == "dtls") {
        if options.suites.len() > 1 {
            out.push('\n');
        }
        out.push_str(DTLS_METHOD_NOTES);
    }
    if options.suites.iter().any(|s| s == "mp") {
        if options.suites.len() > 1 {
            out.push('\n');
        }
        out.push_str(MP_METHOD_NOTES);
    }
    if options.suites.iter().any(|s| s == "mp" || s == "mp-scale") {
        out.push('\n');
        out.push_str(MP_SCALE_METHOD_NOTES);
    }
    out
}

/// How each column is measured; printed under the tables so a result file explains itself.
const METHOD_NOTES: &str = "\
Columns: requests/s counts successful responses whose JSON was parsed and its `id` read, \
from the first request to the last response. × HTTPPool divides the medians by the \
HTTPPool row's at the same concurrency. Main thread µs/response: every frame is timed from \
`SceneTree.process_frame` to a call deferred from the last-processed node, which spans \
HTTPRequest polling, HTTPPool dispatch, the completion handlers and the issuing of requests \
but not Godot's idle sleep; the sum over the run is divided by the responses. \
(`Performance.TIME_PROCESS` is not used: Godot updates it once a second with that second's \
largest frame.) Handlers µs/response is the time inside the GDScript completion handlers \
alone (`Time.get_ticks_usec`). Longest frame is the largest such frame after the first; \
issue frame is the first frame, which issues the requests (all of them for HTTPPool, one \
per node for HTTPRequest). Peak RSS is VmHWM of the Godot process (/proc/self/status). \
Godot runs headless with its default pacing (it sleeps about 6.9 ms between frames when no \
window draws) and loads the release library under both feature tags.\n";

/// How the DTLS figures are measured.
const DTLS_METHOD_NOTES: &str = "\
DTLS, all on loopback with one ECDSA P-256 certificate from `DTLSPeer.generate_self_signed()` \
(clients verify it: Godot's by `TLSOptions.client(cert)`, netkit's by pinned SHA-256). \
Handshakes/s: handshakes completed on the client side divided by the time from the first \
connect call to the last completion; a run stops at the time cap and then reports what \
completed. The Godot rows poll every object once per frame, as a game's `_process` would. \
Echo: core `DtlsClient`s in the bench process offer 256-byte datagrams at a fixed total \
rate, round-robin, for the stated time, while a DTLSPeer server in headless Godot echoes \
each one from its `packet_received` handler (dispatch raised to 1,000,000 events / 16 ms \
per frame); packets/s into GDScript is handler calls over the span from the first to the \
last one, loss is 1 − handler calls / packets the clients sent. Idle: VmRSS of the Godot \
process before `start_server` and 1 s after the last client connected (core clients with a \
600 s idle timeout, at most 200 handshakes in flight); per session is the difference \
divided by the connected clients.\n";

/// How the multiplayer figures are measured.
const MP_METHOD_NOTES: &str = "\
Multiplayer: two headless Godot processes, a dedicated server and a client, each with one \
SceneMultiplayer over the transport of the row, on loopback, both at `Engine.max_fps = 60` \
(as a game and a server tick would). Connect ms: `create_client` until the client's \
`connected_to_server` (the DTLS row includes its ECDSA handshake). Round trip: one reliable \
`ping` RPC per client frame carrying `Time.get_ticks_usec()`, answered by the server with \
a reliable `pong`; the client's handler takes the difference, so both sides' frame pacing \
is in it (a frame is 16.7 ms). Reliable RPCs/s: client to server, at most 2,000 issued per \
frame and 8,000 beyond the server's last `progress` RPC (sent once per server frame), from \
the phase's start until the client hears that the server's handler saw the last one \
(arrival order checked). Main thread µs/RPC: the tree's automatic multiplayer polling is \
off and each process calls `poll()` itself; the time in those polls and in the `rpc` \
calls of the throughput phase, client and server added, divided by the RPCs delivered. \
Encrypted ENet: `host.dtls_server_setup` / `host.dtls_client_setup` right after \
`create_server` / `create_client` (before the first poll sends anything), the client \
verifying the server's certificate; Godot builds linked against the system ENet library \
(Debian's) lack that layer, and the row then says so instead of giving figures.\n";

/// How the multiplayer figures at scale are measured.
const MP_SCALE_METHOD_NOTES: &str = "\
Multiplayer at scale: one headless Godot server process and one crowd process holding all \
N clients, both at `Engine.max_fps = 60`, using the MultiplayerPeer API directly (the \
server calls `poll()` once per frame and reads every packet, as SceneMultiplayer would), so \
the figures are the transport's. All clients are created in the crowd's first frame (a \
reconnect storm); one whose connection fails is created again. The server waits until N are \
connected (or none joined for 15 s), 3 s more, then measures its own user + system CPU \
time from /proc/self/stat over 10 s. RSS per peer: VmRSS then, less VmRSS before \
`create_server`, divided by the connected peers. Connect s: the server's first to last \
`peer_connected`. Active: every client sends 20 unreliable 64-byte packets/s and 2 \
reliable 16-byte packets/s to the server, which sends each unreliable packet on to the 8 \
peers after its sender in its peer list. Bytes per state packet: one client sending only \
those, through the relay; UDP payload both ways over the 10 s, divided by the packets.\n";

/// `/proc/loadavg`'s first three figures, to show whether other work shared the machine.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

/// The current UTC time as `YYYY-MM-DD HH:MM`, without a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}
