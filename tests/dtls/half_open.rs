//! Issue 8, item 4: half-open handshakes from addresses that can receive replies. Each
//! sends a ClientHello, echoes the cookie from the HelloVerifyRequest (which proves its
//! address), then goes silent until the handshake times out, and starts over. Before, a
//! verified entry was never evicted, so 256 such addresses (about 50 datagrams a
//! second) filled the 256-slot pending table and every new player's hello was dropped:
//! connects took 9 s or failed. A player must now connect in under a second, and the
//! table must stay bounded.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netkit::core::dtls::DtlsEvent;
use netkit_test_support::dtls::*;
use netkit_test_support::hostile::*;

/// Addresses in the attack: more than the default pending table has slots, so a slot
/// that frees up is taken again at once.
const ATTACKERS: usize = 300;

/// The default `max_pending_handshakes`.
const TABLE: u64 = 256;

/// How long an attacker waits for its HelloVerifyRequest before sending its hello
/// again, as a client does when a datagram is lost.
const RESEND: Duration = Duration::from_millis(500);

/// Where one attacker is in its cycle.
enum Phase {
    /// Hello sent at this instant; waiting for the cookie.
    AwaitingCookie(Instant),
    /// Cookie echoed; silent until this instant, when its handshake has timed out.
    Silent(Instant),
}

/// Runs the stalling attackers until `stop`. Each sends a ClientHello (again after
/// [`RESEND`] without an answer), echoes the cookie of the HelloVerifyRequest, which
/// proves its address, goes silent for `hold` (the server's handshake timeout, so its
/// slot is taken for as long as the server allows), and starts over. `echoed` counts
/// the cookies answered.
fn stall_attack(
    server: SocketAddr,
    hello: Vec<u8>,
    hold: Duration,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sockets: Vec<UdpSocket> = (0..ATTACKERS)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_nonblocking(true).unwrap();
                s
            })
            .collect();
        // Starts spread over two seconds, as independent clients would be.
        let start = Instant::now();
        let mut phases: Vec<Phase> = (0..ATTACKERS)
            .map(|i| Phase::Silent(start + Duration::from_secs(2) * i as u32 / ATTACKERS as u32))
            .collect();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            for (s, phase) in sockets.iter().zip(phases.iter_mut()) {
                while let Ok(n) = s.recv(&mut buf) {
                    if let (Phase::AwaitingCookie(_), Some(cookie)) =
                        (&phase, hello_verify_cookie(&buf[..n]))
                    {
                        let _ = s.send_to(&hello_with_cookie(&hello, &cookie), server);
                        echoed.fetch_add(1, Ordering::Relaxed);
                        *phase = Phase::Silent(now + hold);
                    }
                }
                match phase {
                    Phase::AwaitingCookie(sent) if now.duration_since(*sent) < RESEND => {}
                    Phase::Silent(until) if now < *until => {}
                    _ => {
                        let _ = s.send_to(&hello, server);
                        *phase = Phase::AwaitingCookie(now);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    })
}

#[test]
fn stalled_verified_handshakes_do_not_lock_players_out() {
    let id = identity();
    let mut sopts = cert_server_options(&id);
    // The default timeout: each attacker holds its slot 10 s and comes back.
    let timeout = Duration::from_secs(10);
    sopts.session.handshake_timeout = timeout;
    let (server, mut sev) = start_server(sopts);
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let attack = stall_attack(
        server.local_addr(),
        capture_client_hello(),
        timeout,
        stop.clone(),
        echoed.clone(),
    );
    // The first round fills the table with verified, silent handshakes.
    let end = Instant::now() + Duration::from_secs(10);
    while (server.stats_snapshot().pending_handshakes < TABLE
        || echoed.load(Ordering::Relaxed) < TABLE)
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let full = server.stats_snapshot();
    eprintln!(
        "table after one round: {full:?}; cookies echoed {}",
        echoed.load(Ordering::Relaxed)
    );
    assert!(
        full.pending_handshakes >= TABLE - 8,
        "the attack did not fill the table: {full:?}"
    );

    // Players keep arriving through the next round of the attack.
    let mut times = Vec::new();
    let mut peak_pending = 0;
    for _ in 0..5 {
        let mut copts = pinned_client_options(&id);
        copts.session.handshake_timeout = Duration::from_secs(5);
        let started = Instant::now();
        let (client, mut cev) = start_client(server.local_addr(), copts);
        let first = cev.wait(Duration::from_secs(6), |_| true);
        let took = started.elapsed();
        times.push(took);
        peak_pending = peak_pending.max(server.stats_snapshot().pending_handshakes);
        assert!(
            matches!(first, Some(DtlsEvent::PeerConnected(1))),
            "a player during the attack got {first:?} after {took:?}"
        );
        assert!(
            sev.wait(Duration::from_secs(1), is_connected).is_some(),
            "the server saw the player"
        );
        drop(client);
        std::thread::sleep(Duration::from_millis(1500));
        peak_pending = peak_pending.max(server.stats_snapshot().pending_handshakes);
    }
    stop.store(true, Ordering::Relaxed);
    attack.join().unwrap();
    let after = server.stats_snapshot();
    eprintln!("players connected in {times:?}; peak pending {peak_pending}; {after:?}");
    assert!(
        peak_pending <= TABLE,
        "the pending table grew past its bound: {peak_pending}"
    );
    for t in &times {
        assert!(
            *t < Duration::from_secs(1),
            "a player took {t:?}: {times:?}"
        );
    }
}
