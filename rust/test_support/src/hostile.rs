//! Helpers for the hostile-sender tests: crafted handshake fragments, a relay whose two
//! sockets let a test forge datagrams from a client's or the server's address, and an
//! echo prober that measures round trips through a server drained the way the node does.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netkit::core::dtls::{ClientOptions, DtlsClient, DtlsEvent, DtlsServer, ServerOptions};
use netkit::core::events::{EventQueue, channel};

/// Handshake content type.
pub const HANDSHAKE: u8 = 22;
/// ClientHello handshake type.
pub const CLIENT_HELLO: u8 = 1;
/// ServerHello handshake type.
pub const SERVER_HELLO: u8 = 2;

/// One plaintext (epoch 0) handshake record holding one fragment header and `data`.
/// `fragment_length` is written as given, so it may claim more than `data` holds.
pub fn fragment_record(
    record_seq: u64,
    msg_type: u8,
    length: u32,
    message_seq: u16,
    offset: u32,
    fragment_length: u32,
    data: &[u8],
) -> Vec<u8> {
    let mut body = vec![msg_type];
    body.extend_from_slice(&length.to_be_bytes()[1..]);
    body.extend_from_slice(&message_seq.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes()[1..]);
    body.extend_from_slice(&fragment_length.to_be_bytes()[1..]);
    body.extend_from_slice(data);
    let mut v = vec![HANDSHAKE, 0xfe, 0xfd, 0, 0];
    v.extend_from_slice(&record_seq.to_be_bytes()[2..]);
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

/// Which way a chain of fragments is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Highest offset first: webrtc-dtls 0.12 rescans every buffered fragment per
    /// record, then recurses once per fragment when offset 0 arrives (stack overflow).
    Reverse,
    /// Lowest offset first: webrtc-dtls recurses along the whole chain on every record
    /// (time grows with the cube of the count).
    Forward,
}

/// The attack from issue 8: `count` fragments of one `count`-byte message, each
/// claiming one byte and carrying none, packed 300 records to a datagram. Record
/// sequence numbers rise in sending order from `first_record_seq`.
pub fn fragment_chain(
    msg_type: u8,
    message_seq: u16,
    count: u32,
    order: Order,
    first_record_seq: u64,
) -> Vec<Vec<u8>> {
    const PER_DATAGRAM: usize = 300;
    let offsets: Vec<u32> = match order {
        Order::Reverse => (0..count).rev().collect(),
        Order::Forward => (0..count).collect(),
    };
    offsets
        .chunks(PER_DATAGRAM)
        .enumerate()
        .map(|(c, chunk)| {
            let mut d = Vec::with_capacity(chunk.len() * 25);
            for (i, off) in chunk.iter().enumerate() {
                let seq = first_record_seq + (c * PER_DATAGRAM + i) as u64;
                d.extend(fragment_record(
                    seq,
                    msg_type,
                    count,
                    message_seq,
                    *off,
                    1,
                    &[],
                ));
            }
            d
        })
        .collect()
}

/// A UDP relay between one client and a server. Its front socket is "the server" for
/// the client and its back socket is "the client" for the server, so a test can send
/// datagrams that the receiver cannot tell from the real peer's.
pub struct Relay {
    front: UdpSocket,
    back: UdpSocket,
    client: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    pub fn start(server: SocketAddr) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(server).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let client = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let up = {
            let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *client.lock().unwrap() = Some(from);
                        let _ = back.send(&buf[..n]);
                    }
                }
            })
        };
        let down = {
            let (front, back) = (front.try_clone().unwrap(), back.try_clone().unwrap());
            let (client, stop) = (client.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = back.recv(&mut buf) {
                        let to = *client.lock().unwrap();
                        if let Some(to) = to {
                            let _ = front.send_to(&buf[..n], to);
                        }
                    }
                }
            })
        };
        Self {
            front,
            back,
            client,
            stop,
            threads: vec![up, down],
        }
    }

    /// Where the client connects.
    pub fn addr(&self) -> SocketAddr {
        self.front.local_addr().unwrap()
    }

    /// Sends to the server from the client's address (as the server sees it).
    pub fn forge_to_server(&self, datagram: &[u8]) {
        let _ = self.back.send(datagram);
    }

    /// Sends to the client from the server's address (as the client sees it).
    pub fn forge_to_client(&self, datagram: &[u8]) {
        let to = self.client.lock().unwrap().expect("no client yet");
        let _ = self.front.send_to(datagram, to);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A server whose events the test drains exactly as `DTLSPeer` does: one event at a time
/// through `EventQueue::next`, at most `per_frame` per frame.
pub struct NodeLikeServer {
    pub server: DtlsServer,
    pub queue: EventQueue<DtlsEvent>,
    pub per_frame: usize,
    /// Packets longer than this are delivered but not echoed.
    pub echo_max_len: usize,
    pub connected: Vec<i32>,
    /// Packets delivered per peer.
    pub delivered: HashMap<i32, u64>,
}

impl NodeLikeServer {
    pub fn start(options: ServerOptions) -> Self {
        let (tx, rx) = channel();
        let server = DtlsServer::bind("127.0.0.1:0".parse().unwrap(), options, tx).unwrap();
        Self {
            server,
            queue: rx,
            per_frame: 256,
            echo_max_len: usize::MAX,
            connected: Vec::new(),
            delivered: HashMap::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// One frame of the node's dispatch: echoes every packet back to its sender.
    /// Returns how many events were taken.
    pub fn frame_echo(&mut self) -> usize {
        let mut n = 0;
        while n < self.per_frame {
            let Some(event) = self.queue.next() else {
                break;
            };
            n += 1;
            match event {
                DtlsEvent::Packet { id, data } => {
                    *self.delivered.entry(id).or_default() += 1;
                    if data.len() <= self.echo_max_len {
                        let _ = self.server.send(id, &data);
                    }
                }
                DtlsEvent::PeerConnected(id) => self.connected.push(id),
                DtlsEvent::PeerDisconnected { id, .. } => self.connected.retain(|c| *c != id),
                DtlsEvent::ConnectionFailed { .. } => {}
            }
        }
        n
    }
}

/// A client that sends numbered pings and times their echoes.
pub struct Prober {
    pub client: DtlsClient,
    pub queue: EventQueue<DtlsEvent>,
    next: u64,
    outstanding: HashMap<u64, Instant>,
    pub rtts: Vec<Duration>,
    pub lost: usize,
    pub disconnected: bool,
}

impl Prober {
    /// Connects to `addr`; `serve` is called while waiting so the server side progresses.
    pub fn connect(addr: SocketAddr, options: ClientOptions, server: &mut NodeLikeServer) -> Self {
        let (tx, rx) = channel();
        let client = DtlsClient::connect(&addr.ip().to_string(), addr.port(), options, tx).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            server.frame_echo();
            match rx.next() {
                Some(DtlsEvent::PeerConnected(_)) => break,
                Some(other) => panic!("client got {other:?} while connecting"),
                None if Instant::now() > end => panic!("client did not connect"),
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        Self {
            client,
            queue: rx,
            next: 0,
            outstanding: HashMap::new(),
            rtts: Vec::new(),
            lost: 0,
            disconnected: false,
        }
    }

    /// Sends a ping when none is outstanding for `every`; reads echoes; a ping unanswered
    /// for a second counts as lost.
    pub fn tick(&mut self, every: Duration) {
        while let Some(e) = self.queue.next() {
            match e {
                DtlsEvent::Packet { data, .. } if data.len() == 8 => {
                    let n = u64::from_be_bytes(data.try_into().unwrap());
                    if let Some(sent) = self.outstanding.remove(&n) {
                        self.rtts.push(sent.elapsed());
                    }
                }
                DtlsEvent::PeerDisconnected { .. } => self.disconnected = true,
                _ => {}
            }
        }
        let now = Instant::now();
        let before = self.outstanding.len();
        self.outstanding
            .retain(|_, sent| now.duration_since(*sent) < Duration::from_secs(1));
        self.lost += before - self.outstanding.len();
        let last = self.outstanding.values().max().copied();
        if last.is_none_or(|t| now.duration_since(t) >= every) {
            self.next += 1;
            if self.client.send(1, &self.next.to_be_bytes()).is_ok() {
                self.outstanding.insert(self.next, now);
            }
        }
    }
}

/// Percentile (0..=100) of a set of durations; zero for an empty set.
pub fn percentile(values: &[Duration], p: usize) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    v[((v.len() - 1) * p) / 100]
}

/// Runs server frames every `frame` and probes every millisecond while `busy` is
/// true, then for `settle` more.
pub fn run_frames(
    server: &mut NodeLikeServer,
    probers: &mut [&mut Prober],
    busy: &AtomicBool,
    settle: Duration,
    frame: Duration,
) {
    let mut quiet_since: Option<Instant> = None;
    let mut next_frame = Instant::now();
    loop {
        if Instant::now() >= next_frame {
            server.frame_echo();
            next_frame += frame;
        }
        for p in probers.iter_mut() {
            p.tick(Duration::from_millis(10));
        }
        if busy.load(Ordering::Relaxed) {
            quiet_since = None;
        } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= settle {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The cookie of a HelloVerifyRequest datagram, if it is one.
pub fn hello_verify_cookie(datagram: &[u8]) -> Option<Vec<u8>> {
    // Record header (13), handshake header (12) of type 3, then version (2), cookie<0..255>.
    if datagram.len() < 13 + 12 + 3 || datagram[0] != HANDSHAKE || datagram[13] != 3 {
        return None;
    }
    let body = &datagram[25..];
    let len = usize::from(body[2]);
    body.get(3..3 + len).map(<[u8]>::to_vec)
}

/// The ClientHello a client sends after a HelloVerifyRequest: `first` (a captured first
/// hello, one record) with `cookie` filled in, message_seq 1 and record sequence 1.
pub fn hello_with_cookie(first: &[u8], cookie: &[u8]) -> Vec<u8> {
    let body = &first[25..];
    let sid_len = usize::from(body[34]);
    let cookie_at = 35 + sid_len;
    let mut new_body = body[..cookie_at].to_vec();
    new_body.push(cookie.len() as u8);
    new_body.extend_from_slice(cookie);
    let old_cookie_len = usize::from(body[cookie_at]);
    new_body.extend_from_slice(&body[cookie_at + 1 + old_cookie_len..]);
    let len = (new_body.len() as u32).to_be_bytes();
    let mut hs = vec![CLIENT_HELLO, len[1], len[2], len[3], 0, 1, 0, 0, 0];
    hs.extend_from_slice(&len[1..]);
    hs.extend_from_slice(&new_body);
    let mut record = vec![HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}
