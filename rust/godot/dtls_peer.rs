//! `DTLSPeer`: secure UDP for a game, as a server for many clients or as a client.

use std::collections::BTreeSet;

use godot::classes::{CryptoKey, INode, Node, X509Certificate};
use godot::global::Error;
use godot::prelude::*;

use super::class_enums::DtlsStatus;
use super::dtls_options::{
    CLIENT_TRUST_KEYS, SERVER_CREDENTIAL_KEYS, client_setup, server_setup, with_defaults,
};
use super::frame_hook::FrameBudget;
use super::stats_dict::stats_dict;
use crate::core::dtls::config::{client_config, server_config};
use crate::core::dtls::{
    DtlsClient, DtlsEvent, DtlsServer, SendError, SessionOptions, StatsSnapshot, Status,
    generate_self_signed,
};
use crate::core::events::{EventQueue, channel};

/// Secure UDP (DTLS 1.2) between game clients and a server, as a node.
///
/// One node is either a server, serving many clients on one UDP port
/// ([method start_server]), or a client of one server ([method connect_to_server]). All
/// network work runs on background threads; every signal is emitted on the main thread at
/// the start of a frame, within [member dispatch_max_per_frame] and
/// [member dispatch_budget_usec]. Handlers may free this node or its parent, or call back
/// into it.
///
/// ```gdscript
/// # Server, e.g. in a headless dedicated server.
/// var keys := DTLSPeer.generate_self_signed("localhost")
/// var server := DTLSPeer.new()
/// add_child(server)
/// server.packet_received.connect(func(id, data): server.send(id, data))  # echo
/// server.start_server(4433, {"certificate": keys.certificate, "private_key": keys.private_key})
///
/// # Client, trusting exactly that certificate.
/// var client := DTLSPeer.new()
/// add_child(client)
/// client.peer_connected.connect(func(id): client.send(id, "hello".to_utf8_buffer()))
/// client.connect_to_server("127.0.0.1", 4433, {"pinned_sha256": keys.sha256_fingerprint})
/// ```
///
/// **Peer ids.** On a server, clients are numbered from 2 upward and the same server never
/// reuses an id; on a client the server is 1.
///
/// **Datagrams.** Each [method send] arrives whole or not at all, possibly out of order:
/// DTLS secures UDP but does not retransmit lost packets. One packet must fit
/// [method get_max_payload].
///
/// **Ciphers.** `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256` with certificates (ECDSA P-256,
/// as [method generate_self_signed] makes) and `TLS_PSK_WITH_AES_128_GCM_SHA256` with
/// pre-shared keys (RFC 5487). The certificate suite interoperates with Godot's own
/// [PacketPeerDTLS] and [DTLSServer]; Godot's DTLS has no pre-shared keys.
///
/// **Lifetime.** Removing the node from the tree or freeing it closes everything, like
/// [method close]; nothing is delivered afterwards. While the tree is paused, events wait
/// unless [member Node.process_mode] lets this node run.
#[derive(GodotClass)]
#[class(init, base = Node, rename = DTLSPeer)]
pub struct DtlsPeer {
    /// The server's certificate when [method start_server]'s options give no credentials
    /// (`"certificate"`, `"private_key"`, `"psk_keys"`), with [member private_key]: a `.crt`
    /// file Godot imported, or one made by [method generate_self_signed]. Unset by default.
    #[export_group(name = "Server")]
    #[export]
    certificate: Option<Gd<X509Certificate>>,
    /// The private key of [member certificate] (a `.key` file Godot imported). Keep it out of
    /// a client build: export it only with the dedicated server.
    #[export]
    private_key: Option<Gd<CryptoKey>>,
    /// The server's IP address when the options give no `"bind_address"`: e.g. `"127.0.0.1"`
    /// or `"::"`; empty or `"*"` listens on every IPv4 address.
    #[export(placeholder = "*")]
    bind_address: GString,
    /// Connected clients a server admits when the options give no `"max_clients"`; more
    /// are refused at once.
    #[export(range = (1.0, 10000.0, or_greater))]
    #[init(val = 32)]
    max_clients: i64,
    /// The server certificate's SHA-256 fingerprint (`"AB:CD:..."`, from
    /// [method generate_self_signed]) a client pins when [method connect_to_server]'s
    /// options say nothing about trust (`"pinned_sha256"`, `"ca_certificate"`, `"psk"`,
    /// `"insecure_skip_verify"`, ...).
    #[export_group(name = "Client")]
    #[export(placeholder = "AB:CD:...")]
    pinned_sha256: GString,
    /// A certificate authority a client trusts when the options say nothing about trust and
    /// [member pinned_sha256] is empty; the server's name must match the host dialled.
    #[export]
    ca_certificate: Option<Gd<X509Certificate>>,
    /// Seconds a handshake may take when the options give no `"handshake_timeout"`.
    #[export_group(name = "Session")]
    #[export(range = (0.1, 600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 10.0)]
    handshake_timeout: f64,
    /// Seconds without any packet from a peer before it is dropped, when the options give no
    /// `"idle_timeout"`.
    #[export(range = (0.1, 3600.0, 0.1, or_greater, suffix = "s"))]
    #[init(val = 15.0)]
    idle_timeout: f64,
    /// Most events (packets, connects, disconnects) delivered per frame;
    /// the rest wait for the next frame, in order.
    #[export_group(name = "Dispatch", prefix = "dispatch_")]
    #[export(range = (1.0, 100000.0, or_greater))]
    #[init(val = 256)]
    dispatch_max_per_frame: i64,
    /// Microseconds per frame spent delivering events, handlers included (0 means
    /// no time limit). The rest wait for the next frame, in order; at least one is
    /// delivered per frame.
    #[export(range = (0.0, 100000.0, or_greater))]
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
    /// Whether `SceneTree.process_frame` already calls [`DtlsPeer::deliver`] for this node.
    hooked: bool,
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
        // Delivery runs from the frame hook, not `_process`, but follows the processing
        // flag so `set_process(false)` holds results back as it would for `_process`.
        self.base_mut().set_process(true);
    }

    fn exit_tree(&mut self) {
        self.close();
    }
}

#[godot_api]
impl DtlsPeer {
    // The `DTLSPeer.Status` enum is registered by `class_enums` (gdext 0.5's `#[constant]`
    // has no enum name). These declarations only carry its help text: `cfg(any())` removes
    // them from the build, so gdext does not register them a second time, while its docs
    // generator still reads their `///` comments.
    /// Not started, or closed: by [method close], by the peer, or after an idle timeout.
    #[constant]
    #[cfg(any())]
    const STATUS_DISCONNECTED: i64 = 0;
    /// A client's handshake is under way; [signal peer_connected] or
    /// [signal connection_failed] follows.
    #[constant]
    #[cfg(any())]
    const STATUS_HANDSHAKING: i64 = 1;
    /// A client is connected, or a server is listening.
    #[constant]
    #[cfg(any())]
    const STATUS_CONNECTED: i64 = 2;
    /// A client could not connect, or its connection failed; [signal connection_failed] or
    /// [signal peer_disconnected] said why.
    #[constant]
    #[cfg(any())]
    const STATUS_ERROR: i64 = 3;

    /// Emitted when a handshake finished: [param id] can now send and receive. On a client,
    /// [param id] is always 1, the server.
    #[signal]
    fn peer_connected(id: i64);

    /// Emitted when [param id] is gone; nothing more arrives from it and [method send] to it
    /// fails.
    ///
    /// [param reason] is a sentence for logs and UI, e.g. `"the peer closed the connection"`,
    /// `"nothing was received within the idle timeout"` or
    /// `"the peer reconnected from the same address"`. Not emitted for peers dropped by
    /// [method close].
    #[signal]
    fn peer_disconnected(id: i64, reason: GString);

    /// Emitted for each datagram from [param id], whole, as the peer passed it to
    /// [method send].
    #[signal]
    fn packet_received(id: i64, data: PackedByteArray);

    /// Emitted on a client that could not connect: the name did not resolve, nothing answered
    /// within the `handshake_timeout` option, the certificate, fingerprint or pre-shared key
    /// did not match, or the server refused (e.g. it is full).
    ///
    /// [param reason] says which, in a sentence. [method get_status] is then
    /// [constant STATUS_ERROR].
    #[signal]
    fn connection_failed(reason: GString);

    /// Starts serving on UDP [param port] (0 picks a free port; [method get_local_port] tells
    /// which) and returns at once.
    ///
    /// A key [param options] leaves out takes the node's Inspector property of the same name
    /// ([member certificate] with [member private_key] when the options give no credentials,
    /// [member bind_address], [member max_clients], [member handshake_timeout],
    /// [member idle_timeout]), so a scene can set a server up without code.
    ///
    /// [param options] must hold the server's credentials, either
    /// `"certificate"` and `"private_key"` (PEM Strings, or an [X509Certificate] and a
    /// [CryptoKey]; ECDSA P-256, as [method generate_self_signed] makes, or RSA of 2048 to
    /// 4096 bits, as [method Crypto.generate_rsa] makes) or `"psk_keys"`, a
    /// Dictionary from identity (String) to key (PackedByteArray, or a String of hex digits),
    /// with an optional `"psk_identity_hint"` (String). More keys, all optional:
    ///
    /// - `"bind_address"`: an IP address such as `"127.0.0.1"` or `"::"`; `"*"` (the default)
    ///   is every IPv4 address.
    /// - `"max_clients"`: connected clients (default 32); further clients are refused with a
    ///   fatal alert and fail at once.
    /// - `"max_pending_handshakes"`: handshakes in progress (default 256); when full, the
    ///   oldest one whose client never echoed a cookie is dropped.
    /// - `"handshake_timeout"`: seconds a handshake may take (default 10.0).
    /// - `"idle_timeout"`: seconds without any packet from a peer before it is dropped
    ///   (default 15.0).
    /// - `"keepalive_interval"`: seconds of silence after which an empty record is sent
    ///   (default 0, off). Only for links between DTLSPeer nodes: Godot's [PacketPeerDTLS]
    ///   drops a connection after a few empty records.
    /// - `"mtu"`: bytes per datagram, 256 to 8192 (default 1200).
    /// - `"send_queue"`: packets waiting to be sent, per peer (default 1024).
    /// - `"inbound_queue"`: received datagrams waiting for decryption, per connected peer
    ///   (default 1024), so a burst sent in one frame arrives whole; memory per peer is at
    ///   most that many times the larger of `mtu` and 1500 bytes; drops are counted as
    ///   `inbound_drops` in [method get_stats]. Before this queue, the kernel's buffer of the
    ///   socket holds what arrives while netkit is not reading. netkit asks for 4 MiB, and
    ///   Linux caps that at `net.core.rmem_max`, which a dedicated server's host may need to
    ///   raise (`sysctl -w net.core.rmem_max=4194304`).
    /// - `"dispatch_queue"`: received packets waiting for this node to deliver them, per
    ///   peer (default 2048); peers take turns, so a peer sending faster than the game
    ///   reads loses only its own excess, counted as `dispatch_drops`.
    ///
    /// Returns [constant OK], or an error with the reason in the output:
    /// [constant ERR_INVALID_PARAMETER] for a bad port or bad, unknown or conflicting
    /// options; [constant ERR_CANT_CREATE] when the port cannot be bound;
    /// [constant ERR_ALREADY_IN_USE] when this node is already serving or connected (call
    /// [method close] first).
    #[func]
    fn start_server(&mut self, port: i64, options: VarDictionary) -> Error {
        if let Err(code) = self.check_idle("start_server") {
            return code;
        }
        let Ok(port) = u16::try_from(port) else {
            godot_error!("DTLSPeer.start_server: the port must be 0 to 65535, got {port}");
            return Error::ERR_INVALID_PARAMETER;
        };
        let options = with_defaults(&options, self.server_defaults(), SERVER_CREDENTIAL_KEYS);
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
        self.hook_frames();
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

    /// Starts connecting to [param host] (a name or an IP address) on UDP [param port] and
    /// returns at once; [signal peer_connected] (with id 1) or [signal connection_failed]
    /// follows.
    ///
    /// A key [param options] leaves out takes the node's Inspector property of the same name
    /// ([member pinned_sha256], else [member ca_certificate], when the options say nothing
    /// about trust; [member handshake_timeout], [member idle_timeout]).
    ///
    /// [param options] must say how to trust the server, with exactly one of:
    ///
    /// - `"pinned_sha256"`: the SHA-256 fingerprint of the server's certificate, as
    ///   [method generate_self_signed] returns it (colons and case do not matter).
    /// - `"ca_certificate"`: the PEM String or [X509Certificate] of the authority that signed
    ///   the server's certificate (a self-signed certificate is its own), with an optional
    ///   `"server_name"` the certificate must be issued for (default: [param host]).
    /// - `"psk"`: the pre-shared key (PackedByteArray, or a String of hex digits) with
    ///   `"psk_identity"`, the name the server looks it up by.
    /// - `"insecure_skip_verify": true`: encrypts without checking who the server is; for
    ///   local tests only, and warned about in the output.
    ///
    /// Optional, as in [method start_server]: `"handshake_timeout"` (which here covers name
    /// resolution too), `"idle_timeout"`, `"keepalive_interval"`, `"mtu"`, `"send_queue"`,
    /// `"inbound_queue"`, `"dispatch_queue"`.
    ///
    /// Returns [constant OK]; [constant ERR_INVALID_PARAMETER] for an empty host, a bad port
    /// or bad, unknown or conflicting options (the reason is in the output);
    /// [constant ERR_ALREADY_IN_USE] when this node is already serving or connected (call
    /// [method close] first).
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
        let options = with_defaults(&options, self.client_defaults(), CLIENT_TRUST_KEYS);
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
        self.hook_frames();
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

    /// Queues one datagram for peer [param id] (1, the server, on a client) and returns at
    /// once.
    ///
    /// Returns [constant OK]; [constant ERR_INVALID_PARAMETER] when [param data] is larger
    /// than [method get_max_payload] (nothing is sent, never a truncated packet, and the
    /// output says so); [constant ERR_DOES_NOT_EXIST] when no connected peer has that id (it
    /// may just have left); [constant ERR_BUSY] when the peer's send queue is full (the
    /// packet is dropped and counted as `send_drops` in [method get_stats]);
    /// [constant ERR_UNCONFIGURED] when the node is not running.
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

    /// Queues one datagram for every connected peer (on a client: the server) and returns at
    /// once.
    ///
    /// Returns [constant OK], also when no peer is connected; [constant ERR_INVALID_PARAMETER]
    /// when [param data] is larger than [method get_max_payload]; [constant ERR_UNCONFIGURED]
    /// when the node is not running. A peer whose send queue is full misses the packet,
    /// counted as `send_drops` in [method get_stats].
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

    /// Ends the session with [param id], sending it a `close_notify` alert; unknown ids are
    /// ignored.
    ///
    /// [signal peer_disconnected] follows. On a client, `disconnect_peer(1)` closes the
    /// connection and, unlike [method close], still reports it.
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

    /// Stops everything at once: peers are sent `close_notify`, the port is released, and
    /// events not delivered yet are discarded, so no signal follows (not even
    /// [signal peer_disconnected]).
    ///
    /// [method get_status] becomes [constant STATUS_DISCONNECTED]; [method get_stats] keeps
    /// the session's counters. Safe to call at any time, also twice. Leaving the tree does
    /// the same.
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

    /// Returns the node's state, one of [enum DTLSPeer.Status], as far as the signals
    /// delivered so far go: a script never sees [constant STATUS_CONNECTED] before its
    /// [signal peer_connected] handler ran.
    #[func]
    fn get_status(&self) -> DtlsStatus {
        DtlsStatus::from(self.status)
    }

    /// Returns `true` while this node runs a server, from [method start_server] until
    /// [method close].
    #[func]
    fn is_server(&self) -> bool {
        matches!(self.core, Some(Core::Server(_)))
    }

    /// Returns the UDP port a server listens on (the one picked when it was started with port
    /// 0); 0 on a client or when not running.
    #[func]
    fn get_local_port(&self) -> i64 {
        i64::from(self.local_port)
    }

    /// Returns the ids of the connected peers, in ascending order: those whose
    /// [signal peer_connected] was delivered and [signal peer_disconnected] not yet.
    #[func]
    fn get_peer_ids(&self) -> PackedInt32Array {
        self.peers.iter().copied().collect()
    }

    /// Returns the address of peer [param id] as `"ip:port"` (`"[ip]:port"` for IPv6), or
    /// `""` when no connected peer has that id.
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

    /// Returns the largest payload [method send] accepts, in bytes: the `"mtu"` option minus
    /// the DTLS record overhead (37 bytes with AES-GCM), 1163 by default. Without a running
    /// session, the default's.
    #[func]
    fn get_max_payload(&self) -> i64 {
        let max = match &self.core {
            Some(core) => core.max_payload(),
            None => SessionOptions::default().max_payload(),
        };
        max as i64
    }

    /// Returns the counters of the running (or last) session as a Dictionary of String to int:
    ///
    /// - `peers`, `pending_handshakes`: connected peers, and handshakes in progress.
    /// - `handshakes_ok`, `handshakes_failed`: finished handshakes.
    /// - `packets_in`, `packets_out`, `bytes_in`, `bytes_out`: datagrams and payload bytes.
    /// - `send_drops`: packets dropped because a peer's send queue was full.
    /// - `dropped_datagrams`: incoming datagrams thrown away (garbage, oversized, over a
    ///   limit); `inbound_drops`: of those, datagrams dropped because a peer's
    ///   `inbound_queue` was full.
    /// - `dropped_fragments`: handshake fragments dropped before reaching the DTLS layer
    ///   because no valid handshake message could contain them, or because the peer sent
    ///   more than any handshake needs (a hostile or broken sender).
    /// - `dispatch_drops`: received packets dropped because their peer sent faster than this
    ///   node delivers them; each peer has its own queue (the `"dispatch_queue"` option,
    ///   default 2048 packets) and peers take turns, so only the fast sender loses packets.
    /// - `waiting_dispatch`: events received but not delivered yet; `dispatched`: events
    ///   this node delivered so far.
    ///
    /// The same figures summed over every node are Performance monitors (`netkit/dtls_*`)
    /// and [method Netkit.get_stats].
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
            ("inbound_drops", s.inbound_drops),
            ("dropped_fragments", s.dropped_fragments),
            ("dispatch_drops", s.dispatch_drops),
            ("waiting_dispatch", waiting as u64),
            ("dispatched", self.dispatched),
        ])
    }

    /// Makes a self-signed ECDSA P-256 certificate and key for a server, for development or
    /// for pinning.
    ///
    /// Returns `{"certificate": String, "private_key": String, "sha256_fingerprint": String}`:
    /// the certificate and key as PEM, and the certificate's SHA-256 fingerprint as
    /// `"AB:CD:..."`. [param common_name] is the certificate's name; [param alt_names] are
    /// the DNS names or IP addresses it is valid for when a client checks it with
    /// `"ca_certificate"` (default: [param common_name]).
    ///
    /// Give clients the fingerprint (`"pinned_sha256"`) or the certificate itself
    /// (`"ca_certificate"`); keep the private key on the server. Returns an empty Dictionary,
    /// with the reason in the output, when a name is unusable.
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
    /// The Inspector properties `start_server` falls back on: unset credentials and an
    /// empty address are left out, so the options' own rules and errors still apply.
    fn server_defaults(&self) -> Vec<(&'static str, Variant)> {
        let mut out = vec![
            ("max_clients", self.max_clients.to_variant()),
            ("handshake_timeout", self.handshake_timeout.to_variant()),
            ("idle_timeout", self.idle_timeout.to_variant()),
        ];
        if let Some(certificate) = &self.certificate {
            out.push(("certificate", certificate.to_variant()));
        }
        if let Some(key) = &self.private_key {
            out.push(("private_key", key.to_variant()));
        }
        if !self.bind_address.is_empty() {
            out.push(("bind_address", self.bind_address.to_variant()));
        }
        out
    }

    /// The Inspector properties `connect_to_server` falls back on: a pinned fingerprint
    /// before a CA certificate, as only one way of trusting the server may be given.
    fn client_defaults(&self) -> Vec<(&'static str, Variant)> {
        let mut out = vec![
            ("handshake_timeout", self.handshake_timeout.to_variant()),
            ("idle_timeout", self.idle_timeout.to_variant()),
        ];
        if !self.pinned_sha256.is_empty() {
            out.push(("pinned_sha256", self.pinned_sha256.to_variant()));
        } else if let Some(ca) = &self.ca_certificate {
            out.push(("ca_certificate", ca.to_variant()));
        }
        out
    }

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
    /// Connects this node to the frame hook once (see `frame_hook`).
    fn hook_frames(&mut self) {
        if !self.hooked {
            self.hooked =
                super::frame_hook::connect(&self.to_gd(), "DTLSPeer.deliver", Self::deliver);
        }
    }

    /// Takes the next event under a short borrow and applies it to the node's state
    /// (peer set, status), so the caller can emit with no borrow held.
    fn take_next(&mut self) -> Option<DtlsEvent> {
        // Read the queue afresh each time: a handler may have closed or restarted.
        let event = self.events.as_ref().and_then(EventQueue::next)?;
        self.dispatched += 1;
        let client = matches!(self.core, Some(Core::Client(_)));
        match &event {
            DtlsEvent::PeerConnected(id) => {
                self.peers.insert(*id);
                if client {
                    self.status = Status::Connected;
                }
            }
            DtlsEvent::PeerDisconnected { id, reason, .. } => {
                self.peers.remove(id);
                if client {
                    self.status = if *reason == crate::core::dtls::DisconnectReason::Error {
                        Status::Error
                    } else {
                        Status::Disconnected
                    };
                }
            }
            DtlsEvent::Packet { .. } => {}
            DtlsEvent::ConnectionFailed { .. } => self.status = Status::Error,
        }
        Some(event)
    }

    /// Delivers events within the frame's budget, at the start of each frame, with no
    /// borrow of the node held while a signal is emitted: a handler may free this node or
    /// its parent, close it, or call back into it. The node is re-checked after every
    /// emission.
    fn deliver(this: Gd<Self>) {
        if !super::frame_hook::should_deliver(&this) {
            return;
        }
        let mut budget = {
            let peer = this.bind();
            FrameBudget::start(peer.dispatch_max_per_frame, peer.dispatch_budget_usec)
        };
        while budget.allows() {
            let Some(event) = this.clone().bind_mut().take_next() else {
                break;
            };
            budget.spend();
            let mut signals = this.signals();
            match event {
                DtlsEvent::PeerConnected(id) => signals.peer_connected().emit(i64::from(id)),
                DtlsEvent::PeerDisconnected { id, message, .. } => signals
                    .peer_disconnected()
                    .emit(i64::from(id), message.as_str()),
                DtlsEvent::Packet { id, data } => {
                    let data = PackedByteArray::from(data.as_slice());
                    signals.packet_received().emit(i64::from(id), &data);
                }
                DtlsEvent::ConnectionFailed { reason } => {
                    signals.connection_failed().emit(reason.as_str())
                }
            }
            if !this.is_instance_valid() {
                return;
            }
        }
    }
}

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
