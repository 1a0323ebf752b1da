//! The client handle: resolves, binds an ephemeral socket, handshakes within the
//! timeout and then runs one session with the server, which it calls peer 1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use webrtc_dtls::config::Config;

use super::super::events::EventSender;
use super::super::runtime;
use super::authenticate::RecordAuthenticator;
use super::config::{ClientOptions, client_config};
use super::conn::{ConnShared, PeerConn};
use super::datagram_queue::{self, QueueReceiver, QueueSender, Refused};
use super::events::{DisconnectReason, DtlsEvent, PeerId, SERVER_PEER_ID, SendError, Status};
use super::events_gate::Gate;
use super::handshake_filter::HandshakeFilter;
use super::inbound::{self, InboundLimits, InboundSender};
use super::record::MAX_DATAGRAM;
use super::session::{self, SessionContext, SessionControl};
use super::stats::{Stats, StatsSnapshot};
use super::wire::Wire;

struct Shared {
    status: AtomicU8,
    remote: Mutex<Option<SocketAddr>>,
    stats: Arc<Stats>,
    control: Arc<SessionControl>,
    events: Gate,
}

impl Shared {
    fn set_status(&self, status: Status) {
        self.status.store(status as u8, Ordering::Release);
    }
}

/// A DTLS client connection. Dropping it (or `close`) sends close_notify, stops its
/// tasks and silences its events.
pub struct DtlsClient {
    shared: Arc<Shared>,
    outbound: QueueSender,
    max_payload: usize,
    closed: CancellationToken,
}

impl DtlsClient {
    /// Starts connecting and returns at once in `Handshaking`. Invalid options are
    /// reported here; everything network-related arrives later as `ConnectionFailed`
    /// or `PeerConnected(1)`.
    pub fn connect(
        host: &str,
        port: u16,
        options: ClientOptions,
        events: EventSender<DtlsEvent>,
    ) -> Result<Self, String> {
        let config = client_config(&options)?;
        let closed = CancellationToken::new();
        let (out_tx, out_rx) = datagram_queue::queue(options.session.send_queue);
        let stats = super::stats::registered();
        let events = Gate::new(events, closed.clone())
            .for_peer(options.session.dispatch_queue, stats.clone());
        let shared = Arc::new(Shared {
            status: AtomicU8::new(Status::Handshaking as u8),
            remote: Mutex::new(None),
            stats,
            control: Arc::new(SessionControl::child_of(&closed)),
            events,
        });
        let handle = runtime::handle();
        let task = handle.spawn(drive(
            host.to_owned(),
            port,
            options.clone(),
            config,
            shared.clone(),
            out_rx,
        ));
        let supervised = shared.clone();
        handle.spawn(async move {
            if task.await.is_err() {
                // A panic inside webrtc-dtls ends this connection only.
                let connected = supervised.control.peer_id().is_some();
                supervised.set_status(Status::Error);
                let message = "internal error: the connection task panicked".to_owned();
                supervised.events.send(if connected {
                    DtlsEvent::PeerDisconnected {
                        id: SERVER_PEER_ID,
                        reason: DisconnectReason::Error,
                        message,
                    }
                } else {
                    DtlsEvent::ConnectionFailed { reason: message }
                });
            }
        });
        Ok(Self {
            shared,
            outbound: out_tx,
            max_payload: options.session.max_payload(),
            closed,
        })
    }

    /// Current state, as `PacketPeerDTLS` reports it.
    pub fn status(&self) -> Status {
        Status::from_u8(self.shared.status.load(Ordering::Acquire))
    }

    /// Largest payload `send` accepts.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Queues a datagram for the server (id 1). Never blocks and never truncates.
    pub fn send(&self, id: PeerId, data: &[u8]) -> Result<(), SendError> {
        if id != SERVER_PEER_ID {
            return Err(SendError::UnknownPeer(id));
        }
        if data.len() > self.max_payload {
            return Err(SendError::TooLarge {
                len: data.len(),
                max: self.max_payload,
            });
        }
        if self.status() != Status::Connected {
            return Err(SendError::NotConnected);
        }
        self.outbound.try_send(data.to_vec()).map_err(|e| match e {
            Refused::Full(_) => {
                Stats::inc(&self.shared.stats.send_drops);
                SendError::QueueFull
            }
            Refused::Closed(_) => SendError::NotConnected,
        })
    }

    /// Same as `send(1, data)`: a client has only the server to talk to.
    pub fn broadcast(&self, data: &[u8]) -> Result<usize, SendError> {
        self.send(SERVER_PEER_ID, data).map(|_| 1)
    }

    /// Closes the connection when `id` is the server's id.
    pub fn disconnect_peer(&self, id: PeerId) -> bool {
        if id != SERVER_PEER_ID {
            return false;
        }
        self.shared.control.stop(DisconnectReason::ClosedLocally);
        true
    }

    /// The server's address once resolved.
    pub fn peer_address(&self, id: PeerId) -> Option<SocketAddr> {
        if id != SERVER_PEER_ID {
            return None;
        }
        *self.shared.remote.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Live counters.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// A copy of the counters.
    pub fn stats_snapshot(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Sends close_notify and stops; no further events are sent.
    pub fn close(&self) {
        // Silence first: cancelling `closed` also stops the session (its token is a
        // child), and no event may slip out in between.
        self.closed.cancel();
        self.shared.control.stop(DisconnectReason::ClosedLocally);
        self.shared.set_status(Status::Disconnected);
    }
}

impl DtlsClient {
    /// Lets the session go without close_notify, for a multiplayer client that resumes it
    /// over a new session (`core/multiplayer/resume.rs`): a close_notify reaching the server
    /// on a path that came back would end the very peer being resumed. The reason is set
    /// before anything is cancelled, so the session sees `Replaced` and stays quiet.
    pub fn abandon(self) {
        self.shared.control.stop(DisconnectReason::Replaced);
    }
}

impl Drop for DtlsClient {
    fn drop(&mut self) {
        self.close();
    }
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    addrs.next().ok_or_else(|| format!("{host} has no address"))
}

async fn bind_for(remote: SocketAddr, local: Option<SocketAddr>) -> Result<UdpSocket, String> {
    let local = local.unwrap_or_else(|| {
        if remote.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        }
    });
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot bind {local}: {e}"))?;
    super::socket_buffers::enlarge(&socket);
    Ok(socket)
}

/// Reads the socket and feeds the DTLS layer, ignoring datagrams from anyone but the
/// server and anything over the size limit.
async fn pump(
    socket: Arc<Wire>,
    remote: SocketAddr,
    tx: InboundSender,
    stats: Arc<Stats>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut fragments = HandshakeFilter::for_client();
    loop {
        let received = tokio::select! {
            _ = stop.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) if from == remote && n <= MAX_DATAGRAM => {
                let Some(datagram) = fragments.admit(buf[..n].to_vec(), &stats) else {
                    continue;
                };
                if tx.try_send(datagram).is_err() {
                    Stats::inc(&stats.dropped_datagrams);
                }
            }
            Ok(_) => Stats::inc(&stats.dropped_datagrams),
            // ICMP unreachable surfaces here on connected-looking paths; the handshake
            // timeout decides when to give up, not one error.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}

async fn drive(
    host: String,
    port: u16,
    options: ClientOptions,
    config: Config,
    shared: Arc<Shared>,
    outbound: QueueReceiver,
) {
    let cancel = shared.control.cancel.clone();
    let limit = options.session.handshake_timeout;
    // One budget covers resolving and handshaking, so "fails within the handshake
    // timeout" holds even when DNS is slow.
    let started = tokio::time::Instant::now();
    let setup = async {
        let remote = timeout(limit, resolve(&host, port))
            .await
            .map_err(|_| format!("resolving {host} timed out"))??;
        let socket = bind_for(remote, options.bind_address).await?;
        let socket = Wire::new(socket, options.session.simulate.clone());
        Ok::<_, String>((remote, Arc::new(socket)))
    };
    let (remote, socket) = match setup.await {
        Ok(x) => x,
        Err(reason) => {
            shared.set_status(Status::Error);
            shared.events.send(DtlsEvent::ConnectionFailed { reason });
            return;
        }
    };
    *shared.remote.lock().unwrap_or_else(|p| p.into_inner()) = Some(remote);
    let limits = InboundLimits::new(options.session.inbound_queue, options.session.mtu);
    let (in_tx, in_rx) = inbound::queue(limits, shared.stats.clone());
    let pump_stop = cancel.child_token();
    tokio::spawn(pump(
        socket.clone(),
        remote,
        in_tx,
        shared.stats.clone(),
        pump_stop.clone(),
    ));
    // The pump must stop however this task ends, including by panic unwinding.
    let _pump_guard = pump_stop.drop_guard();
    let conn_shared = Arc::new(ConnShared::for_client());
    let conn = Arc::new(PeerConn::new(in_rx, socket, remote, conn_shared.clone()));
    let dtls = match session::handshake(
        conn,
        conn_shared.clone(),
        config,
        true,
        started + limit,
        limit,
        &cancel,
    )
    .await
    {
        Ok(dtls) => dtls,
        Err(reason) => {
            Stats::inc(&shared.stats.handshakes_failed);
            if !cancel.is_cancelled() {
                shared.set_status(Status::Error);
            }
            shared.events.send(DtlsEvent::ConnectionFailed { reason });
            return;
        }
    };
    if let Some(auth) = RecordAuthenticator::for_psk_session(&dtls, true).await {
        let _ = conn_shared.authenticator.set(auth);
    }
    conn_shared.mark_established();
    Stats::inc(&shared.stats.handshakes_ok);
    shared.stats.peers.store(1, Ordering::Relaxed);
    shared.control.id.store(SERVER_PEER_ID, Ordering::Release);
    shared.set_status(Status::Connected);
    shared.events.send(DtlsEvent::PeerConnected(SERVER_PEER_ID));
    let cx = SessionContext {
        id: SERVER_PEER_ID,
        control: shared.control.clone(),
        outbound,
        idle_timeout: options.session.idle_timeout,
        keepalive: options.session.keepalive_interval,
        events: shared.events.clone(),
        stats: shared.stats.clone(),
        confirm: None,
    };
    let (reason, message) = session::run(dtls, cx).await;
    shared.stats.peers.store(0, Ordering::Relaxed);
    shared.set_status(if reason == DisconnectReason::Error {
        Status::Error
    } else {
        Status::Disconnected
    });
    shared.events.send(DtlsEvent::PeerDisconnected {
        id: SERVER_PEER_ID,
        reason,
        message,
    });
}
