//! The datagram transport webrtc-dtls runs on: one peer's slice of a shared UDP
//! socket. Receiving reads from a bounded queue the demultiplexer fills; sending writes
//! straight to the peer's address.
//!
//! `PeerConn::recv` never returns an error: webrtc-dtls's read loop only stops on fatal
//! alerts, so an error would make it spin; it waits instead, and ends when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::{Mutex, Notify};
use webrtc_dtls::conn::DatagramSource;

use super::authenticate::RecordAuthenticator;
use super::final_flight::{FinalFlight, is_final_flight_record};
use super::first_flight::Turn;
use super::inbound::{InboundLimits, InboundReceiver};
use super::record::{filter, plaintext_fatal_alert, split};
use super::wire::Wire;

/// State shared between a [`PeerConn`] and the task driving its session.
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    /// Set once the handshake completed; switches the record filter to its strict mode.
    pub established: AtomicBool,
    /// 0, or 0x100 | description of a plaintext fatal alert seen during the handshake.
    fatal_alert: AtomicU16,
    /// Woken when `fatal_alert` is set, so a refused client fails at once.
    pub alert_seen: Notify,
    /// For PSK sessions: drops forged encrypted records that would otherwise be fatal.
    pub authenticator: OnceLock<RecordAuthenticator>,
    /// A server handshake's turn at the expensive first flight; given back as soon as
    /// webrtc-dtls sends its first datagram (the HelloVerifyRequest).
    pub first_flight: std::sync::Mutex<Option<Turn>>,
    /// The server's last handshake flight, resent when the client shows it was lost.
    pub final_flight: FinalFlight,
    /// True on a client, which has no final flight to resend: its last flight is
    /// retransmitted by webrtc-dtls until the server's arrives.
    client_side: bool,
    /// The inbound queue's limits, deepened once the session is established.
    inbound: OnceLock<Arc<InboundLimits>>,
}

impl ConnShared {
    /// State for a client's connection.
    pub fn for_client() -> Self {
        Self {
            client_side: true,
            ..Self::default()
        }
    }

    /// The handshake completed: strict record filtering from now on, the session's deep
    /// inbound queue, and the final flight as sent is what gets resent.
    pub fn mark_established(&self) {
        self.established.store(true, Ordering::Release);
        if let Some(limits) = self.inbound.get() {
            limits.establish();
        }
        self.final_flight.freeze();
    }

    /// Passes this handshake's first-flight turn on, if it holds one.
    pub fn end_first_flight(&self) {
        let turn = self
            .first_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(turn);
    }

    /// The description byte of the fatal alert the peer sent during the handshake.
    pub fn fatal_alert(&self) -> Option<u8> {
        let v = self.fatal_alert.load(Ordering::Relaxed);
        (v != 0).then_some(v as u8)
    }
}

/// A `webrtc_util::Conn` for one peer. webrtc-dtls only calls `recv`, `send`,
/// `local_addr`, `remote_addr` and `close` on it.
pub(crate) struct PeerConn {
    inbound: Mutex<InboundReceiver>,
    socket: Arc<Wire>,
    remote: SocketAddr,
    shared: Arc<ConnShared>,
}

impl PeerConn {
    /// Wraps the queue the demultiplexer feeds and the socket replies go out on.
    pub fn new(
        inbound: InboundReceiver,
        socket: Arc<Wire>,
        remote: SocketAddr,
        shared: Arc<ConnShared>,
    ) -> Self {
        let _ = shared.inbound.set(inbound.limits());
        Self {
            inbound: Mutex::new(inbound),
            socket,
            remote,
            shared,
        }
    }
}

impl PeerConn {
    /// When a datagram carries the client's final flight again after the handshake, our
    /// final flight was lost: sends it again (see final_flight.rs) and returns the rest of
    /// the datagram, which webrtc-dtls would only discard. `None` for any other datagram.
    async fn answer_final_flight(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        let records = split(datagram)?;
        if !records.iter().any(is_final_flight_record) {
            return None;
        }
        for resend in self.shared.final_flight.answer(Instant::now()) {
            let _ = self.socket.send_to(&resend, self.remote).await;
        }
        Some(
            records
                .iter()
                .filter(|r| !is_final_flight_record(r))
                .flat_map(|r| r.raw.iter().copied())
                .collect(),
        )
    }
}

/// How webrtc-dtls's reader task takes this peer's datagrams (a netkit patch of the
/// vendored copy): each as the owned buffer the record filter already made, so no
/// connection keeps a receive buffer of its own while it waits.
#[async_trait]
impl DatagramSource for PeerConn {
    async fn recv_datagram(&self) -> webrtc_util::Result<Vec<u8>> {
        let mut inbound = self.inbound.lock().await;
        loop {
            let Some(mut datagram) = inbound.recv().await else {
                // The demultiplexer forgot this peer. Returning an error here would make
                // webrtc-dtls's reader loop spin (it only stops on fatal alerts), so wait
                // instead: the reader ends when the DTLSConn is closed or dropped.
                std::future::pending::<()>().await;
                continue;
            };
            let established = self.shared.established.load(Ordering::Acquire);
            if established && !self.shared.client_side {
                match self.answer_final_flight(&datagram).await {
                    Some(rest) if rest.is_empty() => continue,
                    Some(rest) => datagram = rest,
                    None => {}
                }
            }
            let alert = (!established)
                .then(|| split(&datagram))
                .flatten()
                .and_then(|records| records.iter().find_map(plaintext_fatal_alert));
            if let Some(desc) = alert {
                self.shared
                    .fatal_alert
                    .store(0x100 | u16::from(desc), Ordering::Relaxed);
                self.shared.alert_seen.notify_waiters();
            }
            let Some(mut clean) = filter(&datagram, established) else {
                continue;
            };
            if let Some(auth) = self.shared.authenticator.get() {
                let records = split(&clean).unwrap_or_default();
                if !records.iter().all(|r| auth.authentic(r)) {
                    let kept: Vec<u8> = records
                        .iter()
                        .filter(|r| auth.authentic(r))
                        .flat_map(|r| r.raw.iter().copied())
                        .collect();
                    if kept.is_empty() {
                        continue;
                    }
                    clean = kept;
                }
            }
            return Ok(clean);
        }
    }
}

#[async_trait]
impl webrtc_util::Conn for PeerConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other(
            "PeerConn is already bound to one peer".into(),
        ))
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        loop {
            let datagram = self.recv_datagram().await?;
            if datagram.len() <= buf.len() {
                buf[..datagram.len()].copy_from_slice(&datagram);
                return Ok(datagram.len());
            }
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let n = self.recv(buf).await?;
        Ok((n, self.remote))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        if !self.shared.client_side && !self.shared.established.load(Ordering::Acquire) {
            self.shared.final_flight.sent(buf);
        }
        let sent = self
            .socket
            .send_to(buf, self.remote)
            .await
            .map_err(|e| webrtc_util::Error::Other(e.to_string()));
        self.shared.end_first_flight();
        sent
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
        self.send(buf).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.socket
            .local_addr()
            .map_err(|e| webrtc_util::Error::Other(e.to_string()))
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.remote)
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        // The socket is shared with other peers; the demultiplexer owns its lifetime.
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
