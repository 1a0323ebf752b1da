//! One DTLS session's life after the transport exists: the bounded handshake, then the
//! loop that moves packets both ways and watches the idle timer. Servers and clients
//! share it.
//!
//! `DTLSConn::new` has no timeout of its own; the handshake is wrapped in
//! `tokio::time::timeout` (`handshake_timeout`, default 10 s; on a client one budget covers
//! DNS and the handshake). A session whose final flight had to be resent
//! (`final_flight.rs`) has not shown that its client finished: unless an authenticated
//! record (data or keepalive) arrives within `handshake_timeout` of the server's
//! completion, it ends with "the client never finished the handshake". Keepalive (empty
//! application records, swallowed by netkit receivers) is off by default.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use webrtc_dtls::config::Config;
use webrtc_dtls::conn::{DTLSConn, DatagramSource};

use super::conn::{ConnShared, PeerConn};
use super::datagram_queue::QueueReceiver;
use super::events::{DisconnectReason, DtlsEvent, PeerId};
use super::events_gate::Gate;
use super::failure;
use super::stats::Stats;

/// How long a polite close (close_notify) may take before we just let go.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// How long a handshake that saw a fatal alert may take to report its own error.
const ALERT_GRACE: Duration = Duration::from_millis(100);

/// The knobs one session's owner keeps to stop it and to learn its id.
#[derive(Debug, Default)]
pub(crate) struct SessionControl {
    /// Cancelling ends the handshake or session promptly.
    pub cancel: CancellationToken,
    /// The peer id once connected, 0 before.
    pub id: AtomicI32,
    reason: Mutex<Option<DisconnectReason>>,
    /// True once `PeerDisconnected` went out for this session. Events for the session
    /// are sent while holding it, so nothing for this id follows its disconnect, and
    /// whoever announces a session's end (its supervisor, or the reconnect that
    /// replaces it) does so exactly once and before anything else is announced.
    ended: Mutex<bool>,
}

impl SessionControl {
    /// A control whose token is a child of `parent`, so closing the owner stops it too.
    pub fn child_of(parent: &CancellationToken) -> Self {
        Self {
            cancel: parent.child_token(),
            ..Default::default()
        }
    }

    /// Stops the session, remembering why (the first reason given wins).
    pub fn stop(&self, reason: DisconnectReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(reason);
        drop(slot);
        self.cancel.cancel();
    }

    fn reason(&self) -> DisconnectReason {
        self.reason
            .lock()
            .map(|r| r.unwrap_or(DisconnectReason::ClosedLocally))
            .unwrap_or(DisconnectReason::ClosedLocally)
    }

    /// Runs `send` (which sends the session's `PeerDisconnected`) unless the end was
    /// already announced; true if it ran. Stops the session too.
    pub fn announce_end(&self, send: impl FnOnce()) -> bool {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if *ended {
            return false;
        }
        *ended = true;
        send();
        drop(ended);
        self.cancel.cancel();
        true
    }

    /// Runs `send` (which sends an event of this session) unless its end was already
    /// announced; false then, and the session should stop.
    pub fn emit(&self, send: impl FnOnce()) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        if *ended {
            return false;
        }
        send();
        true
    }

    /// The id published once connected.
    pub fn peer_id(&self) -> Option<PeerId> {
        let id = self.id.load(Ordering::Acquire);
        (id != 0).then_some(id)
    }
}

/// Runs `DTLSConn::new` with the timeout webrtc-dtls lacks, failing early on a fatal
/// alert from the peer or on cancellation. `deadline` is when to give up; `limit` is
/// the configured timeout it came from, for the error message.
pub(crate) async fn handshake(
    conn: Arc<PeerConn>,
    shared: Arc<ConnShared>,
    config: Config,
    is_client: bool,
    deadline: Instant,
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<Arc<DTLSConn>, String> {
    let psk = config.psk.is_some();
    let alert = shared.alert_seen.notified();
    // Boxed: webrtc-dtls's handshake future is several KiB, and inline it would size the
    // task that then runs the session for its whole life; boxed, it is freed once the
    // handshake ends.
    let datagrams: Arc<dyn DatagramSource> = conn.clone();
    let mut attempt = Box::pin(DTLSConn::new_with_datagrams(
        conn,
        Some(datagrams),
        config,
        is_client,
        None,
    ));
    let timed_out = || format!("handshake did not complete within {} ms", limit.as_millis());
    let outcome = |result: Result<DTLSConn, webrtc_dtls::Error>| match result {
        Ok(dtls) => Ok(Arc::new(dtls)),
        Err(err) => Err(format!(
            "handshake failed: {}",
            failure::describe(&err, shared.fatal_alert(), psk)
        )),
    };
    // Cancellation and the deadline are checked before webrtc-dtls is polled. A server
    // swamped by spoofed ClientHellos evicts or expires many entries before their task
    // first runs; polled first, webrtc-dtls would still spend an ECDHE key generation on
    // each (it makes one before it sends HelloVerifyRequest), and that wasted work is
    // what delays the real clients' handshakes past their timeout.
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err("handshake cancelled".to_owned()),
        _ = sleep_until(deadline) => Err(timed_out()),
        _ = alert => {
            // webrtc-dtls echoes every alert it receives, so when this side refused
            // (a certificate failing the pin, say) the echo can arrive before our own
            // handshake reports why. A moment's grace keeps that reason.
            match timeout(ALERT_GRACE, &mut attempt).await {
                Ok(result @ Err(_)) => outcome(result),
                _ => Err(format!(
                    "handshake failed: {}",
                    failure::refused_by_peer(shared.fatal_alert().unwrap_or(40), psk)
                )),
            }
        }
        result = &mut attempt => outcome(result),
    }
}

/// For a server session whose final flight had to be resent: the client has not shown
/// that it completed the handshake, and must before `by` (any authenticated record
/// does), or the session ends. A client that gave up would otherwise stay counted
/// against `max_clients` until the idle timeout.
pub(crate) struct Confirmation {
    /// Whose final flight to ask about.
    pub shared: Arc<ConnShared>,
    /// The end of the grace period.
    pub by: Instant,
}

/// Everything [`run`] needs besides the connection.
pub(crate) struct SessionContext {
    /// Id reported in events.
    pub id: PeerId,
    /// How the owner stops the session.
    pub control: Arc<SessionControl>,
    /// Packets queued by `send`, bounded so `send` never blocks.
    pub outbound: QueueReceiver,
    /// Silence that ends the session.
    pub idle_timeout: Duration,
    /// Optional empty-record keepalive period.
    pub keepalive: Option<Duration>,
    /// Where packets and the final disconnect go.
    pub events: Gate,
    /// Counters to update.
    pub stats: Arc<Stats>,
    /// Servers only: the confirmation rule, see [`Confirmation`].
    pub confirm: Option<Confirmation>,
}

/// Hands a session's decrypted records on: from webrtc-dtls's reader task (the sink set in
/// [`run`]) or, for records decrypted before that and at the start, from `run` itself.
struct Inbound {
    id: PeerId,
    control: Arc<SessionControl>,
    events: Gate,
    stats: Arc<Stats>,
    /// When the session started; `heard_ms` counts from it.
    started: Instant,
    /// Milliseconds after `started` of the last record (any record refreshes the idle
    /// timer, empty keepalive records too); 0 until one arrives.
    heard_ms: AtomicU64,
}

impl Inbound {
    /// Takes one record; false when the session's end was announced (it was replaced by
    /// a reconnect) and nothing more may be sent for it.
    fn deliver(&self, data: Vec<u8>) -> bool {
        let ms = self.started.elapsed().as_millis().max(1) as u64;
        self.heard_ms.store(ms, Ordering::Relaxed);
        // Empty records are keepalives: they refresh the idle timer only.
        if data.is_empty() {
            return true;
        }
        Stats::inc(&self.stats.packets_in);
        Stats::add(&self.stats.bytes_in, data.len() as u64);
        let packet = DtlsEvent::Packet { id: self.id, data };
        self.control.emit(|| self.events.send(packet))
    }

    /// When the session was last heard from (its start before any record).
    fn heard_at(&self) -> Instant {
        self.started + Duration::from_millis(self.heard_ms.load(Ordering::Relaxed))
    }
}

/// Moves packets until the session ends and says why.
pub(crate) async fn run(dtls: Arc<DTLSConn>, mut cx: SessionContext) -> (DisconnectReason, String) {
    let inbound = Arc::new(Inbound {
        id: cx.id,
        control: cx.control.clone(),
        events: cx.events.clone(),
        stats: cx.stats.clone(),
        started: Instant::now(),
        heard_ms: AtomicU64::new(0),
    });
    // Records go from webrtc-dtls's reader task straight to the events: waking this task
    // for each one cost a task switch per datagram received.
    let sink = inbound.clone();
    dtls.set_application_data_sink(Box::new(move |data| {
        if !sink.deliver(data) {
            // Retired (replaced by a reconnect): its end is announced; stop.
            sink.control.cancel.cancel();
        }
    }));
    let mut deadline = Instant::now() + cx.idle_timeout;
    let mut last_send = Instant::now();
    let keepalive = cx.keepalive.filter(|d| !d.is_zero());
    let mut confirm = cx.confirm.take();
    let outcome = loop {
        let unconfirmed = async {
            match &confirm {
                Some(c) => sleep_until(c.by).await,
                None => std::future::pending().await,
            }
        };
        let keepalive_due = async {
            match keepalive {
                Some(every) => sleep_until(last_send + every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = cx.control.cancel.cancelled() => {
                let reason = cx.control.reason();
                break (reason, reason.describe().to_owned());
            }
            _ = sleep_until(deadline) => {
                let heard = inbound.heard_at() + cx.idle_timeout;
                if heard > Instant::now() {
                    deadline = heard;
                    continue;
                }
                let r = DisconnectReason::IdleTimeout;
                break (r, r.describe().to_owned());
            }
            _ = unconfirmed => {
                // Anything that decrypted proves the client has the session keys.
                let heard = inbound.heard_ms.load(Ordering::Relaxed) > 0;
                if confirm.take().is_some_and(|c| !heard && c.shared.final_flight.was_resent()) {
                    break (
                        DisconnectReason::Error,
                        "the client never finished the handshake: it kept resending its last flight, then sent nothing".to_owned(),
                    );
                }
            }
            read = dtls.read_owned() => match read {
                Ok(data) => {
                    confirm = None;
                    if !inbound.deliver(data) {
                        // Retired (replaced by a reconnect): its end is announced.
                        let r = cx.control.reason();
                        break (r, r.describe().to_owned());
                    }
                }
                Err(webrtc_dtls::Error::ErrAlertFatalOrClose | webrtc_dtls::Error::ErrConnClosed) => {
                    let r = DisconnectReason::ClosedByPeer;
                    break (r, r.describe().to_owned());
                }
                Err(err) => break (DisconnectReason::Error, format!("receive failed: {err}")),
            },
            packet = cx.outbound.recv() => match packet {
                Some(data) => {
                    match timeout(CLOSE_GRACE, dtls.write(&data, None)).await {
                        Ok(Ok(_)) => {
                            last_send = Instant::now();
                            Stats::inc(&cx.stats.packets_out);
                            Stats::add(&cx.stats.bytes_out, data.len() as u64);
                        }
                        Ok(Err(err)) => break (DisconnectReason::Error, format!("send failed: {err}")),
                        Err(_) => { Stats::inc(&cx.stats.send_drops); }
                    }
                }
                None => {
                    let r = DisconnectReason::ClosedLocally;
                    break (r, r.describe().to_owned());
                }
            },
            _ = keepalive_due => {
                let _ = timeout(CLOSE_GRACE, dtls.write(&[], None)).await;
                last_send = Instant::now();
            }
        }
    };
    // Tell the peer (close_notify) unless it already left; bounded so a dead path
    // cannot hold the task. A replaced session stays quiet: its address now belongs to
    // a new session, which could not decrypt a record under the old keys anyway.
    if !matches!(
        outcome.0,
        DisconnectReason::ClosedByPeer | DisconnectReason::Replaced
    ) {
        let _ = timeout(CLOSE_GRACE, async {
            // A local close first sends what was queued before it (a multiplayer `Bye`
            // saying why, say), as ENet flushes before its disconnect; the queue is
            // bounded and so is the wait.
            if outcome.0 == DisconnectReason::ClosedLocally {
                while let Ok(Some(data)) = cx.outbound.try_recv() {
                    if dtls.write(&data, None).await.is_err() {
                        break;
                    }
                }
            }
            dtls.close().await
        })
        .await;
    }
    outcome
}
