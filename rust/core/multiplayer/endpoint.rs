//! One multiplayer endpoint (a server with its clients, or a client): a tokio task that owns
//! the DTLS server or client and a [`Link`] per session, and the handle the node keeps.
//!
//! The node talks to the task through a command channel and hears back through an event
//! queue; each packet handed to the main thread carries a [`Delivery`] ticket that keeps
//! its peer's share of that queue counted until the node drops it, so the queue is bounded
//! per peer in bytes and packets. When a peer's share is full the task stops taking that
//! peer's reliable messages out of renet, the window stops advancing, and the sender holds
//! back: nothing grows, nothing reliable is dropped.
//!
//! Wake-ups: the task wakes on every command, on every DTLS event (the DTLS core's event
//! queue notifies a `tokio::sync::Notify`, `EventQueue::wake_on_event`) and on one timer,
//! the earliest time any link is due (`next_due`). A binary heap of (due time, session)
//! holds one live entry per session, and a step services only the sessions that had
//! activity (a datagram, a command) or are due. With no tick, no wake-up may be lost:
//! `wake_on_event` notifies at once for a non-empty queue, since events the DTLS side
//! queued before the task first ran (a full server's refusal comes back within a
//! millisecond) would otherwise stay unread and leave such a client `CONNECTING`.
//!
//! Each [`Delivery`] counts against its peer's `receive_buffer` (4 MiB) and 65,536 packets.
//! Unreliable packets beyond the share are dropped, as unreliable packets may be; reliable
//! ones stay in renet.
//!
//! Joining (protocol 3): after the DTLS handshake the client sends `Join{id, channel_count,
//! version}`; the server's answer is the pure function `admission`: a version or
//! channel-count mismatch, `refuse_new_connections`, or an id below 2 or already connected
//! is refused with a `Bye` naming why; otherwise `Welcome{id, channel_count, version}`. The
//! client checks the welcome too (an older server welcomes without a join), answers `Ready`
//! and reports the server connected; the server reports the client at `Ready` or its first
//! data, whichever comes first (different renet channels), and never sends it data before.
//! A session that does not complete the join within 10 s of its handshake ends. Peer
//! statistics (`get_peer_stats`) are refreshed when the endpoint services the peer, at most
//! every 100 ms and at least at each ping, and published at once when a peer is reported
//! connected.
//!
//! Resumption (`resume.rs`, with `resume_window` above 0 on both sides): a session keeps
//! its `Link` when its DTLS session fails. A peer silent for `resume_after` is reported
//! interrupted and its link is not flushed; a client then lets its DTLS client go without
//! close_notify and dials the same server with the same options, with a new event queue (so
//! nothing of the old session arrives), and presents `Resume`; the server's `verdict` moves
//! the link to the new DTLS session id (`rebind`). A server keeps a link whose DTLS session
//! ended (`detached`, at most `max_clients` of them) until the window runs out, and lets
//! the DTLS session of a peer silent for `resume_after` go quietly (`release_slot`), so the
//! client's new handshake finds a slot on a full server.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::super::dtls::{
    ClientOptions, DisconnectReason, DtlsClient, DtlsEvent, DtlsServer, PeerId, PortRelease,
    SERVER_PEER_ID, ServerOptions,
};
use super::super::events::{EventQueue, EventSender, channel};
use super::super::metrics::{self, MetricSource, Totals};
use super::super::runtime;
use super::control::{Control, PROTOCOL_VERSION};
use super::farewell::{Farewell, Side, describe_dtls_end};
use super::layout::{MAX_RENET_PACKET, TransferMode};
use super::link::{Incoming, Link, LinkConfig, LinkStats, PingRole, QueueError, Room};
use super::resume::{self, Opening, Place, RESUME_REPEAT, RETRY_AFTER, Secret, Silence, Verdict};
use super::scene_auth::AuthWatch;

/// Everything an endpoint needs besides the DTLS options.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// The reliability layer's limits.
    pub link: LinkConfig,
    /// Bytes per peer waiting for the main thread before the peer is held back.
    pub receive_buffer: usize,
    /// Packets per peer waiting for the main thread before the peer is held back.
    pub receive_packets: usize,
    /// How long a peer whose session failed keeps its place (server) or tries to come back
    /// (client), counted from the last datagram that decrypted; zero (the default) turns
    /// resumption off (`resume.rs`).
    pub resume_window: Duration,
    /// Silence after which a session counts as interrupted: the client starts a new
    /// handshake, both sides report it. The link pings four times within it.
    pub resume_after: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            link: LinkConfig::default(),
            receive_buffer: 4 << 20,
            receive_packets: 65_536,
            resume_window: Duration::ZERO,
            resume_after: DEFAULT_RESUME_AFTER,
        }
    }
}

/// `resume_after` unless given: four pings of a link (every 0.5 s with resumption on).
pub const DEFAULT_RESUME_AFTER: Duration = Duration::from_secs(2);

impl EndpointConfig {
    fn resumes(&self) -> bool {
        !self.resume_window.is_zero()
    }
}

/// Largest DTLS payload renet may need, so the `mtu` option must leave at least this much
/// after DTLS overhead.
pub const MIN_PAYLOAD: usize = MAX_RENET_PACKET;

/// Keeps one packet counted against its peer's receive queue until dropped.
#[derive(Debug)]
pub struct Delivery {
    usage: Arc<Usage>,
    len: usize,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.usage.bytes.fetch_sub(self.len, Ordering::AcqRel);
        self.usage.packets.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
struct Usage {
    bytes: AtomicUsize,
    packets: AtomicUsize,
}

/// What the node turns into MultiplayerPeer state and signals.
#[derive(Debug)]
pub enum MpEvent {
    /// A peer joined: on a server a client the server welcomed; on a client the server (1),
    /// once it accepted the client's id.
    PeerConnected(i32),
    /// A peer left; `reason` is a sentence.
    PeerDisconnected {
        /// The Godot peer id.
        id: i32,
        /// Why, for logs.
        reason: String,
    },
    /// One complete packet.
    Packet {
        /// Sender (1 on a client).
        from: i32,
        /// Godot channel.
        channel: usize,
        /// How it was sent.
        mode: TransferMode,
        /// The bytes.
        data: Vec<u8>,
        /// Frees the peer's queue share when dropped.
        ticket: Delivery,
    },
    /// A client could not join (DTLS failure, refusal, or a configuration mismatch).
    ConnectionFailed(String),
    /// Nothing arrived from this connected peer for `resume_after` (or its DTLS session
    /// failed): it may come back within `resume_window`. Only with resumption on.
    SessionInterrupted(i32),
    /// An interrupted peer is back (over a new DTLS session, or the path recovered); what
    /// was not acknowledged is being sent again.
    SessionResumed(i32),
}

/// Per-peer figures the node shows in `get_peer_stats`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerStats {
    /// Round-trip time and loss estimates and queued reliable bytes.
    pub link: LinkStats,
    /// DTLS payload bytes sent to this peer.
    pub bytes_sent: u64,
    /// DTLS payload bytes received from this peer.
    pub bytes_received: u64,
    /// Datagrams sent to this peer.
    pub packets_sent: u64,
    /// Datagrams received from this peer.
    pub packets_received: u64,
    /// The peer's address.
    pub address: Option<SocketAddr>,
    /// Times the session was interrupted (`MpEvent::SessionInterrupted`).
    pub interruptions: u64,
    /// Times it resumed (`MpEvent::SessionResumed`).
    pub resumptions: u64,
}

/// Who gets a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every connected peer.
    All,
    /// One peer.
    Peer(i32),
    /// Every connected peer but this one.
    AllBut(i32),
}

impl Target {
    /// Godot's convention: 0 is everyone, a negative id is everyone but that peer.
    pub fn from_godot(id: i32) -> Self {
        match id {
            0 => Self::All,
            id if id < 0 => Self::AllBut(id.saturating_neg()),
            id => Self::Peer(id),
        }
    }
}

enum Command {
    Send {
        target: Target,
        channel: usize,
        mode: TransferMode,
        data: Vec<u8>,
    },
    Disconnect {
        id: i32,
        force: bool,
    },
}

/// One endpoint's figures for the Performance monitors and the headless stats log.
#[derive(Debug, Default)]
struct Metrics {
    peers: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    resent: AtomicU64,
}

impl MetricSource for Metrics {
    fn add_to(&self, totals: &mut Totals) {
        totals.mp_peers += self.peers.load(Ordering::Relaxed);
        totals.mp_bytes_in += self.bytes_in.load(Ordering::Relaxed);
        totals.mp_bytes_out += self.bytes_out.load(Ordering::Relaxed);
        totals.mp_resent += self.resent.load(Ordering::Relaxed);
    }
}

struct Shared {
    stats: Mutex<HashMap<i32, PeerStats>>,
    metrics: Arc<Metrics>,
    refuse: AtomicBool,
    unique_id: AtomicI32,
    command_bytes: AtomicUsize,
}

/// The node's handle. Dropping it (or `close`) ends every session at once.
pub struct Endpoint {
    commands: mpsc::UnboundedSender<Command>,
    events: EventQueue<MpEvent>,
    shared: Arc<Shared>,
    closed: CancellationToken,
    local_addr: Option<SocketAddr>,
    max_message_size: usize,
    /// A server's socket, which the task closes: dropping the endpoint waits for it.
    port: Option<PortRelease>,
}

/// Bytes of commands that may wait for the task, so a stalled runtime cannot make the
/// command channel grow without bound.
const MAX_COMMAND_BYTES: usize = 64 << 20;
/// A peer whose share of the receive queue was full is offered its held-back messages again
/// this often (the main thread frees the share by reading; nothing wakes the task then).
const HELD_RETRY: Duration = Duration::from_millis(5);
/// A peer's statistics for the node are refreshed at most this often, when it is serviced.
const STATS_INTERVAL: Duration = Duration::from_millis(100);

impl Endpoint {
    /// Starts a server on `addr`. Errors (bad credentials, port in use) come back here.
    pub fn server(
        addr: SocketAddr,
        options: ServerOptions,
        config: EndpointConfig,
    ) -> Result<Self, String> {
        check_payload(options.session.max_payload())?;
        let (tx, rx) = channel();
        let places = options.max_clients;
        let server = DtlsServer::bind(addr, options, tx)?;
        let local_addr = Some(server.local_addr());
        Ok(Self::start(
            Transport::Server(server),
            rx,
            config,
            local_addr,
            SERVER_PEER_ID,
            None,
            places,
        ))
    }

    /// Starts connecting to `host:port` as the random peer id `unique_id()` returns at once
    /// (2 to 2147483647, as ENet's client chooses its own); `PeerConnected(1)` or
    /// `ConnectionFailed` follow.
    pub fn client(
        host: &str,
        port: u16,
        options: ClientOptions,
        config: EndpointConfig,
    ) -> Result<Self, String> {
        let id = rand::rng().random_range(2..=i32::MAX);
        Self::client_with_id(host, port, options, config, id)
    }

    /// `client` as peer `id` instead of a random one: for tests of the server's rule that
    /// an id below 2 or already connected is refused.
    pub fn client_with_id(
        host: &str,
        port: u16,
        options: ClientOptions,
        config: EndpointConfig,
        id: i32,
    ) -> Result<Self, String> {
        check_payload(options.session.max_payload())?;
        let (tx, rx) = channel();
        let client = DtlsClient::connect(host, port, options.clone(), tx)?;
        let dial = Dial {
            host: host.to_owned(),
            port,
            options,
        };
        Ok(Self::start(
            Transport::Client(client),
            rx,
            config,
            None,
            id,
            Some(dial),
            0,
        ))
    }

    fn start(
        transport: Transport,
        dtls_events: EventQueue<DtlsEvent>,
        mut config: EndpointConfig,
        local_addr: Option<SocketAddr>,
        unique_id: i32,
        dial: Option<Dial>,
        places: usize,
    ) -> Self {
        if config.resumes() {
            // Four pings within `resume_after`: a live peer is never silent that long.
            let quarter = config.resume_after / 4;
            config.link.ping_interval = config.link.ping_interval.min(quarter);
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = channel();
        let endpoint_metrics = Arc::new(Metrics::default());
        let source: Arc<dyn MetricSource> = endpoint_metrics.clone();
        metrics::register(Arc::downgrade(&source));
        let shared = Arc::new(Shared {
            stats: Mutex::new(HashMap::new()),
            metrics: endpoint_metrics,
            refuse: AtomicBool::new(false),
            unique_id: AtomicI32::new(unique_id),
            command_bytes: AtomicUsize::new(0),
        });
        let closed = CancellationToken::new();
        let max_message_size = config.link.max_message_size;
        let port = match &transport {
            Transport::Server(server) => Some(server.port_release()),
            Transport::Client(_) => None,
        };
        let task = Task {
            transport,
            dtls_events,
            links: HashMap::new(),
            by_godot: HashMap::new(),
            config,
            started: Instant::now(),
            out: ev_tx,
            shared: shared.clone(),
            closed: closed.clone(),
            touched: Vec::new(),
            timers: BinaryHeap::new(),
            wake: Arc::new(Notify::new()),
            dial,
            rejoin: None,
            rejoin_failure: None,
            places,
        };
        runtime::handle().spawn(task.run(cmd_rx));
        Self {
            commands: cmd_tx,
            events: ev_rx,
            shared,
            closed,
            local_addr,
            max_message_size,
            port,
        }
    }

    /// Queues a packet. Refused at once when it is larger than `max_message_size` (or the
    /// unreliable limit) or when the task is far behind; everything else is decided in the
    /// task (a peer whose reliable send buffer overflows is disconnected with a reason).
    pub fn send(
        &self,
        target: Target,
        channel: usize,
        mode: TransferMode,
        data: Vec<u8>,
    ) -> Result<(), SendRefused> {
        if self.closed.is_cancelled() {
            return Err(SendRefused::Closed);
        }
        let limit = match mode {
            TransferMode::Reliable => self.max_message_size,
            _ => self
                .max_message_size
                .min(super::framing::MAX_UNRELIABLE_PACKET),
        };
        if data.len() > limit {
            return Err(SendRefused::TooLarge { limit });
        }
        let queued = self
            .shared
            .command_bytes
            .fetch_add(data.len(), Ordering::AcqRel);
        if queued + data.len() > MAX_COMMAND_BYTES {
            self.shared
                .command_bytes
                .fetch_sub(data.len(), Ordering::AcqRel);
            return Err(SendRefused::Busy);
        }
        self.commands
            .send(Command::Send {
                target,
                channel,
                mode,
                data,
            })
            .map_err(|_| SendRefused::Closed)
    }

    /// Ends one peer's session. `force` ends it at once; otherwise reliable data already
    /// queued for it is delivered first (bounded by the ack timeout).
    pub fn disconnect_peer(&self, id: i32, force: bool) {
        let _ = self.commands.send(Command::Disconnect { id, force });
    }

    /// Servers: refuse (close at once) new sessions while set.
    pub fn set_refuse_new_connections(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::Release);
    }

    /// The next event, if any.
    pub fn next_event(&self) -> Option<MpEvent> {
        self.events.next()
    }

    /// Events waiting.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Figures for one peer, refreshed when the task services it: at most every 100 ms,
    /// and at least at each of its pings (every second) on an idle link.
    pub fn peer_stats(&self, id: i32) -> Option<PeerStats> {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// The server's bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// 1 on a server; on a client the id it chose when it was created, which the server
    /// takes or refuses (`Farewell::IdTaken`), never changes.
    pub fn unique_id(&self) -> i32 {
        self.shared.unique_id.load(Ordering::Acquire)
    }

    /// Ends everything; no event follows.
    pub fn close(&self) {
        self.closed.cancel();
    }
}

impl Drop for Endpoint {
    /// Closes; a server returns once its port is free for a new `bind`, as ENet's close
    /// (`PortRelease`).
    fn drop(&mut self) {
        self.close();
        if let Some(port) = &self.port {
            port.wait();
        }
    }
}

/// Why `send` refused a packet on the spot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendRefused {
    /// Larger than the limit for its transfer mode.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The endpoint is closed.
    Closed,
    /// The background task is far behind (64 MiB of commands waiting).
    Busy,
}

fn check_payload(max_payload: usize) -> Result<(), String> {
    if max_payload < MIN_PAYLOAD {
        return Err(format!(
            "the \"mtu\" option leaves {max_payload} bytes per datagram after DTLS overhead; the multiplayer layer needs {MIN_PAYLOAD} (mtu {} or more)",
            MIN_PAYLOAD + crate::core::dtls::record::GCM_RECORD_OVERHEAD
        ));
    }
    Ok(())
}

enum Transport {
    Server(DtlsServer),
    Client(DtlsClient),
}

impl Transport {
    fn is_server(&self) -> bool {
        matches!(self, Self::Server(_))
    }

    fn send(&self, id: PeerId, data: &[u8]) -> bool {
        match self {
            Self::Server(s) => s.send(id, data).is_ok(),
            Self::Client(c) => c.send(id, data).is_ok(),
        }
    }

    fn disconnect(&self, id: PeerId) {
        match self {
            Self::Server(s) => {
                s.disconnect_peer(id);
            }
            Self::Client(c) => {
                c.disconnect_peer(id);
            }
        }
    }

    fn address(&self, id: PeerId) -> Option<SocketAddr> {
        match self {
            Self::Server(s) => s.peer_address(id),
            Self::Client(c) => c.peer_address(id),
        }
    }
}

struct Session {
    link: Link,
    /// The Godot peer id; on a server 0 until the client's `Join` is accepted.
    godot_id: i32,
    /// The node knows this peer (it got `PeerConnected`).
    announced: bool,
    /// Why the peer said it is ending the session (its `Bye`), which words the end here.
    farewell: Option<Farewell>,
    /// SceneMultiplayer's authentication of this peer, as its packets show it.
    auth: AuthWatch,
    /// Disconnect once drained (non-forced `disconnect_peer`), by this time at the latest.
    closing: Option<Duration>,
    /// Until announced: when the session ends if the join has not completed by then (a
    /// peer that finished DTLS and then never joined would hold a `max_clients` slot,
    /// kept alive by keepalives, where the game can neither see nor kick it).
    join_by: Option<Duration>,
    usage: Arc<Usage>,
    /// Flush at the next service whatever the link's timers say (new session, a control
    /// message queued).
    flush_now: bool,
    /// The time of this session's live entry in the endpoint's timer heap, if any.
    scheduled: Option<Duration>,
    /// Its share of the receive queue ran out: messages wait in renet, offered again
    /// every `HELD_RETRY`.
    held: bool,
    /// When its statistics were last published for the node.
    stats_at: Duration,
    stats: PeerStats,
    /// The secret that resumes this session (`resume.rs`); `None` when either side has
    /// resumption off.
    secret: Option<Secret>,
    /// Server: the secret the last resumption spent, so its replay is named as such.
    spent: Option<Secret>,
    /// When a datagram from the peer last decrypted: the resume window counts from it.
    heard_at: Duration,
    /// Reported interrupted and not yet resumed; the link is not flushed meanwhile (its
    /// data waits in the send buffer, and `ack_timeout` does not run).
    interrupted: bool,
    /// Server: its DTLS session ended and it waits for a new one (see `Task::places`).
    detached: bool,
}

/// Sessions by DTLS peer. Boxed: a `Session` (its `Link` holds a renet connection inline)
/// is over a kilobyte, and a hash table keeps up to twice as many slots as entries, so
/// inline sessions cost a server with 1,000 peers about 2 KiB per peer in empty slots.
type Sessions = HashMap<PeerId, Box<Session>>;

/// Where a client connects, kept to start a new session there when resuming.
struct Dial {
    host: String,
    port: u16,
    options: ClientOptions,
}

/// A client's way back to the server after an interruption (`resume.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejoin {
    /// A new DTLS handshake is under way.
    Handshaking,
    /// The new session is up and `Resume` was sent; it goes again at this time until the
    /// server answers.
    Presenting(Duration),
    /// The last handshake failed; the next starts at this time.
    Waiting(Duration),
}

struct Task {
    transport: Transport,
    dtls_events: EventQueue<DtlsEvent>,
    links: Sessions,
    by_godot: HashMap<i32, PeerId>,
    config: EndpointConfig,
    started: Instant,
    out: EventSender<MpEvent>,
    shared: Arc<Shared>,
    closed: CancellationToken,
    /// Sessions to service in the next step because something happened to them.
    touched: Vec<PeerId>,
    /// Sessions by the time they are next due (see [`Link::next_due`]); entries that no
    /// longer match their session's `scheduled` are stale and skipped.
    timers: BinaryHeap<Reverse<(Duration, PeerId)>>,
    /// Notified on every DTLS event, of whichever DTLS client is current.
    wake: Arc<Notify>,
    /// A client's server, for new sessions when resuming.
    dial: Option<Dial>,
    /// A client resuming its session.
    rejoin: Option<Rejoin>,
    /// Why the client's last resumption handshake failed, for the reason its end gives.
    rejoin_failure: Option<String>,
    /// Server: how many peers whose DTLS session ended may keep their place at once
    /// (`max_clients`): they hold no DTLS slot, so without this bound peers that join and
    /// vanish could pile up places faster than the window frees them.
    places: usize,
}

impl Task {
    /// Wakes on DTLS events, commands and one timer: the earliest time any session is due.
    /// An idle endpoint sleeps until its next ping instead of ticking, and a step services
    /// the sessions that are due or had activity, not every session.
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let dtls_data = self.wake.clone();
        // Events the DTLS side queued before this task ran wake it at once (a refusal
        // arrives within a millisecond): without a periodic tick nothing else would.
        self.dtls_events.wake_on_event(dtls_data.clone());
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            let wake = self.timers.peek().map(|Reverse((at, _))| *at);
            let armed = wake.is_some();
            if let Some(at) = wake {
                timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(self.started + at));
            }
            tokio::select! {
                _ = self.closed.cancelled() => break,
                _ = dtls_data.notified() => {}
                command = commands.recv() => match command {
                    Some(c) => self.command(c),
                    None => break,
                },
                _ = &mut timer, if armed => {}
            }
            while let Ok(c) = commands.try_recv() {
                self.command(c);
            }
            self.step();
        }
        // Dropping the transport sends close_notify to every peer; the node hears nothing.
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn emit(&self, event: MpEvent) {
        if !self.closed.is_cancelled() {
            self.out.send(event);
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Send {
                target,
                channel,
                mode,
                data,
            } => {
                self.shared
                    .command_bytes
                    .fetch_sub(data.len(), Ordering::AcqRel);
                let ids: Vec<PeerId> = match (target, &self.transport) {
                    (_, Transport::Client(_)) => self.links.keys().copied().collect(),
                    (Target::Peer(g), _) => self.by_godot.get(&g).copied().into_iter().collect(),
                    (Target::All, _) => self.by_godot.values().copied().collect(),
                    (Target::AllBut(g), _) => self
                        .by_godot
                        .iter()
                        .filter(|(gid, _)| **gid != g)
                        .map(|(_, d)| *d)
                        .collect(),
                };
                for id in ids {
                    let Some(s) = self.links.get_mut(&id) else {
                        continue;
                    };
                    // Only peers the node was told about: no packet reaches a client
                    // before it knows its id.
                    if !s.announced {
                        continue;
                    }
                    s.auth.sent(&data);
                    match s.link.queue(channel, mode, &data) {
                        Ok(()) => {
                            s.flush_now = true;
                            self.touched.push(id);
                        }
                        Err(QueueError::BufferFull(n)) => self.end(
                            id,
                            format!(
                                "more than {n} bytes of reliable data waited for this peer (send_buffer); it is not keeping up"
                            ),
                        ),
                        // Checked by the node before queuing; unreachable from GDScript.
                        Err(QueueError::BadChannel | QueueError::TooLarge) => {}
                    }
                }
            }
            Command::Disconnect { id, force } => {
                let dtls_id = if self.transport.is_server() {
                    self.by_godot.get(&id).copied()
                } else {
                    (id == SERVER_PEER_ID).then_some(SERVER_PEER_ID)
                };
                let Some(dtls_id) = dtls_id else { return };
                let now = self.now();
                let server = self.transport.is_server();
                let Some(s) = self.links.get_mut(&dtls_id) else {
                    return;
                };
                if server {
                    // The client hears why: a kick, or a refusal if SceneMultiplayer was
                    // still authenticating it (its auth_callback or auth_timeout).
                    let farewell = if s.auth.in_progress() {
                        Farewell::RefusedAtAuthentication
                    } else {
                        Farewell::Kicked
                    };
                    s.link.send_control(&Control::Bye(farewell));
                    s.flush_now = true;
                }
                if force {
                    // The farewell goes out in this datagram, before the close (ENet's
                    // forced disconnect also sends its disconnect command first).
                    self.flush(dtls_id, now);
                    self.end(dtls_id, "disconnected by this side".into());
                } else {
                    let deadline = now + self.config.link.ack_timeout;
                    s.closing.get_or_insert(deadline);
                    self.touched.push(dtls_id);
                }
            }
        }
    }

    /// Ends a session from this side, reporting it if the node knew the peer.
    fn end(&mut self, dtls_id: PeerId, reason: String) {
        self.transport.disconnect(dtls_id);
        self.forget(dtls_id, reason);
    }

    fn forget(&mut self, dtls_id: PeerId, reason: String) {
        let Some(session) = self.links.remove(&dtls_id) else {
            return;
        };
        if !self.transport.is_server() {
            self.rejoin = None;
        }
        // The peer's own word for a deliberate end beats how the end looked from here.
        let reason = match session.farewell {
            Some(f) => f.describe(
                self.shared.unique_id.load(Ordering::Acquire),
                self.config.link.channel_count,
            ),
            None => reason,
        };
        self.by_godot.remove(&session.godot_id);
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&session.godot_id);
        if session.announced {
            self.emit(MpEvent::PeerDisconnected {
                id: session.godot_id,
                reason,
            });
        } else if !self.transport.is_server() {
            self.emit(MpEvent::ConnectionFailed(match session.farewell {
                Some(_) => reason,
                None => {
                    format!("the server ended the session before welcoming this client: {reason}")
                }
            }));
        }
    }

    fn session(&self, godot_id: i32) -> Box<Session> {
        Box::new(Session {
            link: Link::new(LinkConfig {
                ping_role: if self.transport.is_server() {
                    PingRole::Responder
                } else {
                    PingRole::Initiator
                },
                ..self.config.link.clone()
            }),
            godot_id,
            announced: false,
            farewell: None,
            auth: AuthWatch::default(),
            closing: None,
            join_by: Some(self.now() + JOIN_TIMEOUT),
            usage: Arc::new(Usage::default()),
            flush_now: true,
            scheduled: None,
            held: false,
            stats_at: Duration::ZERO,
            stats: PeerStats::default(),
            secret: None,
            spent: None,
            heard_at: self.now(),
            interrupted: false,
            detached: false,
        })
    }

    /// Services the sessions that had activity, then those whose timer is due.
    fn step(&mut self) {
        while let Some(event) = self.dtls_events.next() {
            let touched = match &event {
                DtlsEvent::PeerConnected(id) | DtlsEvent::Packet { id, .. } => Some(*id),
                _ => None,
            };
            self.dtls_event(event);
            self.touched.extend(touched);
        }
        let now = self.now();
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        for id in touched.drain(..) {
            self.service(id, now);
        }
        self.touched = touched;
        for id in due(&mut self.timers, &mut self.links, now) {
            self.service(id, now);
        }
        let m = &self.shared.metrics;
        m.peers.store(self.links.len() as u64, Ordering::Relaxed);
    }

    fn room(&self, usage: &Usage) -> Room {
        Room {
            bytes: self
                .config
                .receive_buffer
                .saturating_sub(usage.bytes.load(Ordering::Acquire)),
            packets: self
                .config
                .receive_packets
                .saturating_sub(usage.packets.load(Ordering::Acquire)),
        }
    }

    fn dtls_event(&mut self, event: DtlsEvent) {
        match event {
            DtlsEvent::PeerConnected(id) => {
                if self.rejoin == Some(Rejoin::Handshaking) && self.links.contains_key(&id) {
                    // A new session to the server: present the secret before anything else.
                    let address = self.transport.address(id);
                    if let Some(s) = self.links.get_mut(&id) {
                        s.stats.address = address;
                    }
                    self.present(id);
                } else if self.transport.is_server() {
                    // Waits for the client's `Join`, which names its id.
                    let mut session = self.session(0);
                    session.stats.address = self.transport.address(id);
                    self.links.insert(id, session);
                } else {
                    let mut session = self.session(SERVER_PEER_ID);
                    session.link.send_control(&Control::Join {
                        id: self.shared.unique_id.load(Ordering::Acquire),
                        channel_count: self.config.link.channel_count as u8,
                        version: PROTOCOL_VERSION,
                    });
                    session.stats.address = self.transport.address(id);
                    self.links.insert(id, session);
                }
            }
            DtlsEvent::PeerDisconnected {
                id,
                reason,
                message,
            } => {
                let side = if self.transport.is_server() {
                    Side::Server
                } else {
                    Side::Client
                };
                if self.links.get(&id).is_some_and(|s| s.detached) {
                    // Let go on purpose (`release_slot`): its place is kept already.
                    return;
                }
                // A session that may resume outlives its DTLS session, unless the peer
                // closed it on purpose.
                if reason != DisconnectReason::ClosedByPeer
                    && self.keeps_place(id)
                    && (!self.transport.is_server() || self.place_free())
                {
                    if let Some(s) = self.links.get_mut(&id)
                        && self.transport.is_server()
                    {
                        s.detached = true;
                        self.interrupt(id);
                    } else {
                        self.start_rejoin(id);
                    }
                    self.touched.push(id);
                    return;
                }
                self.forget(id, describe_dtls_end(side, reason, &message));
            }
            DtlsEvent::Packet { id, data } => self.datagram(id, &data),
            DtlsEvent::ConnectionFailed { reason } if self.rejoin.is_some() => {
                // The window still bounds the whole; try again in a moment.
                self.rejoin_failure = Some(reason);
                self.rejoin = Some(Rejoin::Waiting(self.now() + RETRY_AFTER));
                self.touched.push(SERVER_PEER_ID);
            }
            DtlsEvent::ConnectionFailed { reason } => self.emit(MpEvent::ConnectionFailed(reason)),
        }
    }

    fn datagram(&mut self, id: PeerId, data: &[u8]) {
        if Opening::is_opening(data) {
            self.opening(id, data);
            return;
        }
        if self.rejoin.is_some() {
            // Nothing but the server's answer counts before it binds the new session.
            return;
        }
        let now = self.now();
        let Some(session) = self.links.get_mut(&id) else {
            return;
        };
        session.heard_at = now;
        if session.interrupted {
            // The path came back before any new session: the same one carries on.
            self.back(id);
        }
        let Some(session) = self.links.get_mut(&id) else {
            return;
        };
        session.stats.bytes_received += data.len() as u64;
        session.stats.packets_received += 1;
        let m = &self.shared.metrics;
        m.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
        let mut room = Room {
            bytes: 0,
            packets: 0,
        };
        let usage = session.usage.clone();
        let computed = self.room(&usage);
        room.bytes = computed.bytes;
        room.packets = computed.packets;
        let now = self.now();
        let session = self.links.get_mut(&id).expect("checked above");
        let mut incoming = Vec::new();
        let result = session.link.receive(now, data, &mut room, &mut incoming);
        session.held = !room.has_space();
        self.handle_incoming(id, incoming);
        if let Err(reason) = result {
            self.end(id, reason.to_string());
        }
    }

    fn handle_incoming(&mut self, id: PeerId, incoming: Vec<Incoming>) {
        for item in incoming {
            let Some(session) = self.links.get_mut(&id) else {
                return;
            };
            match item {
                Incoming::Control(Control::Join {
                    id: wanted,
                    channel_count,
                    version,
                }) if self.transport.is_server()
                    && session.godot_id == 0
                    && session.closing.is_none() =>
                {
                    let verdict = admission(
                        (wanted, channel_count, version),
                        self.config.link.channel_count,
                        self.shared.refuse.load(Ordering::Acquire),
                        |g| self.by_godot.contains_key(&g),
                    );
                    let session = self.links.get_mut(&id).expect("checked above");
                    session.flush_now = true;
                    match verdict {
                        Ok(()) => {
                            session.godot_id = wanted;
                            session.secret = self.config.resumes().then(Secret::generate);
                            session.link.send_control(&Control::Welcome {
                                id: wanted,
                                channel_count: self.config.link.channel_count as u8,
                                version: PROTOCOL_VERSION,
                                secret: session.secret.clone(),
                            });
                            self.by_godot.insert(wanted, id);
                        }
                        Err(farewell) => {
                            // Said, then ended once delivered (or after a moment).
                            session.link.send_control(&Control::Bye(farewell));
                            let deadline = self.started.elapsed() + REFUSAL_GRACE;
                            session.closing.get_or_insert(deadline);
                        }
                    }
                }
                // Only a server says why it ends a session; a client's end is its close.
                Incoming::Control(Control::Bye(farewell)) if !self.transport.is_server() => {
                    // The peer ends the session; end it here too once what arrived before
                    // the farewell is handed on (the next service), without waiting for
                    // its close to cross the network.
                    session.farewell = Some(farewell);
                    session.closing = Some(Duration::ZERO);
                }
                Incoming::Control(Control::Welcome {
                    id: echoed,
                    channel_count,
                    version,
                    secret,
                }) if !self.transport.is_server() && !session.announced => {
                    // Resumption needs both: the server keeps the place, the client comes back.
                    session.secret = secret.filter(|_| self.config.resumes());
                    // A server of this version refuses a mismatch itself (with a `Bye`); an
                    // older one welcomes first, so the client checks too.
                    let ours = self.config.link.channel_count;
                    let mismatch = if version != PROTOCOL_VERSION {
                        Some(Farewell::VersionMismatch { server: version })
                    } else if usize::from(channel_count) != ours {
                        Some(Farewell::ChannelMismatch {
                            server: channel_count,
                        })
                    } else {
                        None
                    };
                    if let Some(mismatch) = mismatch {
                        let own = self.shared.unique_id.load(Ordering::Acquire);
                        self.transport.disconnect(id);
                        self.links.remove(&id);
                        self.emit(MpEvent::ConnectionFailed(mismatch.describe(own, ours)));
                        return;
                    }
                    if echoed != self.shared.unique_id.load(Ordering::Acquire) {
                        self.end(
                            id,
                            "protocol violation by the server: it welcomed another peer id".into(),
                        );
                        return;
                    }
                    session.link.send_control(&Control::Ready {
                        resumes: session.secret.is_some(),
                    });
                    session.announced = true;
                    session.flush_now = true;
                    publish_stats(&self.shared, session);
                    self.by_godot.insert(SERVER_PEER_ID, id);
                    self.emit(MpEvent::PeerConnected(SERVER_PEER_ID));
                }
                Incoming::Control(Control::Ready { resumes })
                    if self.transport.is_server() && session.godot_id != 0 =>
                {
                    // A client that will not come back keeps no place: nothing would
                    // resume it, and the game would hear of an interruption for nothing.
                    if !resumes {
                        session.secret = None;
                    }
                    self.announce(id);
                }
                Incoming::Control(_) => {
                    self.end(
                        id,
                        "protocol violation by the peer: unexpected control message".into(),
                    );
                    return;
                }
                Incoming::Data {
                    channel,
                    mode,
                    data,
                } => {
                    if self.transport.is_server() && session.godot_id != 0 {
                        // Data may overtake `Ready` (another renet channel): it proves the
                        // client has its welcome just as well.
                        self.announce(id);
                    } else if !session.announced {
                        continue;
                    }
                    let Some(session) = self.links.get_mut(&id) else {
                        return;
                    };
                    session.auth.received(&data);
                    session.usage.bytes.fetch_add(data.len(), Ordering::AcqRel);
                    session.usage.packets.fetch_add(1, Ordering::AcqRel);
                    let ticket = Delivery {
                        usage: session.usage.clone(),
                        len: data.len(),
                    };
                    let from = session.godot_id;
                    self.emit(MpEvent::Packet {
                        from,
                        channel,
                        mode,
                        data,
                        ticket,
                    });
                }
            }
        }
    }

    fn announce(&mut self, id: PeerId) {
        if let Some(s) = self.links.get_mut(&id)
            && !s.announced
        {
            s.announced = true;
            let godot_id = s.godot_id;
            publish_stats(&self.shared, s);
            self.emit(MpEvent::PeerConnected(godot_id));
        }
    }

    fn service(&mut self, id: PeerId, now: Duration) {
        let Some(session) = self.links.get(&id) else {
            return;
        };
        let mut room = self.room(&session.usage.clone());
        let session = self.links.get_mut(&id).expect("checked above");
        let mut incoming = Vec::new();
        // Messages wait in renet only for a peer whose queue share ran out; pulling every
        // link at every service would walk every renet channel of every peer.
        let pulled = if session.held {
            session.link.pull(&mut room, &mut incoming)
        } else {
            Ok(())
        };
        session.held = session.held && !room.has_space();
        self.handle_incoming(id, incoming);
        if let Err(reason) = pulled {
            self.end(id, reason.to_string());
            return;
        }
        if !self.watch_silence(id, now) {
            return;
        }
        let Some(session) = self.links.get_mut(&id) else {
            return;
        };
        // An interrupted link waits: nothing it sends could arrive, and its data stays in
        // the send buffer, bounded by `send_buffer`, for the resumed session.
        if !session.interrupted
            && (std::mem::take(&mut session.flush_now) || session.link.next_due() <= now)
            && !self.flush(id, now)
        {
            return;
        }
        let Some(session) = self.links.get_mut(&id) else {
            return;
        };
        if let Some(deadline) = session.closing
            && (session.link.is_drained() || now >= deadline)
        {
            self.end(id, "disconnected by this side".into());
            return;
        }
        if !session.announced && session.join_by.is_some_and(|by| now >= by) {
            self.end(
                id,
                format!(
                    "the peer did not complete netkit's join within {} s of its DTLS handshake",
                    JOIN_TIMEOUT.as_secs()
                ),
            );
            return;
        }
        if session.announced && now.saturating_sub(session.stats_at) >= STATS_INTERVAL {
            session.stats_at = now;
            publish_stats(&self.shared, session);
        }
        let resume = resume_due(session, &self.config, self.rejoin);
        let due = next_due(session, session.held.then_some(now + HELD_RETRY), resume);
        schedule(&mut self.timers, session, id, due);
    }

    /// True when this session may outlive its DTLS session (`resume.rs`): both sides
    /// offered resumption, the peer was admitted, and this side is not ending it.
    fn keeps_place(&self, id: PeerId) -> bool {
        (self.transport.is_server() || self.dial.is_some())
            && self
                .links
                .get(&id)
                .is_some_and(|s| s.secret.is_some() && s.announced && s.closing.is_none())
    }

    /// Server: another peer whose DTLS session ended may keep its place.
    fn place_free(&self) -> bool {
        self.links.values().filter(|s| s.detached).count() < self.places
    }

    /// Applies `resume::silence` to a session that may resume; false if that ended it.
    fn watch_silence(&mut self, id: PeerId, now: Duration) -> bool {
        if !self.keeps_place(id) {
            return true;
        }
        let server = self.transport.is_server();
        let heard_at = self.links.get(&id).map_or(now, |s| s.heard_at);
        let (after, window) = (self.config.resume_after, self.config.resume_window);
        match resume::silence(now.saturating_sub(heard_at), after, window) {
            Silence::Flowing => {}
            Silence::Interrupted if server => {
                self.interrupt(id);
                self.release_slot(id);
            }
            Silence::Interrupted if self.rejoin.is_none() => self.start_rejoin(id),
            Silence::Interrupted => {}
            Silence::WindowRanOut => {
                let other = if server { "the client" } else { "the server" };
                let mut reason = resume::window_ran_out(other, window);
                if let Some(failure) = self.rejoin_failure.take() {
                    reason = format!("{reason}; the last attempt: {failure}");
                }
                self.end(id, reason);
                return false;
            }
        }
        match self.rejoin {
            Some(Rejoin::Presenting(at)) if now >= at => self.present(id),
            Some(Rejoin::Waiting(at)) if now >= at => self.redial(),
            _ => {}
        }
        true
    }

    /// Server: lets the DTLS session of a peer interrupted by silence go quietly, keeping its
    /// place (`detached`, within `places`): its client comes back over a new handshake, which
    /// on a full server would find no `max_clients` slot while the silent session held one
    /// until the DTLS idle timeout, possibly past the window.
    fn release_slot(&mut self, id: PeerId) {
        if !self.place_free() {
            return;
        }
        let Some(s) = self.links.get_mut(&id).filter(|s| !s.detached) else {
            return;
        };
        s.detached = true;
        if let Transport::Server(server) = &self.transport {
            server.abandon_peer(id);
        }
    }

    /// Reports a session interrupted, once until it resumes.
    fn interrupt(&mut self, id: PeerId) {
        let Some(s) = self.links.get_mut(&id) else {
            return;
        };
        if s.interrupted {
            return;
        }
        s.interrupted = true;
        s.stats.interruptions += 1;
        let godot_id = s.godot_id;
        publish_stats(&self.shared, s);
        self.emit(MpEvent::SessionInterrupted(godot_id));
    }

    /// An interrupted session flows again: the link resends what is unacknowledged.
    fn back(&mut self, id: PeerId) {
        let now = self.now();
        let Some(s) = self.links.get_mut(&id) else {
            return;
        };
        if !s.interrupted {
            return;
        }
        s.interrupted = false;
        s.heard_at = now;
        s.stats.resumptions += 1;
        s.link.resume(now);
        s.flush_now = true;
        let godot_id = s.godot_id;
        publish_stats(&self.shared, s);
        self.touched.push(id);
        self.emit(MpEvent::SessionResumed(godot_id));
    }

    /// Client: the session to the server failed; start a new one to resume it.
    fn start_rejoin(&mut self, id: PeerId) {
        self.interrupt(id);
        self.redial();
    }

    /// Client: a new DTLS session to the same server, verified exactly as the first (the
    /// same options); the old one is let go without close_notify, and its events with it.
    fn redial(&mut self) {
        let Some(dial) = &self.dial else {
            return;
        };
        let (tx, rx) = channel();
        match DtlsClient::connect(&dial.host, dial.port, dial.options.clone(), tx) {
            Ok(client) => {
                rx.wake_on_event(self.wake.clone());
                self.dtls_events = rx;
                if let Transport::Client(old) =
                    std::mem::replace(&mut self.transport, Transport::Client(client))
                {
                    old.abandon();
                }
                self.rejoin = Some(Rejoin::Handshaking);
            }
            // The options were good for the first session; only a transient failure here.
            Err(_) => self.rejoin = Some(Rejoin::Waiting(self.now() + RETRY_AFTER)),
        }
    }

    /// Client: sends `Resume` on the new session (again every `RESUME_REPEAT` until the
    /// server answers).
    fn present(&mut self, id: PeerId) {
        let now = self.now();
        let Some(s) = self.links.get(&id) else {
            return;
        };
        let Some(secret) = s.secret.clone() else {
            return;
        };
        let resume = Opening::Resume {
            id: self.shared.unique_id.load(Ordering::Acquire),
            version: PROTOCOL_VERSION,
            secret,
        };
        self.transport.send(id, &resume.encode());
        self.rejoin = Some(Rejoin::Presenting(now + RESUME_REPEAT));
    }

    /// A datagram of a session not yet bound to a link (`resume::Opening`).
    fn opening(&mut self, id: PeerId, data: &[u8]) {
        let opening = match Opening::decode(data) {
            Ok(o) => o,
            Err(e) => {
                self.end(id, format!("protocol violation by the peer: {e}"));
                return;
            }
        };
        match opening {
            Opening::Resume {
                id: wanted,
                version,
                secret,
            } if self.transport.is_server() => self.resume_request(id, wanted, version, &secret),
            Opening::Resumed { secret } if matches!(self.rejoin, Some(Rejoin::Presenting(_))) => {
                self.rejoin = None;
                self.rejoin_failure = None;
                if let Some(s) = self.links.get_mut(&id) {
                    s.secret = Some(secret);
                }
                self.back(id);
            }
            Opening::Refused(refusal) if self.rejoin.is_some() => {
                self.rejoin = None;
                self.end(id, refusal.describe());
            }
            // A repeated answer after the session was bound: nothing to do.
            _ => {}
        }
    }

    /// Server: a `Resume` for peer `wanted` on session `new`, decided by `resume::verdict`.
    fn resume_request(&mut self, new: PeerId, wanted: i32, version: u8, secret: &Secret) {
        let now = self.now();
        let Some(current) = self.links.get(&new) else {
            return;
        };
        if current.godot_id != 0 && current.godot_id != wanted {
            self.end(
                new,
                "protocol violation by the peer: it asked to resume another peer's session".into(),
            );
            return;
        }
        if current.closing.is_some() {
            return;
        }
        let old = self.by_godot.get(&wanted).copied();
        let place = old
            .and_then(|o| self.links.get(&o))
            .filter(|s| s.announced && s.closing.is_none())
            .and_then(|s| {
                Some(Place {
                    secret: s.secret.as_ref()?,
                    previous: s.spent.as_ref(),
                    silent_for: now.saturating_sub(s.heard_at),
                    this_session: old == Some(new),
                })
            });
        match resume::verdict(version, secret, self.config.resume_window, place) {
            Verdict::Repeat => {
                if let Some(secret) = self.links.get(&new).and_then(|s| s.secret.clone()) {
                    self.transport
                        .send(new, &Opening::Resumed { secret }.encode());
                }
            }
            Verdict::Accept => {
                if let Some(old) = old {
                    self.rebind(old, new, wanted);
                }
            }
            Verdict::Refuse(refusal) => {
                // The refusal goes out before the close; the real peer is not touched.
                self.transport
                    .send(new, &Opening::Refused(refusal).encode());
                self.end(new, refusal.describe());
            }
        }
    }

    /// Server: peer `godot_id`'s link moves from DTLS session `old` to `new`, with a new
    /// secret (the presented one is spent); the old session is closed.
    fn rebind(&mut self, old: PeerId, new: PeerId, godot_id: i32) {
        let Some(mut s) = self.links.remove(&old) else {
            return;
        };
        self.links.remove(&new);
        s.spent = s.secret.replace(Secret::generate());
        s.scheduled = None;
        s.detached = false;
        s.stats.address = self.transport.address(new);
        let answer = s.secret.clone().map(|secret| Opening::Resumed { secret });
        self.links.insert(new, s);
        self.by_godot.insert(godot_id, new);
        if let Some(answer) = answer {
            self.transport.send(new, &answer.encode());
        }
        self.transport.disconnect(old);
        // A move faster than `resume_after` was not reported yet: the game sees the pair.
        self.interrupt(new);
        self.back(new);
    }

    /// Sends what the link has to send now, counting its bytes and resends; false if that
    /// ended the session.
    fn flush(&mut self, id: PeerId, now: Duration) -> bool {
        let Some(session) = self.links.get_mut(&id) else {
            return false;
        };
        session.flush_now = false;
        let resent = session.link.resent();
        let flushed = session.link.flush(now);
        let m = &self.shared.metrics;
        m.resent
            .fetch_add(session.link.resent() - resent, Ordering::Relaxed);
        match flushed {
            Ok(packets) => {
                for p in packets {
                    session.stats.bytes_sent += p.len() as u64;
                    session.stats.packets_sent += 1;
                    m.bytes_out.fetch_add(p.len() as u64, Ordering::Relaxed);
                    // A full DTLS queue loses the datagram; renet sends it again.
                    self.transport.send(id, &p);
                }
                true
            }
            Err(reason) => {
                self.end(id, reason.to_string());
                false
            }
        }
    }
}

/// When a session next needs servicing: its link's next due time (not while interrupted:
/// the link waits), its closing deadline, `retry` (a peer held back by a full receive
/// queue) and `resume` (see `Task::resume_due`).
fn next_due(session: &Session, retry: Option<Duration>, resume: Option<Duration>) -> Duration {
    let mut due = match session.interrupted {
        true => session.heard_at + Duration::from_secs(3600),
        false => session.link.next_due(),
    };
    if let Some(at) = resume {
        due = due.min(at);
    }
    if let Some(deadline) = session.closing {
        due = due.min(deadline);
    }
    if let Some(by) = session.join_by.filter(|_| !session.announced) {
        due = due.min(by);
    }
    if let Some(at) = retry {
        due = due.min(at);
    }
    due
}

/// When the resumption logic next needs this session serviced: its silence reaching
/// `resume_after` or the window, or a client's next `Resume` or handshake (`rejoin`).
fn resume_due(
    session: &Session,
    config: &EndpointConfig,
    rejoin: Option<Rejoin>,
) -> Option<Duration> {
    if session.secret.is_none() || !session.announced || session.closing.is_some() {
        return None;
    }
    let mut due = session.heard_at + config.resume_window;
    if !session.interrupted {
        due = due.min(session.heard_at + config.resume_after);
    }
    match rejoin {
        Some(Rejoin::Presenting(at) | Rejoin::Waiting(at)) => Some(due.min(at)),
        _ => Some(due),
    }
}

/// Puts a session's due time in the heap unless an entry at that time or earlier is live
/// (servicing a session early is harmless: it recomputes and reschedules).
fn schedule(
    timers: &mut BinaryHeap<Reverse<(Duration, PeerId)>>,
    session: &mut Session,
    id: PeerId,
    due: Duration,
) {
    if session.scheduled.is_some_and(|at| at <= due) {
        return;
    }
    session.scheduled = Some(due);
    timers.push(Reverse((due, id)));
}

/// Takes the sessions due by `now` off the heap, skipping stale entries (a session gone,
/// or rescheduled to another time).
fn due(
    timers: &mut BinaryHeap<Reverse<(Duration, PeerId)>>,
    links: &mut Sessions,
    now: Duration,
) -> Vec<PeerId> {
    let mut ids = Vec::new();
    while let Some(&Reverse((at, id))) = timers.peek() {
        if at > now {
            break;
        }
        timers.pop();
        if let Some(session) = links.get_mut(&id)
            && session.scheduled == Some(at)
        {
            session.scheduled = None;
            ids.push(id);
        }
    }
    ids
}

/// How long a session may take from its DTLS handshake to a completed join (`Join`,
/// `Welcome`, `Ready`: one round trip and a half, ordinarily milliseconds).
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused client's session stays open for its `Bye` to be acknowledged.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// The server's answer to a `Join` (`wanted` id, channel count and version): `Ok` welcomes
/// it, `Err` is the farewell that refuses it. ENet's server refuses an id below 2 or one
/// already connected the same way.
fn admission(
    (wanted, channel_count, version): (i32, u8, u8),
    channels: usize,
    refusing: bool,
    taken: impl Fn(i32) -> bool,
) -> Result<(), Farewell> {
    if version != PROTOCOL_VERSION {
        return Err(Farewell::VersionMismatch {
            server: PROTOCOL_VERSION,
        });
    }
    if usize::from(channel_count) != channels {
        return Err(Farewell::ChannelMismatch {
            server: channels as u8,
        });
    }
    if refusing {
        return Err(Farewell::Refused);
    }
    if wanted < 2 || taken(wanted) {
        return Err(Farewell::IdTaken);
    }
    Ok(())
}

/// Publishes one session's figures at once, so `get_peer_stats` knows a peer from the
/// moment it is reported connected (the periodic refresh alone left up to
/// `STATS_INTERVAL` during which a connected peer had no statistics).
fn publish_stats(shared: &Shared, session: &Session) {
    let mut figures = session.stats.clone();
    figures.link = session.link.stats();
    shared
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(session.godot_id, figures);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_checks_version_then_channels_then_refusal_then_the_id() {
        let free = |_| false;
        let v = PROTOCOL_VERSION;
        assert_eq!(admission((5, 4, v), 4, false, free), Ok(()));
        assert_eq!(
            admission((5, 4, v + 1), 4, true, free),
            Err(Farewell::VersionMismatch { server: v })
        );
        assert_eq!(
            admission((5, 2, v), 4, true, free),
            Err(Farewell::ChannelMismatch { server: 4 })
        );
        assert_eq!(admission((5, 4, v), 4, true, free), Err(Farewell::Refused));
        assert_eq!(
            admission((5, 4, v), 4, false, |g| g == 5),
            Err(Farewell::IdTaken)
        );
        for bad in [i32::MIN, -1, 0, 1] {
            assert_eq!(
                admission((bad, 4, v), 4, false, free),
                Err(Farewell::IdTaken)
            );
        }
    }

    fn session() -> Box<Session> {
        Box::new(Session {
            link: Link::new(LinkConfig::default()),
            godot_id: 2,
            announced: true,
            farewell: None,
            auth: AuthWatch::default(),
            closing: None,
            join_by: None,
            usage: Arc::new(Usage::default()),
            flush_now: false,
            scheduled: None,
            held: false,
            stats_at: Duration::ZERO,
            stats: PeerStats::default(),
            secret: None,
            spent: None,
            heard_at: Duration::ZERO,
            interrupted: false,
            detached: false,
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The timer heap holds one live entry per session: a later due time keeps the earlier
    /// entry (servicing early is harmless), an earlier one replaces it, and the replaced
    /// entry is skipped when it comes up; a session that is gone is skipped too.
    #[test]
    fn only_due_sessions_come_off_the_heap_and_stale_entries_are_skipped() {
        let mut timers = BinaryHeap::new();
        let mut links = HashMap::new();
        links.insert(7, session());
        links.insert(8, session());
        links.insert(9, session());
        let s = links.get_mut(&7).unwrap();
        schedule(&mut timers, s, 7, ms(500));
        schedule(&mut timers, s, 7, ms(600));
        assert_eq!(timers.len(), 1, "a later time keeps the earlier entry");
        schedule(&mut timers, s, 7, ms(10));
        assert_eq!(s.scheduled, Some(ms(10)));
        schedule(&mut timers, links.get_mut(&8).unwrap(), 8, ms(20));
        schedule(&mut timers, links.get_mut(&9).unwrap(), 9, ms(15));
        links.remove(&9);

        assert!(
            due(&mut timers, &mut links, ms(5)).is_empty(),
            "nothing due yet"
        );
        assert_eq!(due(&mut timers, &mut links, ms(20)), vec![7, 8]);
        assert_eq!(
            links[&7].scheduled, None,
            "serviced: it schedules itself again"
        );
        assert!(
            due(&mut timers, &mut links, ms(1000)).is_empty(),
            "the replaced entry at 500 ms is stale"
        );
        assert!(timers.is_empty());
    }

    /// A session's due time is its link's, or earlier for a closing deadline or a peer
    /// held back by a full receive queue.
    #[test]
    fn a_closing_deadline_or_a_held_back_peer_brings_the_due_time_forward() {
        let mut s = session();
        s.link.flush(ms(1000)).unwrap();
        let idle = next_due(&s, None, None);
        assert!(idle > ms(1000), "an idle link waits for its next ping");
        assert_eq!(next_due(&s, Some(ms(1005)), None), ms(1005));
        assert_eq!(next_due(&s, None, Some(ms(1001))), ms(1001));
        s.closing = Some(ms(1002));
        assert_eq!(next_due(&s, None, None), ms(1002));
    }
}
