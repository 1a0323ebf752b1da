//! The one local HTTP server every client is measured against: keep-alive HTTP/1.1 (and
//! h2c for clients that ask), answering every request with the same 1 KB JSON object, so
//! the figures compare clients, not servers.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// The path that serves the JSON body; every other path serves it too, so a client's URL
/// joining quirks cannot turn into 404s that would skew the figures.
pub const JSON_PATH: &str = "/json";

/// Size the body is padded to, as the issue asks (a typical small backend answer).
pub const BODY_BYTES: usize = 1024;

/// A running server; dropping it stops accepting and shuts its runtime down.
pub struct BenchServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    runtime: Option<Runtime>,
}

impl BenchServer {
    /// Starts the server on 127.0.0.1 with an OS-chosen port, on its own runtime so that
    /// its threads are the same whichever client is measured.
    pub fn start(worker_threads: usize) -> Result<BenchServer, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads.max(1))
            .thread_name("bench-server")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the server runtime: {e}"))?;
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the server address: {e}"))?;
        let (stop, stopped) = watch::channel(false);
        let body = Bytes::from(json_body());
        runtime.spawn(accept_loop(listener, body, stopped));
        Ok(BenchServer {
            addr,
            stop,
            runtime: Some(runtime),
        })
    }

    /// The full URL of the JSON endpoint.
    pub fn url(&self) -> String {
        format!("http://{}{JSON_PATH}", self.addr)
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(runtime) = self.runtime.take() {
            // Keep-alive connections of a finished client may still be open; do not wait.
            runtime.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, body: Bytes, mut stopped: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or a reset during accept: keep serving the others.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let body = body.clone();
                async move { Ok::<_, Infallible>(answer(&req, body)) }
            });
            // A client closing its connection ends this task; nothing to report.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(_req: &Request<Incoming>, body: Bytes) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("static headers are valid")
}

/// A JSON object of exactly [`BODY_BYTES`] bytes, shaped like a backend answer (a few
/// scalar fields and an array of records), with an integer `id` the clients read.
pub fn json_body() -> String {
    let mut records = Vec::new();
    for i in 0..8 {
        records.push(serde_json::json!({"rank": i + 1, "name": format!("player{i:02}"), "score": 1000 - i * 37}));
    }
    let mut value = serde_json::json!({
        "id": 42,
        "ok": true,
        "season": "spring",
        "scores": records,
        "pad": "",
    });
    let base = value.to_string().len();
    let pad = BODY_BYTES.saturating_sub(base);
    value["pad"] = serde_json::Value::String("x".repeat(pad));
    value.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_is_one_kilobyte_of_json() {
        let body = super::json_body();
        assert_eq!(body.len(), super::BODY_BYTES);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], 42);
    }
}
