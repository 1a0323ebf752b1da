//! The UDP socket as DTLS uses it, with the simulated network conditions applied to whole
//! datagrams on the wire (handshakes included), so what DTLS and the reliability layer
//! meet is what a bad network would give them.
//!
//! With nothing simulated a send or receive costs one atomic load more than the socket's
//! own. Delayed datagrams wait in a heap: outbound ones in a task of their own that sends
//! them when due, inbound ones inside `recv_from`, which hands them out when due. Both
//! heaps are bounded in bytes; what does not fit is dropped and counted, as a bandwidth
//! limit's full queue is.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::port_release::Socket;
use crate::core::simulate::{self, Conditions, Fate, Shaper};

/// Most bytes held back per direction per socket (latency times rate, duplicates).
const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;

/// A socket plus the conditions that apply to it.
pub(crate) struct Wire {
    socket: Arc<Socket>,
    /// The object's own `simulate` option, which beats the process-wide conditions.
    own: Option<Arc<Conditions>>,
    /// The process-wide generation the shapers were built for (`u64::MAX`: never).
    seen: AtomicU64,
    /// Some direction is shaped.
    active: AtomicBool,
    outbound: Mutex<Outbound>,
    inbound: Mutex<Inbound>,
    held_out: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Outbound {
    shaper: Option<Shaper>,
    /// To the task that sends delayed datagrams; started at the first one.
    delayed: Option<mpsc::UnboundedSender<Held>>,
}

#[derive(Default)]
struct Inbound {
    shaper: Option<Shaper>,
    held: BinaryHeap<Reverse<Held>>,
    bytes: usize,
    next_seq: u64,
}

/// A datagram waiting for its time. Ordered by time, then by arrival.
struct Held {
    at: Instant,
    seq: u64,
    data: Vec<u8>,
    peer: SocketAddr,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wire {
    /// Wraps `socket`; `own` is the object's `simulate` option, if it has one.
    pub fn new(socket: UdpSocket, own: Option<Arc<Conditions>>) -> Self {
        Self {
            socket: Arc::new(Socket::new(socket)),
            own,
            seen: AtomicU64::new(u64::MAX),
            active: AtomicBool::new(false),
            outbound: Mutex::default(),
            inbound: Mutex::default(),
            held_out: Arc::default(),
        }
    }

    /// Watches when the socket closes (`port_release`).
    pub fn release(&self) -> super::port_release::PortRelease {
        self.socket.release()
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Rebuilds the shapers when the process-wide conditions changed; true when some
    /// direction is shaped.
    fn refresh(&self) -> bool {
        let generation = simulate::generation();
        if self.seen.load(Ordering::Acquire) == generation {
            return self.active.load(Ordering::Acquire);
        }
        let conditions = simulate::effective(self.own.as_ref());
        let shaper = |pick: fn(&Conditions) -> &simulate::Direction, salt: u64| {
            conditions.as_ref().and_then(|c| {
                let d = pick(c);
                (!d.is_clean()).then(|| Shaper::new(d.clone(), c.seed.map(|s| s ^ salt)))
            })
        };
        let out = shaper(|c| &c.outbound, 0);
        let inb = shaper(|c| &c.inbound, 0x9e37_79b9_7f4a_7c15);
        let active = out.is_some() || inb.is_some();
        lock(&self.outbound).shaper = out;
        lock(&self.inbound).shaper = inb;
        self.active.store(active, Ordering::Release);
        self.seen.store(generation, Ordering::Release);
        active
    }

    /// Sends one datagram under the outbound conditions. A datagram dropped on purpose
    /// counts as sent: the network, not the socket, lost it.
    pub async fn send_to(&self, data: &[u8], peer: SocketAddr) -> io::Result<usize> {
        if !self.refresh() {
            return self.socket.send_to(data, peer).await;
        }
        match self.judge_outbound(data.len()) {
            Some(Fate::Deliver(now, None)) if now.is_zero() => {
                self.socket.send_to(data, peer).await
            }
            None => self.socket.send_to(data, peer).await,
            Some(fate) => {
                if self.hold_outbound(fate, data, peer) {
                    let _ = self.socket.send_to(data, peer).await;
                }
                Ok(data.len())
            }
        }
    }

    /// [`send_to`](Self::send_to) without waiting: a full socket buffer drops the datagram.
    pub fn try_send_to(&self, data: &[u8], peer: SocketAddr) -> io::Result<usize> {
        if !self.refresh() {
            return self.socket.try_send_to(data, peer);
        }
        match self.judge_outbound(data.len()) {
            None => self.socket.try_send_to(data, peer),
            Some(fate) => {
                if self.hold_outbound(fate, data, peer) {
                    let _ = self.socket.try_send_to(data, peer);
                }
                Ok(data.len())
            }
        }
    }

    fn judge_outbound(&self, len: usize) -> Option<Fate> {
        lock(&self.outbound)
            .shaper
            .as_mut()
            .map(|s| s.judge(len, std::time::Instant::now()))
    }

    /// Carries out a fate: drops, or queues the delayed copies. True when one copy is due
    /// now and the caller sends it.
    fn hold_outbound(&self, fate: Fate, data: &[u8], peer: SocketAddr) -> bool {
        let (first, second) = match fate {
            Fate::Drop(_) => {
                simulate::count_drop();
                return false;
            }
            Fate::Deliver(a, b) => (a, b),
        };
        let mut send_now = false;
        for delay in [Some(first), second].into_iter().flatten() {
            if delay.is_zero() && !send_now {
                send_now = true;
                continue;
            }
            if self.held_out.load(Ordering::Relaxed) + data.len() > MAX_HELD_BYTES {
                simulate::count_drop();
                continue;
            }
            self.held_out.fetch_add(data.len(), Ordering::Relaxed);
            let mut out = lock(&self.outbound);
            let tx = out.delayed.get_or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(release(self.socket.clone(), rx, self.held_out.clone()));
                tx
            });
            let _ = tx.send(Held {
                at: Instant::now() + delay,
                seq: 0,
                data: data.to_vec(),
                peer,
            });
        }
        send_now
    }

    /// Receives one datagram under the inbound conditions: dropped ones never appear,
    /// delayed ones appear when due. Cancel-safe, as `UdpSocket::recv_from` is.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let active = self.refresh();
            let next = {
                let mut inb = lock(&self.inbound);
                match inb.held.peek() {
                    Some(Reverse(top)) if top.at <= Instant::now() => {
                        let Reverse(held) = inb.held.pop().expect("peeked");
                        inb.bytes -= held.data.len();
                        let n = held.data.len().min(buf.len());
                        buf[..n].copy_from_slice(&held.data[..n]);
                        return Ok((n, held.peer));
                    }
                    Some(Reverse(top)) => Some(top.at),
                    None => None,
                }
            };
            if !active && next.is_none() {
                return self.socket.recv_from(buf).await;
            }
            let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = self.socket.recv_from(buf) => {
                    let (n, from) = r?;
                    let mut inb = lock(&self.inbound);
                    let fate = inb.shaper.as_mut().map(|s| s.judge(n, std::time::Instant::now()));
                    let (first, second) = match fate {
                        None => return Ok((n, from)),
                        Some(Fate::Drop(_)) => {
                            simulate::count_drop();
                            continue;
                        }
                        Some(Fate::Deliver(a, b)) => (a, b),
                    };
                    let mut now = false;
                    for delay in [Some(first), second].into_iter().flatten() {
                        if delay.is_zero() && !now {
                            now = true;
                        } else if inb.bytes + n > MAX_HELD_BYTES {
                            simulate::count_drop();
                        } else {
                            inb.bytes += n;
                            inb.next_seq += 1;
                            let seq = inb.next_seq;
                            inb.held.push(Reverse(Held {
                                at: Instant::now() + delay,
                                seq,
                                data: buf[..n].to_vec(),
                                peer: from,
                            }));
                        }
                    }
                    if now {
                        return Ok((n, from));
                    }
                }
                _ = sleep_until(wake) => {}
            }
        }
    }
}

/// Sends delayed datagrams when due; ends when the wire is gone and nothing waits.
async fn release(
    socket: Arc<Socket>,
    mut rx: mpsc::UnboundedReceiver<Held>,
    bytes: Arc<AtomicUsize>,
) {
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut next_seq = 0u64;
    let mut open = true;
    loop {
        let next = held.peek().map(|Reverse(h)| h.at);
        if !open && next.is_none() {
            return;
        }
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            item = rx.recv(), if open => match item {
                Some(mut h) => {
                    next_seq += 1;
                    h.seq = next_seq;
                    held.push(Reverse(h));
                }
                None => open = false,
            },
            _ = sleep_until(wake) => {
                let now = Instant::now();
                while held.peek().is_some_and(|Reverse(h)| h.at <= now) {
                    let Reverse(h) = held.pop().expect("peeked");
                    bytes.fetch_sub(h.data.len(), Ordering::Relaxed);
                    let _ = socket.send_to(&h.data, h.peer).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(own: Option<Conditions>) -> (Wire, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (Wire::new(a, own.map(Arc::new)), b)
    }

    /// An object's own conditions apply to it alone, whatever the process's are: latency
    /// holds a datagram back, `in:loss=100%` hides everything it would receive.
    #[tokio::test]
    async fn own_conditions_delay_what_is_sent_and_drop_what_is_received() {
        let (wire, other) = pair(Some(
            Conditions::parse("latency=80ms in:loss=100% seed=1").unwrap(),
        ))
        .await;
        let to = other.local_addr().unwrap();
        let start = Instant::now();
        wire.send_to(b"late", to).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = other.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"late");
        assert!(start.elapsed() >= Duration::from_millis(80));

        other
            .send_to(b"lost", wire.local_addr().unwrap())
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), wire.recv_from(&mut buf)).await;
        assert!(got.is_err(), "a datagram came through in:loss=100%");
    }

    /// Inbound delay keeps order per delay and hands every datagram out once.
    #[tokio::test]
    async fn inbound_latency_delivers_every_datagram_once_after_the_delay() {
        let (wire, other) = pair(Some(Conditions::parse("in:latency=50ms").unwrap())).await;
        let to = wire.local_addr().unwrap();
        let start = Instant::now();
        for i in 0..20u8 {
            other.send_to(&[i], to).await.unwrap();
        }
        let mut buf = [0u8; 8];
        for i in 0..20u8 {
            let (n, _) = wire.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &[i]);
        }
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
