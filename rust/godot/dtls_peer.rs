//! `DTLSPeer`: secure UDP for a game, as a server for many clients or as a client.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use godot::classes::{INode, Node};
use godot::global::Error;
use godot::prelude::*;

use super::dtls_options::{client_setup, server_setup};
use super::stats_dict::stats_dict;
use crate::core::dtls::config::{client_config, server_config};
use crate::core::dtls::{
    DtlsClient, DtlsEvent, DtlsServer, SendError, SessionOptions, StatsSnapshot, Status,
    generate_self_signed,
};
use crate::core::events::{EventQueue, channel};

/// Secure UDP (DTLS 1.2) between game clients and a server. One node is either a server,
/// serving many clients on one UDP port, or a client of one server. All network work runs
/// on background threads; every signal is emitted on the main thread, during this node's
/// [method Node._process], spread over frames by the dispatch budget.
/// [codeblock]
/// # Server
/// var server := DTLSPeer.new()
/// add_child(server)
/// var id := DTLSPeer.generate_self_signed("localhost")
/// server.packet_received.connect(func(peer_id, data): server.send(peer_id, data))  # echo
/// server.start_server(4433, {"certificate": id.certificate, "private_key": id.private_key})
///
/// # Client
/// var client := DTLSPeer.new()
/// add_child(client)
/// client.peer_connected.connect(func(_id): client.send(1, "hello".to_utf8_buffer()))
/// client.connect_to_server("127.0.0.1", 4433, {"pinned_sha256": id.sha256_fingerprint})
/// [/codeblock]
/// Peer ids: on a server, clients are numbered from 2 upward and an id is never reused by
/// the same server; a client calls the server 1.
/// Packets are datagrams: each [method send] arrives whole or not at all, possibly out of
/// order, and one must fit [method get_max_payload].
/// The cipher suites are ECDHE-ECDSA-AES128-GCM-SHA256 (certificates, which must be ECDSA
/// P-256) and PSK-AES128-GCM-SHA256 (pre-shared keys); both interoperate with Godot's own
/// [PacketPeerDTLS] and [DTLSServer].
/// Removing the node from the tree or freeing it closes everything; nothing is delivered
/// afterwards. While the tree is paused, events wait unless [member Node.process_mode]
/// lets this node process.
#[derive(GodotClass)]
#[class(init, base = Node, rename = DTLSPeer)]
pub struct DtlsPeer {
    /// Most events (packets, connects, disconnects) delivered per frame; the rest wait for
    /// the next frame, in order.
    #[export(range = (1.0, 100000.0, or_greater))]
    #[init(val = 256)]
    dispatch_max_per_frame: i64,
    /// Microseconds per frame spent delivering events (handlers included) before the rest
    /// wait for the next frame. 0 means no time limit.
    #[export(range = (0.0, 100000.0, or_greater, suffix = "us"))]
    #[init(val = 2000)]
    dispatch_budget_usec: i64,
    core: Option<Core>,
    events: Option<EventQueue<DtlsEvent>>,
    /// The status as far as delivered signals go, so a script never sees CONNECTED
    /// before [signal peer_connected] ran.
    #[init(val = Status::Disconnected)]
    status: Status,
    /// Connected peers as far as delivered signals go.
    peers: BTreeSet<i32>,
    local_port: u16,
    /// Counters of the last session, kept readable after [method close].
    last_stats: StatsSnapshot,
    dispatched: u64,
    base: Base<Node>,
}

/// The running server or client behind the node.
enum Core {
    Server(DtlsServer),
    Client(DtlsClient),
}

impl Core {
    fn send(&self, id: i32, data: &[u8]) -> Result<(), SendError> {
        match self {
            Self::Server(s) => s.send(id, data),
            Self::Client(c) => c.send(id, data),
        }
    }

    fn broadcast(&self, data: &[u8]) -> Result<usize, SendError> {
        match self {
            Self::Server(s) => s.broadcast(data),
            Self::Client(c) => c.broadcast(data),
        }
    }

    fn max_payload(&self) -> usize {
        match self {
            Self::Server(s) => s.max_payload(),
            Self::Client(c) => c.max_payload(),
        }
    }

    fn stats(&self) -> StatsSnapshot {
        match self {
            Self::Server(s) => s.stats_snapshot(),
            Self::Client(c) => c.stats_snapshot(),
        }
    }
}

#[godot_api]
impl INode for DtlsPeer {
    fn ready(&mut self) {
        self.base_mut().set_process(true);
    }

    fn process(&mut self, _delta: f64) {
        self.dispatch();
        super::monitors::maybe_log();
    }

    fn exit_tree(&mut self) {
        self.close();
    }
}

#[godot_api]
impl DtlsPeer {
    /// Not started, or closed (by [method close], by the server, or by a clean
    /// disconnect).
    #[constant]
    const STATUS_DISCONNECTED: i64 = Status::Disconnected as i64;
    /// A client's handshake is under way.
    #[constant]
    const STATUS_HANDSHAKING: i64 = Status::Handshaking as i64;
    /// A client is connected, or a server is listening.
    #[constant]
    const STATUS_CONNECTED: i64 = Status::Connected as i64;
    /// A client could not connect, or its connection broke.
    #[constant]
    const STATUS_ERROR: i64 = Status::Error as i64;

    /// A handshake finished: [param id] can now send and receive. On a client, [param id]
    /// is always 1 (the server).
    #[signal]
    fn peer_connected(id: i64);

    /// [param id] is gone and nothing more arrives from it. [param reason] is a sentence
    /// for logs and UI, e.g. "the peer closed the connection" or "nothing was received
    /// within the idle timeout". Not emitted for peers dropped by [method close].
    #[signal]
    fn peer_disconnected(id: i64, reason: GString);

    /// One datagram from [param id], whole, as the peer passed it to [method send].
    #[signal]
    fn packet_received(id: i64, data: PackedByteArray);

    /// A client could not connect: the name did not resolve, nothing answered within
    /// [code]handshake_timeout[/code], the certificate, fingerprint or PSK did not match,
    /// or the server refused (e.g. full). [param reason] says which. The status is then
    /// [constant STATUS_ERROR].
    #[signal]
    fn connection_failed(reason: GString);

    /// Starts serving on UDP [param port] (0 picks a free port; see [method get_local_port]).
    /// [param options] must hold credentials, either
    /// [code]"certificate"[/code] and [code]"private_key"[/code] (PEM Strings, or an
    /// [X509Certificate] and a [CryptoKey]; ECDSA P-256, as [method generate_self_signed]
    /// makes), or [code]"psk_keys"[/code], a Dictionary from identity (String) to key
    /// (PackedByteArray, or hex String) with an optional [code]"psk_identity_hint"[/code].
    /// More keys, all optional:
    /// [code]"bind_address"[/code] ("*" = every IPv4 address, the default; or an IP such as
    /// "127.0.0.1" or "::"), [code]"max_clients"[/code] (32; further clients are refused
    /// with a fatal alert), [code]"max_pending_handshakes"[/code] (256),
    /// [code]"handshake_timeout"[/code] (10.0 s), [code]"idle_timeout"[/code] (15.0 s; a
    /// peer silent this long is dropped), [code]"keepalive_interval"[/code] (0 = off; sends
    /// an empty record after this much silence; only between DTLSPeer nodes, since Godot's
    /// [PacketPeerDTLS] drops a connection after a few empty records),
    /// [code]"mtu"[/code] (1200 bytes per datagram), [code]"send_queue"[/code] (256 packets
    /// per peer).
    /// Returns [constant OK], or an error with a message in the output:
    /// [constant ERR_INVALID_PARAMETER] for bad or unknown options,
    /// [constant ERR_CANT_CREATE] when the port cannot be bound,
    /// [constant ERR_ALREADY_IN_USE] when this node is already running (call [method close]).
    #[func]
    fn start_server(&mut self, port: i64, options: VarDictionary) -> Error {
        if let Err(code) = self.check_idle("start_server") {
            return code;
        }
        let Ok(port) = u16::try_from(port) else {
            godot_error!("DTLSPeer.start_server: the port must be 0 to 65535, got {port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        let setup = match server_setup(port, &options) {
            Ok(s) => s,
            Err(msg) => {
                godot_error!("DTLSPeer.start_server: {msg}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        // Checked apart from binding so a bad certificate and a busy port get different codes.
        if let Err(msg) = server_config(&setup.options) {
            godot_error!("DTLSPeer.start_server: {msg}");
            return Error::ERR_INVALID_PARAMETER;
        }
        // Whatever ended before (a failed client, say) is cleared for the new session.
        self.close();
        let (tx, rx) = channel();
        match DtlsServer::bind(setup.addr, setup.options, tx) {
            Ok(server) => {
                self.local_port = server.local_addr().port();
                self.core = Some(Core::Server(server));
                self.events = Some(rx);
                self.status = Status::Connected;
                self.last_stats = StatsSnapshot::default();
                Error::OK
            }
            Err(msg) => {
                godot_error!("DTLSPeer.start_server: {msg}");
                Error::ERR_CANT_CREATE
            }
        }
    }

    /// Starts connecting to [param host] (a name or IP) on UDP [param port] and returns at
    /// once; [signal peer_connected] (with id 1) or [signal connection_failed] follows.
    /// [param options] must say how to trust the server, with exactly one of:
    /// [code]"pinned_sha256"[/code] (the server certificate's SHA-256 fingerprint, as
    /// [method generate_self_signed] returns it; colons and case do not matter),
    /// [code]"ca_certificate"[/code] (PEM String or [X509Certificate] of the CA that signed
    /// the server's certificate; a self-signed certificate is its own CA) with an optional
    /// [code]"server_name"[/code] the certificate must be issued for (default: [param host]),
    /// [code]"psk"[/code] (PackedByteArray or hex String) with [code]"psk_identity"[/code],
    /// or [code]"insecure_skip_verify": true[/code] (encrypts without authenticating the
    /// server; for local tests only, and warned about).
    /// Optional: [code]"handshake_timeout"[/code], [code]"idle_timeout"[/code],
    /// [code]"keepalive_interval"[/code], [code]"mtu"[/code], [code]"send_queue"[/code], as
    /// in [method start_server].
    /// Returns [constant OK], [constant ERR_INVALID_PARAMETER] for bad or unknown options
    /// (with a message in the output), or [constant ERR_ALREADY_IN_USE] when this node is
    /// already running.
    #[func]
    fn connect_to_server(&mut self, host: GString, port: i64, options: VarDictionary) -> Error {
        if let Err(code) = self.check_idle("connect_to_server") {
            return code;
        }
        let host = host.to_string();
        if host.trim().is_empty() {
            godot_error!("DTLSPeer.connect_to_server: the host is empty");
            return Error::ERR_INVALID_PARAMETER;
        }
        let port = match u16::try_from(port) {
            Ok(p) if p != 0 => p,
            _ => {
                godot_error!("DTLSPeer.connect_to_server: the port must be 1 to 65535, got {port}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let setup = match client_setup(&host, &options).and_then(|s| {
            client_config(&s.options)?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(msg) => {
                godot_error!("DTLSPeer.connect_to_server: {msg}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        if setup.insecure {
            godot_warn!(
                "DTLSPeer.connect_to_server: insecure_skip_verify is on, so the connection to {host} is encrypted but the server is not authenticated; use \"pinned_sha256\" or \"ca_certificate\" outside local tests"
            );
        }
        self.close();
        let (tx, rx) = channel();
        match DtlsClient::connect(&host, port, setup.options, tx) {
            Ok(client) => {
                self.core = Some(Core::Client(client));
                self.events = Some(rx);
                self.status = Status::Handshaking;
                self.local_port = 0;
                self.last_stats = StatsSnapshot::default();
                Error::OK
            }
            Err(msg) => {
                godot_error!("DTLSPeer.connect_to_server: {msg}");
                Error::ERR_INVALID_PARAMETER
            }
        }
    }

    /// Queues one datagram for peer [param id] (1 = the server, on a client). Never blocks.
    /// Returns [constant OK]; [constant ERR_INVALID_PARAMETER] when [param data] is larger
    /// than [method get_max_payload] (nothing is sent, never truncated, and the output says
    /// so); [constant ERR_DOES_NOT_EXIST] when no connected peer has that id (it may just
    /// have left); [constant ERR_BUSY] when the peer's send queue is full (the packet is
    /// dropped and counted in [method get_stats]); [constant ERR_UNCONFIGURED] when not
    /// connected.
    #[func]
    fn send(&mut self, id: i64, data: PackedByteArray) -> Error {
        let Some(core) = &self.core else {
            return Error::ERR_UNCONFIGURED;
        };
        let Ok(id) = i32::try_from(id) else {
            return Error::ERR_DOES_NOT_EXIST;
        };
        match core.send(id, data.as_slice()) {
            Ok(()) => Error::OK,
            Err(e) => send_error("send", e),
        }
    }

    /// Queues one datagram for every connected peer (on a client: the server).
    /// Returns [constant OK] (also with no peers); [constant ERR_INVALID_PARAMETER] when
    /// [param data] is larger than [method get_max_payload]; [constant ERR_UNCONFIGURED]
    /// when not running. A peer whose send queue is full misses the packet, counted as
    /// [code]send_drops[/code] in [method get_stats].
    #[func]
    fn broadcast(&mut self, data: PackedByteArray) -> Error {
        let Some(core) = &self.core else {
            return Error::ERR_UNCONFIGURED;
        };
        match core.broadcast(data.as_slice()) {
            Ok(_) => Error::OK,
            Err(e) => send_error("broadcast", e),
        }
    }

    /// Ends the session with [param id] (close_notify is sent); [signal peer_disconnected]
    /// follows. On a client, [code]disconnect_peer(1)[/code] closes the connection but,
    /// unlike [method close], still reports it. Unknown ids are ignored.
    #[func]
    fn disconnect_peer(&mut self, id: i64) {
        let Ok(id) = i32::try_from(id) else {
            return;
        };
        match &self.core {
            Some(Core::Server(s)) => {
                s.disconnect_peer(id);
            }
            Some(Core::Client(c)) => {
                c.disconnect_peer(id);
            }
            None => {}
        }
    }

    /// Stops everything at once: peers get close_notify, the port is released, and
    /// events not delivered yet are discarded, so no signal follows (not even
    /// [signal peer_disconnected]). The status becomes [constant STATUS_DISCONNECTED].
    /// Safe to call at any time, also twice. Leaving the tree does the same.
    #[func]
    fn close(&mut self) {
        if let Some(core) = self.core.take() {
            self.last_stats = core.stats();
            // Dropping the handle closes it; the core silences its events before anything
            // else, so nothing of this session can be delivered later.
            drop(core);
        }
        self.events = None;
        self.peers.clear();
        self.status = Status::Disconnected;
        self.local_port = 0;
    }

    /// One of [constant STATUS_DISCONNECTED], [constant STATUS_HANDSHAKING],
    /// [constant STATUS_CONNECTED] (a client is connected, or a server is listening) and
    /// [constant STATUS_ERROR], as of the signals delivered so far.
    #[func]
    fn get_status(&self) -> i64 {
        self.status as i64
    }

    /// True while this node runs a server (from [method start_server] until [method close]).
    #[func]
    fn is_server(&self) -> bool {
        matches!(self.core, Some(Core::Server(_)))
    }

    /// The UDP port a server listens on (the one picked when started with port 0); 0 for
    /// a client or when not running.
    #[func]
    fn get_local_port(&self) -> i64 {
        i64::from(self.local_port)
    }

    /// Ids of the connected peers (those whose [signal peer_connected] was delivered and
    /// [signal peer_disconnected] not yet), in ascending order.
    #[func]
    fn get_peer_ids(&self) -> PackedInt32Array {
        self.peers.iter().copied().collect()
    }

    /// The address of peer [param id] as "ip:port" ("[ip]:port" for IPv6), or "" when no
    /// connected peer has that id.
    #[func]
    fn get_peer_address(&self, id: i64) -> GString {
        let Ok(id) = i32::try_from(id) else {
            return GString::new();
        };
        if !self.peers.contains(&id) {
            return GString::new();
        }
        let addr = match &self.core {
            Some(Core::Server(s)) => s.peer_address(id),
            Some(Core::Client(c)) => c.peer_address(id),
            None => None,
        };
        addr.map(|a| GString::from(a.to_string().as_str()))
            .unwrap_or_default()
    }

    /// Largest payload [method send] accepts, in bytes: the [code]mtu[/code] option minus
    /// the DTLS record overhead (37 bytes). Without a running session, the default's.
    #[func]
    fn get_max_payload(&self) -> i64 {
        let max = match &self.core {
            Some(core) => core.max_payload(),
            None => SessionOptions::default().max_payload(),
        };
        max as i64
    }

    /// Counters of the running (or last) session: [code]peers[/code],
    /// [code]pending_handshakes[/code], [code]handshakes_ok[/code],
    /// [code]handshakes_failed[/code], [code]packets_in[/code], [code]packets_out[/code],
    /// [code]bytes_in[/code], [code]bytes_out[/code] (payload bytes),
    /// [code]send_drops[/code] (packets dropped because a send queue was full),
    /// [code]dropped_datagrams[/code] (incoming datagrams thrown away: garbage, oversize,
    /// over limits), [code]waiting_dispatch[/code] (events received but not yet
    /// delivered) and [code]dispatched[/code] (events delivered by this node so far).
    /// `dropped_fragments`: handshake fragments dropped before reaching the DTLS layer
    /// because no valid handshake message could contain them, or because the peer sent
    /// more than any handshake needs (a hostile or broken sender; see ARCHITECTURE.md).
    /// `dispatch_drops`: received packets dropped because their peer sent faster than
    /// this node delivers them; each peer has its own queue (2,048 packets) and peers
    /// take turns, so only the fast sender loses packets.
    #[func]
    fn get_stats(&self) -> VarDictionary {
        let s = self.core.as_ref().map_or(self.last_stats, Core::stats);
        let waiting = self.events.as_ref().map_or(0, EventQueue::len);
        stats_dict([
            ("peers", s.peers),
            ("pending_handshakes", s.pending_handshakes),
            ("handshakes_ok", s.handshakes_ok),
            ("handshakes_failed", s.handshakes_failed),
            ("packets_in", s.packets_in),
            ("packets_out", s.packets_out),
            ("bytes_in", s.bytes_in),
            ("bytes_out", s.bytes_out),
            ("send_drops", s.send_drops),
            ("dropped_datagrams", s.dropped_datagrams),
            ("dropped_fragments", s.dropped_fragments),
            ("dispatch_drops", s.dispatch_drops),
            ("waiting_dispatch", waiting as u64),
            ("dispatched", self.dispatched),
        ])
    }

    /// Makes a self-signed ECDSA P-256 certificate for a server, for development or for
    /// pinning. Returns [code]{"certificate": PEM String, "private_key": PEM String,
    /// "sha256_fingerprint": "AB:CD:..."}[/code]. [param common_name] is the certificate's
    /// name; [param alt_names] are the DNS names or IPs it is valid for when a client
    /// verifies it with [code]"ca_certificate"[/code] (default: [param common_name]).
    /// Give clients the fingerprint ([code]"pinned_sha256"[/code]) or the certificate
    /// itself ([code]"ca_certificate"[/code]); keep the private key on the server. Returns
    /// an empty Dictionary, with an error in the output, if a name is unusable.
    #[func]
    fn generate_self_signed(
        #[opt(default = "localhost")] common_name: GString,
        #[opt(default = &PackedStringArray::new())] alt_names: PackedStringArray,
    ) -> VarDictionary {
        let common_name = common_name.to_string();
        let mut sans: Vec<String> = alt_names.as_slice().iter().map(|s| s.to_string()).collect();
        if sans.is_empty() {
            sans.push(common_name.clone());
        }
        let mut d = VarDictionary::new();
        match generate_self_signed(&common_name, &sans) {
            Ok(id) => {
                d.set("certificate", id.certificate_pem.as_str());
                d.set("private_key", id.private_key_pem.as_str());
                d.set("sha256_fingerprint", id.sha256_fingerprint.as_str());
            }
            Err(msg) => godot_error!("DTLSPeer.generate_self_signed: {msg}"),
        }
        d
    }
}

impl DtlsPeer {
    /// Refuses to start over a running session, so a stray second call cannot silently
    /// drop every connected peer.
    fn check_idle(&self, what: &str) -> Result<(), Error> {
        if self.core.is_some() && matches!(self.status, Status::Connected | Status::Handshaking) {
            godot_error!(
                "DTLSPeer.{what}: this node is already {}; call close() first",
                if self.is_server() {
                    "serving"
                } else {
                    "connected or connecting"
                }
            );
            return Err(Error::ERR_ALREADY_IN_USE);
        }
        // A failed or ended client session is simply replaced by the new one.
        Ok(())
    }

    /// Delivers events within the frame's budget, one at a time and through
    /// `self.signals()`, which releases this node's borrow for the handlers: they may call
    /// back into the node, even [method close] or a new [method connect_to_server].
    fn dispatch(&mut self) {
        let started = Instant::now();
        let max = self.dispatch_max_per_frame.max(1) as usize;
        let budget = Duration::from_micros(self.dispatch_budget_usec.max(0) as u64);
        let mut delivered = 0usize;
        while delivered < max && (budget.is_zero() || delivered == 0 || started.elapsed() < budget)
        {
            // Read the queue afresh each time: a handler may have closed or restarted.
            let Some(event) = self.events.as_ref().and_then(EventQueue::next) else {
                break;
            };
            delivered += 1;
            self.dispatched += 1;
            let client = matches!(self.core, Some(Core::Client(_)));
            match event {
                DtlsEvent::PeerConnected(id) => {
                    self.peers.insert(id);
                    if client {
                        self.status = Status::Connected;
                    }
                    self.signals().peer_connected().emit(i64::from(id));
                }
                DtlsEvent::PeerDisconnected {
                    id,
                    reason,
                    message,
                } => {
                    self.peers.remove(&id);
                    if client {
                        self.status = if reason == crate::core::dtls::DisconnectReason::Error {
                            Status::Error
                        } else {
                            Status::Disconnected
                        };
                    }
                    self.signals()
                        .peer_disconnected()
                        .emit(i64::from(id), message.as_str());
                }
                DtlsEvent::Packet { id, data } => {
                    let data = PackedByteArray::from(data.as_slice());
                    self.signals().packet_received().emit(i64::from(id), &data);
                }
                DtlsEvent::ConnectionFailed { reason } => {
                    self.status = Status::Error;
                    self.signals().connection_failed().emit(reason.as_str());
                }
            }
        }
    }
}

/// Turns a refused send into the documented code; only the caller's mistake (too large)
/// is printed, the rest are ordinary network weather the return value reports.
fn send_error(what: &str, e: SendError) -> Error {
    match e {
        SendError::TooLarge { .. } => {
            godot_error!(
                "DTLSPeer.{what}: {e}; split the data or raise the \"mtu\" option (get_max_payload() gives the limit)"
            );
            Error::ERR_INVALID_PARAMETER
        }
        SendError::UnknownPeer(_) => Error::ERR_DOES_NOT_EXIST,
        SendError::QueueFull => Error::ERR_BUSY,
        SendError::NotConnected => Error::ERR_UNCONFIGURED,
    }
}
