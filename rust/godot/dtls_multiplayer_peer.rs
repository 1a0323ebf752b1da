//! `DTLSMultiplayerPeer`: Godot's high-level multiplayer over netkit's DTLS.
//!
//! `peer_connected` and `peer_disconnected` are emitted from inside `_poll`, in the order
//! the core reported them and in the same step as the state a script can read (status,
//! unique id, the peer set), as `ENetMultiplayerPeer::poll` does: SceneMultiplayer adds
//! or removes the peer before `_poll` returns, so an RPC sent the moment the status says
//! `CONNECTED` finds its peer. Emission goes through `base_mut()`, which gives up this
//! object's borrow for the duration, so handlers may call back into the peer (send, kick,
//! `close()`); and before the first emission of a poll the peer hands a strong reference of
//! itself to a deferred call, so a handler that drops every other reference (say, sets
//! `multiplayer_peer = null`) cannot free it while `_poll` is still running.
//!
//! A client whose server leaves emits `peer_disconnected(1)` and then closes (status
//! `DISCONNECTED`, id 0, as ENet), and SceneMultiplayer follows with `server_disconnected`,
//! or `peer_authentication_failed(1)` when it had not admitted the server yet.
//! `_is_server_relay_supported` is true: SceneMultiplayer wraps client-to-client packets
//! for the server, which forwards them, and a client's `put_packet` to anyone but the
//! server is refused with an error. Options are read in `dtls_multiplayer_peer/options.rs`.

use std::collections::{BTreeSet, VecDeque};

mod options;

use godot::classes::multiplayer_peer::{ConnectionStatus, TransferMode as GodotMode};
use godot::classes::{IMultiplayerPeerExtension, MultiplayerPeerExtension};
use godot::global::Error;
use godot::prelude::*;

use super::stats_dict::stats_dict;
use crate::core::dtls::config::{client_config, server_config};
use crate::core::multiplayer::{
    Delivery, Endpoint, EndpointConfig, MpEvent, SendRefused, Target, TransferMode,
};
use options::{multiplayer_client_setup, multiplayer_server_setup};

/// A packet waiting for SceneMultiplayer; its ticket frees the peer's queue share when it
/// is dropped.
struct Waiting {
    from: i32,
    channel: usize,
    mode: TransferMode,
    data: Vec<u8>,
    _ticket: Delivery,
}

/// A drop-in for [ENetMultiplayerPeer] whose UDP is encrypted and authenticated (DTLS 1.2).
///
/// Godot's high-level multiplayer (`@rpc`, [MultiplayerSpawner], [MultiplayerSynchronizer],
/// [SceneMultiplayer]'s authentication) runs on it unchanged. Use it like
/// [ENetMultiplayerPeer]:
///
/// ```gdscript
/// extends Node
///
/// const PORT := 7777
///
/// # Server (e.g. a headless dedicated server). Make the key pair once and
/// # keep it: a new one at every start changes the fingerprint clients pin.
/// func host() -> void:
///     var keys := DTLSPeer.generate_self_signed("play.example.com")
///     print("clients pin ", keys.sha256_fingerprint)
///     var peer := DTLSMultiplayerPeer.new()
///     peer.create_server(PORT, {
///         "certificate": keys.certificate,
///         "private_key": keys.private_key,
///     })
///     multiplayer.multiplayer_peer = peer
///
/// # Client, pinning the fingerprint the server printed (shipped with the game or
/// # fetched from your backend).
/// func join(fingerprint: String) -> void:
///     var peer := DTLSMultiplayerPeer.new()
///     peer.create_client("play.example.com", PORT, {"pinned_sha256": fingerprint})
///     multiplayer.multiplayer_peer = peer
/// ```
///
/// Every transfer mode works on channel 0 and on the custom channels 1 to the
/// `"channel_count"` option: [constant MultiplayerPeer.TRANSFER_MODE_RELIABLE] arrives
/// exactly once and in order per channel (retransmitted until acknowledged, split and
/// reassembled when large),
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED] may lose packets but never
/// delivers one older than a packet already delivered on its channel, and
/// [constant MultiplayerPeer.TRANSFER_MODE_UNRELIABLE] may lose or reorder. The server is peer 1; a
/// client picks a random id from 2 to 2147483647 in [method create_client], so
/// [method MultiplayerPeer.get_unique_id] returns it at once, and keeps it (a server that already
/// has that id refuses the client
/// with a reason). Clients reach each other through the server
/// ([member SceneMultiplayer.server_relay], on by default).
///
/// Reliability runs on netkit's background threads (acknowledgements, retransmission,
/// timers); the main thread only moves complete packets in and out when SceneMultiplayer
/// polls. Every buffer is bounded: a peer that stops acknowledging reliable data for
/// `"ack_timeout"`, or lets more than `"send_buffer"` bytes pile up (options of
/// [method create_server] and [method create_client]), is disconnected, and
/// [method get_last_disconnect_reason] says why.
///
/// Signals and state follow [ENetMultiplayerPeer]: the status turns
/// [constant MultiplayerPeer.CONNECTION_CONNECTED] in the same poll that emits
/// [signal MultiplayerPeer.peer_connected] for peer 1, so an RPC sent the moment the status
/// says so arrives; a client hears [signal MultiplayerPeer.peer_disconnected] for peer 1
/// before [signal MultiplayerAPI.server_disconnected] (or
/// [signal SceneMultiplayer.peer_authentication_failed] while it authenticates);
/// [method MultiplayerPeer.disconnect_peer] with `force` set to `true` drops the peer at once,
/// without a later [signal MultiplayerPeer.peer_disconnected].
/// A conformance suite compares both peers on the same scenarios. The intended
/// differences (`res://addons/netkit/docs/ENET_DIFFERENCES.md`):
///
/// - A server that never answers fails the client after `"handshake_timeout"` (10 s) with a
///   reason; ENet after about 30 s without one.
/// - [member MultiplayerPeer.refuse_new_connections] and a full server (`"max_clients"`)
///   refuse the client at once ([signal MultiplayerAPI.connection_failed] and a reason); ENet's
///   client first looks connected, or waits
///   about 30 s.
/// - A packet may be up to `"max_message_size"` (1 MiB by default, up to 64 MiB); ENet's
///   limit is 32 MiB. A larger one is refused with an error and the connection goes on.
/// - [method get_last_disconnect_reason] says why a connection ended (a kick, a refusal at
///   authentication, the server's close, a server gone silent, a protocol error); ENet
///   says nothing.
#[derive(GodotClass)]
#[class(init, tool, base = MultiplayerPeerExtension, rename = DTLSMultiplayerPeer)]
pub struct DtlsMultiplayerPeer {
    endpoint: Option<Endpoint>,
    server: bool,
    #[init(val = ConnectionStatus::DISCONNECTED)]
    status: ConnectionStatus,
    unique_id: i32,
    /// Peers SceneMultiplayer was told about and not yet told are gone (ENet's `peers`).
    peers: BTreeSet<i32>,
    /// Peers this side is disconnecting gracefully: still in `peers` until their
    /// `peer_disconnected`, but nothing more from them reaches SceneMultiplayer, which has
    /// already forgotten them when it asked (`SceneMultiplayer.disconnect_peer`).
    leaving: BTreeSet<i32>,
    incoming: VecDeque<Waiting>,
    transfer_channel: i32,
    #[init(val = GodotMode::RELIABLE)]
    transfer_mode: GodotMode,
    target_peer: i32,
    refusing: bool,
    channel_count: usize,
    max_message_size: usize,
    local_port: u16,
    last_reason: String,
    /// True once this poll handed a strong reference to a deferred call (see the module doc).
    kept_alive: bool,
    base: Base<MultiplayerPeerExtension>,
}

#[godot_api]
impl IMultiplayerPeerExtension for DtlsMultiplayerPeer {
    fn get_available_packet_count(&self) -> i32 {
        self.incoming.len().min(i32::MAX as usize) as i32
    }

    fn get_max_packet_size(&self) -> i32 {
        self.max_message_size.min(i32::MAX as usize) as i32
    }

    fn get_packet_script(&mut self) -> PackedByteArray {
        self.incoming
            .pop_front()
            .map(|w| PackedByteArray::from(w.data.as_slice()))
            .unwrap_or_default()
    }

    fn put_packet_script(&mut self, buffer: PackedByteArray) -> Error {
        self.put(buffer.as_slice())
    }

    fn get_packet_channel(&self) -> i32 {
        self.incoming.front().map_or(0, |w| w.channel as i32)
    }

    fn get_packet_mode(&self) -> GodotMode {
        self.incoming
            .front()
            .map_or(GodotMode::RELIABLE, |w| to_godot_mode(w.mode))
    }

    fn set_transfer_channel(&mut self, channel: i32) {
        self.transfer_channel = channel;
    }

    fn get_transfer_channel(&self) -> i32 {
        self.transfer_channel
    }

    fn set_transfer_mode(&mut self, mode: GodotMode) {
        self.transfer_mode = mode;
    }

    fn get_transfer_mode(&self) -> GodotMode {
        self.transfer_mode
    }

    fn set_target_peer(&mut self, peer: i32) {
        self.target_peer = peer;
    }

    fn get_packet_peer(&self) -> i32 {
        self.incoming.front().map_or(0, |w| w.from)
    }

    fn is_server(&self) -> bool {
        self.server && self.endpoint.is_some()
    }

    fn poll(&mut self) {
        self.kept_alive = false;
        // A handler may close this peer (the endpoint goes) or even start it again (a new
        // endpoint): each event is taken from whatever endpoint is current.
        while let Some(event) = self.endpoint.as_ref().and_then(Endpoint::next_event) {
            match event {
                MpEvent::PeerConnected(id) => {
                    // State first, then the signal, as ENet: SceneMultiplayer and the game
                    // see a peer that put_packet already accepts.
                    if !self.server {
                        self.status = ConnectionStatus::CONNECTED;
                    }
                    self.peers.insert(id);
                    self.emit_now("peer_connected", id);
                }
                MpEvent::PeerDisconnected { id, reason } => {
                    self.leaving.remove(&id);
                    // A peer kicked with `force` is gone already, without a signal (ENet).
                    if !self.peers.contains(&id) {
                        continue;
                    }
                    self.last_reason = format!("peer {id}: {reason}");
                    self.emit_now("peer_disconnected", id);
                    self.peers.remove(&id);
                    if !self.server && id == 1 {
                        // The server is gone: closed like ENet's client, after the signal;
                        // SceneMultiplayer then emits `server_disconnected`.
                        self.stop();
                    }
                }
                // A peer this side is disconnecting says nothing more to SceneMultiplayer.
                MpEvent::Packet { from, .. }
                    if !self.peers.contains(&from) || self.leaving.contains(&from) => {}
                MpEvent::Packet {
                    from,
                    channel,
                    mode,
                    data,
                    ticket,
                } => self.incoming.push_back(Waiting {
                    from,
                    channel,
                    mode,
                    data,
                    _ticket: ticket,
                }),
                // Resumption is invisible to SceneMultiplayer: only these two signals tell.
                MpEvent::SessionInterrupted(id) if self.peers.contains(&id) => {
                    self.emit_now("session_interrupted", id);
                }
                MpEvent::SessionResumed(id) if self.peers.contains(&id) => {
                    self.emit_now("session_resumed", id);
                }
                MpEvent::SessionInterrupted(_) | MpEvent::SessionResumed(_) => {}
                MpEvent::ConnectionFailed(reason) => {
                    self.last_reason = reason;
                    // SceneMultiplayer sees CONNECTING become DISCONNECTED and emits
                    // `connection_failed`.
                    self.stop();
                }
            }
        }
    }

    fn close(&mut self) {
        self.stop();
        // As ENet's `close()`: a peer started again accepts connections until told not to.
        self.set_refuse_new_connections(false);
    }

    fn disconnect_peer(&mut self, peer: i32, force: bool) {
        let Some(endpoint) = &self.endpoint else {
            return;
        };
        if !self.peers.contains(&peer) {
            return;
        }
        endpoint.disconnect_peer(peer, force);
        // From now on nothing from this peer reaches SceneMultiplayer, which may already
        // have forgotten it (SceneMultiplayer.disconnect_peer, an authentication refusal).
        self.incoming.retain(|w| w.from != peer);
        if !force {
            // `peer_disconnected` follows once its queued reliable data is delivered.
            self.leaving.insert(peer);
            return;
        }
        // Forced: gone at once and without a signal, as ENet's forced disconnect; a client
        // that forces the server away is closed.
        self.peers.remove(&peer);
        if !self.server {
            self.stop();
        }
    }

    fn get_unique_id(&self) -> i32 {
        self.unique_id
    }

    fn set_refuse_new_connections(&mut self, enable: bool) {
        self.refusing = enable;
        if let Some(endpoint) = &self.endpoint {
            endpoint.set_refuse_new_connections(enable);
        }
    }

    fn is_refusing_new_connections(&self) -> bool {
        self.refusing
    }

    fn is_server_relay_supported(&self) -> bool {
        true
    }

    fn get_connection_status(&self) -> ConnectionStatus {
        self.status
    }
}

#[godot_api]
impl DtlsMultiplayerPeer {
    /// Nothing has arrived from peer [param id] (on a client, 1: the server) for
    /// `"resume_after"` seconds, or its DTLS session failed, and `"resume_window"` is above 0
    /// on both sides: the peer keeps its id and its place while a client tries to come back
    /// over a new DTLS session (a new address, a path back after an outage). Reliable data
    /// sent meanwhile waits (up to `"send_buffer"`). [SceneMultiplayer] is not told: it sees
    /// no [signal MultiplayerPeer.peer_disconnected]. Emitted once, then
    /// [signal session_resumed], or [signal MultiplayerPeer.peer_disconnected] with a reason
    /// when the window runs out.
    #[signal]
    fn session_interrupted(id: i64);

    /// Peer [param id] is back after [signal session_interrupted], with the same id and
    /// without a new authentication; what either side had not acknowledged is sent again, so
    /// reliable messages arrive exactly once and in order.
    #[signal]
    fn session_resumed(id: i64);

    /// Starts a server on UDP [param port] (0 picks a free one, see [method get_local_port]).
    ///
    /// [param options] takes every [method DTLSPeer.start_server] option: credentials
    /// (`"certificate"` and `"private_key"`, or `"psk_keys"`), `"bind_address"`,
    /// `"max_clients"` (32), `"max_pending_handshakes"`, `"handshake_timeout"`,
    /// `"idle_timeout"` (15 s; a peer silent this long is dropped), `"keepalive_interval"`,
    /// `"mtu"` (here 1392 bytes by default, and at least 1249: the reliability layer's
    /// packets must fit one datagram) and `"send_queue"` (here 1024 datagrams). Plus the
    /// multiplayer keys, which must match on server and clients where noted:
    ///
    /// - `"channel_count"`: custom channels besides channel 0, 0 to 32 (4). Same on both sides.
    /// - `"max_message_size"`: largest packet in bytes (1048576); unreliable packets are
    ///   also limited to 291720 bytes.
    /// - `"send_buffer"`: reliable bytes per peer waiting to be sent or acknowledged
    ///   (4194304); beyond it the peer is disconnected.
    /// - `"receive_buffer"`: bytes per peer waiting for SceneMultiplayer (4194304); beyond
    ///   it the peer is held back.
    /// - `"ack_timeout"`: seconds with reliable data in flight and no acknowledgement before
    ///   the peer is disconnected (10.0).
    /// - `"resend_interval"`: seconds before an unacknowledged packet is sent again (0.1).
    /// - `"resume_window"`: seconds (float) a peer whose connection failed keeps its id and
    ///   place (server) or tries to come back over a new DTLS session (client), counted from
    ///   the last datagram that arrived; 0 to 3600 (0: off, as ENet). Resumption needs it
    ///   above 0 on both sides; 20 suits mobile games (a change from Wi-Fi to mobile data).
    ///   See [signal session_interrupted].
    /// - `"resume_after"`: seconds of silence after which a session counts as interrupted
    ///   and a client starts a new handshake (2.0), 0.2 to 60 and below `"resume_window"`;
    ///   each side then pings four times within it.
    ///
    /// Returns [constant OK]; [constant ERR_INVALID_PARAMETER] for bad or unknown options (the
    /// output says which); [constant ERR_CANT_CREATE] when the port cannot be bound;
    /// [constant ERR_ALREADY_IN_USE] while this peer runs (call [method MultiplayerPeer.close]
    /// first).
    #[func]
    fn create_server(&mut self, port: i64, options: VarDictionary) -> Error {
        if let Err(e) = self.check_idle("create_server") {
            return e;
        }
        let Ok(port) = u16::try_from(port) else {
            godot_error!(
                "DTLSMultiplayerPeer.create_server: the port must be 0 to 65535, got {port}"
            );
            return Error::ERR_INVALID_PARAMETER;
        };
        let (setup, config) = match multiplayer_server_setup(port, &options)
            .and_then(|s| server_config(&s.0.options).map(|_| s))
        {
            Ok(s) => s,
            Err(msg) => {
                godot_error!("DTLSMultiplayerPeer.create_server: {msg}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        match Endpoint::server(setup.addr, setup.options, config.clone()) {
            Ok(endpoint) => {
                let port = endpoint.local_addr().map_or(0, |a| a.port());
                self.start(endpoint, true, &config);
                self.local_port = port;
                Error::OK
            }
            Err(msg) => {
                godot_error!("DTLSMultiplayerPeer.create_server: {msg}");
                Error::ERR_CANT_CREATE
            }
        }
    }

    /// Starts connecting to [param address] (a name or IP) on UDP [param port] and returns at
    /// once in [constant MultiplayerPeer.CONNECTION_CONNECTING]; [SceneMultiplayer] then emits
    /// [signal MultiplayerAPI.connected_to_server] or [signal MultiplayerAPI.connection_failed].
    ///
    /// [param options] takes every [method DTLSPeer.connect_to_server] option and must say how to
    /// trust the server: `"pinned_sha256"`, `"ca_certificate"` (with optional
    /// `"server_name"`), `"psk"` with `"psk_identity"`, or `"insecure_skip_verify": true`
    /// (local tests only). The multiplayer keys are those of [method create_server];
    /// `"channel_count"` must equal the server's, or the connection fails with a reason.
    ///
    /// Returns [constant OK], [constant ERR_INVALID_PARAMETER] for bad options or address, or
    /// [constant ERR_ALREADY_IN_USE] while this peer runs.
    #[func]
    fn create_client(&mut self, address: GString, port: i64, options: VarDictionary) -> Error {
        if let Err(e) = self.check_idle("create_client") {
            return e;
        }
        let host = address.to_string();
        let port = match u16::try_from(port) {
            Ok(p) if p != 0 && !host.trim().is_empty() => p,
            _ => {
                godot_error!(
                    "DTLSMultiplayerPeer.create_client: give a host and a port from 1 to 65535, got \"{host}\" and {port}"
                );
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        let (setup, config) = match multiplayer_client_setup(&host, &options)
            .and_then(|s| client_config(&s.0.options).map(|_| s))
        {
            Ok(s) => s,
            Err(msg) => {
                godot_error!("DTLSMultiplayerPeer.create_client: {msg}");
                return Error::ERR_INVALID_PARAMETER;
            }
        };
        if setup.insecure {
            godot_warn!(
                "DTLSMultiplayerPeer.create_client: insecure_skip_verify is on, so {host} is not authenticated; use \"pinned_sha256\" or \"ca_certificate\" outside local tests"
            );
        }
        match Endpoint::client(&host, port, setup.options, config.clone()) {
            Ok(endpoint) => {
                self.start(endpoint, false, &config);
                Error::OK
            }
            Err(msg) => {
                godot_error!("DTLSMultiplayerPeer.create_client: {msg}");
                Error::ERR_INVALID_PARAMETER
            }
        }
    }

    /// Figures for peer [param id] (on a client, 1 is the server), refreshed at most every 0.1 s
    /// while the peer is active and at each ping (every second) while it is idle:
    /// `rtt_ms` (float, smoothed round-trip time in milliseconds, measured by netkit pings
    /// that each side sends every second, so an idle link carries a ping and its answer
    /// every 0.5 s on average, as ENet's; smoothed as RFC 6298 does), `packet_loss` (float,
    /// 0 to 1), `bytes_sent`, `bytes_received`, `packets_sent`, `packets_received`
    /// (datagrams and their payload bytes), `resent` (reliable messages sent again),
    /// `queued_reliable_bytes` (waiting to be sent or acknowledged), `address`
    /// ("ip:port", the new one after a resumption), `interruptions` and `resumptions` (times
    /// [signal session_interrupted] and [signal session_resumed] fired for the peer). Empty
    /// for an unknown peer.
    #[func]
    fn get_peer_stats(&self, id: i64) -> VarDictionary {
        let Some(stats) = i32::try_from(id)
            .ok()
            .and_then(|id| self.endpoint.as_ref()?.peer_stats(id))
        else {
            return VarDictionary::new();
        };
        let mut d = stats_dict([
            ("bytes_sent", stats.bytes_sent),
            ("bytes_received", stats.bytes_received),
            ("packets_sent", stats.packets_sent),
            ("packets_received", stats.packets_received),
            ("resent", stats.link.resent),
            (
                "queued_reliable_bytes",
                stats.link.queued_reliable_bytes as u64,
            ),
            ("interruptions", stats.interruptions),
            ("resumptions", stats.resumptions),
        ]);
        d.set("rtt_ms", stats.link.rtt * 1000.0);
        d.set("packet_loss", stats.link.packet_loss);
        d.set(
            "address",
            stats.address.map(|a| a.to_string()).unwrap_or_default(),
        );
        d
    }

    /// The UDP port a server listens on; 0 for a client or when closed.
    #[func]
    fn get_local_port(&self) -> i64 {
        i64::from(self.local_port)
    }

    /// Why the last peer left or the last connection attempt failed, as a sentence naming
    /// the peer. On a client it tells apart a kick ("the server disconnected this peer
    /// ... a kick"), a refusal at authentication ("... during authentication"), the
    /// server's [method MultiplayerPeer.close] or quit ("the server closed the connection"), a
    /// server gone
    /// silent ("the server went silent ... idle timeout"),
    /// [member MultiplayerPeer.refuse_new_connections], a
    /// `channel_count` or version mismatch and protocol violations; on a server, a client
    /// that closed, went silent or broke the protocol. Empty until something ended.
    #[func]
    fn get_last_disconnect_reason(&self) -> GString {
        self.last_reason.as_str().into()
    }
}

impl DtlsMultiplayerPeer {
    fn check_idle(&self, what: &str) -> Result<(), Error> {
        if self.endpoint.is_some() && self.status != ConnectionStatus::DISCONNECTED {
            godot_error!(
                "DTLSMultiplayerPeer.{what}: this peer is already running; call close() first"
            );
            return Err(Error::ERR_ALREADY_IN_USE);
        }
        Ok(())
    }

    fn start(&mut self, endpoint: Endpoint, server: bool, config: &EndpointConfig) {
        self.stop();
        endpoint.set_refuse_new_connections(self.refusing);
        self.server = server;
        self.unique_id = endpoint.unique_id();
        self.status = if server {
            ConnectionStatus::CONNECTED
        } else {
            ConnectionStatus::CONNECTING
        };
        self.channel_count = config.link.channel_count;
        self.max_message_size = config.link.max_message_size;
        self.last_reason.clear();
        self.endpoint = Some(endpoint);
    }

    /// Ends everything at once, without signals (the MultiplayerPeer contract for `close`);
    /// `get_last_disconnect_reason()` keeps its sentence.
    fn stop(&mut self) {
        self.endpoint = None;
        self.incoming.clear();
        self.peers.clear();
        self.leaving.clear();
        self.status = ConnectionStatus::DISCONNECTED;
        self.unique_id = 0;
        self.local_port = 0;
    }

    /// Emits `signal(id)` now, from inside `_poll`, with this object's borrow given up for
    /// the emission (`base_mut()`), so handlers may call back into it. The first emission
    /// of a poll first keeps the object alive until the end of the frame (a deferred call
    /// holds a strong reference), so no handler can free it under the running `_poll`.
    fn emit_now(&mut self, signal: &'static str, id: i32) {
        if !self.kept_alive {
            self.kept_alive = true;
            self.run_deferred_gd(|_this: Gd<Self>| {});
        }
        self.base_mut().emit_signal(signal, &[id.to_variant()]);
    }

    fn put(&mut self, data: &[u8]) -> Error {
        let Some(endpoint) = &self.endpoint else {
            return Error::ERR_UNCONFIGURED;
        };
        if self.status != ConnectionStatus::CONNECTED {
            return Error::ERR_UNCONFIGURED;
        }
        let channel = self.transfer_channel;
        if channel < 0 || channel as usize > self.channel_count {
            godot_error!(
                "DTLSMultiplayerPeer: channel {channel} does not exist; this peer has channels 0 to {} (option \"channel_count\")",
                self.channel_count
            );
            return Error::ERR_INVALID_PARAMETER;
        }
        let mode = match self.transfer_mode {
            GodotMode::UNRELIABLE => TransferMode::Unreliable,
            GodotMode::UNRELIABLE_ORDERED => TransferMode::UnreliableOrdered,
            _ => TransferMode::Reliable,
        };
        let target = Target::from_godot(self.target_peer);
        if !self.server {
            match target {
                Target::Peer(1) | Target::All | Target::AllBut(_) => {}
                Target::Peer(other) => {
                    godot_error!(
                        "DTLSMultiplayerPeer: a client sends only to the server (1), not to peer {other}; SceneMultiplayer relays through the server"
                    );
                    return Error::ERR_INVALID_PARAMETER;
                }
            }
            if target == Target::AllBut(1) {
                return Error::OK;
            }
        } else if let Target::Peer(id) = target
            && !self.peers.contains(&id)
        {
            // It may have left a moment ago; SceneMultiplayer checks its own peer list.
            return Error::ERR_DOES_NOT_EXIST;
        }
        match endpoint.send(target, channel as usize, mode, data.to_vec()) {
            Ok(()) => Error::OK,
            Err(SendRefused::TooLarge { limit }) => {
                godot_error!(
                    "DTLSMultiplayerPeer: a packet of {} bytes exceeds the {limit}-byte limit for its transfer mode (option \"max_message_size\")",
                    data.len()
                );
                Error::ERR_INVALID_PARAMETER
            }
            Err(SendRefused::Busy) => Error::ERR_BUSY,
            Err(SendRefused::Closed) => Error::ERR_UNCONFIGURED,
        }
    }
}

fn to_godot_mode(mode: TransferMode) -> GodotMode {
    match mode {
        TransferMode::Unreliable => GodotMode::UNRELIABLE,
        TransferMode::UnreliableOrdered => GodotMode::UNRELIABLE_ORDERED,
        TransferMode::Reliable => GodotMode::RELIABLE,
    }
}
