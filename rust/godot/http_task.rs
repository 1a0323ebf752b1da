//! `HTTPTask`: a handle to one request, to await or cancel.

use godot::prelude::*;

use super::http_response::HttpResponse;
use crate::core::http::CancelHandle;

/// A handle to one [HTTPPool] request: await its [signal completed] signal, or cancel it.
///
/// [method HTTPPool.request] and [method HTTPPool.fetch] return one. [signal completed] is
/// emitted exactly once, on the main thread, with the request's [HTTPResponse], whatever
/// the outcome: success, an HTTP error status, a failure or a cancellation.
///
/// ```gdscript
/// var task: HTTPTask = pool.fetch("/me")
/// var res: HTTPResponse = await task.completed
/// ```
///
/// A signal is not replayed. When awaiting several tasks one after another, a later one may
/// have finished while an earlier one was awaited, so check [method is_done] and read
/// [member response] rather than awaiting it:
///
/// ```gdscript
/// var tasks: Array[HTTPTask] = [pool.fetch("/profile"), pool.fetch("/inventory")]
/// for task in tasks:
///     var res: HTTPResponse = task.response if task.is_done() else await task.completed
///     print(res.status)
/// ```
#[derive(GodotClass)]
#[class(no_init, base = RefCounted, rename = HTTPTask)]
pub struct HttpTask {
    /// The request's id (int), unique within its pool; [signal HTTPPool.request_completed]
    /// passes it as `task_id`.
    #[var(no_set)]
    id: i64,
    /// The [HTTPResponse] once [signal completed] was emitted; `null` before.
    #[var(no_set)]
    response: Option<Gd<HttpResponse>>,
    cancel_handle: CancelHandle,
    base: Base<RefCounted>,
}

#[godot_api]
impl HttpTask {
    /// Emitted once when the request ends, with its [HTTPResponse]; also when it failed or
    /// was cancelled.
    #[signal]
    pub fn completed(response: Gd<HttpResponse>);

    /// Cancels the request, without blocking.
    ///
    /// It still ends through [signal completed], on a later frame, with
    /// [constant HTTPResponse.ERR_CANCELLED]. A request that had already finished keeps its
    /// result; calling again does nothing.
    #[func]
    pub fn cancel(&mut self) {
        self.cancel_handle.cancel();
    }

    /// Returns `true` once [signal completed] has been emitted; [member response] is set then.
    #[func]
    pub fn is_done(&self) -> bool {
        self.response.is_some()
    }
}

impl HttpTask {
    /// Creates the handle for request `id`.
    pub fn create(id: u64, cancel_handle: CancelHandle) -> Gd<HttpTask> {
        Gd::from_init_fn(|base| HttpTask {
            id: id as i64,
            response: None,
            cancel_handle,
            base,
        })
    }

    /// Records the response; the caller emits `completed` once no borrow is held.
    pub fn set_response(&mut self, response: Gd<HttpResponse>) {
        self.response = Some(response);
    }
}
