//! The engine-free rows: the same GETs and JSON parsing from Rust, without Godot.
//!
//! - raw reqwest: `concurrency` tokio tasks on a 2-worker runtime (netkit's default worker
//!   count) sharing one `reqwest::Client`, each looping GET, body, `serde_json` parse,
//!   read `id`: the ceiling for any client built on reqwest.
//! - netkit core: the engine-free `netkit::core::http::HttpPool` that the HTTPPool node
//!   wraps, fed all requests at once and drained from a plain thread, which separates
//!   the core's own cost from the engine binding's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netkit::core::events::Budget;
use netkit::core::http::{ErrorKind, HttpPool, Method, PoolSettings, RequestBody, RequestSpec};
use tokio::runtime::Runtime;

/// Same as netkit's default (`netkit/runtime/worker_threads`), so the rows compare code,
/// not thread counts.
const CLIENT_WORKERS: usize = 2;

/// Upper bound for one engine-free run.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(CLIENT_WORKERS)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the client runtime: {e}"))
}

/// Runs `total` GETs of `url` with `concurrency` in flight through plain reqwest and
/// returns successful responses per second.
pub fn raw_reqwest(url: &str, total: usize, concurrency: usize) -> Result<f64, String> {
    let rt = runtime()?;
    // Plain http only, but reqwest built without a default crypto provider still wants a
    // TLS configuration: give it an empty, never-used one.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(concurrency)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build the reqwest client: {e}"))?;
    let next = Arc::new(AtomicUsize::new(0));
    let url = Arc::new(url.to_string());
    let started = Instant::now();
    let work = async {
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, next, url) = (client.clone(), next.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let body = client
                        .get(url.as_str())
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .bytes()
                        .await
                        .map_err(|e| e.to_string())?;
                    let value: serde_json::Value =
                        serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                    if value["id"].as_i64().is_none() {
                        return Err("the body has no integer id".to_string());
                    }
                    ok += 1;
                }
                Ok::<usize, String>(ok)
            }));
        }
        let mut ok = 0;
        for task in tasks {
            ok += task.await.map_err(|e| e.to_string())??;
        }
        Ok::<usize, String>(ok)
    };
    // The timer needs the runtime's context, so it is created inside block_on.
    let outcome = rt.block_on(async { tokio::time::timeout(RUN_TIMEOUT, work).await });
    let elapsed = started.elapsed();
    let ok = outcome
        .map_err(|_| format!("raw reqwest: not done within {RUN_TIMEOUT:?}"))?
        .map_err(|e| format!("raw reqwest: {e}"))?;
    if ok != total {
        return Err(format!("raw reqwest: {ok} of {total} succeeded"));
    }
    Ok(ok as f64 / elapsed.as_secs_f64())
}

/// Runs `total` GETs through netkit's engine-free pool (`max_concurrent = concurrency`,
/// all submitted at once) and returns successful responses per second.
pub fn netkit_core(url: &str, total: usize, concurrency: usize) -> Result<f64, String> {
    let rt = runtime()?;
    let settings = PoolSettings {
        max_concurrent: concurrency,
        max_queued: total,
        max_retries: 0,
        ..PoolSettings::default()
    };
    let pool = HttpPool::with_runtime(settings, rt.handle().clone());
    let started = Instant::now();
    for _ in 0..total {
        pool.submit(Ok(RequestSpec {
            method: Method::Get,
            url: url.to_string(),
            headers: Vec::new(),
            body: RequestBody::Empty,
            final_500: false,
        }));
    }
    let deadline = started + RUN_TIMEOUT;
    let mut done = 0;
    let mut ok = 0;
    // Bounded by the deadline; sleeps briefly when nothing waits, like a frame would.
    while done < total && Instant::now() < deadline {
        let events = pool.drain(Budget {
            max_events: 0,
            max_time: Duration::ZERO,
        });
        if events.is_empty() {
            std::thread::sleep(Duration::from_micros(100));
        }
        for event in events {
            done += 1;
            let r = event.response;
            let has_id = r.json.as_ref().is_some_and(|j| j["id"].as_i64().is_some());
            if r.error == ErrorKind::None && has_id {
                ok += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    if ok != total {
        return Err(format!(
            "netkit core: {ok} of {total} succeeded ({done} ended)"
        ));
    }
    Ok(ok as f64 / elapsed.as_secs_f64())
}
