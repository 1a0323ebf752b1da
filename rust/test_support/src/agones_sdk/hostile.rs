//! A sidecar that misbehaves on purpose, for the tests of what `AgonesSDK` does when the
//! thing on its port is not a well-behaved Agones SDK server. A raw HTTP/1.1 responder on
//! 127.0.0.1 (no hyper: the point is to send what a correct server never would).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the sidecar misbehaves. Health pings are always answered `200 {}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// `GET /watch/gameserver` streams distinct records (each with a growing
    /// `object_meta.generation`) as fast as the socket takes them; calls get a Counter.
    FloodWatch,
    /// Calls are read and never answered (the connection stays open); the watch stream
    /// too.
    HangCalls,
}

/// One hostile sidecar; it lives as long as the runtime that serves it.
#[derive(Clone)]
pub struct HostileSidecar {
    /// Its port, for `AGONES_SDK_HTTP_PORT` or the node's `port`.
    pub port: u16,
    records: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

impl HostileSidecar {
    /// Starts listening now. Must be called inside a tokio runtime, which serves it.
    pub fn start(behaviour: Behaviour) -> HostileSidecar {
        let std_listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("hostile sidecar: cannot bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("hostile sidecar: cannot make its socket non-blocking");
        let port = std_listener
            .local_addr()
            .expect("hostile sidecar: bound socket has no address")
            .port();
        let listener =
            TcpListener::from_std(std_listener).expect("hostile sidecar: tokio refused the socket");
        let sidecar = HostileSidecar {
            port,
            records: Arc::new(AtomicU64::new(0)),
            calls: Arc::new(AtomicU64::new(0)),
        };
        let serving = sidecar.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serving.clone().serve(stream, behaviour));
            }
        });
        sidecar
    }

    /// Watch records written to sockets so far (`FloodWatch`).
    pub fn records_sent(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// SDK calls received (health pings and the watch excluded).
    pub fn calls_received(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn serve(self, mut stream: TcpStream, behaviour: Behaviour) {
        let mut buf = Vec::new();
        loop {
            let Some(line) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            let reply = if line.contains(" /health ") {
                respond(&mut stream, b"{}").await
            } else if line.contains(" /watch/gameserver ") {
                match behaviour {
                    Behaviour::FloodWatch => self.flood(&mut stream).await,
                    Behaviour::HangCalls => std::future::pending().await,
                }
            } else {
                self.calls.fetch_add(1, Ordering::Relaxed);
                match behaviour {
                    Behaviour::FloodWatch => {
                        respond(
                            &mut stream,
                            br#"{"name":"rooms","count":"1","capacity":"10"}"#,
                        )
                        .await
                    }
                    Behaviour::HangCalls => std::future::pending().await,
                }
            };
            if reply.is_err() {
                return;
            }
        }
    }

    /// Writes records until the client stops reading or goes away.
    async fn flood(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            )
            .await?;
        loop {
            let mut chunk = String::new();
            for _ in 0..32 {
                let n = self.records.fetch_add(1, Ordering::Relaxed) + 1;
                chunk.push_str(&format!(
                    "{{\"result\":{{\"object_meta\":{{\"name\":\"flood\",\"generation\":\"{n}\"}},\"status\":{{\"state\":\"Ready\"}}}}}}\n"
                ));
            }
            stream
                .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                .await?;
        }
    }
}

/// Reads one request (head and a Content-Length body); returns its request line.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4 + length);
            return head.lines().next().map(str::to_owned);
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await
}
