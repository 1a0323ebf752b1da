//! The datagram transport webrtc-dtls runs on: one peer's slice of a shared UDP
//! socket. Receiving reads from a bounded queue the demultiplexer fills; sending writes
//! straight to the peer's address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::sync::{Mutex, Notify, mpsc};

use super::authenticate::RecordAuthenticator;
use super::first_flight::Turn;
use super::record::{filter, plaintext_fatal_alert, split};

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
}

impl ConnShared {
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
    inbound: Mutex<mpsc::Receiver<Vec<u8>>>,
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    shared: Arc<ConnShared>,
}

impl PeerConn {
    /// Wraps the queue the demultiplexer feeds and the socket replies go out on.
    pub fn new(
        inbound: mpsc::Receiver<Vec<u8>>,
        socket: Arc<UdpSocket>,
        remote: SocketAddr,
        shared: Arc<ConnShared>,
    ) -> Self {
        Self {
            inbound: Mutex::new(inbound),
            socket,
            remote,
            shared,
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
        let mut inbound = self.inbound.lock().await;
        loop {
            let Some(datagram) = inbound.recv().await else {
                // The demultiplexer forgot this peer. Returning an error here would make
                // webrtc-dtls's reader loop spin (it only stops on fatal alerts), so wait
                // instead: the reader ends when the DTLSConn is closed or dropped.
                std::future::pending::<()>().await;
                continue;
            };
            let established = self.shared.established.load(Ordering::Acquire);
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
            if clean.len() > buf.len() {
                continue;
            }
            buf[..clean.len()].copy_from_slice(&clean);
            return Ok(clean.len());
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let n = self.recv(buf).await?;
        Ok((n, self.remote))
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
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
