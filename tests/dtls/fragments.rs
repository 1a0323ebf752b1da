//! Issue 8, item 2: chains of handshake fragments from a hostile sender. webrtc-dtls 0.12
//! reassembles fragments recursively and rescans its buffer on every record, so 30,000
//! empty fragments sent highest offset first overflowed a worker's stack (the process
//! died) and 5,000 sent lowest offset first pinned the workers for seconds. netkit's
//! record layer must drop them first, for a pending handshake, for a connected client's
//! address and, on a client, for the server's address, while connected clients keep
//! their echo round trips under 100 ms.
//!
//! Measured on the old code: the 30,000-fragment reverse chain from one source killed the
//! process ("thread 'netkit-worker' has overflowed its stack", SIGABRT) once webrtc-dtls
//! reached offset 0; from two sources the echoing clients' p99 round trip was 400 to 550 ms
//! with hundreds of echoes lost over 1 s; forged as a connected client, that client's
//! session stalled (p99 950 ms, 540 echoes lost). With the filter every fragment is dropped
//! and counted in every combination (reverse 30,000 and forward 5,000; one and two sources;
//! pending handshake, forged as connected clients, forged as the server toward clients),
//! and the echoing clients' p99 stays 10 to 90 ms on a loaded machine.
//! `test_dtls_hostile.gd` sends the same chains at a DTLSPeer server inside Godot, from
//! fresh addresses and from a connected PacketPeerDTLS client's own socket.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit_test_support::dtls::*;
use netkit_test_support::hostile::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// Where the chain is aimed.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// A server, from addresses that start a handshake with a ClientHello first.
    PendingHandshake,
    /// A server, from the address of a connected client (forged).
    ConnectedClient,
    /// A client, from its server's address (forged).
    ClientFromServer,
}

/// Message sequence numbers webrtc-dtls waits for next, so the chain is the message it
/// tries to reassemble: after the first ClientHello a server waits for 1; after a
/// handshake a server has seen client messages 0..=3 and a client server messages 0..=5.
fn next_message_seq(target: Target) -> u16 {
    match target {
        Target::PendingHandshake => 1,
        Target::ConnectedClient => 4,
        Target::ClientFromServer => 6,
    }
}

/// Runs one attack and checks that nobody notices. Losing a connection or an echo, or
/// a fragment reaching webrtc-dtls, fails at once; a slow round trip is measured again
/// (up to three runs in all), since on a shared machine another process can stall this
/// one for longer than the bound, while the attack before the fix stalled every run for
/// hundreds of milliseconds and then crashed the process.
fn attack(order: Order, count: u32, sources: usize, target: Target) {
    // One attack at a time: round trips are the measurement, and parallel test threads
    // on a small machine would measure each other instead of the attack.
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    for run in 1..=3 {
        match attack_once(order, count, sources, target) {
            Ok(()) => return,
            Err(why) if run < 3 => eprintln!("run {run}: {why}; measuring again"),
            Err(why) => panic!("{why} (in each of 3 runs)"),
        }
    }
}

/// One attack against a fresh server with two echoing clients (plus the relayed clients
/// being impersonated). `Err` when a round trip was too slow.
fn attack_once(order: Order, count: u32, sources: usize, target: Target) -> Result<(), String> {
    let label = format!("{order:?} chain of {count} from {sources} source(s) at {target:?}");
    let id = identity();
    let mut sopts = cert_server_options(&id);
    // The default timeout: the attack must not simply outlast the handshake.
    sopts.session.handshake_timeout = Duration::from_secs(10);
    let mut server = NodeLikeServer::start(sopts);
    let mut direct: Vec<Prober> = (0..2)
        .map(|_| Prober::connect(server.addr(), pinned_client_options(&id), &mut server))
        .collect();
    let relays: Vec<Relay> = match target {
        Target::PendingHandshake => Vec::new(),
        _ => (0..sources).map(|_| Relay::start(server.addr())).collect(),
    };
    let mut relayed: Vec<Prober> = relays
        .iter()
        .map(|r| Prober::connect(r.addr(), pinned_client_options(&id), &mut server))
        .collect();
    let hello = capture_client_hello();
    let seq = next_message_seq(target);
    let chains: Vec<Vec<Vec<u8>>> = (0..sources)
        .map(|_| fragment_chain(16, seq, count, order, 1000))
        .collect();

    let busy = Arc::new(AtomicBool::new(true));
    let relays = Arc::new(relays);
    let sender = {
        let (busy, relays, server_addr) = (busy.clone(), relays.clone(), server.addr());
        std::thread::spawn(move || {
            let sockets: Vec<UdpSocket> = (0..sources)
                .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            if let Target::PendingHandshake = target {
                for s in &sockets {
                    s.send_to(&hello, server_addr).unwrap();
                }
                // Let webrtc-dtls take the hello, so the chain is the next message.
                std::thread::sleep(Duration::from_millis(300));
            }
            let longest = chains.iter().map(Vec::len).max().unwrap_or(0);
            for i in 0..longest {
                for (s, chain) in chains.iter().enumerate() {
                    let Some(d) = chain.get(i) else { continue };
                    match target {
                        Target::PendingHandshake => {
                            sockets[s].send_to(d, server_addr).unwrap();
                        }
                        Target::ConnectedClient => relays[s].forge_to_server(d),
                        Target::ClientFromServer => relays[s].forge_to_client(d),
                    }
                }
                // Paced so a slow receiver is not simply relieved by full queues.
                std::thread::sleep(Duration::from_millis(5));
            }
            busy.store(false, Ordering::Relaxed);
        })
    };
    {
        let mut all: Vec<&mut Prober> = direct.iter_mut().chain(relayed.iter_mut()).collect();
        run_frames(
            &mut server,
            &mut all,
            &busy,
            Duration::from_millis(500),
            Duration::from_millis(1),
        );
    }
    sender.join().unwrap();

    let stats = server.server.stats_snapshot();
    eprintln!("{label}: server {stats:?}");
    let mut slow = None;
    for (i, p) in direct.iter().chain(relayed.iter()).enumerate() {
        let (p50, p99, max) = (
            percentile(&p.rtts, 50),
            percentile(&p.rtts, 99),
            percentile(&p.rtts, 100),
        );
        eprintln!(
            "{label}: client {i}: {} echoes, p50 {p50:?} p99 {p99:?} max {max:?}, lost {}, client {:?}",
            p.rtts.len(),
            p.lost,
            p.client.stats_snapshot()
        );
        assert!(!p.disconnected, "{label}: client {i} was disconnected");
        assert_eq!(p.lost, 0, "{label}: client {i} lost echoes");
        assert!(p.rtts.len() >= 20, "{label}: client {i} got too few echoes");
        if p99 >= Duration::from_millis(100) {
            slow = Some(format!("{label}: client {i} p99 round trip {p99:?}"));
        }
    }
    // The chain never reached webrtc-dtls: the filter counted it.
    let dropped = match target {
        Target::ClientFromServer => relayed
            .iter()
            .map(|p| p.client.stats_snapshot().dropped_fragments)
            .sum::<u64>(),
        _ => stats.dropped_fragments,
    };
    assert_eq!(
        dropped,
        u64::from(count) * sources as u64,
        "{label}: every fragment of the chain, and nothing else, is dropped"
    );
    // And the server still admits newcomers.
    let late = Prober::connect(server.addr(), pinned_client_options(&id), &mut server);
    drop(late);
    slow.map_or(Ok(()), Err)
}

#[test]
fn reverse_chain_of_30000_from_one_and_two_sources_at_a_pending_handshake() {
    attack(Order::Reverse, 30_000, 1, Target::PendingHandshake);
    attack(Order::Reverse, 30_000, 2, Target::PendingHandshake);
}

#[test]
fn forward_chain_of_5000_from_one_and_two_sources_at_a_pending_handshake() {
    attack(Order::Forward, 5_000, 1, Target::PendingHandshake);
    attack(Order::Forward, 5_000, 2, Target::PendingHandshake);
}

#[test]
fn chains_forged_as_connected_clients() {
    attack(Order::Reverse, 30_000, 1, Target::ConnectedClient);
    attack(Order::Reverse, 30_000, 2, Target::ConnectedClient);
    attack(Order::Forward, 5_000, 1, Target::ConnectedClient);
    attack(Order::Forward, 5_000, 2, Target::ConnectedClient);
}

#[test]
fn chains_forged_as_the_server_toward_clients() {
    attack(Order::Reverse, 30_000, 1, Target::ClientFromServer);
    attack(Order::Reverse, 30_000, 2, Target::ClientFromServer);
    attack(Order::Forward, 5_000, 1, Target::ClientFromServer);
    attack(Order::Forward, 5_000, 2, Target::ClientFromServer);
}
