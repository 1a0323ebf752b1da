//! The one process-wide tokio runtime that every node's background work runs on.
//!
//! It is created on first use with the configured worker count and shut down when the
//! extension deinitializes, with a bounded wait so that quitting Godot never hangs.
//!
//! The worker count is the setting `netkit/runtime/worker_threads` (default 2). At
//! extension deinit (`InitStage::Scene`) the runtime shuts down with `shutdown_timeout(500
//! ms)`: tasks still running are dropped, and a dropped request's guard still reports its
//! ending (`http/pool.rs`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

/// Default number of tokio worker threads (`netkit/runtime/worker_threads`).
pub const DEFAULT_WORKER_THREADS: usize = 2;

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);
static WORKER_THREADS: AtomicUsize = AtomicUsize::new(DEFAULT_WORKER_THREADS);

/// Sets the worker count used when the runtime is next created. A running runtime keeps
/// its workers: the value is read once, at creation.
pub fn set_worker_threads(count: usize) {
    WORKER_THREADS.store(count.clamp(1, 64), Ordering::Relaxed);
}

/// Returns a handle to the shared runtime, creating it on first use.
pub fn handle() -> Handle {
    let mut guard = RUNTIME.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(runtime) = guard.as_ref() {
        return runtime.handle().clone();
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS.load(Ordering::Relaxed))
        .thread_name("netkit-worker")
        .enable_all()
        .build()
        .expect("the OS refused to start netkit's worker threads");
    let handle = runtime.handle().clone();
    *guard = Some(runtime);
    handle
}

/// True once the runtime has been created and not shut down.
pub fn is_running() -> bool {
    RUNTIME.lock().map(|g| g.is_some()).unwrap_or(false)
}

/// Stops the runtime, waiting at most `grace` for tasks to finish. Tasks still running
/// then are abandoned: their threads are told to stop and nothing waits on them.
pub fn shutdown(grace: Duration) {
    let runtime = RUNTIME.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(runtime) = runtime {
        runtime.shutdown_timeout(grace);
    }
}
