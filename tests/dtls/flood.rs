//! Issue 8, item 3: one connected client sending as fast as it can. Before, its packets
//! piled up in one unbounded queue that the node drains a few hundred per frame: server
//! memory grew by more than a gigabyte in 45 s and every other client's packets waited
//! behind the pile. Now each peer's packets wait in a bounded queue of their own and the
//! node takes peers in turn, so the flooder loses its own excess and nobody else
//! notices.
//!
//! The server here is drained exactly as `DTLSPeer` drains it (`EventQueue::next`, a
//! budget per frame, 60 frames a second). `NETKIT_FLOOD_SECS` sets the flood's length
//! (default 10 s), `NETKIT_FLOOD_RATE` its rate and `NETKIT_FLOOD_PER_FRAME` the node's
//! events per frame.
//!
//! Measured with the old single queue (10 s, flooder at about 1,200 packets/s, 16 events a
//! frame at 60 frames/s): the echoing clients' p50 round trip was 400 ms, p99 980 ms, over
//! 600 of about 750 pings took longer than 1 s each, and the queue grew without bound. With
//! per-peer lanes: p50 14 ms, p99 33 ms, nothing lost, the flooder still connected and
//! delivered, server RSS +3 MiB. The full scale, measured once (30 s, flooder unpaced, 256
//! events a frame, debug build with optimised crypto, two loaded cores): the flooder
//! reached 5,500 packets/s, server RSS grew by 1.3 MiB (16.9 to 18.2 MiB), the echoing
//! clients' p99 was 46 ms (max 72 ms), the flooder stayed connected; 4 of 5,817 pings were
//! lost, because at that rate the shared socket's kernel buffer overflows whenever the
//! demux task is descheduled, which no queue of ours can prevent (servers expecting floods
//! should raise `net.core.rmem_max`). The 39,000 packets/s need a release build,
//! not measured here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netkit_test_support::dtls::*;
use netkit_test_support::hostile::*;

/// 60 frames a second, as a game runs.
const FRAME: Duration = Duration::from_micros(16_667);

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn one_flooding_client_costs_only_itself() {
    let secs = env_or("NETKIT_FLOOD_SECS", 10);
    let rate = env_or("NETKIT_FLOOD_RATE", 1500);
    let per_frame = env_or("NETKIT_FLOOD_PER_FRAME", 16) as usize;
    for run in 1..=2 {
        match flood_once(secs, rate, per_frame) {
            Ok(()) => return,
            // A stall of this whole process (a busy shared machine) can spoil one
            // measurement; the unfair queue failed every run by seconds.
            Err(why) if run < 2 => eprintln!("run {run}: {why}; measuring again"),
            Err(why) => panic!("{why} (in both runs)"),
        }
    }
}

fn flood_once(secs: u64, rate: u64, per_frame: usize) -> Result<(), String> {
    let id = identity();
    let mut server = NodeLikeServer::start(cert_server_options(&id));
    // A modest per-frame budget, so the flood surely outruns the node on any machine
    // (the fair turn order, not the budget's size, is what protects the others).
    server.per_frame = per_frame;
    // The flood's 1,200-byte packets are delivered, not echoed; the probes are.
    server.echo_max_len = 8;
    let mut probers: Vec<Prober> = (0..2)
        .map(|_| Prober::connect(server.addr(), pinned_client_options(&id), &mut server))
        .collect();
    // The server answers none of the flood, so the flooder must not give up on the
    // silent server by its own idle timeout.
    let mut flood_options = pinned_client_options(&id);
    flood_options.session.idle_timeout = Duration::from_secs(secs + 30);
    let flooder = Prober::connect(server.addr(), flood_options, &mut server);
    let flood_id = *server.connected.last().expect("flooder connected");
    std::thread::sleep(Duration::from_millis(300));
    server.frame_echo();
    let rss_before = rss_kib();

    let busy = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (busy, sent) = (busy.clone(), sent.clone());
        std::thread::spawn(move || {
            let payload = vec![0x5a; flooder.client.max_payload().min(1200)];
            let start = Instant::now();
            let end = start + Duration::from_secs(secs);
            let mut offered = 0u64;
            while Instant::now() < end {
                if rate > 0 {
                    let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
                    if offered >= due {
                        std::thread::sleep(Duration::from_micros(500));
                        continue;
                    }
                }
                offered += 1;
                if flooder.client.send(1, &payload).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                } else if rate == 0 {
                    // The send queue is full: as fast as the session can encrypt.
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            busy.store(false, Ordering::Relaxed);
            flooder
        })
    };
    let mut rss_peak = rss_before;
    let started = Instant::now();
    let mut delivered_at_half = None;
    {
        let mut all: Vec<&mut Prober> = probers.iter_mut().collect();
        // Frames in slices of a second, to sample memory and the flooder's progress.
        while busy.load(Ordering::Relaxed) {
            let slice = Arc::new(AtomicBool::new(true));
            let stop = slice.clone();
            let timer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(1));
                stop.store(false, Ordering::Relaxed);
            });
            run_frames(&mut server, &mut all, &slice, Duration::ZERO, FRAME);
            timer.join().unwrap();
            rss_peak = rss_peak.max(rss_kib());
            if delivered_at_half.is_none() && started.elapsed().as_secs() >= secs / 2 {
                delivered_at_half = Some(server.delivered.get(&flood_id).copied().unwrap_or(0));
            }
        }
        let idle = AtomicBool::new(false);
        run_frames(
            &mut server,
            &mut all,
            &idle,
            Duration::from_millis(300),
            FRAME,
        );
    }
    let mut flooder = flood.join().unwrap();
    flooder.tick(Duration::from_secs(3600));
    let rss_after = rss_kib();
    let stats = server.server.stats_snapshot();
    let delivered = server.delivered.get(&flood_id).copied().unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "flood {secs} s: flooder sent {} packets ({:.0}/s), node delivered {delivered} of them; \
         server RSS {rss_before} KiB before, peak {rss_peak} KiB, after {rss_after} KiB; {stats:?}",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) as f64 / elapsed,
    );
    for (i, p) in probers.iter().enumerate() {
        eprintln!(
            "echo client {i}: {} echoes, p50 {:?} p99 {:?} max {:?}, lost {}",
            p.rtts.len(),
            percentile(&p.rtts, 50),
            percentile(&p.rtts, 99),
            percentile(&p.rtts, 100),
            p.lost
        );
    }

    assert!(
        stats.dispatch_drops > 0,
        "the flood never outran the node, so this run proves nothing: {stats:?}"
    );
    assert!(
        rss_peak < rss_before + 50 * 1024,
        "server memory grew from {rss_before} KiB to {rss_peak} KiB"
    );
    assert!(!flooder.disconnected, "the flooder was disconnected");
    assert!(
        server.connected.contains(&flood_id),
        "the server no longer lists the flooder"
    );
    assert!(
        delivered > delivered_at_half.unwrap_or(0),
        "the flooder's packets stopped being delivered"
    );
    let mut slow = None;
    for (i, p) in probers.iter().enumerate() {
        assert!(!p.disconnected, "echo client {i} was disconnected");
        // UDP: the kernel may drop a datagram of the shared socket when the flooder fills
        // its receive buffer (Linux's default is 208 KiB), which no queue of ours can
        // prevent; at most 1 % of the echoes may go that way.
        assert!(
            p.lost * 100 <= p.rtts.len() + p.lost,
            "echo client {i} lost {} echoes of {}",
            p.lost,
            p.rtts.len() + p.lost
        );
        assert!(
            p.rtts.len() as u64 >= secs * 10,
            "echo client {i} got only {} echoes",
            p.rtts.len()
        );
        let p99 = percentile(&p.rtts, 99);
        if p99 >= Duration::from_millis(100) {
            slow = Some(format!("echo client {i}: p99 round trip {p99:?}"));
        }
    }
    slow.map_or(Ok(()), Err)
}
