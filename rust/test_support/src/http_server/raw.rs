//! A raw HTTP/1.1 server on 127.0.0.1 for what hyper will not do on purpose: close a
//! keep-alive connection at the worst moment, with a FIN or a RST, after reading a request
//! it never answers.
//!
//! Every answered request gets `200 application/json` `{"request":N,"key_count":M}` (N
//! counts all requests read, M those carrying the same `key=K` query parameter) and the
//! connection stays open for the next one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// A normal close: FIN after the kernel sent what was written.
    Fin,
    /// An abortive close (SO_LINGER 0): the peer gets a RST.
    Rst,
}

/// What the server does with each connection.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Answers the first request, reads the second and closes without answering, as a
    /// server does whose keep-alive timer fired while the request was on the way.
    CloseSecond(Close),
    /// Answers every request. After `idle` without a request it decides to close, as
    /// Node's `keepAliveTimeout` does; the FIN reaches the client `latency` later (a proxy
    /// or a long link in between), and a request that arrives in that window is read and
    /// dropped, never answered: the client sees its reused connection close under it.
    KeepAlive { idle: Duration, latency: Duration },
}

/// A running raw server and what it has seen. It lives until the process exits.
#[derive(Clone)]
pub struct RawServer {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    requests: AtomicU64,
    dropped: AtomicU64,
    keys: Mutex<HashMap<String, u64>>,
}

impl RawServer {
    /// Starts a server with `behaviour` on its own thread and runtime.
    pub fn start(behaviour: Behaviour) -> RawServer {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("raw-http-server".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("raw server: cannot build its runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("raw server: cannot bind 127.0.0.1:0");
                    let addr: SocketAddr = listener.local_addr().expect("bound listener");
                    let counts = Arc::new(Counts::default());
                    let server = RawServer {
                        url: format!("http://{addr}"),
                        counts: Arc::clone(&counts),
                    };
                    let _ = sender.send(server);
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        counts.connections.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, behaviour, Arc::clone(&counts)));
                    }
                });
            })
            .expect("raw server: cannot spawn its thread");
        receiver
            .recv()
            .expect("raw server: its thread stopped before listening")
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// Requests read in full, answered or not.
    pub fn requests(&self) -> u64 {
        self.counts.requests.load(Ordering::SeqCst)
    }

    /// Requests read in full and never answered.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::SeqCst)
    }

    /// Requests (answered or not) that carried `key=K`.
    pub fn key_count(&self, key: &str) -> u64 {
        let keys = self.counts.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.get(key).copied().unwrap_or(0)
    }
}

/// Serves one connection according to `behaviour`.
async fn serve(mut stream: TcpStream, behaviour: Behaviour, counts: Arc<Counts>) {
    let mut buffer = Vec::new();
    let mut on_this_connection = 0u64;
    loop {
        let wait = match behaviour {
            Behaviour::KeepAlive { idle, .. } if on_this_connection > 0 => Some(idle),
            _ => None,
        };
        let request = match wait {
            None => read_request(&mut stream, &mut buffer).await,
            Some(idle) => {
                match tokio::time::timeout(idle, read_request(&mut stream, &mut buffer)).await {
                    Ok(request) => request,
                    Err(_) => {
                        if let Behaviour::KeepAlive { latency, .. } = behaviour {
                            drop_during(&mut stream, &mut buffer, latency, &counts).await;
                        }
                        return close(stream, Close::Fin).await;
                    }
                }
            }
        };
        let Some(key) = request else { return };
        let n = counts.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let key_count = count_key(&counts, key.as_deref());
        on_this_connection += 1;
        if let Behaviour::CloseSecond(kind) = behaviour
            && on_this_connection == 2
        {
            counts.dropped.fetch_add(1, Ordering::SeqCst);
            return close(stream, kind).await;
        }
        let body = format!("{{\"request\":{n},\"key_count\":{key_count}}}");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if stream
            .write_all(format!("{head}{body}").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Reads and drops whatever requests arrive within `window` (the FIN is still on its way).
async fn drop_during(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    window: Duration,
    counts: &Counts,
) {
    let until = tokio::time::Instant::now() + window;
    while let Ok(Some(key)) = tokio::time::timeout_at(until, read_request(stream, buffer)).await {
        counts.requests.fetch_add(1, Ordering::SeqCst);
        counts.dropped.fetch_add(1, Ordering::SeqCst);
        count_key(counts, key.as_deref());
    }
}

/// Counts one request for `key` and returns the key's count (0 without a key).
fn count_key(counts: &Counts, key: Option<&str>) -> u64 {
    let Some(key) = key else { return 0 };
    let mut keys = counts.keys.lock().unwrap_or_else(|p| p.into_inner());
    let count = keys.entry(key.to_owned()).or_insert(0);
    *count += 1;
    *count
}

/// Closes with a FIN or a RST.
async fn close(stream: TcpStream, kind: Close) {
    match kind {
        Close::Fin => {
            let mut stream = stream;
            let _ = stream.shutdown().await;
        }
        Close::Rst => {
            // Linger 0 makes close() send a RST at once; with a zero timeout it never blocks,
            // which is what the deprecation warns about.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
        }
    }
}

/// Reads one request (head and Content-Length body). `None` when the client closed or the
/// bytes are not HTTP; `Some(key)` with the value of a `key=` query parameter.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Option<String>> {
    let head_end = loop {
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    buffer.drain(..head_end + length);
    let target = head.split_whitespace().nth(1).unwrap_or("/");
    let key = target
        .split_once('?')
        .and_then(|(_, query)| query.split('&').find_map(|pair| pair.strip_prefix("key=")))
        .map(str::to_owned);
    Some(key)
}
