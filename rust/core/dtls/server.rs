//! The server handle a node owns: binds the socket, starts the demultiplexer, and offers
//! non-blocking send, broadcast and disconnect.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::super::events::EventSender;
use super::super::runtime;
use super::config::{ServerOptions, server_config};
use super::demux::{Demux, Enqueue};
use super::events::{DtlsEvent, PeerId, SendError};
use super::events_gate::Gate;
use super::port_release::PortRelease;
use super::stats::{Stats, StatsSnapshot};
use super::wire::Wire;

/// A DTLS server: many clients on one UDP socket. Dropping it (or `close`) stops every
/// task it started and silences its events, and frees its port before returning
/// (`port_release`).
pub struct DtlsServer {
    /// `None` only inside `drop`, which gives its reference up before waiting for the port.
    demux: Option<Arc<Demux>>,
    closed: CancellationToken,
    local_addr: SocketAddr,
    port: PortRelease,
}

impl DtlsServer {
    /// Binds `addr` and starts serving. Errors (bad PEM, port in use) are returned here,
    /// synchronously, so the node can report them from the call that caused them.
    pub fn bind(
        addr: SocketAddr,
        options: ServerOptions,
        events: EventSender<DtlsEvent>,
    ) -> Result<Self, String> {
        let config = server_config(&options)?;
        let handle = runtime::handle();
        let std_socket =
            std::net::UdpSocket::bind(addr).map_err(|e| format!("cannot bind {addr}: {e}"))?;
        std_socket
            .set_nonblocking(true)
            .map_err(|e| e.to_string())?;
        super::socket_buffers::enlarge(&std_socket);
        let socket = {
            let _guard = handle.enter();
            UdpSocket::from_std(std_socket).map_err(|e| e.to_string())?
        };
        let local_addr = socket.local_addr().map_err(|e| e.to_string())?;
        let closed = CancellationToken::new();
        let socket = Wire::new(socket, options.session.simulate.clone());
        let port = socket.release();
        let demux = Arc::new(Demux::new(
            Arc::new(socket),
            options,
            config,
            Gate::new(events, closed.clone()),
            closed.clone(),
            handle.clone(),
        ));
        handle.spawn(demux.clone().run());
        Ok(Self {
            demux: Some(demux),
            closed,
            local_addr,
            port,
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Largest payload `send` accepts: the MTU minus DTLS record overhead.
    pub fn max_payload(&self) -> usize {
        self.demux().options.session.max_payload()
    }

    /// Queues one datagram for a peer. Never blocks and never truncates.
    pub fn send(&self, id: PeerId, data: &[u8]) -> Result<(), SendError> {
        if self.closed.is_cancelled() {
            return Err(SendError::NotConnected);
        }
        let max = self.max_payload();
        if data.len() > max {
            return Err(SendError::TooLarge {
                len: data.len(),
                max,
            });
        }
        self.demux()
            .enqueue(id, data.to_vec())
            .map_err(|e| match e {
                Enqueue::Unknown => SendError::UnknownPeer(id),
                Enqueue::Full => SendError::QueueFull,
            })
    }

    /// Queues a datagram for every connected peer; returns how many accepted it (a peer
    /// with a full queue is skipped and counted as a drop).
    pub fn broadcast(&self, data: &[u8]) -> Result<usize, SendError> {
        let max = self.max_payload();
        if data.len() > max {
            return Err(SendError::TooLarge {
                len: data.len(),
                max,
            });
        }
        let ids = self.demux().peer_ids();
        Ok(ids
            .into_iter()
            .filter(|id| self.send(*id, data).is_ok())
            .count())
    }

    /// Ends one peer's session (close_notify is sent); its `PeerDisconnected` follows.
    pub fn disconnect_peer(&self, id: PeerId) -> bool {
        self.demux().disconnect(id)
    }

    /// Ends one peer's session quietly, without close_notify, so its `max_clients` slot is
    /// free at once; its `PeerDisconnected` (reason `Replaced`) follows. For a multiplayer
    /// server keeping the place of a peer that went silent (`core/multiplayer/resume.rs`):
    /// the peer comes back over a new handshake that needs a slot, and a close_notify
    /// reaching it on a path that came back would end the very peer being resumed.
    pub fn abandon_peer(&self, id: PeerId) -> bool {
        self.demux().abandon(id)
    }

    /// The address a connected peer sends from.
    pub fn peer_address(&self, id: PeerId) -> Option<SocketAddr> {
        self.demux().address(id)
    }

    /// Ids of all connected peers.
    pub fn peers(&self) -> Vec<PeerId> {
        self.demux().peer_ids()
    }

    /// Live counters.
    pub fn stats(&self) -> &Stats {
        &self.demux().stats
    }

    /// A copy of the counters.
    pub fn stats_snapshot(&self) -> StatsSnapshot {
        self.demux().stats.snapshot()
    }

    fn demux(&self) -> &Demux {
        self.demux
            .as_deref()
            .expect("the demultiplexer is kept until drop")
    }

    /// Stops serving: every session gets close_notify, no further events are sent.
    /// Dropping the server also waits until its port is free (`PortRelease::wait`).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Watches when this server's socket closes, for an owner that drops the server on
    /// another thread (the multiplayer endpoint's task) but must return from its own
    /// `close` with the port free.
    pub fn port_release(&self) -> PortRelease {
        self.port.clone()
    }

    /// True once `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}

impl Drop for DtlsServer {
    /// Closes, then returns once the port is free for a new `bind` (as ENet's close).
    fn drop(&mut self) {
        self.close();
        self.demux = None;
        self.port.wait();
    }
}
