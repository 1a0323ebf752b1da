//! A UDP relay that behaves like a bad network path between DTLS clients and a server:
//! it loses, duplicates, delays (so reorders) and size-limits datagrams, each by a seeded
//! random choice, and records the largest datagram it saw each way.
//!
//! It works like a NAT: every client address gets its own socket towards the server, so
//! many clients can share one relay and the server sees one address per client. Like a
//! phone that changes networks, it can move every client to a new address towards the
//! server (`move_to`: a new source IP, any of 127/8, and new ports), and like a tunnel it
//! can go dark both ways for a while (`black_out`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// How bad the path is. Probabilities are per datagram and per direction.
#[derive(Clone, Copy, Debug)]
pub struct PathConfig {
    /// Share of datagrams dropped.
    pub loss: f64,
    /// Share of datagrams delivered twice.
    pub duplicate: f64,
    /// Share of datagrams held back 20-60 ms, so later ones overtake them.
    pub reorder: f64,
    /// Datagrams larger than this are dropped, as a path with this MTU would.
    pub max_size: Option<usize>,
    /// Seed of the random choices, so a failing run can be repeated.
    pub seed: u64,
}

impl PathConfig {
    /// A perfect path (useful with only `max_size` set).
    pub fn clean() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            max_size: None,
            seed: 1,
        }
    }

    /// The path of issue 9: 20 % lost, 5 % duplicated, 10 % reordered.
    pub fn lossy(seed: u64) -> Self {
        Self {
            loss: 0.2,
            duplicate: 0.05,
            reorder: 0.1,
            max_size: None,
            seed,
        }
    }
}

/// What the relay saw.
#[derive(Debug, Default)]
pub struct PathStats {
    /// Largest datagram a client sent (client → server), in bytes.
    pub largest_up: AtomicUsize,
    /// Largest datagram the server sent (server → client), in bytes.
    pub largest_down: AtomicUsize,
    /// Datagrams dropped for exceeding `max_size`.
    pub oversize: AtomicU64,
    /// Datagrams dropped at random.
    pub lost: AtomicU64,
    /// Datagrams forwarded (duplicates counted twice).
    pub forwarded: AtomicU64,
    /// Datagrams and UDP payload bytes clients sent (client → server), counted as they
    /// reach the relay, before the path drops or duplicates any: what the clients put on
    /// the wire.
    pub datagrams_up: AtomicU64,
    /// Payload bytes of `datagrams_up`.
    pub bytes_up: AtomicU64,
    /// The same for the server's datagrams (server → client).
    pub datagrams_down: AtomicU64,
    /// Payload bytes of `datagrams_down`.
    pub bytes_down: AtomicU64,
    /// Datagrams dropped during a blackout, both ways.
    pub blacked_out: AtomicU64,
}

/// A running relay; dropping it stops it.
pub struct Relay {
    /// Where clients send to.
    pub addr: SocketAddr,
    /// What it saw so far.
    pub stats: Arc<PathStats>,
    stop: CancellationToken,
    steering: Arc<Steering>,
}

/// Where the relay forwards from, and whether it is dark.
struct Steering {
    source: Mutex<IpAddr>,
    /// Bumped by every move: a flow whose socket is older gets a new one.
    generation: AtomicU64,
    dark_until: Mutex<Option<Instant>>,
    /// Client datagrams kept while recording (`record_up`), for replay attacks.
    recording: Mutex<Option<Vec<Vec<u8>>>>,
}

/// Datagrams a recording keeps at most.
const RECORD_LIMIT: usize = 10_000;

impl Steering {
    fn dark(&self) -> bool {
        self.dark_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Shared by both directions of every flow.
struct Path {
    config: PathConfig,
    rng: Mutex<StdRng>,
    stats: Arc<PathStats>,
    stop: CancellationToken,
    steering: Arc<Steering>,
}

impl Path {
    /// Sends `datagram` through `send` as the path decides: not at all, once, twice, or
    /// late.
    fn forward<F, Fut>(self: &Arc<Self>, direction: Direction, datagram: &[u8], send: F)
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let (largest, datagrams, bytes) = match direction {
            Direction::Up => (
                &self.stats.largest_up,
                &self.stats.datagrams_up,
                &self.stats.bytes_up,
            ),
            Direction::Down => (
                &self.stats.largest_down,
                &self.stats.datagrams_down,
                &self.stats.bytes_down,
            ),
        };
        largest.fetch_max(datagram.len(), Ordering::Relaxed);
        datagrams.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(datagram.len() as u64, Ordering::Relaxed);
        if let (Direction::Up, Some(kept)) =
            (direction, self.steering.recording.lock().unwrap().as_mut())
            && kept.len() < RECORD_LIMIT
        {
            kept.push(datagram.to_vec());
        }
        if self.steering.dark() {
            self.stats.blacked_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.config.max_size.is_some_and(|max| datagram.len() > max) {
            self.stats.oversize.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let (lost, copies, delay) = {
            let mut rng = self.rng.lock().unwrap();
            let lost = rng.random_bool(self.config.loss);
            let copies = if rng.random_bool(self.config.duplicate) {
                2
            } else {
                1
            };
            let delay = rng
                .random_bool(self.config.reorder)
                .then(|| Duration::from_millis(rng.random_range(20..60)));
            (lost, copies, delay)
        };
        if lost {
            self.stats.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stats.forwarded.fetch_add(copies, Ordering::Relaxed);
        let datagram = datagram.to_vec();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            if let Some(d) = delay {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(d) => {}
                }
            }
            for _ in 0..copies {
                send(datagram.clone()).await;
            }
        });
    }
}

impl Relay {
    /// Starts relaying to `server` on netkit's runtime, forwarding from 127.0.0.1.
    pub fn start(server: SocketAddr, config: PathConfig) -> Relay {
        Self::start_from(server, config, IpAddr::from([127, 0, 0, 1]))
    }

    /// Starts relaying to `server`, forwarding from `source` (a loopback address such as
    /// 127.0.0.2, so that a later `move_to` changes the address the server sees).
    pub fn start_from(server: SocketAddr, config: PathConfig, source: IpAddr) -> Relay {
        let handle = netkit::core::runtime::handle();
        let front = handle
            .block_on(UdpSocket::bind("127.0.0.1:0"))
            .expect("bind relay");
        let addr = front.local_addr().unwrap();
        let stats = Arc::new(PathStats::default());
        let stop = CancellationToken::new();
        let steering = Arc::new(Steering {
            source: Mutex::new(source),
            generation: AtomicU64::new(0),
            dark_until: Mutex::new(None),
            recording: Mutex::new(None),
        });
        let path = Arc::new(Path {
            config,
            rng: Mutex::new(StdRng::seed_from_u64(config.seed)),
            stats: stats.clone(),
            stop: stop.clone(),
            steering: steering.clone(),
        });
        handle.spawn(run(Arc::new(front), server, path));
        Relay {
            addr,
            stats,
            stop,
            steering,
        }
    }

    /// From now on every client's datagrams reach the server from `source` and a new port,
    /// as after a change of network; what the server sends to the old addresses is lost.
    pub fn move_to(&self, source: IpAddr) {
        *self.steering.source.lock().unwrap() = source;
        self.steering.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Starts keeping a copy of every datagram clients send (up to 10,000), as an attacker
    /// on the path would, until `recorded` hands them over.
    pub fn record_up(&self) {
        *self.steering.recording.lock().unwrap() = Some(Vec::new());
    }

    /// What was recorded since `record_up`, in order; recording stops.
    pub fn recorded(&self) -> Vec<Vec<u8>> {
        self.steering
            .recording
            .lock()
            .unwrap()
            .take()
            .unwrap_or_default()
    }

    /// Drops every datagram, both ways, for `period` from now.
    pub fn black_out(&self, period: Duration) {
        *self.steering.dark_until.lock().unwrap() = Some(Instant::now() + period);
    }
}

/// A client's socket towards the server, from the source address of its generation.
struct Flow {
    generation: u64,
    back: Arc<UdpSocket>,
    stop: CancellationToken,
}

async fn run(front: Arc<UdpSocket>, server: SocketAddr, path: Arc<Path>) {
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, client) = tokio::select! {
            _ = path.stop.cancelled() => return,
            r = front.recv_from(&mut buf) => match r {
                Ok(x) => x,
                // ICMP errors surface here; pause so a dead peer cannot make this spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        let generation = path.steering.generation.load(Ordering::Acquire);
        let back = match flows.get(&client) {
            Some(f) if f.generation == generation => f.back.clone(),
            _ => {
                let source = *path.steering.source.lock().unwrap();
                let Ok(b) = UdpSocket::bind(SocketAddr::new(source, 0)).await else {
                    continue;
                };
                if b.connect(server).await.is_err() {
                    continue;
                }
                let b = Arc::new(b);
                let stop = path.stop.child_token();
                let flow = Flow {
                    generation,
                    back: b.clone(),
                    stop: stop.clone(),
                };
                if let Some(old) = flows.insert(client, flow) {
                    // The old address is gone, as a phone's old network is.
                    old.stop.cancel();
                }
                tokio::spawn(downstream(
                    b.clone(),
                    front.clone(),
                    client,
                    path.clone(),
                    stop,
                ));
                b
            }
        };
        let to_server = back.clone();
        path.forward(Direction::Up, &buf[..n], move |d| {
            let s = to_server.clone();
            async move {
                let _ = s.send(&d).await;
            }
        });
    }
}

async fn downstream(
    back: Arc<UdpSocket>,
    front: Arc<UdpSocket>,
    client: SocketAddr,
    path: Arc<Path>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::select! {
            _ = stop.cancelled() => return,
            r = back.recv(&mut buf) => match r {
                Ok(n) => n,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        let f = front.clone();
        path.forward(Direction::Down, &buf[..n], move |d| {
            let f = f.clone();
            async move {
                let _ = f.send_to(&d, client).await;
            }
        });
    }
}
