//! The server's own UDP demultiplexer: one socket, a table from source address to peer,
//! and the admission rules that keep a flood of ClientHellos from costing more than a
//! bounded number of pending handshakes.
//!
//! The table maps a source address to a slot; each peer's `DTLSConn` runs on a `PeerConn`
//! (`conn.rs`) fed by its bounded inbound queue (`inbound.rs`), and sends with `send_to`
//! behind a bounded `send_queue`. An entry is removed on handshake failure or timeout,
//! close_notify or a fatal alert, idle timeout, `disconnect_peer`, `close()`, handle drop
//! and task panic (a supervisor awaits every peer task's `JoinHandle`, so a panic ends that
//! peer only). The admission verdicts come from `admission.rs`; this file carries them out.
//!
//! Reconnects from the same address and port: a ClientHello from a connected address starts
//! a separate replacement handshake while the old session keeps running, and the old
//! session ends with reason `Replaced` only when the new handshake completes. The old
//! session's `peer_disconnected` is sent by the promotion itself, before the new session's
//! `peer_connected`; a session's events go out under its `SessionControl` lock, and a
//! supervisor announces an end under the table lock, so no ordering of tasks can put the
//! new session first or send anything for the old id after its end. The replacement reports
//! on the lane of the session it replaces (`events_gate.rs`).
//!
//! A client refused for `max_clients`, and a ClientHello with message_seq > 0 from an
//! address without an entry (its handshake timed out or was evicted after the cookie
//! exchange, so it can never complete against a new handshake), get a 15-byte plaintext
//! fatal alert, smaller than their hello (no amplification), so the client fails at once
//! and can retry; from a connected address such a hello is dropped silently.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};
use std::time::Instant;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use webrtc_dtls::conn::DTLSConn;

use super::admission::{self, Candidate, Known, Plaintext, Route};
use super::authenticate::RecordAuthenticator;
use super::config::ServerOptions;
use super::conn::{ConnShared, PeerConn};
use super::datagram_queue::{self, QueueReceiver, QueueSender};
use super::events::{DisconnectReason, DtlsEvent, PeerId};
use super::events_gate::Gate;
use super::first_flight::{FirstFlightGate, HOLD_LIMIT};
use super::handshake_filter::HandshakeFilter;
use super::inbound::{self, InboundLimits, InboundSender};
use super::record::{
    CONTENT_APPLICATION_DATA, ClientHelloInfo, MAX_DATAGRAM, find_client_hello, refusal_alert,
    split, split_by_epoch,
};
use super::session::{self, Confirmation, SessionContext, SessionControl};
use super::stats::Stats;
use super::wire::Wire;

/// One handshake or session for one address.
struct Entry {
    serial: u64,
    inbound: InboundSender,
    outbound: QueueSender,
    /// The established session, for datagrams written from the sender's own task (see
    /// `Demux::enqueue`); `None` until the handshake completes.
    session: Option<Arc<DTLSConn>>,
    control: Arc<SessionControl>,
    created: Instant,
    /// The random of the ClientHello that started this handshake.
    random: [u8; 32],
    /// When the client echoed a cookie after we sent one, which proves it receives at
    /// its address; `None` until then.
    verified: Option<Instant>,
    /// Set once the handshake's first datagram (the HelloVerifyRequest with the cookie)
    /// went out; a cookie echoed before that is forged.
    answered: Arc<AtomicBool>,
    connected: bool,
    /// What this peer's handshake records may still bring (see `handshake_filter.rs`).
    fragments: Mutex<HandshakeFilter>,
    /// The lane this entry reports on (shared with the entry it replaces, if any).
    events: Gate,
}

/// An address's current entry plus, while a client reconnects from the same address,
/// the new handshake that will replace it.
struct Slot {
    main: Entry,
    replacement: Option<Entry>,
}

#[derive(Default)]
struct Table {
    /// Boxed: a slot is several hundred bytes and a hash table keeps up to twice as many
    /// slots as entries, so a server with many peers would pay for the empty ones.
    by_addr: HashMap<SocketAddr, Box<Slot>>,
    by_id: HashMap<PeerId, SocketAddr>,
    next_serial: u64,
    next_id: PeerId,
}

impl Table {
    /// The connected session with this id.
    fn connected(&self, id: PeerId) -> Option<&Entry> {
        self.by_id
            .get(&id)
            .and_then(|a| self.by_addr.get(a))
            .map(|s| &s.main)
            .filter(|e| e.connected)
    }

    fn pending(&self) -> usize {
        self.by_addr
            .values()
            .map(|s| usize::from(!s.main.connected) + usize::from(s.replacement.is_some()))
            .sum()
    }

    fn publish(&self, stats: &Stats) {
        stats
            .peers
            .store(self.by_id.len() as u64, Ordering::Relaxed);
        stats
            .pending_handshakes
            .store(self.pending() as u64, Ordering::Relaxed);
    }

    /// Ends one pending handshake to make room for a new one (the one
    /// `admission::victim` picks); false when every pending handshake has to be kept (the
    /// new hello is then dropped; its client resends).
    fn make_room(&mut self, max_pending: usize, now: Instant) -> bool {
        let candidates = self.by_addr.iter().map(|(addr, s)| Candidate {
            addr: *addr,
            connected: s.main.connected,
            verified: s.main.verified,
            created: s.main.created,
        });
        match admission::victim(candidates, max_pending, now).and_then(|a| self.by_addr.remove(&a))
        {
            Some(slot) => {
                slot.main.control.stop(DisconnectReason::ClosedLocally);
                if let Some(r) = slot.replacement {
                    r.control.stop(DisconnectReason::ClosedLocally);
                }
                true
            }
            None => false,
        }
    }
}

/// State shared by the demux task, the peer tasks and the server handle.
pub(crate) struct Demux {
    table: Mutex<Table>,
    pub socket: Arc<Wire>,
    pub options: ServerOptions,
    pub config: webrtc_dtls::config::Config,
    pub stats: Arc<Stats>,
    pub events: Gate,
    pub closed: CancellationToken,
    pub runtime: Handle,
    first_flight: FirstFlightGate,
}

/// Who a peer task serves: its address, its entry's serial, its event lane, and the
/// flag its first datagram sets.
struct PeerTask {
    addr: SocketAddr,
    serial: u64,
    events: Gate,
    answered: Arc<AtomicBool>,
}

/// Why the server refused to queue a packet for a peer.
pub(crate) enum Enqueue {
    Unknown,
    Full,
}

impl Demux {
    /// Bundles what the tasks share; ids start at 2 because 1 is the server.
    pub fn new(
        socket: Arc<Wire>,
        options: ServerOptions,
        config: webrtc_dtls::config::Config,
        events: Gate,
        closed: CancellationToken,
        runtime: Handle,
    ) -> Self {
        Self {
            table: Mutex::new(Table {
                next_id: 2,
                ..Default::default()
            }),
            socket,
            options,
            config,
            stats: super::stats::registered(),
            events,
            closed,
            runtime,
            first_flight: FirstFlightGate::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic elsewhere must not take the server down with a poisoned lock.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the socket until the server closes.
    pub async fn run(self: Arc<Self>) {
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let received = tokio::select! {
                _ = self.closed.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => r,
            };
            let (n, addr) = match received {
                Ok(x) => x,
                // Windows reports ICMP port-unreachable as an error on the next receive;
                // it concerns one peer, never the socket, so keep reading.
                // The short pause bounds CPU if the socket itself has gone bad.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    continue;
                }
            };
            if n > MAX_DATAGRAM {
                Stats::inc(&self.stats.dropped_datagrams);
                continue;
            }
            self.route(addr, &buf[..n]);
        }
        let mut table = self.lock();
        for (_, slot) in table.by_addr.drain() {
            slot.main.control.stop(DisconnectReason::ClosedLocally);
            if let Some(r) = slot.replacement {
                r.control.stop(DisconnectReason::ClosedLocally);
            }
        }
        table.by_id.clear();
        table.publish(&self.stats);
    }

    fn deliver(&self, entry: &Entry, datagram: Vec<u8>) {
        let admitted = entry
            .fragments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(datagram, &self.stats);
        let Some(datagram) = admitted else { return };
        if entry.inbound.try_send(datagram).is_err() {
            Stats::inc(&self.stats.dropped_datagrams);
        }
    }

    /// Carries out the admission rules (`admission::route`) for one datagram.
    fn route(self: &Arc<Self>, addr: SocketAddr, datagram: &[u8]) {
        let hello = find_client_hello(datagram);
        let mut table = self.lock();
        let full = table.by_id.len() >= self.options.max_clients;
        let known = match table.by_addr.get(&addr) {
            None => Known::Unknown,
            Some(slot) if slot.main.connected => Known::Connected {
                replacing: slot.replacement.is_some(),
            },
            Some(slot) => Known::Handshaking {
                verified: slot.main.verified.is_some(),
                answered: slot.main.answered.load(Ordering::Acquire),
                random: slot.main.random,
            },
        };
        let mut verdict = admission::route(known, hello, full);
        if verdict == Route::Restart {
            if let Some(old) = table.by_addr.remove(&addr) {
                old.main.control.stop(DisconnectReason::ClosedLocally);
            }
            verdict = admission::route(Known::Unknown, hello, full);
        }
        match verdict {
            Route::Restart => unreachable!("judged again as unknown"),
            Route::ToHandshake { verify } => {
                let slot = table.by_addr.get_mut(&addr).expect("known");
                if verify {
                    slot.main.verified = Some(Instant::now());
                }
                self.deliver(&slot.main, datagram.to_vec());
            }
            Route::ToSession => {
                let slot = table.by_addr.get(&addr).expect("known");
                self.deliver(&slot.main, datagram.to_vec());
            }
            Route::Split { plaintext } => self.split(&mut table, addr, datagram, hello, plaintext),
            Route::Drop => Stats::inc(&self.stats.dropped_datagrams),
            Route::Refuse => {
                drop(table);
                Stats::inc(&self.stats.dropped_datagrams);
                let seq = split(datagram)
                    .and_then(|r| r.first().map(|r| r.sequence))
                    .unwrap_or(0);
                // One small plaintext alert, sent without waiting: the demux must never
                // block on a single peer.
                let _ = self.socket.try_send_to(&refusal_alert(seq), addr);
            }
            Route::New => {
                let max = self.options.max_pending_handshakes;
                if table.pending() >= max && !table.make_room(max, Instant::now()) {
                    Stats::inc(&self.stats.dropped_datagrams);
                    return;
                }
                let random = hello.map(|h| h.random).unwrap_or_default();
                let entry = self.spawn_entry(&mut table, addr, random, None);
                self.deliver(&entry, datagram.to_vec());
                table.by_addr.insert(
                    addr,
                    Box::new(Slot {
                        main: entry,
                        replacement: None,
                    }),
                );
                table.publish(&self.stats);
            }
        }
    }

    /// A hello from a connected address (`Route::Split`): encrypted records to the session
    /// (their handshake part to the replacement too), plaintext ones as `plaintext` says.
    fn split(
        self: &Arc<Self>,
        table: &mut Table,
        addr: SocketAddr,
        datagram: &[u8],
        hello: Option<ClientHelloInfo>,
        plaintext: Plaintext,
    ) {
        let Some((plain, sealed)) = split_by_epoch(datagram) else {
            Stats::inc(&self.stats.dropped_datagrams);
            return;
        };
        let slot = table.by_addr.get(&addr).expect("connected");
        if !sealed.is_empty() {
            // The new handshake needs the client's encrypted Finished but never its
            // application data, which it would only queue until it gives up.
            let handshake_part: Vec<u8> = split(&sealed)
                .unwrap_or_default()
                .iter()
                .filter(|r| r.content_type != CONTENT_APPLICATION_DATA)
                .flat_map(|r| r.raw.iter().copied())
                .collect();
            if let (Some(r), false) = (&slot.replacement, handshake_part.is_empty()) {
                self.deliver(r, handshake_part);
            }
            self.deliver(&slot.main, sealed);
        }
        if plain.is_empty() {
            return;
        }
        match plaintext {
            Plaintext::Drop => {
                Stats::inc(&self.stats.dropped_datagrams);
                return;
            }
            Plaintext::StartReplacement => {
                let max = self.options.max_pending_handshakes;
                if table.pending() >= max && !table.make_room(max, Instant::now()) {
                    Stats::inc(&self.stats.dropped_datagrams);
                    return;
                }
                let random = hello.map(|h| h.random).unwrap_or_default();
                // The replacement reports on the lane of the session it replaces, so the
                // node sees the old session end before the new one begins.
                let lane = table.by_addr.get(&addr).map(|s| s.main.events.clone());
                let entry = self.spawn_entry(table, addr, random, lane);
                if let Some(slot) = table.by_addr.get_mut(&addr) {
                    slot.replacement = Some(entry);
                }
                table.publish(&self.stats);
            }
            Plaintext::ToReplacement => {}
        }
        if let Some(r) = table
            .by_addr
            .get(&addr)
            .and_then(|s| s.replacement.as_ref())
        {
            self.deliver(r, plain);
        }
    }

    /// Creates the per-peer queues and starts the handshake task under a supervisor
    /// that cleans up whatever way the task ends, panics included. `lane` is the event
    /// lane to report on; `None` opens a new one.
    fn spawn_entry(
        self: &Arc<Self>,
        table: &mut Table,
        addr: SocketAddr,
        random: [u8; 32],
        lane: Option<Gate>,
    ) -> Entry {
        table.next_serial += 1;
        let serial = table.next_serial;
        let session = &self.options.session;
        let limits = InboundLimits::new(session.inbound_queue, session.mtu);
        let (in_tx, in_rx) = inbound::queue(limits, self.stats.clone());
        let (out_tx, out_rx) = datagram_queue::queue(self.options.session.send_queue);
        let control = Arc::new(SessionControl::child_of(&self.closed));
        let shared = Arc::new(ConnShared::default());
        let conn = Arc::new(PeerConn::new(
            in_rx,
            self.socket.clone(),
            addr,
            shared.clone(),
        ));
        // Everything this peer reports goes through its own bounded lane, in order.
        let events = lane.unwrap_or_else(|| {
            self.events
                .for_peer(self.options.session.dispatch_queue, self.stats.clone())
        });
        let answered = Arc::new(AtomicBool::new(false));
        let task = self.runtime.spawn(self.clone().peer_task(
            PeerTask {
                addr,
                serial,
                events: events.clone(),
                answered: answered.clone(),
            },
            conn,
            shared,
            control.clone(),
            out_rx,
        ));
        let lane_for_entry = events.clone();
        let demux = self.clone();
        let supervised = control.clone();
        self.runtime.spawn(async move {
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(_) => Some((
                    DisconnectReason::Error,
                    "internal error: the session task panicked".to_owned(),
                )),
            };
            // Announced under the table lock, so a reconnect from the same address
            // cannot announce its new session in between (see `promote`).
            demux.forget(addr, serial, || {
                if let (Some(id), Some((reason, message))) = (supervised.peer_id(), outcome) {
                    supervised.announce_end(|| {
                        events.send(DtlsEvent::PeerDisconnected {
                            id,
                            reason,
                            message,
                        })
                    });
                }
            });
        });
        Entry {
            serial,
            inbound: in_tx,
            outbound: out_tx,
            session: None,
            control,
            created: Instant::now(),
            random,
            verified: None,
            answered,
            connected: false,
            fragments: Mutex::new(HandshakeFilter::for_server()),
            events: lane_for_entry,
        }
    }

    async fn peer_task(
        self: Arc<Self>,
        PeerTask {
            addr,
            serial,
            events,
            answered,
        }: PeerTask,
        conn: Arc<PeerConn>,
        shared: Arc<ConnShared>,
        control: Arc<SessionControl>,
        outbound: QueueReceiver,
    ) -> Option<(DisconnectReason, String)> {
        let session = &self.options.session;
        let deadline = tokio::time::Instant::now() + session.handshake_timeout;
        // Waiting for a turn counts against the handshake timeout, so entries that
        // never get one still go; eviction and cancellation end the wait too.
        let turn = tokio::select! {
            biased;
            _ = control.cancel.cancelled() => None,
            _ = tokio::time::sleep_until(deadline) => None,
            turn = self.first_flight.acquire() => Some(turn),
        };
        let Some(turn) = turn else {
            Stats::inc(&self.stats.handshakes_failed);
            return None;
        };
        *shared
            .first_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(turn.reporting_to(answered));
        let handshake = session::handshake(
            conn,
            shared.clone(),
            self.config.clone(),
            false,
            deadline,
            session.handshake_timeout,
            &control.cancel,
        );
        // A hello webrtc-dtls waits on without answering must not keep the turn.
        // It gives up the slot but keeps the turn, so that sending the cookie later
        // still marks the entry answered.
        let hold_limit = async {
            tokio::time::sleep(HOLD_LIMIT).await;
            if let Some(turn) = shared
                .first_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_mut()
            {
                turn.pass_on();
            }
            std::future::pending::<()>().await
        };
        let result = tokio::select! {
            result = handshake => result,
            _ = hold_limit => unreachable!("hold_limit never completes"),
        };
        shared.end_first_flight();
        let dtls = match result {
            Ok(dtls) => dtls,
            Err(_) => {
                Stats::inc(&self.stats.handshakes_failed);
                return None;
            }
        };
        if let Some(auth) = RecordAuthenticator::for_psk_session(&dtls, false).await {
            let _ = shared.authenticator.set(auth);
        }
        shared.mark_established();
        let Some(id) = self.promote(addr, serial, &dtls) else {
            let _ = tokio::time::timeout(std::time::Duration::from_millis(200), dtls.close()).await;
            return None;
        };
        Stats::inc(&self.stats.handshakes_ok);
        control.id.store(id, Ordering::Release);
        events.send(DtlsEvent::PeerConnected(id));
        let cx = SessionContext {
            id,
            control: control.clone(),
            outbound,
            idle_timeout: session.idle_timeout,
            keepalive: session.keepalive_interval,
            events,
            stats: self.stats.clone(),
            confirm: Some(Confirmation {
                shared,
                by: tokio::time::Instant::now() + session.handshake_timeout,
            }),
        };
        Some(session::run(dtls, cx).await)
    }

    /// Marks a finished handshake connected and gives it an id; retires the session it
    /// replaces, if any. `None` when the entry is gone or the server is full.
    fn promote(&self, addr: SocketAddr, serial: u64, dtls: &Arc<DTLSConn>) -> Option<PeerId> {
        let mut table = self.lock();
        let max = self.options.max_clients;
        let count = table.by_id.len();
        let id = table.next_id;
        let slot = table.by_addr.get_mut(&addr)?;
        let old = if slot.main.serial == serial && !slot.main.connected {
            if count >= max {
                return None;
            }
            slot.main.connected = true;
            slot.main.session = Some(dtls.clone());
            None
        } else if slot
            .replacement
            .as_ref()
            .is_some_and(|r| r.serial == serial)
        {
            let mut fresh = slot.replacement.take()?;
            fresh.connected = true;
            fresh.session = Some(dtls.clone());
            Some(std::mem::replace(&mut slot.main, fresh))
        } else {
            return None;
        };
        table.next_id += 1;
        if let Some(old) = old {
            old.control.stop(DisconnectReason::Replaced);
            if let Some(old_id) = old.control.peer_id() {
                table.by_id.remove(&old_id);
                // The old session's end is announced here, before the caller announces
                // the new one, so scripts always see peer_disconnected(old) first.
                let r = DisconnectReason::Replaced;
                // On the old entry's own lane, which the replacement shares, so the order
                // holds whatever turn the node's drain gives each lane.
                old.control.announce_end(|| {
                    old.events.send(DtlsEvent::PeerDisconnected {
                        id: old_id,
                        reason: r,
                        message: r.describe().to_owned(),
                    })
                });
            }
        }
        table.by_id.insert(id, addr);
        table.publish(&self.stats);
        Some(id)
    }

    /// Removes the entry with this serial, if it is still in the table, and runs
    /// `farewell` before the table is unlocked.
    fn forget(&self, addr: SocketAddr, serial: u64, farewell: impl FnOnce()) {
        let mut table = self.lock();
        let Some(slot) = table.by_addr.get_mut(&addr) else {
            farewell();
            return;
        };
        if slot
            .replacement
            .as_ref()
            .is_some_and(|r| r.serial == serial)
        {
            slot.replacement = None;
        } else if slot.main.serial == serial {
            let slot = table.by_addr.remove(&addr);
            if let Some(id) = slot.as_ref().and_then(|s| s.main.control.peer_id()) {
                table.by_id.remove(&id);
            }
            // A reconnect handshake still in flight becomes the address's main entry.
            if let Some(replacement) = slot.and_then(|s| s.replacement) {
                table.by_addr.insert(
                    addr,
                    Box::new(Slot {
                        main: replacement,
                        replacement: None,
                    }),
                );
            }
        }
        table.publish(&self.stats);
        farewell();
    }

    /// Queues a packet for one connected peer without waiting.
    pub fn enqueue(&self, id: PeerId, data: Vec<u8>) -> Result<(), Enqueue> {
        // Called from a task of the runtime (the multiplayer endpoint's), with nothing
        // queued before it: encrypt and send here rather than wake the session's task for
        // each datagram, which on a busy server was a task switch per datagram sent. The
        // Godot thread (DTLSPeer's `put_packet`) has no runtime and always queues, so no
        // network work moves onto it.
        if tokio::runtime::Handle::try_current().is_ok() {
            let session = {
                let table = self.lock();
                let entry = table.connected(id).ok_or(Enqueue::Unknown)?;
                entry.session.clone().filter(|_| entry.outbound.is_empty())
            };
            if session.is_some_and(|dtls| self.write_here(dtls, &data)) {
                return Ok(());
            }
        }
        // Otherwise the session's task writes it, in order, through its bounded queue (a
        // closing session drains that queue before close_notify).
        let table = self.lock();
        let entry = table.connected(id).ok_or(Enqueue::Unknown)?;
        entry.outbound.try_send(data).map_err(|_| {
            Stats::inc(&self.stats.send_drops);
            Enqueue::Full
        })
    }

    /// Writes one datagram on the caller's task if that completes at once (the record
    /// locks free, the socket writable); true if it did. Otherwise, or if the write
    /// failed, false: the caller queues it for the session's task, which keeps order,
    /// bounds what waits, and ends the session with the error if writing keeps failing.
    /// A write given up while waiting on the socket has consumed a record number; the
    /// peer sees a gap, as after a datagram lost on the path.
    fn write_here(&self, dtls: Arc<DTLSConn>, data: &[u8]) -> bool {
        // Unconstrained: the caller may have spent its cooperative budget (the endpoint
        // services many peers per wake-up), and a spent budget makes every tokio lock
        // and socket answer "not yet".
        let mut write = std::pin::pin!(tokio::task::unconstrained(dtls.write(data, None)));
        let mut cx = Context::from_waker(Waker::noop());
        match write.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Ok(_)) => {
                Stats::inc(&self.stats.packets_out);
                Stats::add(&self.stats.bytes_out, data.len() as u64);
                true
            }
            _ => false,
        }
    }

    /// Ids of every connected peer.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.lock().by_id.keys().copied().collect()
    }

    /// Ends one session with `ClosedLocally`; false if the id is unknown.
    pub fn disconnect(&self, id: PeerId) -> bool {
        self.stop(id, DisconnectReason::ClosedLocally)
    }

    /// Ends one peer's session without close_notify (reason `Replaced`), see
    /// `DtlsServer::abandon_peer`.
    pub fn abandon(&self, id: PeerId) -> bool {
        self.stop(id, DisconnectReason::Replaced)
    }

    fn stop(&self, id: PeerId, reason: DisconnectReason) -> bool {
        let table = self.lock();
        let Some(entry) = table.connected(id) else {
            return false;
        };
        entry.control.stop(reason);
        true
    }

    /// The address a connected peer sends from.
    pub fn address(&self, id: PeerId) -> Option<SocketAddr> {
        self.lock().by_id.get(&id).copied()
    }
}
